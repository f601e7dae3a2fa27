"""Iceberg's Arrow-vectorized Parquet reads, on by default, on the tables a WAP run writes.

With Iceberg 1.6.1 these reads brought the Spark JVM down (SIGSEGV) when a 10,000-event run's staging
table was scanned for its null counts, in every attempt; they had been switched off. Under the pinned
Iceberg (deploy/local/versions.env) they are on again, and this module scans what a WAP run of that size
wrote, in its own Spark session so that a crash stays within this module."""

from __future__ import annotations

import json
import uuid

import pytest
from pyspark.sql import functions as F

from simgate.lakehouse.bench import bench_record
from simgate.lakehouse.config import parse_config
from simgate.lakehouse.schema import REQUIRED_TRUSTED_COLUMNS
from simgate.lakehouse.tables import TopicTables
from simgate.lakehouse.wap import run_wap, use_reference, wap_session

EVENTS = 10_000
FLAW_EVERY = 50  # every 50th event lacks its car id: 200 untrusted rows


@pytest.fixture(scope="module")
def spark(settings):
    session = wap_session("simgate-vectorized-read-test", settings)
    yield session
    session.stop()


def test_vectorized_reads_are_on_by_default(spark):
    assert spark.conf.get("spark.sql.iceberg.vectorization.enabled") == "true"


def test_a_10000_event_runs_tables_scan_vectorized_with_the_right_figures(spark, settings, kafka):
    topic = kafka.create("vector", partitions=3)
    run_id = f"vec-{uuid.uuid4().hex[:6]}"
    # The bench's records (one lot, 3 s apart), as in the runs that crashed.
    pairs = [bench_record(run_id, seq, seq % FLAW_EVERY == 0) for seq in range(1, EVENTS + 1)]
    records = [json.loads(value) for _, value in pairs]
    kafka.produce(topic, [(key.decode(), value) for key, value in pairs])
    kafka.wait_until_readable(topic, EVENTS)
    config = parse_config({"runsTopic": None, "topics": {topic: {"eventType": "parking.entry", "orderWith": []}}})

    result = run_wap(spark, settings, config, topic, log=lambda message: None)
    assert (result.status, result.read, result.untrusted) == ("published", EVENTS, EVENTS // FLAW_EVERY)

    # The scans that crashed the JVM: a staging table filtered to the run, with a null count per
    # required column, then the untrusted rows and production, each read in full, three times over.
    tables = TopicTables(settings.catalog, topic)
    this_run = F.col("wap_run_id") == F.lit(result.wap_run_id)
    flawed_ids = sorted(r["eventId"] for r in records if r["carId"] is None)
    trusted_seqs = [r["sequence"] for r in records if r["carId"] is not None]
    for _ in range(3):
        use_reference(spark, settings.catalog, "main")
        staged = spark.table(tables.trusted).filter(this_run).agg(
            F.count(F.lit(1)).alias("_rows"),
            *[F.sum(F.when(F.col(c).isNull(), 1).otherwise(0)).alias(c) for c in REQUIRED_TRUSTED_COLUMNS],
        ).collect()[0]
        assert staged["_rows"] == EVENTS - EVENTS // FLAW_EVERY
        assert all(staged[c] == 0 for c in REQUIRED_TRUSTED_COLUMNS), staged.asDict()

        untrusted = spark.table(tables.untrusted).filter(this_run).select("event_id", "reasons").collect()
        assert sorted(r.event_id for r in untrusted) == flawed_ids
        assert all("missing:carId" in r.reasons for r in untrusted)

        production = spark.table(tables.production).agg(
            F.count(F.lit(1)).alias("rows"), F.countDistinct("event_id").alias("ids"), F.sum("sequence").alias("seq")
        ).collect()[0]
        assert (production["rows"], production["ids"], production["seq"]) == (
            len(trusted_seqs), len(trusted_seqs), sum(trusted_seqs)
        )
