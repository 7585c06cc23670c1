"""Assets: what a provider offers, where the data plane finds it, and the facts policies read about it.

An asset is read from EDC-shaped JSON-LD (``properties``, ``privateProperties``, ``dataAddress``), checked
(data address shape, Pactum's ``dataClass``/``category``/``jurisdiction``), and stored with its properties
keyed by full IRI so any spelling a client uses finds the same property. ``policy_facts`` is what the
policy engine receives as ``StateOfWorld.asset``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Select, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector import jsonld
from connector.config import Settings
from connector.errors import ConflictError, ConnectorError, NotFoundError
from connector.querying import Criterion, QuerySpec, SqlColumn, apply_filters, apply_query, condition
from connector.storage.tables_catalog import AssetPropertyRow, AssetRow

DATA_CLASSES = ("general", "important", "core")
DATA_ADDRESS_TYPES = ("HttpData", "File", "Inline")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_ID_LENGTH = 255

P_DATA_CLASS = jsonld.EDC + "dataClass"
P_CATEGORY = jsonld.EDC + "category"
P_JURISDICTION = jsonld.EDC + "jurisdiction"


class AssetInvalid(ConnectorError):
    """An asset (or its data address) that cannot be stored as given."""

    code = "asset_invalid"
    status = 400


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Asset:
    """One asset; ``properties`` keys are full IRIs, ``data_address`` keys are EDC short names."""

    id: str
    properties: dict[str, Any] = field(default_factory=dict)
    private_properties: dict[str, Any] = field(default_factory=dict)
    data_address: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0

    @property
    def data_class(self) -> str | None:
        value = self.properties.get(P_DATA_CLASS)
        return str(value) if value is not None else None

    @property
    def categories(self) -> list[str]:
        value = self.properties.get(P_CATEGORY)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    @property
    def jurisdiction(self) -> str | None:
        value = self.properties.get(P_JURISDICTION)
        return str(value) if value is not None else None

    def policy_facts(self) -> dict[str, Any]:
        """``StateOfWorld.asset``: short names for every EDC property plus ``origin`` (= jurisdiction)."""
        facts: dict[str, Any] = {"id": self.id, "@id": self.id}
        for iri, value in self.properties.items():
            facts[iri] = value
            short = jsonld.compact_iri(iri)
            facts.setdefault(short, value)
        if self.categories:
            facts["category"] = self.categories
        if self.jurisdiction:
            facts["origin"] = self.jurisdiction
        return facts


# ---- reading and checking ------------------------------------------------------------------------------

def check_id(value: Any, what: str = "@id") -> str:
    if not isinstance(value, str) or not value.strip():
        raise AssetInvalid(f"'{what}' must be a non-empty string", code="id_invalid")
    if len(value) > MAX_ID_LENGTH:
        raise AssetInvalid(f"'{what}' is longer than {MAX_ID_LENGTH} characters", code="id_invalid")
    if any(ord(ch) < 32 for ch in value):
        raise AssetInvalid(f"'{what}' contains control characters", code="id_invalid")
    return value


def _check_pactum_properties(properties: Mapping[str, Any]) -> None:
    data_class = properties.get(P_DATA_CLASS)
    if data_class is not None and data_class not in DATA_CLASSES:
        raise AssetInvalid(f"properties.dataClass = {data_class!r}: expected one of {', '.join(DATA_CLASSES)}",
                           code="asset_data_class_invalid")
    category = properties.get(P_CATEGORY)
    if category is not None:
        items = category if isinstance(category, list) else [category]
        if not items or not all(isinstance(c, str) and c for c in items):
            raise AssetInvalid("properties.category must be a non-empty string or a list of them",
                               code="asset_category_invalid")
    jurisdiction = properties.get(P_JURISDICTION)
    if jurisdiction is not None and (not isinstance(jurisdiction, str) or len(jurisdiction) != 2
                                     or not jurisdiction.isalpha() or not jurisdiction.isupper()):
        raise AssetInvalid(f"properties.jurisdiction = {jurisdiction!r}: expected an ISO 3166 alpha-2 code such "
                           f"as DE", code="asset_jurisdiction_invalid")


def _data_address_fields(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for iri, value in jsonld.properties_of(node).items():
        out[jsonld.compact_iri(iri)] = value
    return out


def _boolish(address: Mapping[str, Any], key: str) -> None:
    value = address.get(key)
    if value is not None and str(value).lower() not in ("true", "false"):
        raise AssetInvalid(f"dataAddress.{key} must be true or false, got {value!r}", code="data_address_invalid")


def check_data_address(address: Mapping[str, Any], settings: Settings | None) -> dict[str, Any]:
    """Validate one data address (short keys); returns it unchanged when it is usable."""
    kind = address.get("type")
    if kind not in DATA_ADDRESS_TYPES:
        raise AssetInvalid(f"dataAddress.type = {kind!r}: expected one of {', '.join(DATA_ADDRESS_TYPES)}",
                           code="data_address_type_unknown")
    if kind == "HttpData":
        base = address.get("baseUrl")
        parts = urlsplit(base) if isinstance(base, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise AssetInvalid(f"dataAddress.baseUrl = {base!r}: expected an absolute http(s) URL",
                               code="data_address_invalid")
        for key in ("proxyPath", "proxyQueryParams", "proxyMethod", "proxyBody"):
            _boolish(address, key)
        method = address.get("method")
        if method is not None and str(method).upper() not in HTTP_METHODS:
            raise AssetInvalid(f"dataAddress.method = {method!r}: expected one of {', '.join(HTTP_METHODS)}",
                               code="data_address_invalid")
    elif kind == "File":
        _check_file_address(address, settings)
    else:  # Inline
        has_data = isinstance(address.get("data"), str)
        source = address.get("source")
        if not has_data and source is None:
            raise AssetInvalid("an Inline dataAddress needs 'data' (the content) or 'source' (an inline data "
                               "source from the configuration)", code="data_address_invalid")
        if source is not None:
            _check_source(source, settings, ("inline",))
    return dict(address)


def _check_source(source: Any, settings: Settings | None, kinds: tuple[str, ...]) -> None:
    if not isinstance(source, str) or not source:
        raise AssetInvalid("dataAddress.source must name a data source from the configuration",
                           code="data_address_invalid")
    if settings is None:
        return
    known = {s.name: s.type for s in settings.data_sources}
    if source not in known:
        names = ", ".join(sorted(known)) or "none configured"
        raise AssetInvalid(f"dataAddress.source = {source!r}: no such data source (known: {names})",
                           code="data_source_unknown")
    if known[source] not in kinds:
        raise AssetInvalid(f"dataAddress.source = {source!r} is a {known[source]} source; this address needs "
                           f"one of type {', '.join(kinds)}", code="data_source_mismatch")


def _check_file_address(address: Mapping[str, Any], settings: Settings | None) -> None:
    _check_source(address.get("source"), settings, ("file", "folder"))
    path = address.get("path")
    if path is None:
        return
    if not isinstance(path, str) or not path:
        raise AssetInvalid("dataAddress.path must be a relative path string", code="data_address_invalid")
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":") or \
            any(part == ".." for part in path.replace("\\", "/").split("/")):
        raise AssetInvalid(f"dataAddress.path = {path!r}: must be relative to the data source, without '..'",
                           code="data_address_path_invalid")


def asset_from_node(node: Mapping[str, Any], settings: Settings | None, *, asset_id: str | None = None) -> Asset:
    """An Asset from an expanded JSON-LD node (the management API body); AssetInvalid when it is not usable."""
    node_id = node.get("@id")
    if asset_id is not None and node_id is not None and node_id != asset_id:
        raise AssetInvalid(f"the body's @id {node_id!r} differs from the path's {asset_id!r}", code="id_mismatch")
    resolved_id = check_id(asset_id if asset_id is not None else node_id)
    props_nodes = jsonld.values(node, jsonld.EDC + "properties")
    private_nodes = jsonld.values(node, jsonld.EDC + "privateProperties")
    if len(props_nodes) > 1 or len(private_nodes) > 1:
        raise AssetInvalid("'properties' and 'privateProperties' must be single objects")
    properties = jsonld.properties_of(props_nodes[0]) if props_nodes else {}
    private = jsonld.properties_of(private_nodes[0]) if private_nodes else {}
    _check_pactum_properties(properties)
    address_nodes = jsonld.values(node, jsonld.EDC + "dataAddress")
    if len(address_nodes) != 1 or not isinstance(address_nodes[0], Mapping):
        raise AssetInvalid("'dataAddress' is required (one object with a 'type')", code="data_address_missing")
    address = check_data_address(_data_address_fields(address_nodes[0]), settings)
    return Asset(resolved_id, properties, private, address)


def asset_to_jsonld(asset: Asset) -> dict[str, Any]:
    """The EDC response shape before compaction (keys as full IRIs; ``compact`` shortens them)."""
    return {
        "@id": asset.id,
        "@type": jsonld.EDC + "Asset",
        jsonld.EDC + "properties": {**asset.properties, jsonld.EDC + "id": asset.id},
        jsonld.EDC + "privateProperties": dict(asset.private_properties),
        jsonld.EDC + "dataAddress": {"@type": jsonld.EDC + "DataAddress",
                                     **{jsonld.expand_iri(k): v for k, v in asset.data_address.items()}},
        jsonld.EDC + "createdAt": asset.created_at,
    }


# ---- storage ---------------------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _property_rows(asset_id: str, properties: Mapping[str, Any], private: bool) -> list[AssetPropertyRow]:
    rows: list[AssetPropertyRow] = []
    for name, value in properties.items():
        items = value if isinstance(value, list) else [value]
        position = 0
        for item in items:
            text = _text(item)
            if text is None:
                text = json.dumps(item, sort_keys=True)
            rows.append(AssetPropertyRow(asset_id=asset_id, name=name, position=position, value=text,
                                         private=private))
            position += 1
    return rows


def asset_from_row(row: Any) -> Asset:
    """An Asset from a ``catalog_assets`` row: an ORM ``AssetRow`` or a Core row with the same column names."""
    return Asset(row.id, dict(row.properties), dict(row.private_properties), dict(row.data_address), row.created_at)


_COLUMNS: dict[str, SqlColumn] = {
    "id": AssetRow.id,
    "createdAt": AssetRow.created_at,
    "dataClass": AssetRow.data_class,
    "jurisdiction": AssetRow.jurisdiction,
}


def _property_condition(key: str) -> Callable[[Criterion], ColumnElement[bool]] | None:
    """Criteria on free-form properties: ``name``, ``edc:name``, full IRIs, ``privateProperties.'x'``."""
    private = False
    if key.startswith("privateProperties."):
        private = True
        key = key[len("privateProperties."):].strip("'\"")
    iri = jsonld.expand_iri(key)

    def build(criterion: Criterion) -> ColumnElement[bool]:
        right = criterion.right
        text_right: Any = [_text(v) for v in right] if isinstance(right, list) else _text(right)
        as_text = Criterion(criterion.left, criterion.operator, text_right)
        inner = select(AssetPropertyRow.asset_id).where(
            AssetPropertyRow.name == iri, AssetPropertyRow.private == private,
            condition(AssetPropertyRow.value, as_text))
        return AssetRow.id.in_(inner)

    return build


def asset_field(key: str) -> Any:
    """Resolver for QuerySpec/assetsSelector fields over assets (columns first, then properties)."""
    if key in ("https://w3id.org/edc/v0.0.1/ns/id", "edc:id"):
        key = "id"
    return _COLUMNS.get(key) or _property_condition(key)


def select_assets(criteria: Sequence[Criterion]) -> Select[Any]:
    """``SELECT`` of the assets matching every criterion (an empty selector matches all, as in EDC)."""
    return apply_filters(select(AssetRow), criteria, asset_field)


_ASSET_BY_ID = select(AssetRow.__table__).where(AssetRow.__table__.c.id == bindparam("asset_id"))


class AssetStore:
    """Repository of assets; each call is one transaction."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings | None = None) -> None:
        self.sessions = sessions
        self.settings = settings

    def create(self, asset: Asset) -> Asset:
        stamp = now_ms()
        with self.sessions.begin() as session:
            if session.get(AssetRow, asset.id) is not None:
                raise ConflictError(f"an asset with id {asset.id!r} already exists", code="asset_exists")
            session.add(AssetRow(id=asset.id, properties=asset.properties, private_properties=asset.private_properties,
                                 data_address=asset.data_address, data_class=asset.data_class,
                                 jurisdiction=asset.jurisdiction, created_at=stamp, updated_at=stamp))
            try:
                session.flush()
            except IntegrityError as exc:  # a concurrent create of the same id won the race
                raise ConflictError(f"an asset with id {asset.id!r} already exists", code="asset_exists") from exc
            session.add_all(_property_rows(asset.id, asset.properties, False)
                            + _property_rows(asset.id, asset.private_properties, True))
        return Asset(asset.id, asset.properties, asset.private_properties, asset.data_address, stamp)

    def update(self, asset: Asset) -> Asset:
        with self.sessions.begin() as session:
            row = session.get(AssetRow, asset.id)
            if row is None:
                raise NotFoundError(f"no asset with id {asset.id!r}", code="asset_not_found")
            row.properties = asset.properties
            row.private_properties = asset.private_properties
            row.data_address = asset.data_address
            row.data_class = asset.data_class
            row.jurisdiction = asset.jurisdiction
            row.updated_at = now_ms()
            session.execute(delete(AssetPropertyRow).where(AssetPropertyRow.asset_id == asset.id))
            session.add_all(_property_rows(asset.id, asset.properties, False)
                            + _property_rows(asset.id, asset.private_properties, True))
            return asset_from_row(row)

    def get(self, asset_id: str) -> Asset:
        found = self.find(asset_id)
        if found is None:
            raise NotFoundError(f"no asset with id {asset_id!r}", code="asset_not_found")
        return found

    def find(self, asset_id: str) -> Asset | None:
        """One asset by id, as a plain row (every agree step reads its asset's facts; no ORM object needed)."""
        with self.sessions() as session:
            row = session.execute(_ASSET_BY_ID, {"asset_id": asset_id}).first()
            return None if row is None else asset_from_row(row)

    def delete(self, asset_id: str) -> None:
        """Delete an asset no provider-side contract agreement refers to (as EDC: agreed data stays served)."""
        from connector.storage.tables_protocol import AgreementRow

        with self.sessions.begin() as session:
            row = session.get(AssetRow, asset_id)
            if row is None:
                raise NotFoundError(f"no asset with id {asset_id!r}", code="asset_not_found")
            agreement = session.scalars(select(AgreementRow.id).where(
                AgreementRow.asset_id == asset_id, AgreementRow.role == "provider").limit(1)).first()
            if agreement is not None:
                raise ConflictError(f"asset {asset_id!r} is referenced by contract agreement {agreement!r}; it "
                                    f"cannot be deleted", code="asset_in_use")
            session.execute(delete(AssetPropertyRow).where(AssetPropertyRow.asset_id == asset_id))
            session.delete(row)

    def query(self, spec: QuerySpec) -> list[Asset]:
        stmt = apply_query(select(AssetRow), spec, _COLUMNS, default_sort=AssetRow.id, resolve=_property_condition)
        with self.sessions() as session:
            return [asset_from_row(r) for r in session.scalars(stmt)]

    def matching(self, criteria: Sequence[Criterion]) -> list[Asset]:
        """Every asset a contract definition's ``assetsSelector`` picks, ordered by id."""
        with self.sessions() as session:
            return [asset_from_row(r) for r in session.scalars(select_assets(criteria).order_by(AssetRow.id))]

    def matches(self, asset_id: str, criteria: Sequence[Criterion]) -> bool:
        stmt = select_assets(criteria).where(AssetRow.id == asset_id)
        with self.sessions() as session:
            return session.scalars(stmt).first() is not None

    def count(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(AssetRow)) or 0)

    def ids(self, ids: Iterable[str]) -> dict[str, Asset]:
        wanted = list(ids)
        if not wanted:
            return {}
        with self.sessions() as session:
            rows = session.scalars(select(AssetRow).where(AssetRow.id.in_(wanted)))
            return {r.id: asset_from_row(r) for r in rows}
