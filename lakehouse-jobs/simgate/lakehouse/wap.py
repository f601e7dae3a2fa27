"""The Write-Audit-Publish job for one Kafka topic.

    python -m simgate.lakehouse.wap --topic parking-entries [--config FILE] [--wap-run-id ID]

1. make sure the namespaces and tables exist on main;
2. branch from main (Nessie);
3. read the records after the offsets published on main, up to the topic's end, and parse them;
4. check quality; 5. write trusted and untrusted rows to the staging tables on the branch, and the
   run's offset ranges to the offsets table there (side by side; an empty write is skipped);
6. (structure: partitioning, sort order, properties, snapshot summaries; see tables.py);
7. audit on the branch; a failure keeps the branch, leaves main alone and exits 2;
8. append the trusted rows to production and the run's row to ops.wap_runs on the branch, merge into
   main guarded by main's hash at branching, tag, delete the branch.

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
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from .audit import AuditFigures, audit_problems
from .config import ConfigError, JobConfig, load_config, table_name
from .iceberg_files import AddedFiles, added_files, append_files, can_share_files, load_table, micros_to_datetime, run_snapshot, spark_schema
from .kafka_source import PartitionRange, TopicNotFound, describe, plan_ranges, read_ranges, watermarks
from .nessie import NessieClient, NessieConflict
from .ops_table import NAMESPACE as OPS_NAMESPACE, TABLE as OPS_TABLE, RunSummary, ensure_ops_table, record_run
from .schema import OFFSETS_SCHEMA, REQUIRED_TRUSTED_COLUMNS, TRUSTED_SCHEMA, UNTRUSTED_SCHEMA, local_rows, same_columns
from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables, ensure_tables, publications, published_offsets, table_exists
from .transforms import (
    check_reasons,
    conforming,
    decode_kafka,
    first_entries_of,
    is_schema_reason,
    parse_records,
    run_bounds_of,
    trusted_rows,
    untrusted_rows,
    with_contract,
    with_reasons,
)

RESULT_PREFIX = "SIMGATE_WAP_RESULT "
# Goes into branch and tag names; UTC time and 8 hex digits, the form retention reads ages from (a run
# id it cannot date would keep its tag and branch forever).
WAP_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
FAIL_POINTS = ("after_branch", "after_staging", "after_audit", "after_production", "after_merge", "after_tag")

# The session settings the WAP job needs on top of the factory's: no table cache, because the job moves
# the catalog between main and its branch; and the cached batch's columns stored as they are. Spark's
# in-memory compression tries its encodings on every column of every cached batch, and a batch of
# records is mostly unique text (the raw values, ids, times), where none of them saves space: it cost
# the cache's build time and saved about 2 % of its size (lakehouse-jobs/bench-results.md).
WAP_SPARK_CONF = {
    "spark.sql.catalog.nessie.cache-enabled": "false",
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}


# Up to this many records a run joins its reasons back to its rows as a broadcast (three
# columns per row), so the full rows are never shuffled; bigger batches (a long backlog) let Spark choose.
BROADCAST_REASONS_MAX_ROWS = 500_000


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
    step: str | None = None  # the step under way when a run fails
    started_at: str | None = None
    published_at: str | None = None
    capture_time_min: str | None = None  # event_time range of the run's trusted rows
    capture_time_max: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step; sparkStart = JVM start
    warm_session: bool = False  # run in a session an earlier run started (worker.py)

    def to_json(self) -> str:
        return json.dumps({_camel(k): v for k, v in asdict(self).items()}, sort_keys=True)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def failure_point(name: str, spark: SparkSession | None = None) -> None:
    """SIMGATE_WAP_FAIL_AT=<name>: raise there; SIMGATE_WAP_FAIL_MODE=kill: SIGKILL this process;
    =kill-jvm: SIGKILL the Spark JVM and go on (the next Spark call fails as after a JVM crash)."""
    if os.environ.get("SIMGATE_WAP_FAIL_AT") != name:
        return
    mode = os.environ.get("SIMGATE_WAP_FAIL_MODE")
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "kill-jvm" and spark is not None:
        proc = spark.sparkContext._gateway.proc  # noqa: SLF001
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return
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


@dataclass
class StagedRun:
    """What the audit read of the run's staging snapshots, kept for the publish."""

    figures: AuditFigures
    trusted_table: object
    production_table: object
    trusted_files: AddedFiles
    capture_range: tuple  # first/last event_time, first/last received_at of the trusted rows


def _iso_micros(micros: int | None) -> str | None:
    t = micros_to_datetime(micros)
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _audit_figures(spark: SparkSession, tables: TopicTables, wap_run_id: str, read: int, schema_errors: int) -> StagedRun:
    """The figures of what the run's writes put on the branch, from Iceberg's metadata of the snapshots
    they made: record counts and null counts of the files each added, the event_time and received_at
    bounds, and each table's schema. A column without a null-count metric is counted by a scan."""
    trusted_table = load_table(spark, tables.trusted)
    untrusted_table = load_table(spark, tables.untrusted)
    production_table = load_table(spark, tables.production)
    trusted = added_files(
        spark, trusted_table, run_snapshot(trusted_table, wap_run_id), REQUIRED_TRUSTED_COLUMNS, ("event_time", "received_at")
    )
    untrusted = added_files(spark, untrusted_table, run_snapshot(untrusted_table, wap_run_id))
    nulls = dict(trusted.nulls)
    unknown = [c for c, n in nulls.items() if n is None]
    if unknown:
        rows = spark.table(tables.trusted).filter(F.col("wap_run_id") == F.lit(wap_run_id))
        row = rows.agg(*[F.sum(F.when(F.col(c).isNull(), 1).otherwise(0)).alias(c) for c in unknown]).collect()[0]
        nulls.update({c: int(row[c] or 0) for c in unknown})
    declared = {
        tables.production: (production_table, TRUSTED_SCHEMA),
        tables.trusted: (trusted_table, TRUSTED_SCHEMA),
        tables.untrusted: (untrusted_table, UNTRUSTED_SCHEMA),
    }
    figures = AuditFigures(
        read=read,
        trusted=trusted.records,
        untrusted=untrusted.records,
        schema_errors=schema_errors,
        trusted_nulls={c: int(n or 0) for c, n in nulls.items()},
        schema_problems={t: p for t, (table, schema) in declared.items() if (p := same_columns(spark_schema(spark, table), schema))},
        capture_time_min=_iso_micros(trusted.lower.get("event_time")),
        capture_time_max=_iso_micros(trusted.upper.get("event_time")),
        removed_files=trusted.deleted_files + untrusted.deleted_files,
    )
    capture = tuple(
        micros_to_datetime(v)
        for v in (trusted.lower.get("event_time"), trusted.upper.get("event_time"), trusted.lower.get("received_at"), trusted.upper.get("received_at"))
    )
    return StagedRun(figures, trusted_table, production_table, trusted, capture)


def _publish_trusted(spark: SparkSession, tables: TopicTables, staged: StagedRun, wap_run_id: str, summary: dict[str, str], log) -> str:
    """Appends the run's trusted rows to production on the branch; returns how: `shared-files` (the
    staging files themselves, one metadata commit) or `rewritten` (production's structure differs from
    staging's, so the rows are read back and written)."""
    files = staged.trusted_files.files
    if not files:
        return "nothing"
    why_not = can_share_files(staged.trusted_table, staged.production_table, files)
    if why_not is None:
        append_files(staged.production_table, files, summary)
        return "shared-files"
    log(f"wap {tables.topic}: production's structure differs from staging's ({why_not}); writing the rows again")
    this_run = spark.table(tables.trusted).filter(F.col("wap_run_id") == F.lit(wap_run_id))
    _write(this_run.select(*TRUSTED_SCHEMA.fieldNames()), tables.production, summary)
    return "rewritten"


def _ensure_tables(spark: SparkSession, nessie: NessieClient, catalog: str, topics: list[TopicTables]) -> list[str]:
    """The topic's tables (and its entry topic's) and ops.wap_runs on main. One listing of main's
    contents tells whether they all exist (the usual case); only then are they created through Spark."""
    wanted = {t.split(".", 1)[1] for tables in topics for t in tables.all()} | {f"{OPS_NAMESPACE}.{OPS_TABLE}"}
    try:
        if wanted <= nessie.content_keys("main"):
            return []
    except Exception:  # noqa: BLE001 - the listing is a shortcut; Spark below is the real check
        pass
    created: list[str] = []
    for tables in topics:
        created += ensure_tables(spark, tables)
    created += ensure_ops_table(spark, catalog)  # ops.wap_runs, the dashboard's run table
    return created


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


class KnownEvents:
    """_known_events per sibling topic, built once per run and cached: an exit run needs the entries'
    known events twice (first entries, time order), and they include the entries not yet published,
    read from Kafka and run through the contract. Only the events of the batch's runs (`runs`): both
    rules that use them compare events of the same run."""

    def __init__(self, spark: SparkSession, settings: StackSettings, config: JobConfig, runs: list[str]) -> None:
        self.spark, self.settings, self.config, self.runs = spark, settings, config, runs
        self.frames: dict[str, DataFrame | None] = {}

    def of(self, topic: str) -> DataFrame | None:
        if topic not in self.frames:
            known = _known_events(self.spark, self.settings, self.config, topic, self.runs)
            self.frames[topic] = None if known is None else known.persist(StorageLevel.MEMORY_AND_DISK)
        return self.frames[topic]

    def release(self) -> None:
        for frame in self.frames.values():
            if frame is not None:
                frame.unpersist()
        self.frames.clear()


def _in_runs(runs: list[str]) -> Column:
    return F.col("run_id").isin(runs) if runs else F.lit(False)


def _known_events(spark: SparkSession, settings: StackSettings, config: JobConfig, topic: str, runs: list[str]) -> DataFrame | None:
    """Every event of `topic` in the runs `runs` that the lakehouse has seen: production, untrusted (a
    flawed entry is still a known entry), and the topic's records not yet published (its job may not
    have run yet). Columns KNOWN_EVENT_COLUMNS; None for a topic that does not exist. The run filter
    reaches Iceberg's scan, which skips every data file whose run_id bounds exclude the runs, so a
    run's cost does not grow with the tables' history."""
    if not TOPIC.fullmatch(topic):
        return None
    tables = TopicTables(settings.catalog, topic)
    frames: list[DataFrame] = []
    published: dict[int, int] = {}
    if table_exists(spark, tables.production):
        frames.append(spark.table(tables.production).where(_in_runs(runs)).select(*KNOWN_EVENT_COLUMNS))
        published = published_offsets(spark, tables)
    if table_exists(spark, tables.untrusted):
        frames.append(spark.table(tables.untrusted).where(_in_runs(runs)).select(*KNOWN_EVENT_COLUMNS))
    try:
        pending = plan_ranges(published, watermarks(settings, topic))
    except TopicNotFound:
        pending = []
    if any(r.size for r in pending):  # every partition named, the empty ones too (read_ranges)
        parsed = conforming(parse_records(decode_kafka(read_ranges(spark, settings, topic, pending))), config.accepted_schema_versions)
        r = F.col("record")
        frames.append(
            parsed.select(
                r["runId"].alias("run_id"),
                r["carId"].alias("car_id"),
                r["sequence"].alias("sequence"),
                r["simTimeSeconds"].alias("sim_time_seconds"),
                r["timeStamp"].alias("event_time"),
            ).where(_in_runs(runs))
        )
    if not frames:
        return None
    known = frames[0]
    for frame in frames[1:]:
        known = known.unionByName(frame)
    return known


def _first_entries(spark, known_events: KnownEvents, rules) -> DataFrame | None:
    if rules.entry_topic is None:
        return None
    known = known_events.of(rules.entry_topic)
    if known is None:
        return spark.createDataFrame([], "run_id string, car_id string, entry_time timestamp")
    return first_entries_of(known.where(F.col("car_id").isNotNull() & F.col("event_time").isNotNull()))


def _run_times(known_events: KnownEvents, rules, production: DataFrame, batch_runs: list[str]) -> DataFrame:
    """(run_id, sequence, sim_time_seconds) of the batch's runs outside this batch: this topic's
    production table, and every event known of its sibling topics (entries and exits share a run's
    sequence numbers, and known_events holds only the batch's runs). Only the batch's runs are read
    (a filter Iceberg can prune files with)."""
    columns = ["run_id", "sequence", "sim_time_seconds"]
    times = production.select(*columns).where(_in_runs(batch_runs))
    for other in rules.order_with:
        known = known_events.of(other)
        if known is not None:
            times = times.unionByName(known.select(*columns))
    return times


def published_ids_between(production: DataFrame, first: str | None, last: str | None) -> DataFrame:
    """The production ids a batch's event ids can equal: those between its lowest and highest (`first`,
    `last`; None for a batch without ids, which can equal none). Iceberg compares the range with each
    data file's event_id bounds and skips the files outside it, so the duplicate rule reads the files
    of the batch's own runs (the extension's event ids are <runId>-<sequence>), not production's whole
    history."""
    ids = production.select("event_id")
    if first is None or last is None:
        return ids.where(F.lit(False))
    return ids.where(F.col("event_id").between(F.lit(first), F.lit(last)))


def _recover_missing_tag(nessie: NessieClient, config: JobConfig, tables: TopicTables, last: str | None, log) -> str | None:
    """A run killed between its merge and its tag left main published but untagged: tag it now, on that
    run's own merge commit (found in main's history by the run id in its commit metadata, or by its merge
    message for merges made before the metadata was written), and drop its branch. Never main's head:
    other topics' runs may have merged since."""
    if last is None:
        return None
    tag = tag_name(tables.topic, last)
    if nessie.reference(tag) is not None:
        return None
    commit = nessie.find_commit("main", merge_commit_filter(tables.topic, last)) or nessie.find_commit("main", f"commit.message.startsWith('{merge_message_prefix(tables.topic, last)}')")
    if commit is None:
        log(f"wap {tables.topic}: run {last} is published but its merge commit was not found in main's history; not tagged")
        return None
    nessie.create_tag(tag, commit["hash"])
    nessie.delete_reference(branch_name(config, tables.topic, last))
    return tag


MERGE_RUN_PROPERTY = "simgate.wap-run-id"
MERGE_TOPIC_PROPERTY = "simgate.kafka-topic"


def merge_commit_filter(topic: str, wap_run_id: str) -> str:
    """CEL for Nessie's history: the merge commit of a run (a missing key is an error in CEL, hence `in`)."""
    return (
        f"'{MERGE_RUN_PROPERTY}' in commit.properties && commit.properties['{MERGE_RUN_PROPERTY}'] == '{wap_run_id}'"
        f" && '{MERGE_TOPIC_PROPERTY}' in commit.properties && commit.properties['{MERGE_TOPIC_PROPERTY}'] == '{topic}'"
    )


def merge_message_prefix(topic: str, wap_run_id: str) -> str:
    return f"WAP publish {topic} run {wap_run_id}:"


class Steps:
    """Per-step wall-clock seconds of a run (result.timings) and the step under way (result.step, kept
    when the run fails)."""

    def __init__(self, result: "WapResult") -> None:
        self.result = result
        self.current: str | None = None
        self._since = 0.0

    def next(self, name: str) -> None:
        self.done()
        self.current, self._since, self.result.step = name, time.monotonic(), name

    def done(self) -> None:
        if self.current is not None:
            spent = self.result.timings.get(self.current, 0.0) + time.monotonic() - self._since
            self.result.timings[self.current] = round(spent, 3)
        self.current = None


@dataclass(frozen=True)
class ReasonTally:
    reasons: dict[str, int]  # reason -> rows that have it
    schema_errors: int  # rows that fail schema conformity
    flagged: int  # rows with any reason (the untrusted ones)


def reason_tally(checked: DataFrame) -> ReasonTally:
    """The reasons of a batch (any frame with check_reasons' `reasons` column) counted in one Spark job:
    rows per reason, rows with a schema reason (the audit's schema-change figure) and rows with any
    reason. A row counts once in the last two, at its first reason."""
    exploded = checked.select(
        F.exists("reasons", is_schema_reason).alias("schema"), F.posexplode("reasons").alias("at", "reason")
    )
    first = F.col("at") == 0
    rows = exploded.groupBy("reason").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(first & F.col("schema"), 1).otherwise(0)).alias("schema"),
        F.sum(F.when(first, 1).otherwise(0)).alias("rows"),
    ).collect()
    return ReasonTally(
        {r["reason"]: int(r["n"]) for r in rows}, sum(int(r["schema"]) for r in rows), sum(int(r["rows"]) for r in rows)
    )


def side_by_side(writes: list[Callable[[], object]]) -> None:
    """Independent writes of one run at once, each from its own thread: Spark runs a session's jobs
    concurrently, so one write's planning and Iceberg commit overlap another's tasks. Each write commits
    a different table, and Nessie takes concurrent commits to different keys of a branch without a
    conflict. Every write ends before this returns; then the first failure, if any, is raised."""
    if len(writes) <= 1:
        for write in writes:
            write()
        return
    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="simgate-wap-write") as pool:
        futures = [pool.submit(write) for write in writes]
    for future in futures:
        future.result()  # all have ended (the pool's exit waited): the first failure is raised


def run_wap(
    spark: SparkSession,
    settings: StackSettings,
    config: JobConfig,
    topic: str,
    *,
    wap_run_id: str | None = None,
    nessie: NessieClient | None = None,
    log=lambda message: print(message, file=sys.stderr, flush=True),
    result: WapResult | None = None,
) -> WapResult:
    """One WAP run. `result` (optional) is filled as the run goes, so a caller still has the counts,
    offsets, step and timings when the run raises (a merge conflict, a dead JVM)."""
    if not TOPIC.fullmatch(topic):
        raise ValueError(f"not a Kafka topic name: {topic!r}")
    now = datetime.now(timezone.utc)
    wap_run_id = wap_run_id or new_wap_run_id(now)
    rules = config.rules_for(topic)
    tables = TopicTables(settings.catalog, topic)
    nessie = nessie or NessieClient(settings.nessie_uri)
    if result is None:
        result = WapResult(status="running", topic=topic, wap_run_id=wap_run_id)
    result.topic, result.wap_run_id = topic, wap_run_id
    result.status, result.started_at = "running", _iso(now)
    steps = Steps(result)

    # 1. namespaces and tables on main (a branch cannot be merged into a main without the namespaces).
    steps.next("tables")
    use_reference(spark, settings.catalog, "main")
    entry_tables = TopicTables(settings.catalog, rules.entry_topic) if rules.entry_topic else None
    created = _ensure_tables(spark, nessie, settings.catalog, [tables] + ([entry_tables] if entry_tables else []))
    if created:
        log(f"wap {topic}: created {', '.join(created)}")

    # 2. the branch, from main's head; that hash guards the merge.
    steps.next("branch")
    base_hash = nessie.hash_of("main")
    branch = branch_name(config, topic, wap_run_id)
    nessie.create_branch(branch, base_hash)
    result.branch = branch
    use_reference(spark, settings.catalog, branch)
    try:
        failure_point("after_branch", spark)

        # 3. what is published, read once on the branch (= main at base_hash): the offsets to start
        # from, and the last run (tagged now if a kill between its merge and its tag left it untagged).
        steps.next("plan")
        published = publications(spark, tables)
        steps.next("recover")
        result.recovered_tag = _recover_missing_tag(nessie, config, tables, published.last_run, log)
        if result.recovered_tag:
            log(f"wap {topic}: tagged the previous run's publication as {result.recovered_tag}")
        steps.next("plan")
        ranges: list[PartitionRange] = plan_ranges(published.next_offsets, watermarks(settings, topic))
        result.offsets = describe(ranges)
        result.skipped_by_retention = sum(r.skipped for r in ranges)
        if sum(r.size for r in ranges) == 0:
            use_reference(spark, settings.catalog, "main")
            nessie.delete_reference(branch)
            result.branch = None
            result.status = "nothing_to_publish"
            steps.done()
            log(f"wap {topic}: nothing new after offsets {result.offsets}")
            return result
        log(f"wap {topic}: run {wap_run_id} on branch {branch}, offsets {result.offsets}")

        # 4. parse and check. The batch is read from Kafka, parsed and run through the contract once,
        # and cached: the checks and both staging writes use that copy.
        steps.next("read")
        batch = with_contract(
            parse_records(decode_kafka(read_ranges(spark, settings, topic, ranges))), config.accepted_schema_versions
        ).persist(StorageLevel.MEMORY_AND_DISK)
        reasons: DataFrame | None = None
        known_events: KnownEvents | None = None
        try:
            # One job fills the cache and gives the count, the batch's run ids and its range of event
            # ids (what the rules read of production is narrowed to those).
            totals = batch.agg(
                F.count(F.lit(1)).alias("n"),
                F.collect_set(F.col("record.runId")).alias("runs"),
                F.min(F.col("record.eventId")).alias("first_id"),
                F.max(F.col("record.eventId")).alias("last_id"),
            ).collect()[0]
            result.read, batch_runs = int(totals["n"]), sorted(totals["runs"])
            known_events = KnownEvents(spark, settings, config, batch_runs)
            steps.next("check")
            production = spark.table(tables.production)
            # The reasons are narrow rows (partition, offset, reasons), cached beside the batch; each
            # staging write joins them to the cached batch, so the full rows are cached once.
            reasons = check_reasons(
                batch,
                rules,
                config.accepted_schema_versions,
                config.lot_bounds,
                published_ids=published_ids_between(production, totals["first_id"], totals["last_id"]),
                first_entries=_first_entries(spark, known_events, rules),
                run_bounds=_run_bounds(spark, settings, config),
                published_times=_run_times(known_events, rules, production, batch_runs),
            ).persist(StorageLevel.MEMORY_AND_DISK)
            checked = with_reasons(batch, reasons, broadcast=result.read <= BROADCAST_REASONS_MAX_ROWS)
            tally = reason_tally(reasons)
            result.reasons = tally.reasons

            # 5 + 6. staging tables on the branch, with the run in the snapshot summary.
            steps.next("stage")
            summary = {
                "simgate.wap-run-id": wap_run_id,
                "simgate.kafka-topic": topic,
                "simgate.kafka-offsets": result.offsets,
            }
            # The run's offset ranges go to the branch now, beside the staging rows: they reach main only
            # with the merge, so a run that fails its audit publishes none of them. A staging write with
            # no rows is skipped (its table then has no snapshot of the run, which the audit reads as 0).
            offsets = local_rows(spark, [(topic, r.partition, r.start, r.end, r.size, wap_run_id, now) for r in ranges], OFFSETS_SCHEMA)
            writes = [lambda: _write(offsets, tables.offsets, summary)]
            if tally.flagged < result.read:
                writes.append(lambda: _write(trusted_rows(checked, wap_run_id, now), tables.trusted, summary))
            if tally.flagged:
                writes.append(lambda: _write(untrusted_rows(checked, wap_run_id, now), tables.untrusted, summary))
            side_by_side(writes)
            use_reference(spark, settings.catalog, branch)  # the catalog's view of the branch: its head now
        finally:
            if reasons is not None:
                reasons.unpersist()
            batch.unpersist()
            if known_events is not None:
                known_events.release()
        failure_point("after_staging", spark)

        # 7. audit what the branch holds: the files the run's staging snapshots added, and their
        # metrics (Iceberg's own record and null counts), not the job's own figures.
        steps.next("audit")
        staged = _audit_figures(spark, tables, wap_run_id, result.read, tally.schema_errors)
        figures = staged.figures
        result.trusted, result.untrusted = figures.trusted, figures.untrusted
        result.capture_time_min, result.capture_time_max = figures.capture_time_min, figures.capture_time_max
        result.problems = audit_problems(figures, config.max_schema_error_ratio)
        if result.problems:
            use_reference(spark, settings.catalog, "main")
            result.status = "audit_failed"
            steps.done()
            raise AuditFailed(result)
        failure_point("after_audit", spark)

        # 8. publish: production and the offsets on the branch, one guarded merge, a tag, no branch.
        # Production gets the very files the audit read (one metadata commit, no rewrite) when its
        # structure is staging's; otherwise the audited rows are written again.
        steps.next("publish")
        # The run's row in ops.wap_runs (ops_table.py), on the branch: it lands in the same merge.
        run_summary = RunSummary(
            wap_run_id, topic, tag_name(topic, wap_run_id), result.read, result.trusted, result.untrusted,
            tuple(ranges), now, *staged.capture_range)
        side_by_side([
            lambda: _publish_trusted(spark, tables, staged, wap_run_id, summary, log),
            lambda: record_run(spark, settings.catalog, run_summary, summary),
        ])
        failure_point("after_production", spark)

        steps.next("merge")
        message = f"{merge_message_prefix(topic, wap_run_id)} {result.trusted} trusted, {result.untrusted} untrusted, offsets {result.offsets}"
        use_reference(spark, settings.catalog, "main")
        result.merged_hash = nessie.merge(
            branch, "main", base_hash, message, {MERGE_RUN_PROPERTY: wap_run_id, MERGE_TOPIC_PROPERTY: topic}
        )
        result.published_at = _iso(datetime.now(timezone.utc))
        failure_point("after_merge", spark)
        steps.next("tag")
        result.tag = tag_name(topic, wap_run_id)
        nessie.create_tag(result.tag, result.merged_hash)
        failure_point("after_tag", spark)
        nessie.delete_reference(branch)
        result.status = "published"
        result.step = None
        steps.done()
        log(f"wap {topic}: published {result.trusted} trusted, {result.untrusted} untrusted; tag {result.tag}")
        return result
    except AuditFailed:
        raise  # the branch stays for inspection
    except Exception:
        # Any other failure: nothing of this run is on main (or all of it, past the merge); drop the
        # branch so that retries do not pile them up. Through Nessie's REST API first: it needs no
        # JVM, which may be the thing that died. A run killed outright leaves its branch; retention
        # drops it later.
        steps.done()
        try:
            nessie.delete_reference(branch)
            result.branch = None
        except Exception as cleanup:  # noqa: BLE001 - best effort, the original error matters
            log(f"wap {topic}: could not drop branch {branch}: {cleanup}")
        try:
            use_reference(spark, settings.catalog, "main")
        except Exception:  # noqa: BLE001 - a dead JVM; reported by the caller
            pass
        raise


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wap_session(app_name: str, settings: StackSettings) -> SparkSession:
    conf = {k.replace(".nessie.", f".{settings.catalog}."): v for k, v in WAP_SPARK_CONF.items()}
    return build_spark_session(app_name, settings, extra_conf=conf)


def describe_exit(code: int) -> str:
    """A process's return code as Python's subprocess gives it (negative: the signal) → words."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code > 128:
        try:
            return f"exit code {code} ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


def _first_line(text: object) -> str:
    return (str(text or "").strip().splitlines() or [""])[0]


def describe_error(err: BaseException, during: str = "") -> str:
    """A failed run's error in one line: its type, then for an error from the JVM (py4j's
    Py4JJavaError, whose text is the Java stack trace) the Java exception, its root cause and where the
    root cause was thrown; for any other error its first line. Spark wraps many planning failures in an
    INTERNAL_ERROR whose cause is what matters."""
    head = f"{type(err).__name__}{during}"
    java = getattr(err, "java_exception", None)
    if java is not None:
        try:
            text = f"{head}: {java.getClass().getName()}: {_first_line(java.getMessage())[:300]}"
            root, depth = java, 0
            while root.getCause() is not None and depth < 20:
                root, depth = root.getCause(), depth + 1
            if depth:
                text += f"; root cause {root.getClass().getName()}: {_first_line(root.getMessage())[:300]}"
            frames = root.getStackTrace()
            if frames is not None and len(frames):
                text += f" at {frames[0]}"
            return text
        except Exception:  # noqa: BLE001 - the JVM may be gone; the text below still says something
            pass
    return f"{head}: {_first_line(err)[:1000]}"


def jvm_death(spark: SparkSession | None) -> str | None:
    """How the session's JVM ended, when it did ("killed by SIGKILL", "exit code 134 (SIGABRT)"); None
    while it runs. pyspark keeps the JVM's process (spark-submit execs java) as the gateway's `proc`."""
    try:
        proc = getattr(spark.sparkContext._gateway, "proc", None) if spark is not None else None  # noqa: SLF001
    except Exception:  # noqa: BLE001
        return None
    if proc is None:
        return None
    try:
        code = proc.wait(timeout=5)
    except Exception:  # noqa: BLE001 - still running
        return None
    return describe_exit(code)


def _jvm_alive(spark: SparkSession) -> bool:
    proc = getattr(spark.sparkContext._gateway, "proc", None)  # noqa: SLF001
    return proc is None or proc.poll() is None


def bad_usage(topic: str, wap_run_id: str | None) -> str | None:
    """Why a topic or run id given on the command line (or to the warm worker) is refused, else None."""
    if not TOPIC.fullmatch(topic):
        return f"--topic must be a Kafka topic name ({TOPIC.pattern})"
    if wap_run_id is not None and not WAP_RUN_ID.fullmatch(wap_run_id):
        return f"--wap-run-id must match {WAP_RUN_ID.pattern} (retention reads its age from it)"
    return None


def run_job(spark: SparkSession | None, start_error: Exception | None, settings: StackSettings, config: JobConfig, result: WapResult) -> int:
    """One WAP run in `spark` (None when it could not start: `start_error` says why), its outcome in
    `result` and the exit code: 0 published or nothing new, 1 error, 2 audit failed, 3 merge conflict,
    4 topic not found. Shared by the one-shot job and the warm worker (worker.py)."""
    topic = result.topic
    code = 1
    try:
        if spark is None:
            raise start_error or RuntimeError("no Spark session")
        run_wap(spark, settings, config, topic, wap_run_id=result.wap_run_id, result=result)
        code = 0
    except AuditFailed as err:
        print(f"wap {topic}: audit failed, main unchanged, branch {err.result.branch} kept: {err}", file=sys.stderr)
        code = 2
    except NessieConflict as err:
        result.status, result.problems = "merge_conflict", [f"merge conflict: {err}"]
        code = 3
    except TopicNotFound as err:
        result.status, result.problems = "failed", [str(err)]
        code = 4
    except Exception as err:  # noqa: BLE001 - reported with its cause, then exit non-zero
        died = jvm_death(spark)
        at = f" during {result.step}" if result.step else ""
        if died is not None:
            result.problems = [f"the Spark JVM died ({died}){at}"]
        elif spark is None:
            result.problems = [f"could not start Spark: {type(err).__name__}: {str(err)[:500]}"]
        else:
            result.problems = [describe_error(err, at)]
        result.status = "failed"
    if code not in (0, 2):
        print(f"wap {topic}: failed: {result.problems[0]}", file=sys.stderr)
    return code


def stop_session(spark: SparkSession | None, topic: str) -> None:
    if spark is None:
        return
    try:
        if _jvm_alive(spark):
            spark.stop()
    except Exception as err:  # noqa: BLE001 - the run's outcome is already decided
        print(f"wap {topic}: stopping Spark failed: {type(err).__name__}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.wap", description=__doc__.split("\n")[0])
    parser.add_argument("--topic", required=True, help="Kafka topic to publish (e.g. parking-entries)")
    parser.add_argument("--config", help="JSON job configuration (default: SIMGATE_WAP_CONFIG or built-in)")
    parser.add_argument("--wap-run-id", help="id of this run, YYYYMMDDTHHMMSSZ-<8 hex> (default: now + random)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"wap: {err}", file=sys.stderr)
        return 64
    if (problem := bad_usage(args.topic, args.wap_run_id)) is not None:
        print(f"wap: {problem}", file=sys.stderr)
        return 64
    settings = StackSettings.from_env()
    wap_run_id = args.wap_run_id or new_wap_run_id(datetime.now(timezone.utc))
    result = WapResult(status="failed", topic=args.topic, wap_run_id=wap_run_id)
    spark: SparkSession | None = None
    start_error: Exception | None = None
    started = time.monotonic()
    try:
        try:
            spark = wap_session(f"simgate-wap-{args.topic}", settings)
            result.timings["sparkStart"] = round(time.monotonic() - started, 3)
        except Exception as err:  # noqa: BLE001 - reported as the run's problem
            start_error = err
        code = run_job(spark, start_error, settings, config, result)
    finally:
        stop_session(spark, args.topic)
        result.timings["total"] = round(time.monotonic() - started, 3)
    print(RESULT_PREFIX + result.to_json(), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
