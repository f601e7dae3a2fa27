"""The record contract as the WAP job runs it, in the Spark JVM (RecordContract.java, registered by
jvm.py), against contract.schema_reasons, the readable reference: every case of test_contract.py, edge
cases of the JSON reader (non-finite numbers, huge integers, odd timestamps, duplicate keys, garbage),
and thousands of mutated records, byte-level and structural, must get the same reasons in the same
order from both."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from simgate.lakehouse.contract import schema_reasons
from simgate.lakehouse.jvm import contract_spec
from simgate.lakehouse.transforms import contract_reasons

from conftest import event, plain_spark_session
from test_contract import CASES, FIELDS, SAMPLES, with_value


@pytest.fixture(scope="module")
def spark():
    session = plain_spark_session("simgate-contract-jvm-test")
    yield session
    session.stop()  # the next module builds its own session (catalog, extensions)


def jvm_reasons(spark, values: list[str | None], accepted=(1,)) -> list[list[str]]:
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, raw_value string")
    rows = df.select("i", contract_reasons(spark, accepted).alias("reasons")).collect()
    by_index = {r["i"]: list(r["reasons"]) for r in rows}
    return [by_index[i] for i in range(len(values))]


def assert_same(spark, values: list[str | None], accepted=(1,)) -> list[list[str]]:
    ours = jvm_reasons(spark, values, accepted)
    differ = [(v, ours[i], schema_reasons(v, accepted)) for i, v in enumerate(values) if ours[i] != schema_reasons(v, accepted)]
    assert not differ, f"{len(differ)} of {len(values)} differ, e.g. (value, JVM, Python): {differ[:3]}"
    return ours


def test_the_spec_carries_the_whole_contract():
    spec = json.loads(contract_spec(__import__("simgate.lakehouse.contract", fromlist=["EVENT_CONTRACT"]).EVENT_CONTRACT, (1, 2)))
    assert spec["accepted"] == [1, 2]
    names = [name for name, _ in spec["contract"]["fields"]]
    assert names[:3] == ["schemaVersion", "eventId", "runId"] and "ingest" in names
    assert spec["contract"]["fields"][3][1]["bounds"] == [-(2**63), 2**63 - 1]


def test_every_case_of_the_contract_tests_gets_the_same_reasons(spark):
    values = [json.dumps(event("r1", 1))]
    values += [with_value(path, SAMPLES[kind]) for path, kind in CASES]
    for path in ("timeStamp", "ingest.receivedAt"):
        for text in ("2026-11-27T12:00:00.123Z", "2026-11-27T14:00:00.123456+02:00", "2026-11-27T12:00:00.123",
                     "2026-11-27 12:00:00", "soon", "2026-13-01T00:00:00Z", "2026-11-27T25:00:00Z", "", "1764244800"):
            values.append(with_value(path, text))
    ours = assert_same(spark, values)
    assert ours[0] == [] and sum(1 for r in ours if r) >= len(CASES)  # the cases did fail, in both


EDGES: list[str | None] = [
    None, "", "   ", "{}", "[]", "null", "12", '"text"', "{not json", '{"a": 1} trailing', '{"a": 1} {"b": 2}',
    '{"a": 1,}', "{'a': 1}", '{"a": 1} // c', "\ufeff{}", '{"a": "\u0001"}', '{"a": "\\x"}', '{"a": "\\ud800"}',
    '{"schemaVersion": 1}', '{"schemaVersion": null}', '{"schemaVersion": true}', '{"schemaVersion": "1"}',
    '{"schemaVersion": 1.0}', '{"schemaVersion": 1e0}', '{"schemaVersion": 2}', '{"schemaVersion": -0}',
    '{"schemaVersion": ' + "9" * 40 + "}", '{"schemaVersion": NaN}', '{"schemaVersion": 1, "schemaVersion": 2}',
    '{"schemaVersion": 2, "schemaVersion": 1}', '{"schemaVersion": 1, "a": 1, "a": 2, "a": 3}',
    '{"schemaVersion": 01}', '{"schemaVersion": 1.}', '{"schemaVersion": .5}', '{"schemaVersion": +1}',
    '{"schemaVersion": INF}', '{"schemaVersion": -INF}', '{"schemaVersion": +Infinity}', '{"schemaVersion": Infinity}',
    '{"schemaVersion": -Infinity}', '{"schemaVersion": ' + "1" * 4300 + "}", '{"schemaVersion": ' + "1" * 4301 + "}",
    '{"schemaVersion": -' + "1" * 4300 + "}", '{"schemaVersion": 1, "x": ' + "1" * 5000 + ".5}",
    '{"schemaVersion": 1, "x": 1e400}', '{"schemaVersion": 1, "x": -1e400}', '{"schemaVersion": 1, "x": 1e-400}',
    '{"schemaVersion": 1, "x": ' + "[" * 50 + "]" * 50 + "}", '{"schemaVersion": 1, "x": ' + "[" * 3000 + "]" * 3000 + "}",
    '{"schemaVersion": 1, "x": tru}', '{"schemaVersion": 1, "x": nul}', '{"schemaVersion": 1, "x": True}',
    '{"schemaVersion": 1, "x": "a\nb"}', '{"schemaVersion": 1, "x": "\x7f"}', '{"schemaVersion": 1,',
    '{"schemaVersion": 1, "images": [', '{"schemaVersion": 1, "images": [1, 2,]}',
]


def _with(record: dict, **fields: Any) -> str:
    out = copy.deepcopy(record)
    out.update(fields)
    return json.dumps(out, allow_nan=True, ensure_ascii=False)


def test_edges_of_the_json_reader_and_of_timestamps_get_the_same_reasons(spark):
    base = event("r1", 1)
    values = list(EDGES)
    for stamp in ("2024-02-29T00:00:00Z", "2026-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                  "9999-12-31T23:59:59.999999999Z", "2026-11-27T24:00:00Z", "2026-11-27T23:60:00Z", "2026-11-27T23:59:60Z",
                  "2026-11-27T12:00:00+18:59", "2026-11-27T12:00:00+19:00", "2026-11-27T12:00:00+05:60", "2026-11-27t12:00:00z",
                  "2026-11-27T12:00:00.1234567890Z", "2026-11-27T12:00:00.Z", "2026-11-27T12:00Z", " 2026-11-27T12:00:00Z",
                  "2026-11-27T12:00:00Z ", "2026-11-27 12:00:00Z", "2026-11-27 12:00:00.5", "2026-02-30 12:00:00",
                  "٢٠٢٦-١١-٢٧T١٢:٠٠:٠٠Z", "２０２６-11-27T12:00:00Z", "2026-11-27T12:00:00+0200", "2026-11-27T12:00:00-00:00"):
        values.append(_with(base, timeStamp=stamp))
    values += [_with(base, sequence=2**63 - 1), _with(base, sequence=2**63), _with(base, sequence=-(2**63)),
               _with(base, sequence=-(2**63) - 1), _with(base, simTimeSeconds=float("inf")), _with(base, simTimeSeconds=-0.0),
               _with(base, attributes={"gate": "e", "n": None}), _with(base, attributes=[]), _with(base, images={}),
               _with(base, images=[None]), _with(base, coordinates=None), _with(base, carId="\u00e9\U0001f697")]
    values.append(json.dumps(base)[:-1] + ', "attributes": {"a": "1", "a": "2"}}')
    values.append(json.dumps(base).replace('"gate": "entry"', '"gate": "entry", "gate": "exit"'))
    values.append(json.dumps(base).replace('"x":', '"x": 1, "x":'))
    ours = assert_same(spark, values)
    assert ours.count(["unparseable_json"]) > 20 and any(r and r[0].endswith(":duplicate-key") for r in ours)
    assert_same(spark, [_with(base, schemaVersion=2), _with(base, schemaVersion=3)], accepted=(1, 2))


def test_mutated_records_get_the_same_reasons(spark):
    """Structural mutations (fields replaced, removed, added, wrong types, duplicate keys) and byte-level
    ones (bit flips, truncations, inserted and deleted characters, swapped spans) of valid records."""
    rng = random.Random(20261203)
    samples = [*SAMPLES.values(), float("nan"), 2**63, -(2**31) - 1, 1e300, "2026-11-27T12:00:00", "2026-11-27T12:00:00+02:00", [], {}]
    values: list[str] = []
    for n in range(3000):
        record = copy.deepcopy(event(f"r{n % 7}", n, images=[event("r1", 1)["images"][0]] * rng.randint(0, 3)))
        for _ in range(rng.randint(1, 4)):
            *parents, leaf = rng.choice(list(FIELDS)).split(".")
            target: Any = record
            try:
                for part in parents:
                    target = target[int(part)] if part.isdigit() else target[part]
                key: Any = int(leaf) if leaf.isdigit() else leaf
                if isinstance(target, dict) and rng.random() < 0.15:
                    target.pop(key, None)
                elif isinstance(target, dict) and rng.random() < 0.15:
                    target[f"extra{rng.randint(0, 9)}"] = rng.choice(samples)
                elif isinstance(target, (dict, list)):
                    target[key] = copy.deepcopy(rng.choice(samples))
            except (KeyError, IndexError, TypeError):
                continue
        text = json.dumps(record, allow_nan=True)
        if rng.random() < 0.05:
            text = text[:-1] + ', "carId": 7}'
        values.append(text)
    special = '{}[]:,"\\ 0123456789.eE+-tfnNaI\u00e9'
    for n in range(3000):
        text = json.dumps(event(f"r{n % 5}", n))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text))
            action = rng.randrange(5)
            if action == 0:
                flipped = chr(ord(text[at]) ^ (1 << rng.randrange(7)))
                text = text[:at] + flipped + text[at + 1:]
            elif action == 1:
                text = text[:at]
            elif action == 2:
                text = text[:at] + rng.choice(special) + text[at:]
            elif action == 3:
                text = text[:at] + text[at + rng.randint(1, 8):]
            else:
                end = min(len(text), at + rng.randint(1, 20))
                other = rng.randrange(len(text))
                text = text[:other] + text[at:end] + text[other:]
            if not text:
                break
        values.append(text)
    ours = assert_same(spark, values)
    failing = sum(1 for r in ours if r)
    assert failing > 4000 and sum(1 for r in ours if r == ["unparseable_json"]) > 500  # both kinds of mutation reached the checks
