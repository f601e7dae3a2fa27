"""The pure parts of the WAP job, without Spark: configuration, resume offsets, the audit decision, names."""

from __future__ import annotations

import json

import pytest

from simgate.lakehouse.audit import AuditFigures, audit_problems
from simgate.lakehouse.config import ConfigError, LotBounds, load_config, parse_config, table_name
from simgate.lakehouse.kafka_source import PartitionRange, describe, plan_ranges
from simgate.lakehouse.schema import TRUSTED_SCHEMA, UNTRUSTED_SCHEMA, same_columns
from simgate.lakehouse.wap import branch_name, tag_name


def test_table_names_derive_from_topics():
    assert table_name("parking-entries") == "parking_entries"
    assert table_name("Parking.Exits-v2") == "parking_exits_v2"
    assert table_name("9lives") == "t_9lives"


def test_builtin_topics_and_overrides(tmp_path):
    cfg = parse_config({})
    assert cfg.rules_for("parking-exits").entry_topic == "parking-entries"
    assert "coordinates" in cfg.rules_for("parking-entries").required_fields
    assert cfg.rules_for("other-topic").event_type is None
    assert cfg.lot_bounds == LotBounds()

    path = tmp_path / "wap.json"
    path.write_text(json.dumps({"lotBounds": {"xMax": 99}, "runsTopic": None, "topics": {"t-1": {"eventType": "x.y", "orderWith": ["t-2"]}}}))
    cfg = load_config(str(path))
    assert cfg.lot_bounds.x_max == 99 and cfg.lot_bounds.x_min == LotBounds().x_min
    assert cfg.runs_topic is None
    assert cfg.rules_for("t-1").event_type == "x.y" and cfg.rules_for("t-1").order_with == ("t-2",)


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"nope": 1}, "unknown keys: nope"),
        ({"lotBounds": {"xMin": 5, "xMax": 1}}, "minimum is larger"),
        ({"lotBounds": {"xMin": "0"}}, "lotBounds.xMin: expected a number"),
        ({"audit": {"maxSchemaErrorRatio": 2}}, "between 0 and 1"),
        ({"topics": {"t": {"requiredFields": "carId"}}}, "topics.t.requiredFields"),
        ({"runsTopic": "bad topic"}, "runsTopic"),
        ({"branchPrefix": "has space"}, "branchPrefix"),
    ],
)
def test_bad_configuration_names_the_key(tree, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(tree)


def test_a_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file"):
        load_config(str(tmp_path / "absent.json"))


def test_plan_ranges_resumes_from_the_published_offsets():
    marks = {0: (0, 10), 1: (0, 4), 2: (5, 9)}
    assert plan_ranges({}, marks) == [PartitionRange(0, 0, 10), PartitionRange(1, 0, 4), PartitionRange(2, 5, 9)]
    # Partition 0 published up to 10 (nothing new), 1 up to 2, 2 up to 3 but retention removed 3..4.
    ranges = plan_ranges({0: 10, 1: 2, 2: 3}, marks)
    assert ranges == [PartitionRange(0, 10, 10), PartitionRange(1, 2, 4), PartitionRange(2, 5, 9, skipped=2)]
    assert sum(r.size for r in ranges) == 6
    assert describe(ranges) == "0:10-10,1:2-4,2:5-9"


def test_audit_passes_clean_figures_and_names_every_problem():
    clean = AuditFigures(read=10, trusted=7, untrusted=3, schema_errors=1, trusted_nulls={"event_id": 0})
    assert audit_problems(clean, 0.5) == []
    bad = AuditFigures(
        read=10, trusted=7, untrusted=2, schema_errors=6,
        trusted_nulls={"event_id": 1, "run_id": 0},
        schema_problems={"nessie.production.t": ["missing column car_id"]},
    )
    problems = audit_problems(bad, 0.5)
    assert any("counts do not reconcile" in p for p in problems)
    assert any("event_id has 1 null" in p for p in problems)
    assert any("missing column car_id" in p for p in problems)
    assert any("schema change suspected" in p for p in problems)


def test_schema_comparison_reports_differences():
    assert same_columns(TRUSTED_SCHEMA, TRUSTED_SCHEMA) == []
    problems = same_columns(UNTRUSTED_SCHEMA, TRUSTED_SCHEMA)
    assert "undeclared column reasons" in problems


def test_branch_and_tag_names():
    cfg = parse_config({})
    assert branch_name(cfg, "parking-entries", "20261127T120000Z-ab12") == "wap_parking_entries_20261127T120000Z_ab12"
    assert tag_name("parking-entries", "20261127T120000Z-ab12") == "wap-parking-entries-20261127T120000Z-ab12"


def test_the_job_accepts_only_run_ids_retention_can_date(capsys):
    from simgate.lakehouse.wap import main

    for bad in ("abc", "run-1", "20261127T120000Z-XYZ", "20261127T120000Z-0123abcd-extra"):
        assert main(["--topic", "parking-entries", "--wap-run-id", bad]) == 64, bad
    assert "--wap-run-id must match" in capsys.readouterr().err


def test_exit_codes_and_signals_in_words():
    from simgate.lakehouse.wap import describe_exit

    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(134) == "exit code 134 (SIGABRT)"
    assert describe_exit(1) == "exit code 1"


class _JavaThrowable:
    """What py4j hands over as Py4JJavaError.java_exception, as far as describe_error reads it."""

    def __init__(self, name: str, message: str | None, cause: "_JavaThrowable | None" = None, frame: str = "") -> None:
        self.name, self.message, self.cause, self.frame = name, message, cause, frame

    def getClass(self):
        outer = self

        class _Class:
            def getName(self) -> str:
                return outer.name

        return _Class()

    def getMessage(self):
        return self.message

    def getCause(self):
        return self.cause

    def getStackTrace(self):
        return [self.frame] if self.frame else []


def test_a_java_error_is_described_by_its_root_cause_not_by_the_first_kilobyte_of_its_trace():
    from simgate.lakehouse.wap import describe_error

    root = _JavaThrowable("java.lang.AssertionError", "assertion failed: partitions mismatch\nmore text",
                          frame="org.apache.spark.sql.kafka010.KafkaOffsetReaderAdmin.fetchSpecificOffsets(KafkaOffsetReaderAdmin.scala:140)")
    outer = _JavaThrowable("org.apache.spark.SparkException", "[INTERNAL_ERROR] The Spark SQL phase planning failed with an internal error. " + "x" * 2000, root)

    class Py4JJavaError(Exception):  # the name is what describe_error shows; py4j's own class is not needed
        def __init__(self) -> None:
            super().__init__("An error occurred while calling o442.persist.\n" + "\tat frame\n" * 200)
            self.java_exception = outer

    text = describe_error(Py4JJavaError())
    assert text.startswith("Py4JJavaError: org.apache.spark.SparkException: [INTERNAL_ERROR] The Spark SQL phase planning failed")
    assert "root cause java.lang.AssertionError: assertion failed: partitions mismatch" in text
    assert "at org.apache.spark.sql.kafka010.KafkaOffsetReaderAdmin.fetchSpecificOffsets" in text
    assert "more text" not in text and len(text) < 1200
    # Any other error: its type and first line.
    assert describe_error(ValueError("bad value\nsecond line")) == "ValueError: bad value"
