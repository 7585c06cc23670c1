"""Where the provider's bytes come from: a file, a file inside a folder, an HTTP backend, or inline data.

Every source yields chunks asynchronously and supports a single byte range where the backend can (files
by seeking, HTTP backends by forwarding the Range header); nothing is ever read into memory whole.
Sub paths are confined to the asset's folder: absolute paths, ``..`` and symlinks leading out are refused.
"""

from __future__ import annotations

import functools
import mimetypes
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import httpx

from connector.config import DataSource
from connector.dataplane.errors import DataPlaneError, PathRefused, RangeNotSatisfiable, SourceUnavailable

CHUNK = 1024 * 1024
SMALL_FILE = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass
class SourceBody:
    """An open source: its chunks, full size (when known), content type, and the range actually served."""

    chunks: AsyncIterator[bytes]
    content_type: str
    size: int | None
    byte_range: ByteRange | None = None
    name: str = "data"

    @property
    def length(self) -> int | None:
        return self.byte_range.length if self.byte_range else self.size


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range, or None for no header; 416 when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(f"unsupported Range header {header!r}; use a single bytes=START-END range")
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable("a zero-length suffix range selects nothing")
        start, end = max(size - suffix, 0), size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"range {header!r} lies outside the {size}-byte resource")
    return ByteRange(start, end)


def safe_join(folder: str | os.PathLike[str], sub_path: str, *, resolved_root: str | None = None) -> Path:
    """``folder/sub_path`` if it stays inside ``folder`` after resolving symlinks, else PathRefused.

    ``resolved_root`` is ``os.path.realpath(folder)`` when the caller already has it (the data plane resolves
    an asset's folder once per transfer; the sub path's own parts are resolved on every call).
    """
    if not sub_path:
        raise PathRefused("this asset is a folder: name a file inside it")
    if "\x00" in sub_path or sub_path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", sub_path):
        raise PathRefused(f"absolute path {sub_path!r} is not allowed; paths are relative to the asset")
    parts = sub_path.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise PathRefused(f"path {sub_path!r} climbs out of the asset's folder ('..')")
    root = resolved_root or os.path.realpath(folder)
    target = root
    # WHY step by step: ``root`` is already resolved, so only the sub path's own parts can be symlinks; one
    # lstat per part instead of a realpath over the whole path (this runs on every data request)
    for part in parts:
        if part in ("", "."):
            continue
        target = os.path.join(target, part)
        if os.path.islink(target):
            target = os.path.realpath(target)
    if target != root and not target.startswith(root + os.sep):
        raise PathRefused(f"path {sub_path!r} leads out of the asset's folder (symlink)")
    if not os.path.isfile(target):
        raise PathRefused(f"no file {sub_path!r} in this asset", status=404, code="not_found")
    return Path(target)


def resolve_address(address: Mapping[str, Any], sources: Sequence[DataSource]) -> dict[str, Any]:
    """Turn an asset's data address into a concrete ``{"type", "path"|"url"|"data"}`` location."""
    if "source" in address:
        name = address["source"]
        found = next((s for s in sources if s.name == name), None)
        if found is None:
            raise SourceUnavailable(f"data source {name!r} is not configured on this connector")
        out: dict[str, Any] = {"type": found.type, "path": found.path, "url": found.url, "data": found.data}
        if address.get("path"):
            out["subPath"] = str(address["path"])
        return out
    kind = str(address.get("type", "")).lower()
    if kind in ("httpdata", "http"):
        url = address.get("baseUrl") or address.get("url") or address.get("endpoint")
        return {"type": "http", "url": url}
    if kind in ("file", "folder", "inline"):
        return {"type": kind, "path": address.get("path"), "data": address.get("data")}
    raise SourceUnavailable(f"unsupported data address type {address.get('type')!r}")


def _content_type(name: str, declared: str | None) -> str:
    if declared:
        return declared
    return _guess_type(os.path.splitext(name)[1].lower())


@functools.lru_cache(maxsize=256)
def _guess_type(extension: str) -> str:
    guessed, _ = mimetypes.guess_type("x" + extension)
    return guessed or "application/octet-stream"


async def _file_chunks(path: Path, rng: ByteRange | None) -> AsyncIterator[bytes]:
    start = rng.start if rng else 0
    remaining = rng.length if rng else None
    handle = await anyio.to_thread.run_sync(open, path, "rb")
    try:
        if start:
            await anyio.to_thread.run_sync(handle.seek, start)
        while remaining is None or remaining > 0:
            want = CHUNK if remaining is None else min(CHUNK, remaining)
            chunk = await anyio.to_thread.run_sync(handle.read, want)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        await anyio.to_thread.run_sync(handle.close)


async def _memory_chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]


def _read_small(path: Path, rng: ByteRange | None) -> bytes:
    with open(path, "rb") as handle:
        if rng is None:
            return handle.read()
        handle.seek(rng.start)
        return handle.read(rng.length)


async def open_file(path: Path, range_header: str | None, content_type: str | None) -> SourceBody:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise SourceUnavailable(f"the asset's file cannot be read: {exc.strerror}") from None
    rng = parse_range(range_header, size) if size else None
    length = rng.length if rng else size
    if length <= SMALL_FILE:
        # WHY inline: reading a few KiB from the page cache is far cheaper than a hop to a worker thread
        try:
            data = _read_small(path, rng)
        except OSError as exc:
            raise SourceUnavailable(f"the asset's file cannot be read: {exc.strerror}") from None
        return SourceBody(_memory_chunks(data), _content_type(path.name, content_type), size, rng, path.name)
    return SourceBody(_file_chunks(path, rng), _content_type(path.name, content_type), size, rng, path.name)


async def _http_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes(CHUNK):  # decoded: we never forward Content-Encoding
            yield chunk
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"the backend failed mid-stream: {exc.__class__.__name__}") from None
    finally:
        await response.aclose()


async def open_http(client: httpx.AsyncClient, url: str, range_header: str | None, correlation: dict[str, str],
                    content_type: str | None) -> SourceBody:
    headers = dict(correlation)
    if range_header:
        headers["Range"] = range_header
    try:
        response = await client.send(client.build_request("GET", url, headers=headers), stream=True)
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"the backend at {url} is unreachable: {exc.__class__.__name__}") from None
    if response.status_code == 416:
        await response.aclose()
        raise RangeNotSatisfiable("the backend cannot serve that range")
    if response.status_code >= 400:
        await response.aclose()
        raise SourceUnavailable(f"the backend answered HTTP {response.status_code}")
    encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
    size = None if encoded else response.headers.get("content-length")
    rng = None
    if response.status_code == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("content-range", ""))
        if m:
            rng = ByteRange(int(m.group(1)), int(m.group(2)))
            size = m.group(3) if m.group(3) != "*" else None
    return SourceBody(_http_chunks(response), content_type or response.headers.get("content-type",
                      "application/octet-stream"), int(size) if size and size.isdigit() else None, rng,
                      url.rsplit("/", 1)[-1] or "data")


async def open_source(location: Mapping[str, Any], *, sub_path: str | None, range_header: str | None,
                      client: httpx.AsyncClient, content_type: str | None = None,
                      correlation: dict[str, str] | None = None) -> SourceBody:
    """Open the asset's bytes for one request (sub path, range and declared content type applied)."""
    kind = location.get("type")
    sub = sub_path or location.get("subPath") or ""
    if kind == "file":
        if sub_path:
            raise PathRefused("this asset is a single file; sub paths are not allowed")
        return await open_file(Path(str(location["path"])), range_header, content_type)
    if kind == "folder":
        checked = location.get("resolved")  # already confined by the caller for this very request
        if isinstance(checked, Path):
            path = checked
        else:
            path = Path(str(checked)) if checked else safe_join(str(location["path"]), sub)
        return await open_file(path, range_header, content_type)
    if kind == "http":
        url = str(location.get("url") or "")
        if not url:
            raise SourceUnavailable("the asset's HTTP source has no URL")
        if sub:
            if ".." in PurePosixPath(sub).parts or sub.startswith("/") or "://" in sub:
                raise PathRefused(f"path {sub!r} is not allowed for an HTTP backend")
            url = url.rstrip("/") + "/" + sub
        return await open_http(client, url, range_header, correlation or {}, content_type)
    if kind == "inline":
        if sub_path:
            raise PathRefused("inline data has no sub paths")
        data = str(location.get("data") or "").encode("utf-8")
        rng = parse_range(range_header, len(data)) if data else None
        part = data[rng.start:rng.end + 1] if rng else data
        return SourceBody(_memory_chunks(part), content_type or "text/plain; charset=utf-8", len(data), rng)
    raise DataPlaneError(f"unknown source type {kind!r}")
