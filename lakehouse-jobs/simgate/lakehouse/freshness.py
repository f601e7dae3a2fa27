"""Freshness: how long a record took from its Kafka acknowledgement to being visible on main.

    python -m simgate.lakehouse.freshness [--topic parking-entries --topic parking-exits] [--run-id RUN]

For every row of `production.<t>` on main: the commit time of the Nessie merge that published it (the
WAP run's merge commit, found by the run id in its metadata or its message) minus the record's Kafka
timestamp (the broker's append time = when the gateway's produce was acknowledged). Per topic it prints
rows, p50, p95 and max seconds; `--run-id` limits it to the events of one simulation run (run_id column).
The goal (issue 13) is p95 <= 60 s per topic on a 2,000-event run through the gateway's job driver.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .nessie import NessieClient
from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables, table_exists

DEFAULT_TOPICS = ("parking-entries", "parking-exits")


def merge_times(nessie: NessieClient, topic: str, max_commits: int = 5000) -> dict[str, datetime]:
    """wap_run_id → commit time of its merge into main."""
    times: dict[str, datetime] = {}
    prefix = f"WAP publish {topic} run "
    for meta in nessie.log("main", max_commits):
        # Nessie's v2 log gives the merge's properties as lists (allProperties).
        props = {k: (v[0] if isinstance(v, list) and v else v) for k, v in (meta.get("allProperties") or meta.get("properties") or {}).items()}
        run = props.get("simgate.wap-run-id") if props.get("simgate.kafka-topic") == topic else None
        if run is None and meta.get("message", "").startswith(prefix):
            run = meta["message"][len(prefix):].split(":", 1)[0]
        if run and run not in times:
            times[run] = datetime.fromisoformat(meta["commitTime"].replace("Z", "+00:00"))
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(round(q * (len(ordered) - 1)))))
    return ordered[rank]


def freshness(spark: SparkSession, settings: StackSettings, nessie: NessieClient, topic: str, run_id: str | None = None) -> dict:
    tables = TopicTables(settings.catalog, topic)
    spark.sql(f"USE REFERENCE main IN {settings.catalog}")
    if not table_exists(spark, tables.production):
        return {"topic": topic, "rows": 0}
    rows = spark.table(tables.production)
    if run_id:
        rows = rows.where(F.col("run_id") == run_id)
    # Epoch seconds computed by Spark (the session's zone is UTC), not Python's local-time datetimes.
    acked = rows.select("wap_run_id", F.unix_micros("kafka_timestamp").alias("us")).collect()
    merged = merge_times(nessie, topic)
    lags = [merged[r["wap_run_id"]].timestamp() - r["us"] / 1e6 for r in acked if r["wap_run_id"] in merged]
    return {
        "topic": topic,
        "rows": len(lags),
        "runs": len({r["wap_run_id"] for r in acked}),
        "p50Seconds": round(percentile(lags, 0.50), 1) if lags else None,
        "p95Seconds": round(percentile(lags, 0.95), 1) if lags else None,
        "maxSeconds": round(max(lags), 1) if lags else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.freshness", description=__doc__.split("\n")[0])
    parser.add_argument("--topic", action="append")
    parser.add_argument("--run-id", help="only the events of this simulation run")
    args = parser.parse_args(argv)
    settings = StackSettings.from_env()
    spark = build_spark_session("simgate-freshness", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    try:
        for topic in args.topic or list(DEFAULT_TOPICS):
            print(json.dumps(freshness(spark, settings, NessieClient(settings.nessie_uri), topic, args.run_id)), flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
