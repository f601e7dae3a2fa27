"""The record contract (docs/records.md, "JSON types"): every field of an event record, each wrong JSON
type (number, string, object, array, boolean, null), gives a schema reason naming the field and the type
found. Pure Python, no Spark: the same function runs inside the WAP job's parse step."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from simgate.lakehouse.contract import EVENT_CONTRACT, schema_reasons

from conftest import event

# One sample of each JSON type. Integers are numbers too: 12345 stands for "number" in string fields,
# 12.5 for "a number that is not an integer" in integer fields.
SAMPLES: dict[str, Any] = {
    "number": 12345,
    "fraction": 12.5,
    "string": "x",
    "object": {"plate": "AB123"},
    "array": ["a", "b"],
    "boolean": True,
    "null": None,
}

# Every field of the contract: path in the record (list index 0 for the first image, "gate" for an
# attribute value) → (declared kind, nullable). The test checks this list against the contract itself,
# so a field added to the contract without a test here fails.
FIELDS: dict[str, tuple[str, bool]] = {
    "schemaVersion": ("integer", False),
    "eventId": ("string", False),
    "runId": ("string", False),
    "sequence": ("integer", False),
    "eventType": ("string", False),
    "timeStamp": ("timestamp", False),
    "simTimeSeconds": ("number", False),
    "carId": ("string", True),
    "text": ("string", True),
    "coordinates": ("object", True),
    "coordinates.slotId": ("string", False),
    "coordinates.x": ("number", False),
    "coordinates.y": ("number", False),
    "coordinates.z": ("number", False),
    "coordinates.yawDeg": ("number", False),
    "images": ("array", False),
    "images.0": ("object", False),
    "images.0.view": ("string", False),
    "images.0.cameraPrimPath": ("string", False),
    "images.0.uri": ("string", False),
    "images.0.sha256": ("string", False),
    "images.0.sizeBytes": ("integer", False),
    "images.0.contentType": ("string", False),
    "images.0.width": ("integer", False),
    "images.0.height": ("integer", False),
    "attributes": ("object", False),
    "attributes.gate": ("string", False),
    "ingest": ("object", False),
    "ingest.receivedAt": ("timestamp", False),
    "ingest.gatewayId": ("string", False),
}

ACCEPTS = {
    "string": {"string"},
    "timestamp": set(),  # a string, but "x" is not a timestamp: tested separately below
    "integer": {"number"},
    "number": {"number", "fraction"},
    "object": {"object"},
    "array": {"array"},
}


def reason_path(path: str) -> str:
    """images.0.width → images[0].width (how reasons name a field)."""
    out = ""
    for part in path.split("."):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def with_value(path: str, value: Any) -> str:
    record = copy.deepcopy(event("r1", 1))
    *parents, leaf = path.split(".")
    target: Any = record
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if leaf.isdigit():
        target[int(leaf)] = value
    else:
        target[leaf] = value
    return json.dumps(record)


def found_name(kind: str) -> str:
    return "number" if kind == "fraction" else kind


CASES = [
    (path, kind)
    for path, (declared, nullable) in FIELDS.items()
    for kind in SAMPLES
    if kind not in ACCEPTS[declared] and not (kind == "null" and nullable)
]


def test_the_test_covers_every_field_of_the_contract():
    declared = {reason_path(p).replace("[0]", "[]").replace("attributes.gate", "attributes.*") for p in FIELDS}
    assert declared == set(EVENT_CONTRACT.paths())


def test_a_record_as_the_gateway_writes_it_passes():
    assert schema_reasons(json.dumps(event("r1", 1)), (1,)) == []
    # The nullable fields may be null, images and attributes may be empty.
    assert schema_reasons(json.dumps(event("r1", 1, carId=None, text=None, coordinates=None, images=[], attributes={})), (1,)) == []


@pytest.mark.parametrize("path,kind", CASES, ids=[f"{p}={k}" for p, k in CASES])
def test_each_field_with_each_wrong_json_type_names_the_field_and_the_type(path, kind):
    reasons = schema_reasons(with_value(path, SAMPLES[kind]), (1,))
    if path == "schemaVersion" and kind == "null":
        assert reasons == ["unknown_schema_version"]  # docs/lakehouse.md: schemaVersion missing
    elif FIELDS[path][0] == "timestamp" and kind == "string":
        assert reasons == [f"schema_mismatch:{reason_path(path)}:unparseable-timestamp"]  # "x"
    else:
        assert reasons == [f"schema_mismatch:{reason_path(path)}:{found_name(kind)}"]


@pytest.mark.parametrize("path", ["timeStamp", "ingest.receivedAt"])
def test_timestamps_need_an_explicit_zone_and_must_parse(path):
    ok = ["2026-11-27T12:00:00.123Z", "2026-11-27T12:00:00Z", "2026-11-27T14:00:00.123456+02:00", "2026-11-27T07:00:00-05:00"]
    for value in ok:
        assert schema_reasons(with_value(path, value), (1,)) == [], value
    name = reason_path(path)
    assert schema_reasons(with_value(path, "2026-11-27T12:00:00.123"), (1,)) == [f"schema_mismatch:{name}:timestamp-without-zone"]
    assert schema_reasons(with_value(path, "2026-11-27 12:00:00"), (1,)) == [f"schema_mismatch:{name}:timestamp-without-zone"]
    for bad in ("soon", "2026-13-01T00:00:00Z", "2026-11-27T25:00:00Z", "", "1764244800"):
        assert schema_reasons(with_value(path, bad), (1,)) == [f"schema_mismatch:{name}:unparseable-timestamp"], bad


def test_undeclared_fields_duplicate_keys_non_finite_numbers_and_ranges():
    assert schema_reasons(json.dumps({**event("r1", 1), "plateColour": "red"}), (1,)) == ["schema_mismatch:plateColour:undeclared"]
    coords = {**event("r1", 1)["coordinates"], "floor": 2}
    assert schema_reasons(with_value("coordinates", coords), (1,)) == ["schema_mismatch:coordinates.floor:undeclared"]
    duplicated = json.dumps(event("r1", 1))[:-1] + ', "carId": {"plate": "AB123"}}'
    assert schema_reasons(duplicated, (1,)) == ["schema_mismatch:carId:duplicate-key"]
    nan = json.dumps(event("r1", 1)).replace('"simTimeSeconds": 420.0', '"simTimeSeconds": NaN')
    assert "NaN" in nan
    assert schema_reasons(nan, (1,)) == ["schema_mismatch:simTimeSeconds:non-finite-number"]
    assert schema_reasons(with_value("images.0.width", 2**31), (1,)) == ["schema_mismatch:images[0].width:integer-out-of-range"]
    assert schema_reasons(with_value("sequence", 2**63), (1,)) == ["schema_mismatch:sequence:integer-out-of-range"]
    assert schema_reasons(with_value("sequence", 2**63 - 1), (1,)) == []


def test_several_wrong_fields_give_one_reason_each_in_field_order():
    record = event("r1", 1, carId={"plate": "AB123"}, eventId=987654321, text=["a", "b"], attributes={"gate": 7})
    assert schema_reasons(json.dumps(record), (1,)) == [
        "schema_mismatch:eventId:number",
        "schema_mismatch:carId:object",
        "schema_mismatch:text:array",
        "schema_mismatch:attributes.gate:number",
    ]


def test_not_an_object_and_unknown_versions():
    for value in ("{not json", "[1, 2]", '"text"', "12", "null", "", '{"a": 1} trailing'):
        assert schema_reasons(value, (1,)) == ["unparseable_json"], value
    assert schema_reasons(json.dumps(event("r1", 1, schemaVersion=2)), (1,)) == ["unknown_schema_version"]
    assert schema_reasons(json.dumps(event("r1", 1, schemaVersion=2)), (1, 2)) == []
    no_version = event("r1", 1)
    del no_version["schemaVersion"]
    assert schema_reasons(json.dumps(no_version), (1,)) == ["unknown_schema_version"]
    # A nullable field that is absent counts as null: `missing:` (the configuration's check) if required.
    no_car = event("r1", 1)
    del no_car["carId"]
    assert schema_reasons(json.dumps(no_car), (1,)) == []
    # A field the contract says is never null, absent: a schema error.
    no_id = event("r1", 1)
    del no_id["eventId"]
    assert schema_reasons(json.dumps(no_id), (1,)) == ["schema_mismatch:eventId:absent"]


def test_the_compiled_contract_gives_the_reference_walks_reasons_on_mutated_records():
    """schema_reasons runs the contract compiled into closures (the WAP job's hot path); `_check` is the
    plain walk it falls back to. Random records, each with a few fields replaced, removed or added,
    must get the same reasons, in the same order, from both."""
    import random

    from simgate.lakehouse.contract import _DECODER, _check, compile_contract

    rng = random.Random(20261202)
    compiled = compile_contract(EVENT_CONTRACT)
    values = [*SAMPLES.values(), float("nan"), 2**63, -(2**31) - 1, "2026-11-27T12:00:00", "2026-11-27T12:00:00+02:00", [], {}]
    differing = 0
    for _ in range(3000):
        record = copy.deepcopy(event("r1", 1, images=[event("r1", 1)["images"][0]] * rng.randint(0, 3)))
        for _ in range(rng.randint(1, 4)):
            path = rng.choice(list(FIELDS))
            *parents, leaf = path.split(".")
            target: Any = record
            try:
                for part in parents:
                    target = target[int(part)] if part.isdigit() else target[part]
                if not isinstance(target, (dict, list)):
                    continue
                key: Any = int(leaf) if leaf.isdigit() else leaf
                action = rng.random()
                if action < 0.15 and isinstance(target, dict):
                    target.pop(key, None)
                elif action < 0.25 and isinstance(target, dict):
                    target[f"extra{rng.randint(0, 9)}"] = rng.choice(values)
                else:
                    target[key] = copy.deepcopy(rng.choice(values))
            except (KeyError, IndexError, TypeError):
                continue
        text = json.dumps(record, allow_nan=True)
        if rng.random() < 0.05:
            text = text[:-1] + ', "carId": 7}'  # a duplicate key
        parsed = _DECODER.decode(text)
        ours: list[str] = []
        reference: list[str] = []
        compiled(parsed, "", ours)
        _check(parsed, EVENT_CONTRACT, "", reference)
        assert ours == reference, text
        differing += bool(reference)
    assert differing > 2000  # the mutations did reach the checks
