"""The blob bucket's sweep: images that nothing references any more are removed after a grace period.
`python -m simgate.lakehouse.maintenance blobs` runs it (see maintenance.py).

An image is referenced when its URI (`s3://<blob bucket>/<key>`) appears in
  - a record still in one of the event topics (Kafka retention has not dropped it yet; the job may not
    have read it yet), found as text anywhere in the record value, so a record with wrong types counts
    too; or
  - a row of an event topic's tables on main: `production.<t>` and `staging.<t>_trusted` (`images.uri`)
    and `staging.<t>_untrusted` (`images.uri` and the raw record text).
So the images of untrusted rows are kept as long as their untrusted rows (the staging tables keep every
row, for inspection): nothing that can still be looked at loses its images.

An image referenced by none of them is an orphan: typically the gateway stored it and then crashed (or
the produce failed) before its event reached Kafka, so no record will ever point at it. Orphans older
than the grace period (`--grace`, default 24 h, longer than any record can take from the PUT to Kafka)
are deleted (`--dry-run` lists them). Only keys under `--prefix` (default `runs/`, where the gateway puts
event images) are considered; `quarantine/` (dead-letter payloads) is left alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .gc import CamelCaseReport, IcebergFiles
from .kafka_source import PartitionRange, TopicNotFound, read_ranges, watermarks
from .tables import TopicTables, table_exists


@dataclass
class BlobReport(CamelCaseReport):
    dry_run: bool
    grace_seconds: float
    referenced: int = 0
    listed: int = 0
    young: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    deleted: int = 0
    sample: list[str] = field(default_factory=list)
    seconds: float = 0.0


def uri_pattern(bucket: str) -> re.Pattern[str]:
    return re.compile(r"s3://" + re.escape(bucket) + r"/[^\"\s\\]+")


def referenced_uris(spark: SparkSession, settings, topics: list[str], bucket: str) -> set[str]:
    """Every blob URI of the bucket that the topics' records and tables mention."""
    pattern = uri_pattern(bucket).pattern
    frames = []
    for topic in topics:
        try:
            marks = watermarks(settings, topic)
        except TopicNotFound:
            marks = {}
        # Every partition, empty ones included: Spark's Kafka source refuses specific offsets that leave a
        # partition of the topic out.
        ranges = [PartitionRange(p, low, high) for p, (low, high) in sorted(marks.items())]
        if any(r.end > r.start for r in ranges):
            raw = read_ranges(spark, settings, topic, ranges).select(F.col("value").cast("string").alias("text"))
            frames.append(raw.select(F.explode(F.regexp_extract_all("text", F.lit(f"({pattern})"), 1)).alias("uri")))
        tables = TopicTables(settings.catalog, topic)
        for table in (tables.production, tables.trusted, tables.untrusted):
            if table_exists(spark, table):
                frames.append(spark.table(table).select(F.explode("images.uri").alias("uri")))
        if table_exists(spark, tables.untrusted):
            raw = spark.table(tables.untrusted).select(F.col("raw_value").alias("text"))
            frames.append(raw.select(F.explode(F.regexp_extract_all("text", F.lit(f"({pattern})"), 1)).alias("uri")))
    uris: set[str] = set()
    for frame in frames:
        uris.update(r["uri"] for r in frame.where(F.col("uri").isNotNull()).distinct().collect())
    return uris


def sweep(spark: SparkSession, settings, topics: list[str], *, bucket: str, grace: timedelta, dry_run: bool, prefix: str = "runs/") -> BlobReport:
    started = time.monotonic()
    report = BlobReport(dry_run=dry_run, grace_seconds=grace.total_seconds())
    spark.sql(f"USE REFERENCE main IN {settings.catalog}")
    # The listing is taken before the references are read: an image stored (and its record produced)
    # after the listing is not in it, so it cannot be taken for an orphan.
    files = IcebergFiles(spark, settings)
    listed = list(files.listing(f"s3://{bucket}/{prefix}"))
    referenced = referenced_uris(spark, settings, topics, bucket)
    report.referenced = len(referenced)
    oldest_allowed = (datetime.now(timezone.utc) - grace).timestamp() * 1000
    orphans: list[str] = []
    for location, size, created_ms in listed:
        report.listed += 1
        if location in referenced:
            continue
        if created_ms > oldest_allowed:
            report.young += 1
            continue
        orphans.append(location)
        report.orphan_bytes += size
    report.orphans = len(orphans)
    report.sample = sorted(orphans)[:10]
    if orphans and not dry_run:
        files.delete(orphans)
        report.deleted = len(orphans)
    report.seconds = round(time.monotonic() - started, 3)
    return report
