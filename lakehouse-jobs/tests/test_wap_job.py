"""The WAP job against the real stack: records with known flaws in unique Kafka topics, real Spark,
Iceberg tables on the shared Nessie, files in S3Proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from pyspark.sql import functions as F

from simgate.lakehouse.config import parse_config
from simgate.lakehouse.nessie import NessieClient
from simgate.lakehouse.tables import TopicTables
from simgate.lakehouse.wap import RESULT_PREFIX, AuditFailed, InjectedFailure, branch_name, merge_commit_filter, run_wap, tag_name, use_reference, wap_session

from conftest import as_record, event

PYTHON = sys.executable


@pytest.fixture(scope="module")
def spark(settings):
    session = wap_session("simgate-wap-test", settings)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def nessie(settings) -> NessieClient:
    return NessieClient(settings.nessie_uri)


def config_for(entries: str, exits: str | None = None, runs: str | None = None, **extra) -> dict:
    extra = {"runsTopic": runs, **extra}
    topics = {entries: {"eventType": "parking.entry", "requiredFields": ["eventId", "runId", "eventType", "timeStamp", "carId", "sequence", "coordinates"]}}
    if exits:
        topics[exits] = {"eventType": "parking.exit", "entryTopic": entries}
    return {"topics": topics, **extra}


def flawed_entries(run_id: str) -> tuple[list, set[str], dict[str, str]]:
    """Ten valid entries and one of each flaw; returns (records, valid event ids, flawed key → reason)."""
    valid = [event(run_id, seq) for seq in range(1, 11)]
    missing_car = event(run_id, 11, carId=None)
    outside = event(run_id, 12)
    outside["coordinates"] = {**outside["coordinates"], "x": 500.0}
    duplicate = dict(valid[2])
    unknown_version = event(run_id, 13, schemaVersion=2)
    wrong_type = event(run_id, 14, simTimeSeconds="soon")
    late = event(run_id, 15, simTimeSeconds=100.0)  # earlier than events with smaller sequences
    # Wrong JSON types that Spark's reader would have turned into text (or a zone-less time into UTC).
    car_object = event(run_id, 17, carId={"plate": "AB123"})
    text_array = event(run_id, 18, text=["a", "b"])
    no_zone = event(run_id, 19, timeStamp="2026-11-27T11:13:00.000")
    numeric_id = event(run_id, 20, eventId=int(uuid.uuid4().int % 10**12))
    records = valid[:5] + [missing_car, outside, duplicate] + valid[5:] + [
        unknown_version, wrong_type, late, '{"eventId": "broken"', car_object, text_array, no_zone, numeric_id]
    flaws = {
        missing_car["eventId"]: "missing:carId",
        outside["eventId"]: "coordinates_out_of_bounds",
        duplicate["eventId"]: "duplicate_in_batch",
        unknown_version["eventId"]: "unknown_schema_version",
        wrong_type["eventId"]: "schema_mismatch:simTimeSeconds:string",
        late["eventId"]: "time_out_of_order",
        "<bad json>": "unparseable_json",
        car_object["eventId"]: "schema_mismatch:carId:object",
        text_array["eventId"]: "schema_mismatch:text:array",
        no_zone["eventId"]: "schema_mismatch:timeStamp:timestamp-without-zone",
        str(numeric_id["eventId"]): "schema_mismatch:eventId:number",
    }
    return records, {r["eventId"] for r in valid}, flaws


def production_ids(spark, settings, topic: str) -> list[str]:
    use_reference(spark, settings.catalog, "main")
    rows = spark.table(TopicTables(settings.catalog, topic).production).select("event_id").collect()
    return [r.event_id for r in rows]


def untrusted_reasons(spark, settings, topic: str) -> dict[str, list[str]]:
    use_reference(spark, settings.catalog, "main")
    rows = spark.table(TopicTables(settings.catalog, topic).untrusted).collect()
    return {(r.event_id if r.event_id and r.reasons != ["unparseable_json"] else "<bad json>"): list(r.reasons) for r in rows}


def main_log_for(nessie: NessieClient, topic: str, wap_run_id: str) -> list[dict]:
    return [c for c in nessie.log("main", 200) if c["message"].startswith(f"WAP publish {topic} run {wap_run_id}:")]


def test_valid_events_reach_production_once_and_flaws_land_in_untrusted(spark, settings, kafka, nessie, tmp_path):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    entries = kafka.create("entries")
    exits = kafka.create("exits")
    runs = kafka.create("runs", partitions=1)
    config = parse_config(config_for(entries, exits, runs))
    records, valid, flaws = flawed_entries(run_id)
    # The run's lineage states a wider lot than the default (x up to 45 m): an entry at x = 42 is valid.
    lot = {"lot.minX": "0", "lot.maxX": "45", "lot.minY": "0", "lot.maxY": "0", "lot.minZ": "0", "lot.maxZ": "30"}
    kafka.produce(runs, [(run_id, json.dumps({"schemaVersion": 1, "kind": "run.start", "runId": run_id, "lineage": {"source": "test", "extra": lot}}))])
    wide = event(run_id, 16)
    wide["coordinates"] = {**wide["coordinates"], "x": 42.0}
    records.insert(3, wide)
    valid.add(wide["eventId"])
    kafka.produce(entries, map(as_record, records))

    first = run_wap(spark, settings, config, entries)
    assert first.status == "published"
    assert first.read == len(records)
    assert (first.trusted, first.untrusted) == (len(valid), len(flaws))

    ids = production_ids(spark, settings, entries)
    assert sorted(ids) == sorted(valid)  # every valid event, each exactly once
    untrusted = untrusted_reasons(spark, settings, entries)
    assert {k: v for k, v in untrusted.items()} == {k: [reason] for k, reason in flaws.items()}

    # Exits: after the entries of the same run and car; one without entry, one before its entry.
    from conftest import BASE_TIME, iso
    from datetime import timedelta

    good_exits = [event(run_id, seq, "parking.exit", car=f"CAR{seq:04d}", timeStamp=iso(BASE_TIME + timedelta(hours=3, minutes=seq))) for seq in range(1, 6)]
    ghost = event(run_id, 6, "parking.exit", car="GHOST1")
    early = event(run_id, 7, "parking.exit", car="CAR0008", timeStamp=iso(BASE_TIME))
    kafka.produce(exits, map(as_record, good_exits + [ghost, early]))
    exit_result = run_wap(spark, settings, config, exits)
    assert exit_result.status == "published"
    assert sorted(production_ids(spark, settings, exits)) == sorted(e["eventId"] for e in good_exits)
    assert untrusted_reasons(spark, settings, exits) == {ghost["eventId"]: ["exit_without_entry"], early["eventId"]: ["exit_before_entry"]}

    # One merge and one tag per run on main, the branch gone.
    for topic, result in ((entries, first), (exits, exit_result)):
        merges = main_log_for(nessie, topic, result.wap_run_id)
        assert len(merges) == 1
        assert len(merges[0]["parentCommitHashes"]) == 2
        tag = nessie.reference(tag_name(topic, result.wap_run_id))
        assert tag is not None and tag.type == "TAG" and tag.hash == result.merged_hash
        assert nessie.reference(result.branch) is None

    # The snapshot summary carries the WAP run and the offset range.
    use_reference(spark, settings.catalog, "main")
    summaries = [r.summary for r in spark.sql(f"SELECT summary FROM {TopicTables(settings.catalog, entries).production}.snapshots").collect()]
    assert any(s.get("simgate.wap-run-id") == first.wap_run_id and s.get("simgate.kafka-offsets") == first.offsets for s in summaries)

    # Running again reads nothing new; replaying the same records adds nothing to production.
    again = run_wap(spark, settings, config, entries)
    assert again.status == "nothing_to_publish" and again.branch is None
    kafka.produce(entries, map(as_record, records))
    replay = run_wap(spark, settings, config, entries)
    assert replay.status == "published"
    assert sorted(production_ids(spark, settings, entries)) == sorted(valid)
    # Every parseable copy with a known id is now a duplicate of a published event (the in-batch copy too).
    assert replay.reasons.get("duplicate_of_published") == len(valid) + 1
    assert replay.trusted == 0
    assert [t for t in nessie.references() if t.name.startswith(f"wap-{entries}-")].__len__() == 2


def test_a_failed_audit_leaves_main_unchanged_and_keeps_the_branch(spark, settings, kafka, nessie):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("schema-change")
    config = parse_config(config_for(topic))
    # The producer moved to a schema version this job does not know: every record fails conformity.
    kafka.produce(topic, map(as_record, [event(run_id, seq, schemaVersion=2) for seq in range(1, 9)]))
    tables = TopicTables(settings.catalog, topic)

    with pytest.raises(AuditFailed) as failure:
        run_wap(spark, settings, config, topic)
    result = failure.value.result
    assert result.status == "audit_failed"
    assert any("schema change suspected" in p for p in result.problems)

    # Main: the tables exist (step 1) but hold nothing, and no offsets were published.
    use_reference(spark, settings.catalog, "main")
    assert spark.table(tables.production).count() == 0
    assert spark.table(tables.untrusted).count() == 0
    assert spark.table(tables.offsets).count() == 0
    assert main_log_for(nessie, topic, result.wap_run_id) == []
    # The branch is kept for inspection, with the untrusted rows of the run.
    assert nessie.reference(result.branch) is not None
    use_reference(spark, settings.catalog, result.branch)
    assert spark.table(tables.untrusted).filter(F.col("wap_run_id") == result.wap_run_id).count() == 8
    use_reference(spark, settings.catalog, "main")


@pytest.mark.parametrize("step", ["after_staging", "after_production", "after_merge"])
def test_a_run_interrupted_at_a_step_and_run_again_publishes_everything_once(spark, settings, kafka, nessie, step, monkeypatch):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create(f"resume-{step.replace('_', '-')}")
    config = parse_config(config_for(topic))
    records, valid, flaws = flawed_entries(run_id)
    kafka.produce(topic, map(as_record, records))

    monkeypatch.setenv("SIMGATE_WAP_FAIL_AT", step)
    with pytest.raises(InjectedFailure):
        run_wap(spark, settings, config, topic)
    monkeypatch.delenv("SIMGATE_WAP_FAIL_AT")
    use_reference(spark, settings.catalog, "main")

    second = run_wap(spark, settings, config, topic)
    expected_status = "nothing_to_publish" if step == "after_merge" else "published"
    assert second.status == expected_status
    if step == "after_merge":
        assert second.recovered_tag is not None  # the interrupted run's publication got its tag

    assert sorted(production_ids(spark, settings, topic)) == sorted(valid)
    assert untrusted_reasons(spark, settings, topic) == {k: [reason] for k, reason in flaws.items()}
    tags = [r for r in nessie.references() if r.type == "TAG" and r.name.startswith(f"wap-{topic}-")]
    assert len(tags) == 1
    merges = [c for c in nessie.log("main", 300) if c["message"].startswith(f"WAP publish {topic} run ")]
    assert len(merges) == 1


def test_the_job_killed_in_its_process_and_started_again_gives_the_same_tables(spark, settings, kafka, nessie, tmp_path):
    """The real thing: `python -m simgate.lakehouse.wap` is SIGKILLed after writing production on its
    branch (before the merge), then started again."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("killed")
    config_file = tmp_path / "wap.json"
    config_file.write_text(json.dumps(config_for(topic)))
    records, valid, flaws = flawed_entries(run_id)
    kafka.produce(topic, map(as_record, records))

    def run(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
        env = {**os.environ, **extra_env}
        return subprocess.run(
            [PYTHON, "-m", "simgate.lakehouse.wap", "--topic", topic, "--config", str(config_file)],
            env=env, capture_output=True, text=True, timeout=600,
        )

    killed = run({"SIMGATE_WAP_FAIL_AT": "after_production", "SIMGATE_WAP_FAIL_MODE": "kill"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert RESULT_PREFIX not in killed.stdout

    again = run({})
    assert again.returncode == 0, again.stderr[-3000:]
    result = json.loads(again.stdout.strip().splitlines()[-1].removeprefix(RESULT_PREFIX))
    assert result["status"] == "published"
    assert (result["trusted"], result["untrusted"]) == (len(valid), len(flaws))

    assert sorted(production_ids(spark, settings, topic)) == sorted(valid)
    assert untrusted_reasons(spark, settings, topic) == {k: [reason] for k, reason in flaws.items()}


def test_maintenance_compacts_production_on_main_and_entries_per_hour_reads_it(spark, settings, kafka, nessie):
    from simgate.lakehouse.maintenance import maintain
    from simgate.lakehouse.queries import entries_per_hour

    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("maint")
    config = parse_config(config_for(topic))
    tables = TopicTables(settings.catalog, topic)
    for batch in (range(1, 9), range(9, 18)):  # two WAP runs: at least two data files per day
        kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in batch]))
        assert run_wap(spark, settings, config, topic).status == "published"

    use_reference(spark, settings.catalog, "main")
    before_files = spark.sql(f"SELECT count(*) AS n FROM {tables.production}.files").collect()[0].n
    before_rows = sorted(r.event_id for r in spark.table(tables.production).select("event_id").collect())
    assert before_files >= 2

    report = {r["table"]: r for r in maintain(spark, settings, [topic])}
    assert report[f"production.{tables.base}"]["rewrittenDataFiles"] == before_files

    use_reference(spark, settings.catalog, "main")
    after_files = spark.sql(f"SELECT count(*) AS n FROM {tables.production}.files").collect()[0].n
    assert after_files < before_files
    assert sorted(r.event_id for r in spark.table(tables.production).select("event_id").collect()) == before_rows

    # Entries per hour: events every 7 minutes from 09:07, 17 of them.
    hours = [(h.hour, n) for h, n in entries_per_hour(spark, settings, topic)]
    assert hours == [(9, 8), (10, 9)]


def test_maintenance_bounds_each_tables_snapshot_list_and_compacts_the_run_table(spark, settings, kafka, nessie):
    """Every commit adds a snapshot to a table's metadata file, which each load reads and each commit
    writes again: without a bound, a run's cost grows with the number of runs before it. Maintenance
    keeps the newest snapshots in main's metadata (deleting no file: Nessie's commits and tags keep the
    history, and gc decides what goes), and compacts ops.wap_runs (a file and a manifest per run)."""
    from simgate.lakehouse.iceberg_files import load_table
    from simgate.lakehouse.maintenance import maintain
    from simgate.lakehouse.ops_table import wap_runs_table

    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("snapshots")
    config = parse_config(config_for(topic))
    tables = TopicTables(settings.catalog, topic)
    results = []
    for batch in (range(1, 4), range(4, 7), range(7, 10), range(10, 13)):
        kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in batch]))
        results.append(run_wap(spark, settings, config, topic))
        assert results[-1].status == "published"

    ops = wap_runs_table(settings.catalog)
    use_reference(spark, settings.catalog, "main")
    ops_files = spark.sql(f"SELECT count(*) AS n FROM {ops}.files").collect()[0].n
    ops_rows = sorted(tuple(r) for r in spark.table(ops).collect())
    assert len(list(load_table(spark, tables.production).snapshots())) >= 4 and ops_files >= 4
    at_first_tag = rows_at_ref(spark, settings, tables.production, tag_name(topic, results[0].wap_run_id))

    report = {r["table"]: r for r in maintain(spark, settings, [topic], keep_snapshots=2)}

    use_reference(spark, settings.catalog, "main")
    for table in (tables.production, tables.offsets, tables.trusted, ops):
        iceberg = load_table(spark, table)
        assert len(list(iceberg.snapshots())) <= 2, table
        assert report[table.split(".", 1)[1]]["removedSnapshots"] >= 1, report
    assert spark.sql(f"SELECT count(*) AS n FROM {ops}.files").collect()[0].n < ops_files
    assert sorted(tuple(r) for r in spark.table(ops).collect()) == ops_rows
    assert sorted(r.event_id for r in spark.table(tables.production).collect()) == sorted(
        event(run_id, seq)["eventId"] for seq in range(1, 13))
    # The history is Nessie's: the first run's tag still reads what it published.
    assert rows_at_ref(spark, settings, tables.production, tag_name(topic, results[0].wap_run_id)) == at_first_tag
    # And the next run works on the trimmed tables.
    kafka.produce(topic, map(as_record, [event(run_id, 13)]))
    assert run_wap(spark, settings, config, topic).trusted == 1


def rows_at_ref(spark, settings, table: str, ref: str) -> list[str]:
    use_reference(spark, settings.catalog, ref)
    try:
        return sorted(r.event_id for r in spark.table(table).select("event_id").collect())
    finally:
        use_reference(spark, settings.catalog, "main")


def test_a_table_whose_schema_drifted_fails_the_audit(spark, settings, kafka, nessie):
    """Someone changed production's schema on main: the audit refuses to publish into it."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("drift")
    config = parse_config(config_for(topic))
    tables = TopicTables(settings.catalog, topic)
    kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in range(1, 5)]))
    assert run_wap(spark, settings, config, topic).status == "published"

    use_reference(spark, settings.catalog, "main")
    spark.sql(f"ALTER TABLE {tables.production} ADD COLUMN plate_colour string")
    before = production_ids(spark, settings, topic)
    kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in range(5, 8)]))
    with pytest.raises(AuditFailed) as failure:
        run_wap(spark, settings, config, topic)
    assert any("undeclared column plate_colour" in p for p in failure.value.result.problems)
    assert sorted(production_ids(spark, settings, topic)) == sorted(before)
    assert nessie.reference(failure.value.result.branch) is not None


def test_a_recovered_tag_goes_on_the_runs_own_merge_commit_not_mains_head(spark, settings, kafka, nessie, monkeypatch):
    """Killed between merge and tag; another topic publishes meanwhile; the next run of the first topic
    tags the first run's own merge commit (found by its run id in the commit metadata)."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    first_topic = kafka.create("recover-a")
    other_topic = kafka.create("recover-b")
    config = parse_config({"runsTopic": None, "topics": {first_topic: {"eventType": "parking.entry"}, other_topic: {"eventType": "parking.entry"}}})
    kafka.produce(first_topic, map(as_record, [event(run_id, seq) for seq in range(1, 6)]))
    kafka.produce(other_topic, map(as_record, [event(f"{run_id}-b", seq) for seq in range(1, 4)]))

    monkeypatch.setenv("SIMGATE_WAP_FAIL_AT", "after_merge")
    from simgate.lakehouse.wap import WapResult

    interrupted = WapResult(status="running", topic=first_topic, wap_run_id="")
    with pytest.raises(InjectedFailure):
        run_wap(spark, settings, config, first_topic, result=interrupted)
    monkeypatch.delenv("SIMGATE_WAP_FAIL_AT")
    own_merge = interrupted.merged_hash
    assert own_merge is not None and nessie.reference(tag_name(first_topic, interrupted.wap_run_id)) is None

    other = run_wap(spark, settings, config, other_topic)
    assert other.status == "published"
    head = nessie.hash_of("main")
    assert head != own_merge

    again = run_wap(spark, settings, config, first_topic)
    assert again.status == "nothing_to_publish"
    assert again.recovered_tag == tag_name(first_topic, interrupted.wap_run_id)
    assert nessie.reference(again.recovered_tag).hash == own_merge
    # The merge commit carries the run in its metadata.
    merge = nessie.find_commit("main", merge_commit_filter(first_topic, interrupted.wap_run_id))
    assert merge is not None and merge["hash"] == own_merge
    assert merge["allProperties"]["simgate.kafka-topic"] == [first_topic]


def test_a_job_whose_jvm_died_drops_its_branch_and_says_why(settings, kafka, nessie, tmp_path):
    """The Spark JVM is SIGKILLed in the middle of a run (as a crash would end it): the job drops its
    branch through Nessie's REST API, prints its result line with the cause and the counts it had, and
    the next run publishes everything."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("jvm-died")
    config_file = tmp_path / "wap.json"
    config_file.write_text(json.dumps(config_for(topic)))
    records, valid, flaws = flawed_entries(run_id)
    kafka.produce(topic, map(as_record, records))
    wap_run_id = "20261127T120000Z-0123abcd"

    def run(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, "-m", "simgate.lakehouse.wap", "--topic", topic, "--config", str(config_file), *args],
            env={**os.environ, **extra_env}, capture_output=True, text=True, timeout=1500,
        )

    died = run({"SIMGATE_WAP_FAIL_AT": "after_staging", "SIMGATE_WAP_FAIL_MODE": "kill-jvm"}, "--wap-run-id", wap_run_id)
    assert died.returncode == 1, died.stderr[-3000:]
    line = died.stdout.strip().splitlines()[-1]
    assert line.startswith(RESULT_PREFIX), died.stdout[-2000:]
    result = json.loads(line.removeprefix(RESULT_PREFIX))
    assert result["status"] == "failed"
    assert result["problems"][0].startswith("the Spark JVM died (killed by SIGKILL) during audit"), result["problems"]
    assert result["read"] == len(records)
    # No traceback of the job's own (pyspark's accumulator server may still log the dropped connection).
    assert "simgate/lakehouse/wap.py" not in died.stderr
    from simgate.lakehouse.config import parse_config as _parse

    assert nessie.reference(branch_name(_parse(config_for(topic)), topic, wap_run_id)) is None

    again = run({})
    assert again.returncode == 0, again.stderr[-3000:]
    published = json.loads(again.stdout.strip().splitlines()[-1].removeprefix(RESULT_PREFIX))
    assert published["status"] == "published"
    assert (published["trusted"], published["untrusted"]) == (len(valid), len(flaws))
    assert {"sparkStart", "tables", "read", "check", "stage", "audit", "publish", "merge", "tag", "total"} <= set(published["timings"])


def test_a_merge_conflict_keeps_the_runs_real_counts(spark, settings, kafka, nessie):
    """Main's production table changes under a run (after its branch, before its merge): the merge is
    refused, and the run's result (what the job prints with exit 3) still has what it read."""
    from simgate.lakehouse.nessie import NessieConflict
    from simgate.lakehouse.wap import WapResult

    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("conflict")
    config = parse_config(config_for(topic))
    tables = TopicTables(settings.catalog, topic)
    kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in range(1, 8)]))

    def change_main_under_the_run(message: str) -> None:
        if " on branch " in message:  # logged right after the branch is made
            branch = message.split(" on branch ")[1].split(",")[0]
            use_reference(spark, settings.catalog, "main")
            spark.sql(f"ALTER TABLE {tables.production} SET TBLPROPERTIES ('simgate.test-conflict'='1')")
            use_reference(spark, settings.catalog, branch)

    result = WapResult(status="running", topic=topic, wap_run_id="")
    with pytest.raises(NessieConflict):
        run_wap(spark, settings, config, topic, result=result, log=change_main_under_the_run)
    assert (result.read, result.trusted, result.untrusted) == (7, 7, 0)
    assert result.offsets.startswith("0:") and result.step == "merge"
    assert production_ids(spark, settings, topic) == []
    assert nessie.reference(branch_name(config, topic, result.wap_run_id)) is None


def test_a_run_without_flawed_records_makes_no_untrusted_snapshot_and_still_reconciles(spark, settings, kafka, nessie):
    """An empty staging write is skipped (a Spark job and an Iceberg commit saved per clean run): the
    untrusted table gets no snapshot of the run, and the audit still reconciles read = trusted + 0."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("clean")
    config = parse_config(config_for(topic))
    tables = TopicTables(settings.catalog, topic)
    kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in range(1, 10)]))

    result = run_wap(spark, settings, config, topic)
    assert result.status == "published"
    assert (result.read, result.trusted, result.untrusted) == (9, 9, 0)
    assert sorted(production_ids(spark, settings, topic)) == sorted(event(run_id, seq)["eventId"] for seq in range(1, 10))
    use_reference(spark, settings.catalog, "main")
    untrusted_runs = [r.summary.get("simgate.wap-run-id") for r in spark.sql(f"SELECT summary FROM {tables.untrusted}.snapshots").collect()]
    assert result.wap_run_id not in untrusted_runs
    trusted_runs = [r.summary.get("simgate.wap-run-id") for r in spark.sql(f"SELECT summary FROM {tables.trusted}.snapshots").collect()]
    assert trusted_runs.count(result.wap_run_id) == 1
    # The run's offset ranges landed with the merge, as before: together they cover the 9 records.
    ranges = spark.table(tables.offsets).filter(F.col("wap_run_id") == result.wap_run_id).collect()
    assert sum(r.end_offset - r.start_offset for r in ranges) == 9


def test_an_exit_run_reads_entries_pending_in_only_some_partitions(spark, settings, kafka, nessie):
    """The exit run's rules read the entry topic's records not yet published. When only some of its
    partitions have such records, the Kafka read must still name every partition (Spark refuses a
    subset with an AssertionError wrapped as INTERNAL_ERROR, which failed runs in the job driver)."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    entries = kafka.create("pending-entries", partitions=3)
    exits = kafka.create("pending-exits")
    config = parse_config(config_for(entries, exits))
    entry = event(run_id, 1, car="CAR0001")
    kafka.produce(entries, [as_record(entry)])  # one record: one partition of three has anything pending
    from conftest import BASE_TIME, iso
    from datetime import timedelta

    leaving = event(run_id, 2, "parking.exit", car="CAR0001", timeStamp=iso(BASE_TIME + timedelta(hours=1)))
    kafka.produce(exits, [as_record(leaving)])

    result = run_wap(spark, settings, config, exits)
    assert result.status == "published", result.problems
    assert (result.trusted, result.untrusted) == (1, 0)  # its entry was found among the pending records


def iceberg_files_scanned(df) -> tuple[int, int]:
    """Executes `df` and returns (data files read, data files skipped) summed over its Iceberg scans, from
    the scan metrics Iceberg reports to Spark (a Kafka scan has none and adds nothing)."""
    df.collect()
    read = skipped = 0
    todo = [df._jdf.queryExecution().executedPlan()]
    while todo:
        node = todo.pop()
        name = node.getClass().getSimpleName()
        if name == "AdaptiveSparkPlanExec":
            todo.append(node.executedPlan())
            continue
        if name.endswith("QueryStageExec"):
            todo.append(node.plan())
            continue
        metrics = node.metrics()
        if metrics.contains("resultDataFiles"):
            read += int(metrics.apply("resultDataFiles").value())
            skipped += int(metrics.apply("skippedDataFiles").value())
        children = node.children().iterator()
        while children.hasNext():
            todo.append(children.next())
    return read, skipped


def test_a_runs_rules_read_only_the_production_files_that_can_hold_its_ids_and_runs(spark, settings, kafka, nessie, monkeypatch):
    """The duplicate rule needs production's ids, the exit rules the entries of the batch's runs: a run
    must not read every file production ever got (its cost would grow with the table). Production gets
    four earlier runs' files; the next entry run's duplicate check and the exit run's known entries read
    none of them, and a copy of an earlier run's event is still caught."""
    import simgate.lakehouse.wap as wap

    entries = kafka.create("prune-entries", partitions=1)
    exits = kafka.create("prune-exits", partitions=1)
    config = parse_config(config_for(entries, exits))
    earlier = [f"run-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    for run_id in earlier:
        kafka.produce(entries, map(as_record, [event(run_id, seq) for seq in range(1, 4)]))
        assert run_wap(spark, settings, config, entries).trusted == 3
    production_files = spark.sql(f"SELECT count(*) AS n FROM {TopicTables(settings.catalog, entries).production}.files").collect()[0]["n"]
    assert production_files >= 4

    scans: dict[str, tuple[int, int]] = {}
    check_reasons, known_events = wap.check_reasons, wap._known_events

    def spy_check(parsed, rules, *args, published_ids=None, **kwargs):
        scans["published_ids"] = iceberg_files_scanned(published_ids)
        return check_reasons(parsed, rules, *args, published_ids=published_ids, **kwargs)

    def spy_known(spark_, settings_, config_, topic, *args, **kwargs):
        known = known_events(spark_, settings_, config_, topic, *args, **kwargs)
        scans[f"known:{topic}"] = iceberg_files_scanned(known)
        return known

    monkeypatch.setattr(wap, "check_reasons", spy_check)
    monkeypatch.setattr(wap, "_known_events", spy_known)
    new_run = f"run-{uuid.uuid4().hex[:8]}"
    kafka.produce(entries, map(as_record, [event(new_run, seq) for seq in range(1, 4)]))
    result = run_wap(spark, settings, config, entries)
    assert (result.trusted, result.untrusted) == (3, 0)
    assert scans["published_ids"][0] == 0, scans  # no earlier run's file can hold the new run's ids
    assert scans["published_ids"][1] >= production_files, scans

    from conftest import BASE_TIME, iso
    from datetime import timedelta

    leaving = [event(new_run, seq, "parking.exit", car=f"CAR{seq:04d}", timeStamp=iso(BASE_TIME + timedelta(hours=2))) for seq in (4, 5)]
    leaving[1]["carId"] = "CAR0002"
    kafka.produce(exits, map(as_record, leaving))
    exit_result = run_wap(spark, settings, config, exits)
    assert (exit_result.trusted, exit_result.untrusted) == (1, 1)  # CAR0004 never entered in this run
    assert exit_result.reasons == {"exit_without_entry": 1}
    read, skipped = scans[f"known:{entries}"]
    assert read <= 2 and skipped >= production_files, scans  # the new run's file(s), not the earlier runs'

    # A copy of an earlier run's event in a later batch is still a duplicate of a published event.
    copy = event(earlier[0], 2)
    kafka.produce(entries, map(as_record, [event(f"run-{uuid.uuid4().hex[:8]}", 1), copy]))
    again = run_wap(spark, settings, config, entries)
    assert again.reasons == {"duplicate_of_published": 1} and again.trusted == 1
