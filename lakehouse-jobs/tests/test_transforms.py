"""The transforms on a few hand-made rows: each reason code, the trusted/untrusted split and the
declared output columns. Plain local Spark, no catalog."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from simgate.lakehouse.config import LotBounds, parse_config
from simgate.lakehouse.schema import TRUSTED_SCHEMA, UNTRUSTED_SCHEMA
from simgate.lakehouse.transforms import check_quality, first_entries_of, parse_records, run_bounds_of, trusted_rows, untrusted_rows

from conftest import event, plain_spark_session

COLUMNS = "kafka_topic string, kafka_partition int, kafka_offset long, kafka_timestamp timestamp, raw_key string, raw_value string"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def spark():
    session = plain_spark_session("simgate-transforms-test")
    yield session
    session.stop()  # the next module builds its own session (catalog, extensions)


def rows(spark, values):
    data = [("t", 0, i, None, "k", v if isinstance(v, str) else json.dumps(v)) for i, v in enumerate(values)]
    return parse_records(spark.createDataFrame(data, COLUMNS))


def reasons_by_offset(df):
    return {r.kafka_offset: list(r.reasons) for r in df.select("kafka_offset", "reasons").collect()}


def test_each_rule_gives_its_reason(spark):
    cfg = parse_config({})
    rules = cfg.rules_for("parking-entries")
    good = event("r1", 1)
    values = [
        good,                                             # 0 trusted
        event("r1", 2, carId=None),                       # 1 missing:carId
        event("r1", 3, carId="  "),                       # 2 blank counts as missing
        {**event("r1", 4), "coordinates": {**good["coordinates"], "z": -3.0}},  # 3 out of the default lot
        dict(good),                                       # 4 duplicate in batch
        "{not json",                                      # 5
        event("r1", 6, schemaVersion=7),                  # 6
        event("r1", 7, sequence="seven"),                 # 7 wrong type
        event("r1", 8, eventType="parking.exit"),         # 8
        event("r1", 9, simTimeSeconds=1.0),               # 9 earlier than seq 1..4 (420 s ...)
        event("r1", 10, eventId="already-1"),             # 10 published before
        event("r1", 11, coordinates=None),                # 11 coordinates required for entries
    ]
    published = spark.createDataFrame([("already-1",)], "event_id string")
    checked = check_quality(rows(spark, values), rules, cfg.accepted_schema_versions, cfg.lot_bounds, published_ids=published)
    assert reasons_by_offset(checked) == {
        0: [],
        1: ["missing:carId"],
        2: ["missing:carId"],
        3: ["coordinates_out_of_bounds"],
        4: ["duplicate_in_batch"],
        5: ["unparseable_json"],
        6: ["unknown_schema_version"],
        7: ["schema_mismatch:sequence:string"],
        8: ["unexpected_event_type"],
        9: ["time_out_of_order"],
        10: ["duplicate_of_published"],
        11: ["missing:coordinates"],
    }


def test_run_lineage_bounds_override_the_default(spark):
    cfg = parse_config({})
    wide = {**event("r2", 1), "coordinates": {"slotId": "A-01", "x": 50.0, "y": 0.0, "z": 5.0, "yawDeg": 90.0}}
    runs = spark.createDataFrame(
        [("runs", 0, 0, None, "r2", json.dumps({"kind": "run.start", "runId": "r2", "lineage": {"extra": {
            "lot.minX": "0", "lot.maxX": "60", "lot.minY": "0", "lot.maxY": "0", "lot.minZ": "0", "lot.maxZ": "30"}}}))],
        COLUMNS,
    )
    bounds = run_bounds_of(runs)
    assert [tuple(r) for r in bounds.collect()] == [("r2", 0.0, 60.0, 0.0, 0.0, 0.0, 30.0)]
    rules = cfg.rules_for("parking-entries")
    with_lineage = check_quality(rows(spark, [wide]), rules, (1,), cfg.lot_bounds, run_bounds=bounds)
    without = check_quality(rows(spark, [wide]), rules, (1,), LotBounds())
    assert reasons_by_offset(with_lineage) == {0: []}
    assert reasons_by_offset(without) == {0: ["coordinates_out_of_bounds"]}


def test_exits_need_a_known_earlier_entry(spark):
    cfg = parse_config({})
    rules = cfg.rules_for("parking-exits")
    entries = spark.createDataFrame(
        [("r3", "CAR1", datetime(2026, 11, 27, 9, 0)), ("r3", "CAR1", datetime(2026, 11, 27, 11, 0)), ("r3", "CAR2", datetime(2026, 11, 27, 23, 0))],
        "run_id string, car_id string, event_time timestamp",
    )
    exits = [
        event("r3", 1, "parking.exit", car="CAR1", timeStamp="2026-11-27T10:00:00.000Z"),
        event("r3", 2, "parking.exit", car="GHOST", timeStamp="2026-11-27T10:00:00.000Z"),
        event("r3", 3, "parking.exit", car="CAR2", timeStamp="2026-11-27T10:00:00.000Z"),
    ]
    checked = check_quality(rows(spark, exits), rules, (1,), cfg.lot_bounds, first_entries=first_entries_of(entries))
    assert reasons_by_offset(checked) == {0: [], 1: ["exit_without_entry"], 2: ["exit_before_entry"]}


def test_reasons_are_narrow_rows_one_per_record_that_join_back_to_the_full_rows(spark):
    """What the WAP job caches beside its batch: the partition, the offset and the reasons, nothing of the
    record; joined back (with_reasons, broadcast or not) they give check_quality's rows."""
    from simgate.lakehouse.transforms import check_reasons, with_reasons

    cfg = parse_config({})
    rules = cfg.rules_for("parking-entries")
    values = [event("r6", 1), event("r6", 2, carId=None), "{bad", event("r6", 1), event("r6", 4, eventId="already-2")]
    parsed = rows(spark, values)
    published = spark.createDataFrame([("already-2",)], "event_id string")
    narrow = check_reasons(parsed, rules, (1,), cfg.lot_bounds, published_ids=published)
    assert narrow.columns == ["_p", "_o", "reasons"]
    assert sorted((r._p, r._o) for r in narrow.collect()) == [(0, i) for i in range(len(values))]
    expected = {0: [], 1: ["missing:carId"], 2: ["unparseable_json"], 3: ["duplicate_in_batch"], 4: ["duplicate_of_published"]}
    for broadcast in (False, True):
        joined = with_reasons(parsed, narrow, broadcast=broadcast)
        assert joined.columns == parsed.columns + ["reasons"]
        assert reasons_by_offset(joined) == expected
    assert reasons_by_offset(check_quality(parsed, rules, (1,), cfg.lot_bounds, published_ids=published)) == expected


def test_a_value_that_is_not_one_json_object_is_unparseable_json_and_nothing_else(spark):
    """The contract alone says whether a value is a JSON object (no column parses the text again to ask):
    arrays, scalars, JSON's null, text after the object, blanks and a Kafka value of null (a tombstone)
    all get exactly that reason."""
    cfg = parse_config({})
    values = ["[1, 2]", "42", '"text"', "null", "", "   ", json.dumps(event("r7", 1)) + " {}", None, json.dumps(event("r7", 2))]
    data = [("t", 0, i, None, "k", v) for i, v in enumerate(values)]
    parsed = parse_records(spark.createDataFrame(data, COLUMNS))
    checked = check_quality(parsed, cfg.rules_for("parking-entries"), (1,), cfg.lot_bounds)
    expected = {i: ["unparseable_json"] for i in range(len(values) - 1)}
    assert reasons_by_offset(checked) == {**expected, len(values) - 1: []}


def test_split_gives_the_declared_columns(spark):
    cfg = parse_config({})
    checked = check_quality(rows(spark, [event("r4", 1), "{bad"]), cfg.rules_for("parking-entries"), (1,), cfg.lot_bounds)
    trusted = trusted_rows(checked, "wap-1", NOW)
    untrusted = untrusted_rows(checked, "wap-1", NOW)
    assert [f.name for f in trusted.schema.fields] == TRUSTED_SCHEMA.fieldNames()
    assert [f.name for f in untrusted.schema.fields] == UNTRUSTED_SCHEMA.fieldNames()
    t = trusted.collect()
    assert len(t) == 1 and t[0].event_id == "r4-entry-000001" and t[0].wap_run_id == "wap-1"
    assert t[0].event_time == datetime(2026, 11, 27, 9, 7) and t[0].images[0].camera_prim_path == "/World/Gates/Entry/Camera"
    u = untrusted.collect()
    assert len(u) == 1 and u[0].raw_value == "{bad" and list(u[0].reasons) == ["unparseable_json"]


def test_wrong_json_types_never_reach_the_trusted_rows(spark):
    """The outside check's cases: Spark's reader turned each of these into text (or took the timestamp
    as UTC) and they were published as trusted. Each is untrusted, with a reason naming field and type."""
    cfg = parse_config({})
    rules = cfg.rules_for("parking-entries")
    values = [
        event("r5", 1, carId={"plate": "AB123"}),
        event("r5", 2, carId=12345),
        event("r5", 3, eventId=987654321),
        event("r5", 4, text=["a", "b"]),
        event("r5", 5, attributes={"gate": 7}),
        event("r5", 6, timeStamp="2026-11-27T09:42:00.000"),
        event("r5", 7, timeStamp="2026-11-27T11:49:00.000+02:00"),  # a zone other than Z: valid
        event("r5", 8, simTimeSeconds="NaN"),
    ]
    checked = check_quality(rows(spark, values), rules, (1,), cfg.lot_bounds)
    assert reasons_by_offset(checked) == {
        0: ["schema_mismatch:carId:object"],
        1: ["schema_mismatch:carId:number"],
        2: ["schema_mismatch:eventId:number"],
        3: ["schema_mismatch:text:array"],
        4: ["schema_mismatch:attributes.gate:number"],
        5: ["schema_mismatch:timeStamp:timestamp-without-zone"],
        6: [],
        7: ["schema_mismatch:simTimeSeconds:string"],
    }
    trusted = trusted_rows(checked, "wap-1", NOW).collect()
    assert [(t.event_id, t.event_time) for t in trusted] == [("r5-entry-000007", datetime(2026, 11, 27, 9, 49))]
    untrusted = untrusted_rows(checked, "wap-1", NOW).collect()
    assert len(untrusted) == 7 and all(u.raw_value for u in untrusted)


def test_local_rows_are_the_rows_built_in_the_jvm_in_one_partition(spark):
    """The run's own small rows (offsets, the ops row) as a local relation: the same values as Spark's
    createDataFrame (nulls, aware and naive timestamps, microseconds), but no Python RDD behind them
    (createDataFrame's needs a task per core and writes a file per task)."""
    from simgate.lakehouse.ops_table import WAP_RUNS_SCHEMA
    from simgate.lakehouse.schema import OFFSETS_SCHEMA, local_rows

    at = datetime(2026, 12, 3, 14, 5, 6, 123456, tzinfo=timezone.utc)
    offsets = [("parking-entries", p, 10 * p, 10 * p + 7, 7, "20261203T140506Z-0123abcd", at) for p in range(3)]
    run = [("20261203T140506Z-0123abcd", "parking-exits", "wap-x", 5, 4, 1, "0:0-5", at, at, None, at, at.replace(tzinfo=None), None, 1.5, None)]
    for rows, schema in ((offsets, OFFSETS_SCHEMA), (run, WAP_RUNS_SCHEMA)):
        local = local_rows(spark, rows, schema)
        assert local.schema.fieldNames() == schema.fieldNames()
        assert [f.dataType for f in local.schema.fields] == [f.dataType for f in schema.fields]
        assert local.collect() == spark.createDataFrame(rows, schema).collect()
        plan = local._jdf.queryExecution().executedPlan().toString()
        assert "ExistingRDD" not in plan, plan
        assert local.rdd.getNumPartitions() == 1
    assert local_rows(spark, [], OFFSETS_SCHEMA).count() == 0
