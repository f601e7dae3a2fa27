"""The tables of one topic, and making sure they exist on main with their declared structure:
Iceberg v2, the declared columns, partitioned by day of event time, a sort order and table properties."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql.utils import AnalysisException

from .config import table_name
from .schema import OFFSETS_SCHEMA, TRUSTED_SCHEMA, UNTRUSTED_SCHEMA, ddl_columns

PRODUCTION = "production"
STAGING = "staging"

# Shared by every table the job creates. gc.enabled=false makes Iceberg's expire_snapshots and
# remove_orphan_files refuse to run: on Nessie, data files are shared by branches and tags, and only
# Nessie GC knows what is still reachable.
COMMON_PROPERTIES = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    "write.distribution-mode": "hash",
    "write.metadata.metrics.default": "truncate(16)",
    "commit.retry.num-retries": "6",
    "gc.enabled": "false",
}


@dataclass(frozen=True)
class TopicTables:
    catalog: str
    topic: str

    @property
    def base(self) -> str:
        return table_name(self.topic)

    @property
    def production(self) -> str:
        return f"{self.catalog}.{PRODUCTION}.{self.base}"

    @property
    def offsets(self) -> str:
        return f"{self.catalog}.{PRODUCTION}.{self.base}_offsets"

    @property
    def trusted(self) -> str:
        return f"{self.catalog}.{STAGING}.{self.base}_trusted"

    @property
    def untrusted(self) -> str:
        return f"{self.catalog}.{STAGING}.{self.base}_untrusted"

    def all(self) -> list[str]:
        return [self.production, self.offsets, self.trusted, self.untrusted]


def table_exists(spark: SparkSession, table: str) -> bool:
    try:
        spark.table(table).schema
        return True
    except AnalysisException:
        return False


def _retry(action, attempts: int = 4):
    """Namespace and table creation race with other jobs on the same catalog: retry what failed because
    someone else created it first (the next attempt sees it and does nothing)."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception:  # noqa: BLE001 - any commit race; the last attempt re-raises
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _properties(extra: dict[str, str]) -> str:
    props = {**COMMON_PROPERTIES, **extra}
    return ", ".join(f"'{k}'='{v}'" for k, v in props.items())


def ensure_tables(spark: SparkSession, tables: TopicTables) -> list[str]:
    """Creates what is missing on the session's current reference (main); returns the tables created."""
    created: list[str] = []
    for namespace in (PRODUCTION, STAGING):
        _retry(lambda ns=namespace: spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {tables.catalog}.{ns}"))

    def create(table: str, schema, partition: str, order: str | None, role: str) -> None:
        if table_exists(spark, table):
            return

        def attempt() -> None:
            if table_exists(spark, table):
                return
            spark.sql(
                f"CREATE TABLE {table} ({ddl_columns(schema)}) USING iceberg"
                + (f" PARTITIONED BY ({partition})" if partition else "")
                + f" TBLPROPERTIES ({_properties({'simgate.topic': tables.topic, 'simgate.role': role})})"
            )
            if order:
                # Hash distribution by partition, sorted within each task: `WRITE ORDERED BY` alone would
                # set range distribution, which samples the data in an extra pass before every write.
                spark.sql(f"ALTER TABLE {table} WRITE DISTRIBUTED BY PARTITION LOCALLY ORDERED BY {order}")
            created.append(table)

        _retry(attempt)

    create(tables.production, TRUSTED_SCHEMA, "days(event_time)", "event_time, car_id", "production")
    create(tables.trusted, TRUSTED_SCHEMA, "days(event_time)", "event_time, car_id", "staging-trusted")
    create(tables.untrusted, UNTRUSTED_SCHEMA, "days(ingested_at)", "kafka_partition, kafka_offset", "staging-untrusted")
    create(tables.offsets, OFFSETS_SCHEMA, "", None, "published-offsets")
    return created


def published_offsets(spark: SparkSession, tables: TopicTables) -> dict[int, int]:
    """partition → the next offset to read, as published with the data on the current reference."""
    rows = spark.sql(
        f"SELECT partition, max(end_offset) AS next_offset FROM {tables.offsets} "
        f"WHERE topic = '{tables.topic}' GROUP BY partition"
    ).collect()
    return {int(r["partition"]): int(r["next_offset"]) for r in rows}


@dataclass(frozen=True)
class Publications:
    """What the offsets table says on the current reference: partition → the next offset to read, and
    the last run published (None before the first)."""

    next_offsets: dict[int, int]
    last_run: str | None


def publications(spark: SparkSession, tables: TopicTables) -> Publications:
    """published_offsets and last_published_run in one read of the offsets table."""
    rows = spark.sql(
        f"SELECT partition, max(end_offset) AS next_offset, max(struct(published_at, wap_run_id)) AS last "
        f"FROM {tables.offsets} WHERE topic = '{tables.topic}' GROUP BY partition"
    ).collect()
    last = max((tuple(r["last"]) for r in rows if r["last"] is not None), default=None)
    return Publications({int(r["partition"]): int(r["next_offset"]) for r in rows}, last[1] if last else None)


def last_published_run(spark: SparkSession, tables: TopicTables) -> str | None:
    rows = spark.sql(
        f"SELECT wap_run_id FROM {tables.offsets} ORDER BY published_at DESC, wap_run_id DESC LIMIT 1"
    ).collect()
    return rows[0]["wap_run_id"] if rows else None
