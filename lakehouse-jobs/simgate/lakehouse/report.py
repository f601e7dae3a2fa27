"""What the lakehouse holds, for the demo: row counts of the production and untrusted tables (with the
untrusted reasons), freshness (Kafka ack to visible on main, freshness.py), Nessie's log of main with its
WAP tags, and entries per hour.

    python -m simgate.lakehouse.report [--topic parking-entries --topic parking-exits] [--log 12]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from pyspark.sql import functions as F

from .freshness import freshness
from .nessie import NessieClient
from .queries import entries_per_hour, entries_per_hour_lines
from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables, table_exists

DEFAULT_TOPICS = ("parking-entries", "parking-exits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.report", description=__doc__.split("\n")[0])
    parser.add_argument("--topic", action="append")
    parser.add_argument("--log", type=int, default=12, help="commits of main to show")
    args = parser.parse_args(argv)
    topics = args.topic or list(DEFAULT_TOPICS)
    settings = StackSettings.from_env()
    nessie = NessieClient(settings.nessie_uri)
    spark = build_spark_session("simgate-report", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    try:
        spark.sql(f"USE REFERENCE main IN {settings.catalog}")
        print("Tables on main (rows):")
        for topic in topics:
            t = TopicTables(settings.catalog, topic)
            if not table_exists(spark, t.production):
                print(f"  {topic}: no tables yet")
                continue
            production = spark.table(t.production).count()
            untrusted = spark.table(t.untrusted)
            reasons = {r["reason"]: r["n"] for r in untrusted.select(F.explode("reasons").alias("reason")).groupBy("reason").count().withColumnRenamed("count", "n").collect()}
            runs = spark.table(t.offsets).select("wap_run_id").distinct().count()
            print(f"  production.{t.base:<24} {production:7d}   (published by {runs} WAP run(s))")
            print(f"  staging.{t.base + '_untrusted':<27} {untrusted.count():7d}   " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))

        print("\nFreshness (Kafka ack -> visible on main; python -m simgate.lakehouse.freshness):")
        for topic in topics:
            f = freshness(spark, settings, nessie, topic)
            if f.get("rows"):
                print(f"  {topic:<28} {f['rows']:6d} rows   p50 {f['p50Seconds']:6.1f} s   p95 {f['p95Seconds']:6.1f} s   max {f['maxSeconds']:6.1f} s")

        print(f"\nNessie log of main (last {args.log} commits) with tags:")
        tags: dict[str, list[str]] = defaultdict(list)
        for ref in nessie.references():
            if ref.type == "TAG":
                tags[ref.hash].append(ref.name)
        for commit in nessie.log("main", args.log)[: args.log]:
            marks = f"  <- tag {', '.join(sorted(tags[commit['hash']]))}" if tags.get(commit["hash"]) else ""
            kind = "merge " if len(commit.get("parentCommitHashes") or []) > 1 else "commit"
            print(f"  {commit['hash'][:12]} {kind} {commit['commitTime'][:19]}  {commit['message'][:110]}{marks}")

        entries_topic = next((t for t in topics if "entr" in t), topics[0])
        if table_exists(spark, TopicTables(settings.catalog, entries_topic).production):
            print(f"\nEntries per hour (production.{TopicTables(settings.catalog, entries_topic).base}):")
            print("\n".join(entries_per_hour_lines(entries_per_hour(spark, settings, entries_topic))))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
