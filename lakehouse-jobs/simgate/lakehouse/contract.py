"""The record contract: each field's JSON type, as docs/records.md ("JSON types") declares it, checked on
the record's own JSON text before anything of it is trusted.

Spark's JSON reader cannot do this: it turns any JSON value into text for a string column
(`"carId": {"plate": "AB123"}` becomes the string '{"plate":"AB123"}', `"eventId": 987654321` the
string '987654321'), takes a timestamp without a zone in the session's zone, and reads a number as a
timestamp. So every record's value is checked against the contract before Spark's typed parse fills the
columns. This module is the contract's declaration (EVENT_CONTRACT) and its readable reference check
(`schema_reasons`); the WAP job runs the same declaration in the Spark JVM (jvm.py, RecordContract.java),
and tests/test_contract_jvm.py holds the two to the same reasons.

Reasons (stable codes; docs/lakehouse.md):
  unparseable_json                        the value is not one JSON object
  unknown_schema_version                  schemaVersion absent, null, or an integer not accepted
  schema_mismatch:<field>:<found>         <field> (`carId`, `coordinates.x`, `images[0].width`,
                                          `attributes.gate`) does not have its declared type; <found> is
                                          the JSON type found (number, string, object, array, boolean,
                                          null), `absent` for a never-null field that is not there,
                                          `undeclared` for a field the contract does not know,
                                          `duplicate-key`, `non-finite-number` (NaN, Infinity),
                                          `integer-out-of-range`, `timestamp-without-zone`,
                                          `unparseable-timestamp`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# ISO-8601 date and time with an explicit zone: Z or ±hh:mm (what the gateway writes is ...sss Z).
TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?P<zone>[Zz]|[+-]\d{2}:\d{2})?"
)


@dataclass(frozen=True)
class Kind:
    """A declared JSON type. `kind` is string | timestamp | integer | number | object | array | map."""

    kind: str
    nullable: bool = False
    fields: tuple[tuple[str, "Kind"], ...] = ()  # object: declared fields, in order
    items: "Kind | None" = None  # array items, map values
    bounds: tuple[int, int] = INT64  # integer

    def paths(self, prefix: str = "") -> Iterator[str]:
        if prefix:
            yield prefix
        for name, kind in self.fields:
            yield from kind.paths(f"{prefix}.{name}" if prefix else name)
        if self.kind == "array" and self.items is not None:
            yield from self.items.paths(f"{prefix}[]")
        if self.kind == "map" and self.items is not None:
            yield from self.items.paths(f"{prefix}.*")


def obj(*fields: tuple[str, Kind], nullable: bool = False) -> Kind:
    return Kind("object", nullable, fields=tuple(fields))


STRING, NUMBER, TIMESTAMP_KIND = Kind("string"), Kind("number"), Kind("timestamp")

IMAGE = obj(
    ("view", STRING),
    ("cameraPrimPath", STRING),
    ("uri", STRING),
    ("sha256", STRING),
    ("sizeBytes", Kind("integer")),
    ("contentType", STRING),
    ("width", Kind("integer", bounds=INT32)),
    ("height", Kind("integer", bounds=INT32)),
)

# Event record, schema version 1 (docs/records.md). The order is the order of the reasons.
EVENT_CONTRACT = obj(
    ("schemaVersion", Kind("integer", bounds=INT32)),
    ("eventId", STRING),
    ("runId", STRING),
    ("sequence", Kind("integer")),
    ("eventType", STRING),
    ("timeStamp", TIMESTAMP_KIND),
    ("simTimeSeconds", NUMBER),
    ("carId", Kind("string", nullable=True)),
    ("text", Kind("string", nullable=True)),
    ("coordinates", obj(("slotId", STRING), ("x", NUMBER), ("y", NUMBER), ("z", NUMBER), ("yawDeg", NUMBER), nullable=True)),
    ("images", Kind("array", items=IMAGE)),
    ("attributes", Kind("map", items=STRING)),
    ("ingest", obj(("receivedAt", TIMESTAMP_KIND), ("gatewayId", STRING))),
)


class _Duplicate:
    """Marks an object that had a key twice (JSON allows it, readers disagree on which value wins)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.value = dict(pairs)
        seen: set[str] = set()
        self.keys = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]


class _NonFinite(float):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> Any:
    keys = [k for k, _ in pairs]
    return _Duplicate(pairs) if len(set(keys)) != len(keys) else dict(pairs)


def _constant(name: str) -> float:
    return _NonFinite("nan")  # NaN, Infinity, -Infinity: valid for Python's reader, not JSON


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _timestamp_problem(text: str) -> str | None:
    m = TIMESTAMP.fullmatch(text)  # the pattern has no room for surrounding blanks
    if m is None:
        return "unparseable-timestamp" if not _zoneless_date_time(text) else "timestamp-without-zone"
    try:
        datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
    except ValueError:
        return "unparseable-timestamp"
    zone = m.group("zone")
    if zone is None:
        return "timestamp-without-zone"
    if zone not in ("Z", "z") and (int(zone[1:3]) > 18 or int(zone[4:6]) > 59):
        return "unparseable-timestamp"
    return None


def _zoneless_date_time(text: str) -> bool:
    """`2026-11-27 12:00:00` (a space instead of T) is a date-time too, just as zone-less."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[ Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?", text)
    if m is None:
        return False
    try:
        datetime(*(int(m.group(i)) for i in range(1, 7)))
        return True
    except ValueError:
        return False


def _check(value: Any, kind: Kind, path: str, out: list[str]) -> None:
    found = json_type(value)
    if value is None:
        if not kind.nullable:
            out.append(f"schema_mismatch:{path}:null")
        return
    if kind.kind in ("object", "map"):
        if isinstance(value, _Duplicate):
            out.extend(f"schema_mismatch:{path + '.' if path else ''}{k}:duplicate-key" for k in value.keys)
            return
        if found != "object":
            out.append(f"schema_mismatch:{path}:{found}")
            return
        prefix = f"{path}." if path else ""
        if kind.kind == "map":
            for key, item in value.items():
                _check(item, kind.items, f"{prefix}{key}", out)  # type: ignore[arg-type]
            return
        declared = dict(kind.fields)
        for name, field_kind in kind.fields:
            if name in value:
                _check(value[name], field_kind, f"{prefix}{name}", out)
            elif not field_kind.nullable:
                out.append(f"schema_mismatch:{prefix}{name}:absent")
        out.extend(f"schema_mismatch:{prefix}{name}:undeclared" for name in value if name not in declared)
        return
    if kind.kind == "array":
        if found != "array":
            out.append(f"schema_mismatch:{path}:{found}")
            return
        for i, item in enumerate(value):
            _check(item, kind.items, f"{path}[{i}]", out)  # type: ignore[arg-type]
        return
    if kind.kind in ("string", "timestamp"):
        if found != "string":
            out.append(f"schema_mismatch:{path}:{found}")
        elif kind.kind == "timestamp" and (problem := _timestamp_problem(value)):
            out.append(f"schema_mismatch:{path}:{problem}")
        return
    # integer, number
    if found != "number":
        out.append(f"schema_mismatch:{path}:{found}")
    elif isinstance(value, _NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
        out.append(f"schema_mismatch:{path}:non-finite-number")
    elif kind.kind == "integer":
        if not isinstance(value, int):
            out.append(f"schema_mismatch:{path}:number")
        elif not kind.bounds[0] <= value <= kind.bounds[1]:
            out.append(f"schema_mismatch:{path}:integer-out-of-range")


Checker = Callable[[Any, str, list], None]


def compile_contract(kind: Kind) -> Checker:
    """The contract as nested closures that pass a value of the declared type on a few `type(x) is`
    tests and hand anything else to `_check`, the reference walk, so every reason is `_check`'s own.
    It runs once per record in the WAP job; the generic walk spent most of its time asking each value
    its JSON type."""
    k = kind.kind
    if k in ("string", "timestamp"):
        timestamp = k == "timestamp"

        def check_text(value: Any, path: str, out: list) -> None:
            if type(value) is str:
                if timestamp and (problem := _timestamp_problem(value)):
                    out.append(f"schema_mismatch:{path}:{problem}")
                return
            _check(value, kind, path, out)

        return check_text
    if k == "number":

        def check_number(value: Any, path: str, out: list) -> None:
            t = type(value)
            if t is int or (t is float and math.isfinite(value)):
                return
            _check(value, kind, path, out)

        return check_number
    if k == "integer":
        low, high = kind.bounds

        def check_integer(value: Any, path: str, out: list) -> None:
            if type(value) is int and low <= value <= high:
                return
            _check(value, kind, path, out)

        return check_integer
    if k == "array":
        item = compile_contract(kind.items)  # type: ignore[arg-type]

        def check_array(value: Any, path: str, out: list) -> None:
            if type(value) is list:
                for i, element in enumerate(value):
                    item(element, f"{path}[{i}]", out)
                return
            _check(value, kind, path, out)

        return check_array
    if k == "map":
        entry = compile_contract(kind.items)  # type: ignore[arg-type]

        def check_map(value: Any, path: str, out: list) -> None:
            if type(value) is dict:
                prefix = f"{path}." if path else ""
                for key, element in value.items():
                    entry(element, f"{prefix}{key}", out)
                return
            _check(value, kind, path, out)

        return check_map
    fields = [(name, compile_contract(field_kind), field_kind.nullable) for name, field_kind in kind.fields]
    declared = frozenset(name for name, _ in kind.fields)

    def check_object(value: Any, path: str, out: list) -> None:
        if type(value) is not dict:
            _check(value, kind, path, out)
            return
        prefix = f"{path}." if path else ""
        for name, checker, nullable in fields:
            if name in value:
                checker(value[name], prefix + name, out)
            elif not nullable:
                out.append(f"schema_mismatch:{prefix}{name}:absent")
        if not declared.issuperset(value):
            out.extend(f"schema_mismatch:{prefix}{name}:undeclared" for name in value if name not in declared)

    return check_object


_EVENT_CHECKER = compile_contract(EVENT_CONTRACT)


def schema_reasons(raw_value: str | None, accepted_schema_versions: tuple[int, ...] | list[int], contract: Kind = EVENT_CONTRACT) -> list[str]:
    """The schema reasons of one record value: [] when it conforms to the contract."""
    if raw_value is None:
        return ["unparseable_json"]
    try:
        record = _DECODER.decode(raw_value)
    except (ValueError, RecursionError):
        return ["unparseable_json"]
    if isinstance(record, _Duplicate):
        record_value = record.value
    elif isinstance(record, dict):
        record_value = record
    else:
        return ["unparseable_json"]
    version = record_value.get("schemaVersion")
    if version is None:
        return ["unknown_schema_version"]
    if json_type(version) == "number" and isinstance(version, int) and version not in accepted_schema_versions:
        return ["unknown_schema_version"]
    out: list[str] = []
    (_EVENT_CHECKER if contract is EVENT_CONTRACT else compile_contract(contract))(record, "", out)
    return out
