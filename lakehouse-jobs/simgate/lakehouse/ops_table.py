"""The operations table `ops.wap_runs`: one row per published WAP run, for the dashboard's run and
freshness charts (deploy/k8s/base/superset/bundle, sql/wap_runs.sql, sql/freshness_per_run.sql).

The row is written on the run's branch just before the merge, so it reaches main in the same Nessie
merge as the run's data: a run on main always has its row, and a row always has its data.

    wap_run_id, topic, tag            which run, of which topic, and the tag it will get on main
    rows_read/trusted/untrusted       what the run read from Kafka and where the rows went
    offsets                           JSON list of {"partition", "start", "end"} (end exclusive)
    started_at, published_at          when the run started, and when it wrote this row (just before
                                      its merge: the moment its rows become visible on main)
    first/last_capture_time           the capture-time (event_time) range of the rows it published
    first/last_received_at            when those rows reached the gateway (received_at)
    capture_to_main_seconds           freshness: published_at - first_capture_time, the longest an event
                                      of the run waited between its capture and being visible on main
    ingest_to_main_seconds            published_at - first_received_at (the same from the gateway on;
                                      differs from the above for a replayed recording)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

from .kafka_source import PartitionRange
from .schema import ddl_columns, local_rows

NAMESPACE = "ops"
TABLE = "wap_runs"

WAP_RUNS_SCHEMA = StructType(
    [
        StructField("wap_run_id", StringType()),
        StructField("topic", StringType()),
        StructField("tag", StringType()),
        StructField("rows_read", LongType()),
        StructField("rows_trusted", LongType()),
        StructField("rows_untrusted", LongType()),
        StructField("offsets", StringType()),
        StructField("started_at", TimestampType()),
        StructField("published_at", TimestampType()),
        StructField("first_capture_time", TimestampType()),
        StructField("last_capture_time", TimestampType()),
        StructField("first_received_at", TimestampType()),
        StructField("last_received_at", TimestampType()),
        StructField("capture_to_main_seconds", DoubleType()),
        StructField("ingest_to_main_seconds", DoubleType()),
    ]
)

PROPERTIES = {
    "format-version": "2",
    "write.format.default": "parquet",
    "commit.retry.num-retries": "6",
    "gc.enabled": "false",
    "simgate.role": "operations",
}


def wap_runs_table(catalog: str) -> str:
    return f"{catalog}.{NAMESPACE}.{TABLE}"


@dataclass(frozen=True)
class RunSummary:
    """What the WAP job knows of a run when it is about to merge."""

    wap_run_id: str
    topic: str
    tag: str
    rows_read: int
    rows_trusted: int
    rows_untrusted: int
    ranges: tuple[PartitionRange, ...]
    started_at: datetime
    first_capture_time: datetime | None
    last_capture_time: datetime | None
    first_received_at: datetime | None = None
    last_received_at: datetime | None = None

    def offsets_json(self) -> str:
        return json.dumps([{"partition": r.partition, "start": r.start, "end": r.end} for r in self.ranges])

    def row(self, published_at: datetime) -> tuple:
        return (
            self.wap_run_id,
            self.topic,
            self.tag,
            self.rows_read,
            self.rows_trusted,
            self.rows_untrusted,
            self.offsets_json(),
            self.started_at,
            published_at,
            self.first_capture_time,
            self.last_capture_time,
            self.first_received_at,
            self.last_received_at,
            _seconds_between(self.first_capture_time, published_at),
            _seconds_between(self.first_received_at, published_at),
        )


def _seconds_between(earlier: datetime | None, later: datetime) -> float | None:
    if earlier is None:
        return None
    if earlier.tzinfo is None:  # Spark hands back naive timestamps in the session time zone (UTC)
        earlier = earlier.replace(tzinfo=timezone.utc)
    return round((later - earlier).total_seconds(), 3)


def ensure_ops_table(spark: SparkSession, catalog: str) -> list[str]:
    """Creates the namespace and the table on the session's current reference (main, before branching:
    a branch cannot bring a namespace to main). Returns the tables created."""
    table = wap_runs_table(catalog)
    try:
        spark.table(table).schema
        return []
    except Exception:  # noqa: BLE001 - AnalysisException: not there yet
        pass
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.{NAMESPACE}")
    props = ", ".join(f"'{k}'='{v}'" for k, v in PROPERTIES.items())
    spark.sql(f"CREATE TABLE IF NOT EXISTS {table} ({ddl_columns(WAP_RUNS_SCHEMA)}) USING iceberg TBLPROPERTIES ({props})")
    return [table]


def capture_range(rows: DataFrame) -> tuple[datetime | None, datetime | None, datetime | None, datetime | None]:
    """(first, last) event_time and (first, last) received_at of the rows a run publishes."""
    r = rows.agg(
        F.min("event_time").alias("c0"), F.max("event_time").alias("c1"),
        F.min("received_at").alias("r0"), F.max("received_at").alias("r1"),
    ).collect()[0]
    return r["c0"], r["c1"], r["r0"], r["r1"]


def record_run(spark: SparkSession, catalog: str, summary: RunSummary, snapshot_properties: dict[str, str] | None = None) -> None:
    """Appends the run's row to ops.wap_runs on the session's current reference (the run's branch)."""
    published_at = datetime.now(timezone.utc)
    writer = local_rows(spark, [summary.row(published_at)], WAP_RUNS_SCHEMA).writeTo(wap_runs_table(catalog))
    for key, value in (snapshot_properties or {}).items():
        writer = writer.option(f"snapshot-property.{key}", value)
    writer.append()
