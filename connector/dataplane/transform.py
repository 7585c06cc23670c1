"""Provider-side duty execution on the stream: anonymise (mask) or drop named fields in JSON and CSV.

WHY streaming: datasets can be far larger than memory. JSON arrays are split element by element with the C
decoder (``raw_decode``), NDJSON line by line, CSV row by row with the ``csv`` module; only one element or
row is in memory at a time (an element larger than ``MAX_ELEMENT`` is refused rather than buffered).
Field names match at any depth of a JSON object, and by header name in CSV.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from connector.dataplane.errors import DataPlaneError

MAX_ELEMENT = 16 * 1024 * 1024
_WS = " \t\r\n"


class TransformError(DataPlaneError):
    code = "transform_failed"
    status = 422


@dataclass(frozen=True)
class FieldRule:
    """Which fields to hide and how: ``mask`` keeps the key with a null/empty value, ``drop`` removes it."""

    fields: frozenset[str]
    mode: Literal["mask", "drop"] = "mask"


Transform = Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]


def scrub(value: Any, rule: FieldRule) -> Any:
    """A copy of a JSON value with the rule's fields masked or dropped at every depth."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in rule.fields:
                if rule.mode == "mask":
                    out[key] = None
                continue
            out[key] = scrub(item, rule)
        return out
    if isinstance(value, list):
        return [scrub(v, rule) for v in value]
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JsonArrayStream:
    """Incremental parser for one top-level JSON value; arrays are emitted element by element."""

    def __init__(self, rule: FieldRule) -> None:
        self.rule = rule
        self.buf = ""
        self.started = False  # saw the opening '['
        self.array = False
        self.first = True
        self.closed = False
        self.decoder = json.JSONDecoder()

    def feed(self, text: str, final: bool = False) -> str:
        self.buf += text
        out: list[str] = []
        if not self.started:
            stripped = self.buf.lstrip(_WS)
            if not stripped:
                return ""
            self.started = True
            if stripped[0] == "[":
                self.array = True
                self.buf = stripped[1:]
                out.append("[")
            else:
                self.buf = stripped
        if not self.array:  # a single object/value: must be whole before it can be scrubbed
            if len(self.buf) > MAX_ELEMENT:
                raise TransformError("JSON document too large to anonymise as one value; use an array or NDJSON")
            if not final:
                return ""
            try:
                value, end = self.decoder.raw_decode(self.buf)
            except json.JSONDecodeError as exc:
                raise TransformError(f"the asset is not valid JSON: {exc.msg}") from None
            if self.buf[end:].strip(_WS):
                raise TransformError("the asset has data after its JSON value")
            self.buf = ""
            return _dump(scrub(value, self.rule))
        pos = 0
        buf = self.buf
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos >= len(buf):
                break
            if self.closed:
                raise TransformError("the asset has data after its JSON array")
            ch = buf[pos]
            if ch == "]":
                self.closed = True
                out.append("]")
                pos += 1
                continue
            if ch == ",":
                if self.first:
                    raise TransformError("the asset's JSON array starts with a comma")
                pos += 1
                continue
            try:
                value, end = self.decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if final:
                    raise TransformError(f"the asset is not valid JSON: {exc.msg}") from None
                if len(buf) - pos > MAX_ELEMENT:
                    raise TransformError("a JSON array element exceeds the 16 MiB anonymisation limit") from None
                break
            if end >= len(buf) and not final:  # a number may continue in the next chunk
                break
            out.append(("" if self.first else ",") + _dump(scrub(value, self.rule)))
            self.first = False
            pos = end
        self.buf = buf[pos:]
        if final and (not self.closed or self.buf.strip(_WS)):
            raise TransformError("the asset's JSON array is not closed")
        return "".join(out)


async def _decoded(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bool]]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        async for chunk in chunks:
            yield decoder.decode(chunk), False
        yield decoder.decode(b"", final=True), True
    except UnicodeDecodeError:
        raise TransformError("the asset is not UTF-8 text, so its fields cannot be anonymised") from None


def json_transform(rule: FieldRule) -> Transform:
    async def run(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        parser = JsonArrayStream(rule)
        async for text, final in _decoded(chunks):
            out = parser.feed(text, final)
            if out:
                yield out.encode("utf-8")
    return run


def ndjson_transform(rule: FieldRule) -> Transform:
    async def run(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pending = ""
        async for text, final in _decoded(chunks):
            pending += text
            lines = pending.split("\n")
            pending = "" if final else lines.pop()
            out = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    out.append(_dump(scrub(json.loads(line), rule)) + "\n")
                except ValueError:
                    raise TransformError("an NDJSON line is not valid JSON") from None
            if len(pending) > MAX_ELEMENT:
                raise TransformError("an NDJSON line exceeds the 16 MiB anonymisation limit")
            if out:
                yield "".join(out).encode("utf-8")
    return run


def _csv_rows(lines: Iterable[str]) -> Iterator[list[str]]:
    return csv.reader(lines)


def csv_transform(rule: FieldRule) -> Transform:
    async def run(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pending = ""
        keep: list[int] | None = None
        hide: set[int] = set()
        async for text, final in _decoded(chunks):
            pending += text
            # cut at the last newline outside quotes: an even number of quotes before it
            cut = len(pending) if final else _last_record_end(pending)
            if cut <= 0:
                if len(pending) > MAX_ELEMENT:
                    raise TransformError("a CSV record exceeds the 16 MiB anonymisation limit")
                continue
            block, pending = pending[:cut], pending[cut:]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            try:
                for row in _csv_rows(io.StringIO(block, newline="")):
                    if keep is None:
                        hide = {i for i, name in enumerate(row) if name.strip() in rule.fields}
                        keep = [i for i in range(len(row)) if not (rule.mode == "drop" and i in hide)]
                        writer.writerow([row[i] for i in keep])
                        continue
                    if rule.mode == "mask":
                        writer.writerow(["" if i in hide else v for i, v in enumerate(row)])
                    else:
                        writer.writerow([row[i] for i in keep if i < len(row)])
            except csv.Error as exc:
                raise TransformError(f"the asset is not valid CSV: {exc}") from None
            if out.tell():
                yield out.getvalue().encode("utf-8")
    return run


def _last_record_end(text: str) -> int:
    """Index just past the last newline that ends a CSV record (not inside a quoted field), or 0."""
    idx = text.rfind("\n")
    while idx >= 0:
        if text.count('"', 0, idx) % 2 == 0:
            return idx + 1
        idx = text.rfind("\n", 0, idx)
    return 0


def transform_for(content_type: str, name: str, rule: FieldRule | None) -> Transform | None:
    """The streaming transform for a content type (or file name), None when nothing needs hiding."""
    if rule is None or not rule.fields:
        return None
    ct = content_type.split(";")[0].strip().lower()
    lower = name.lower()
    if ct in ("application/x-ndjson", "application/jsonl", "application/ndjson") or lower.endswith(
            (".ndjson", ".jsonl")):
        return ndjson_transform(rule)
    if ct == "application/json" or ct.endswith("+json") or lower.endswith(".json"):
        return json_transform(rule)
    if ct in ("text/csv", "application/csv") or lower.endswith(".csv"):
        return csv_transform(rule)
    raise TransformError(f"the agreement requires anonymising fields {sorted(rule.fields)} but the asset's "
                         f"content type {content_type!r} is neither JSON nor CSV; refusing to release it")
