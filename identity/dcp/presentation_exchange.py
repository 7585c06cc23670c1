"""A deliberately small subset of DIF Presentation Exchange 2.x, enough for DCP presentation queries.

Supported: input descriptors whose ``constraints.fields`` select credentials by JSONPath (``$.a.b``,
``$['a']``, ``[n]``, ``[*]``) with optional JSON Schema ``filter`` and ``optional`` flags; ``format`` limited to the
JWT claim formats Pactum presents. Anything else (submission requirements, ``frame``, predicates, required
limited disclosure, holder/subject relational constraints, recursive or filter JSONPath) is answered
``501 Not Implemented`` as DCP demands, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from identity.dcp.errors import MessageInvalid, NotSupported
from identity.dcp.jws import parse_jws
from identity.wallet import MAX_CREDENTIAL_BYTES, HeldCredential

JWT_FORMATS = frozenset({"jwt", "jwt_vc", "jwt_vp", "jwt_vc_json", "jwt_vp_json"})
_UNSUPPORTED_TOP = ("submission_requirements", "frame")
_UNSUPPORTED_CONSTRAINTS = ("statuses", "subject_is_issuer", "is_holder", "same_subject")
_SEGMENT = re.compile(r"""\.([A-Za-z_@$][\w@$-]*)|\[(\d+)\]|\[\*\]|\[['"]([^'"]+)['"]\]""")


class DefinitionUnsupported(NotSupported):
    """The presentation definition uses a feature outside Pactum's Presentation Exchange subset."""

    code = "presentation_definition_unsupported"


def _unsupported(what: str) -> DefinitionUnsupported:
    return DefinitionUnsupported(f"presentation definitions with {what} are not supported; query with 'scope' "
                                 "or use input descriptors with JSONPath fields and filters")


def parse_path(path: str) -> list[str | int | None]:
    """JSONPath subset -> steps (name, index, or None for ``[*]``); DefinitionUnsupported otherwise."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise _unsupported(f"path {path!r}")
    steps: list[str | int | None] = []
    pos = 1
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if match is None:
            raise _unsupported(f"JSONPath {path!r}")
        name, index, quoted = match.groups()
        steps.append(name if name is not None else quoted if quoted is not None else
                     int(index) if index is not None else None)
        pos = match.end()
    return steps


def _resolve(value: Any, steps: list[str | int | None]) -> Iterator[Any]:
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if step is None:
        items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
        for item in items:
            yield from _resolve(item, rest)
    elif isinstance(step, int):
        if isinstance(value, list) and step < len(value):
            yield from _resolve(value[step], rest)
    elif isinstance(value, dict) and step in value:
        yield from _resolve(value[step], rest)


@dataclass(frozen=True)
class _Field:
    paths: tuple[tuple[str | int | None, ...], ...]
    filter: Draft7Validator | None
    optional: bool

    def satisfied_by(self, views: Iterable[Any]) -> bool:
        for view in views:
            for steps in self.paths:
                for value in _resolve(view, list(steps)):
                    if self.filter is None or self._passes(value):
                        return True
        return False

    def _passes(self, value: Any) -> bool:
        assert self.filter is not None
        if self.filter.is_valid(value):
            return True
        # VC ``type`` is an array even when it has one meaningful entry: a string filter matches an element
        return isinstance(value, list) and any(self.filter.is_valid(v) for v in value)


@dataclass(frozen=True)
class _Descriptor:
    id: str
    fields: tuple[_Field, ...]

    def matches(self, credential: HeldCredential) -> bool:
        views = _views(credential)
        return all(f.optional or f.satisfied_by(views) for f in self.fields)


def _views(credential: HeldCredential) -> list[Any]:
    """The JSON a path may address: the JWT payload and the credential proper (``$.vc.type`` and ``$.type``)."""
    if isinstance(credential.payload, dict):
        return [credential.payload, {"vc": credential.payload}]
    payload = parse_jws(credential.payload, max_bytes=MAX_CREDENTIAL_BYTES).payload
    inner = payload.get("vc")
    return [payload, inner] if isinstance(inner, dict) else [payload, {"vc": payload}]


def _check_format(fmt: Any, where: str) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict) or not JWT_FORMATS.intersection(fmt):
        raise _unsupported(f"{where} format {sorted(fmt) if isinstance(fmt, dict) else fmt!r} (only JWT formats)")


@dataclass(frozen=True)
class CompiledDefinition:
    """A presentation definition ready to select credentials."""

    id: str
    descriptors: tuple[_Descriptor, ...]

    def select(self, credentials: list[HeldCredential]) -> dict[str, list[HeldCredential]]:
        """Descriptor id -> matching credentials (descriptors nothing satisfies are left out)."""
        selected: dict[str, list[HeldCredential]] = {}
        for descriptor in self.descriptors:
            hits = [c for c in credentials if descriptor.matches(c)]
            if hits:
                selected[descriptor.id] = hits
        return selected


def compile_definition(definition: dict[str, Any]) -> CompiledDefinition:
    """Check the definition stays within the supported subset and compile its fields and filters."""
    for key in _UNSUPPORTED_TOP:
        if key in definition:
            raise _unsupported(f"'{key}'")
    _check_format(definition.get("format"), "definition")
    descriptors = []
    for raw in definition.get("input_descriptors") or []:
        _check_format(raw.get("format"), f"input descriptor {raw.get('id')!r}")
        constraints = raw.get("constraints") or {}
        for key in _UNSUPPORTED_CONSTRAINTS:
            if key in constraints:
                raise _unsupported(f"constraint '{key}'")
        if constraints.get("limit_disclosure") == "required":
            raise _unsupported("required limited disclosure")
        fields = []
        for field in constraints.get("fields") or []:
            if "predicate" in field:
                raise _unsupported("field predicates")
            validator = None
            if "filter" in field:
                try:
                    Draft7Validator.check_schema(field["filter"])
                except SchemaError as exc:
                    raise MessageInvalid(f"field filter is not a JSON Schema: {exc.message}",
                                         code="schema_violation") from None
                validator = Draft7Validator(field["filter"])
            paths = tuple(tuple(parse_path(p)) for p in field["path"])
            fields.append(_Field(paths, validator, bool(field.get("optional", False))))
        if not fields:
            raise _unsupported(f"input descriptor {raw.get('id')!r} without field constraints")
        descriptors.append(_Descriptor(str(raw["id"]), tuple(fields)))
    if not descriptors:
        raise MessageInvalid("a presentation definition needs at least one input descriptor",
                             code="schema_violation")
    return CompiledDefinition(str(definition["id"]), tuple(descriptors))
