"""The Write-Audit-Publish job for one Kafka topic.

    python -m simgate.lakehouse.wap --topic parking-entries [--config FILE] [--wap-run-id ID]

1. make sure the namespaces and tables exist on main;
2. branch from main (Nessie);
3. read the records after the offsets published on main, up to the topic's end, and parse them;
4. check quality; 5. write trusted and untrusted rows to the staging tables on the branch;
6. (structure: partitioning, sort order, properties, snapshot summaries; see tables.py);
7. audit on the branch; a failure keeps the branch, leaves main alone and exits 2;
8. append the trusted rows and the offset ranges to production on the branch, merge into main guarded by
   main's hash at branching, tag, delete the branch.

The offsets travel with the data (production.<table>_offsets, merged in the same Nessie commit), so a
run killed at any step and started again publishes every valid event exactly once.

The last stdout line is `SIMGATE_WAP_RESULT {json}` for the gateway's job driver. Exit codes: 0
published or nothing to do, 1 error, 2 audit failed, 3 merge conflict, 4 topic not found, 64 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .audit import AuditFigures, audit_problems
from .config import ConfigError, JobConfig, load_config, table_name
from .kafka_source import PartitionRange, TopicNotFound, describe, plan_ranges, read_ranges, watermarks
from .nessie import NessieClient, NessieConflict
from .ops_table import RunSummary, capture_range, ensure_ops_table, record_run
from .schema import OFFSETS_SCHEMA, REQUIRED_TRUSTED_COLUMNS, TRUSTED_SCHEMA, UNTRUSTED_SCHEMA, same_columns
from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables, ensure_tables, last_published_run, published_offsets, table_exists
from .transforms import (
    SCHEMA_REASONS,
    check_quality,
    conforming,
    decode_kafka,
    first_entries_of,
    parse_records,
    run_bounds_of,
    trusted_rows,
    untrusted_rows,
)

RESULT_PREFIX = "SIMGATE_WAP_RESULT "
# Goes into branch and tag names: letters, digits and dashes only.
WAP_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
FAIL_POINTS = ("after_branch", "after_staging", "after_audit", "after_production", "after_merge", "after_tag")

# The session settings the WAP job needs on top of the factory's: no table cache, because the job moves
# the catalog between main and its branch.
WAP_SPARK_CONF = {"spark.sql.catalog.nessie.cache-enabled": "false"}


class InjectedFailure(RuntimeError):
    """Raised at SIMGATE_WAP_FAIL_AT (tests of the resume logic)."""


class AuditFailed(RuntimeError):
    def __init__(self, result: "WapResult") -> None:
        super().__init__("; ".join(result.problems))
        self.result = result


@dataclass
class WapResult:
    status: str  # published | nothing_to_publish | audit_failed
    topic: str
    wap_run_id: str
    branch: str | None = None
    read: int = 0
    trusted: int = 0
    untrusted: int = 0
    offsets: str = ""
    skipped_by_retention: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    tag: str | None = None
    merged_hash: str | None = None
    recovered_tag: str | None = None

    def to_json(self) -> str:
        return json.dumps({_camel(k): v for k, v in asdict(self).items()}, sort_keys=True)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def failure_point(name: str) -> None:
    if os.environ.get("SIMGATE_WAP_FAIL_AT") != name:
        return
    if os.environ.get("SIMGATE_WAP_FAIL_MODE") == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFailure(f"injected failure at {name}")


def new_wap_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def branch_name(config: JobConfig, topic: str, wap_run_id: str) -> str:
    return f"{config.branch_prefix}_{table_name(topic)}_{wap_run_id.replace('-', '_')}"


def tag_name(topic: str, wap_run_id: str) -> str:
    return f"wap-{topic}-{wap_run_id}"


def use_reference(spark: SparkSession, catalog: str, ref: str) -> None:
    spark.sql(f"USE REFERENCE `{ref}` IN {catalog}")


def _write(df: DataFrame, table: str, properties: dict[str, str]) -> None:
    writer = df.writeTo(table)
    for key, value in properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    writer.append()


def _audit_figures(spark: SparkSession, tables: TopicTables, wap_run_id: str, read: int) -> AuditFigures:
    this_run = F.col("wap_run_id") == F.lit(wap_run_id)
    trusted = spark.table(tables.trusted).filter(this_run)
    null_row = trusted.agg(
        F.count(F.lit(1)).alias("_rows"),
        *[F.sum(F.when(F.col(c).isNull(), 1).otherwise(0)).alias(c) for c in REQUIRED_TRUSTED_COLUMNS],
    ).collect()[0]
    untrusted = spark.table(tables.untrusted).filter(this_run)
    schema_reasons = F.array(*[F.lit(r) for r in SCHEMA_REASONS])
    u_row = untrusted.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.arrays_overlap(F.col("reasons"), schema_reasons), 1).otherwise(0)).alias("schema_errors"),
    ).collect()[0]
    declared = {tables.production: TRUSTED_SCHEMA, tables.trusted: TRUSTED_SCHEMA, tables.untrusted: UNTRUSTED_SCHEMA}
    return AuditFigures(
        read=read,
        trusted=int(null_row["_rows"]),
        untrusted=int(u_row["rows"]),
        schema_errors=int(u_row["schema_errors"] or 0),
        trusted_nulls={c: int(null_row[c] or 0) for c in REQUIRED_TRUSTED_COLUMNS},
        schema_problems={t: p for t, schema in declared.items() if (p := same_columns(spark.table(t).schema, schema))},
    )


def _run_bounds(spark: SparkSession, settings: StackSettings, config: JobConfig) -> DataFrame | None:
    """Each run's lot bounds from its run-start lineage in the runs topic (None without that topic)."""
    if config.runs_topic is None:
        return None
    try:
        marks = watermarks(settings, config.runs_topic)
    except TopicNotFound:
        return None
    ranges = [PartitionRange(p, low, high) for p, (low, high) in marks.items()]
    if not any(r.size for r in ranges):
        return None
    return run_bounds_of(decode_kafka(read_ranges(spark, settings, config.runs_topic, ranges)))


KNOWN_EVENT_COLUMNS = ["run_id", "car_id", "sequence", "sim_time_seconds", "event_time"]


def _known_events(spark: SparkSession, settings: StackSettings, config: JobConfig, topic: str) -> DataFrame | None:
    """Every event of `topic` the lakehouse has seen: production, untrusted (a flawed entry is still a
    known entry), and the topic's records not yet published (its job may not have run yet). Columns
    KNOWN_EVENT_COLUMNS; None for a topic that does not exist."""
    if not TOPIC.fullmatch(topic):
        return None
    tables = TopicTables(settings.catalog, topic)
    frames: list[DataFrame] = []
    published: dict[int, int] = {}
    if table_exists(spark, tables.production):
        frames.append(spark.table(tables.production).select(*KNOWN_EVENT_COLUMNS))
        published = published_offsets(spark, tables)
    if table_exists(spark, tables.untrusted):
        frames.append(spark.table(tables.untrusted).where(F.col("run_id").isNotNull()).select(*KNOWN_EVENT_COLUMNS))
    try:
        pending = [r for r in plan_ranges(published, watermarks(settings, topic)) if r.size]
    except TopicNotFound:
        pending = []
    if pending:
        parsed = conforming(parse_records(decode_kafka(read_ranges(spark, settings, topic, pending))), config.accepted_schema_versions)
        r = F.col("record")
        frames.append(
            parsed.select(
                r["runId"].alias("run_id"),
                r["carId"].alias("car_id"),
                r["sequence"].alias("sequence"),
                r["simTimeSeconds"].alias("sim_time_seconds"),
                r["timeStamp"].alias("event_time"),
            )
        )
    if not frames:
        return None
    known = frames[0]
    for frame in frames[1:]:
        known = known.unionByName(frame)
    return known


def _first_entries(spark, settings, config, rules) -> DataFrame | None:
    if rules.entry_topic is None:
        return None
    known = _known_events(spark, settings, config, rules.entry_topic)
    if known is None:
        return spark.createDataFrame([], "run_id string, car_id string, entry_time timestamp")
    return first_entries_of(known.where(F.col("car_id").isNotNull() & F.col("event_time").isNotNull()))


def _run_times(spark, settings, config, rules, production: DataFrame, batch_runs: DataFrame) -> DataFrame:
    """(run_id, sequence, sim_time_seconds) of the batch's runs outside this batch: this topic's
    production table, and every event known of its sibling topics (entries and exits share a run's
    sequence numbers)."""
    columns = ["run_id", "sequence", "sim_time_seconds"]
    times = production.select(*columns)
    for other in rules.order_with:
        known = _known_events(spark, settings, config, other)
        if known is not None:
            times = times.unionByName(known.select(*columns))
    return times.join(batch_runs, "run_id", "left_semi")


def _recover_missing_tag(spark: SparkSession, nessie: NessieClient, config: JobConfig, tables: TopicTables) -> str | None:
    """A run killed between its merge and its tag left main published but untagged: tag it now (at
    main's head, which contains it) and drop its branch."""
    last = last_published_run(spark, tables)
    if last is None:
        return None
    tag = tag_name(tables.topic, last)
    if nessie.reference(tag) is not None:
        return None
    nessie.create_tag(tag, nessie.hash_of("main"))
    nessie.delete_reference(branch_name(config, tables.topic, last))
    return tag


def run_wap(
    spark: SparkSession,
    settings: StackSettings,
    config: JobConfig,
    topic: str,
    *,
    wap_run_id: str | None = None,
    nessie: NessieClient | None = None,
    log=lambda message: print(message, file=sys.stderr, flush=True),
) -> WapResult:
    if not TOPIC.fullmatch(topic):
        raise ValueError(f"not a Kafka topic name: {topic!r}")
    now = datetime.now(timezone.utc)
    wap_run_id = wap_run_id or new_wap_run_id(now)
    rules = config.rules_for(topic)
    tables = TopicTables(settings.catalog, topic)
    nessie = nessie or NessieClient(settings.nessie_uri)
    result = WapResult(status="running", topic=topic, wap_run_id=wap_run_id)

    # 1. namespaces and tables on main (a branch cannot be merged into a main without the namespaces).
    use_reference(spark, settings.catalog, "main")
    created = ensure_tables(spark, tables)
    entry_tables = TopicTables(settings.catalog, rules.entry_topic) if rules.entry_topic else None
    if entry_tables is not None:
        created += ensure_tables(spark, entry_tables)
    created += ensure_ops_table(spark, settings.catalog)  # ops.wap_runs, the dashboard's run table
    if created:
        log(f"wap {topic}: created {', '.join(created)}")
    result.recovered_tag = _recover_missing_tag(spark, nessie, config, tables)
    if result.recovered_tag:
        log(f"wap {topic}: tagged the previous run's publication as {result.recovered_tag}")

    # 2. the branch, from main's head; that hash guards the merge.
    base_hash = nessie.hash_of("main")
    branch = branch_name(config, topic, wap_run_id)
    nessie.create_branch(branch, base_hash)
    result.branch = branch
    use_reference(spark, settings.catalog, branch)
    try:
        failure_point("after_branch")

        # 3. what is not yet published, read on the branch (= main at base_hash).
        ranges: list[PartitionRange] = plan_ranges(published_offsets(spark, tables), watermarks(settings, topic))
        result.offsets = describe(ranges)
        result.skipped_by_retention = sum(r.skipped for r in ranges)
        if sum(r.size for r in ranges) == 0:
            use_reference(spark, settings.catalog, "main")
            nessie.delete_reference(branch)
            result.branch = None
            result.status = "nothing_to_publish"
            log(f"wap {topic}: nothing new after offsets {result.offsets}")
            return result
        log(f"wap {topic}: run {wap_run_id} on branch {branch}, offsets {result.offsets}")

        # 4. parse and check.
        parsed = parse_records(decode_kafka(read_ranges(spark, settings, topic, ranges)))
        batch_runs = parsed.select(F.col("record.runId").alias("run_id")).where(F.col("run_id").isNotNull()).distinct()
        production = spark.table(tables.production)
        checked = check_quality(
            parsed,
            rules,
            config.accepted_schema_versions,
            config.lot_bounds,
            published_ids=production.select("event_id"),
            first_entries=_first_entries(spark, settings, config, rules),
            run_bounds=_run_bounds(spark, settings, config),
            published_times=_run_times(spark, settings, config, rules, production, batch_runs),
        ).persist()
        try:
            result.read = checked.count()
            result.reasons = {
                r["reason"]: int(r["n"])
                for r in checked.select(F.explode("reasons").alias("reason")).groupBy("reason").agg(F.count("*").alias("n")).collect()
            }

            # 5 + 6. staging tables on the branch, with the run in the snapshot summary.
            summary = {
                "simgate.wap-run-id": wap_run_id,
                "simgate.kafka-topic": topic,
                "simgate.kafka-offsets": result.offsets,
            }
            _write(trusted_rows(checked, wap_run_id, now), tables.trusted, summary)
            _write(untrusted_rows(checked, wap_run_id, now), tables.untrusted, summary)
        finally:
            checked.unpersist()
        failure_point("after_staging")

        # 7. audit what the branch holds.
        figures = _audit_figures(spark, tables, wap_run_id, result.read)
        result.trusted, result.untrusted = figures.trusted, figures.untrusted
        result.problems = audit_problems(figures, config.max_schema_error_ratio)
        if result.problems:
            use_reference(spark, settings.catalog, "main")
            result.status = "audit_failed"
            raise AuditFailed(result)
        failure_point("after_audit")

        # 8. publish: production and the offsets on the branch, one guarded merge, a tag, no branch.
        this_run = spark.table(tables.trusted).filter(F.col("wap_run_id") == F.lit(wap_run_id))
        _write(this_run.select(*TRUSTED_SCHEMA.fieldNames()), tables.production, summary)
        offsets = spark.createDataFrame(
            [(topic, r.partition, r.start, r.end, r.size, wap_run_id, now) for r in ranges], OFFSETS_SCHEMA
        )
        _write(offsets, tables.offsets, summary)
        # The run's row in ops.wap_runs (ops_table.py), on the branch: it lands in the same merge.
        record_run(spark, settings.catalog, RunSummary(
            wap_run_id, topic, tag_name(topic, wap_run_id), result.read, result.trusted, result.untrusted,
            tuple(ranges), now, *capture_range(this_run)), summary)
        failure_point("after_production")

        message = (
            f"WAP publish {topic} run {wap_run_id}: {result.trusted} trusted, {result.untrusted} untrusted, "
            f"offsets {result.offsets}"
        )
        use_reference(spark, settings.catalog, "main")
        result.merged_hash = nessie.merge(branch, "main", base_hash, message)
        failure_point("after_merge")
        result.tag = tag_name(topic, wap_run_id)
        nessie.create_tag(result.tag, result.merged_hash)
        failure_point("after_tag")
        nessie.delete_reference(branch)
        result.status = "published"
        log(f"wap {topic}: published {result.trusted} trusted, {result.untrusted} untrusted; tag {result.tag}")
        return result
    except AuditFailed:
        raise  # the branch stays for inspection
    except Exception:
        # Any other failure: nothing of this run is on main (or all of it, past the merge); drop the
        # branch so that retries do not pile them up. A killed run leaves its branch; it is harmless.
        try:
            use_reference(spark, settings.catalog, "main")
            nessie.delete_reference(branch)
        except Exception as cleanup:  # noqa: BLE001 - best effort, the original error matters
            log(f"wap {topic}: could not drop branch {branch}: {cleanup}")
        raise


def wap_session(app_name: str, settings: StackSettings) -> SparkSession:
    conf = {k.replace(".nessie.", f".{settings.catalog}."): v for k, v in WAP_SPARK_CONF.items()}
    return build_spark_session(app_name, settings, extra_conf=conf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.wap", description=__doc__.split("\n")[0])
    parser.add_argument("--topic", required=True, help="Kafka topic to publish (e.g. parking-entries)")
    parser.add_argument("--config", help="JSON job configuration (default: SIMGATE_WAP_CONFIG or built-in)")
    parser.add_argument("--wap-run-id", help="id of this run (default: time + random)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"wap: {err}", file=sys.stderr)
        return 64
    if not TOPIC.fullmatch(args.topic):
        print(f"wap: --topic must be a Kafka topic name ({TOPIC.pattern})", file=sys.stderr)
        return 64
    if args.wap_run_id is not None and not WAP_RUN_ID.fullmatch(args.wap_run_id):
        print(f"wap: --wap-run-id must match {WAP_RUN_ID.pattern}", file=sys.stderr)
        return 64
    settings = StackSettings.from_env()
    wap_run_id = args.wap_run_id or new_wap_run_id(datetime.now(timezone.utc))
    failed = WapResult(status="failed", topic=args.topic, wap_run_id=wap_run_id)
    code = 1
    spark = wap_session(f"simgate-wap-{args.topic}", settings)
    try:
        result = run_wap(spark, settings, config, args.topic, wap_run_id=wap_run_id)
        print(RESULT_PREFIX + result.to_json(), flush=True)
        return 0
    except AuditFailed as err:
        print(f"wap {args.topic}: audit failed, main unchanged, branch {err.result.branch} kept: {err}", file=sys.stderr)
        print(RESULT_PREFIX + err.result.to_json(), flush=True)
        return 2
    except NessieConflict as err:
        failed.problems = [f"merge conflict: {err}"]
        code = 3
    except TopicNotFound as err:
        failed.problems = [str(err)]
        code = 4
    except Exception as err:  # noqa: BLE001 - reported with its type, then exit non-zero
        failed.problems = [f"{type(err).__name__}: {err}"]
    finally:
        spark.stop()
    print(f"wap {args.topic}: failed: {failed.problems[0]}", file=sys.stderr)
    print(RESULT_PREFIX + failed.to_json(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
