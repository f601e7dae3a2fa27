"""Storage maintenance on main: compaction (rewrite_data_files) and manifest rewrite (rewrite_manifests)
of each topic's production and staging tables.

    python -m simgate.lakehouse.maintenance [--topic parking-entries --topic parking-exits]

It never calls Iceberg's expire_snapshots or remove_orphan_files: on Nessie, a data file may be
referenced by other branches and tags than main, and those procedures only see one reference, so they
would delete live data (the tables also carry gc.enabled=false, which makes them refuse). Old snapshots
and unreferenced files are collected by Nessie GC, which marks what every reference still reaches and
sweeps the rest (see docs/lakehouse.md).
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import SparkSession

from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables, table_exists

DEFAULT_TOPICS = ("parking-entries", "parking-exits")
FORBIDDEN_PROCEDURES = ("expire_snapshots", "remove_orphan_files")


def _qualified(tables: TopicTables, table: str) -> str:
    return table.split(".", 1)[1]  # without the catalog, as the procedures want it


def maintain(spark: SparkSession, settings: StackSettings, topics: list[str], min_input_files: int = 2) -> list[dict]:
    """Runs the two rewrites on main for every existing table of the topics; returns what each did."""
    catalog = settings.catalog
    spark.sql(f"USE REFERENCE main IN {catalog}")
    report: list[dict] = []
    for topic in topics:
        tables = TopicTables(catalog, topic)
        for table in (tables.production, tables.trusted, tables.untrusted):
            if not table_exists(spark, table):
                continue
            name = _qualified(tables, table)
            files = spark.sql(
                f"CALL {catalog}.system.rewrite_data_files(table => '{name}', "
                f"options => map('min-input-files', '{min_input_files}'))"
            ).collect()[0]
            manifests = spark.sql(f"CALL {catalog}.system.rewrite_manifests(table => '{name}')").collect()[0]
            report.append(
                {
                    "table": name,
                    "rewrittenDataFiles": int(files["rewritten_data_files_count"]),
                    "addedDataFiles": int(files["added_data_files_count"]),
                    "rewrittenManifests": int(manifests["rewritten_manifests_count"]),
                    "addedManifests": int(manifests["added_manifests_count"]),
                }
            )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.maintenance", description=__doc__.split("\n")[0])
    parser.add_argument("--topic", action="append", help="topic whose tables to maintain (repeatable)")
    parser.add_argument("--min-input-files", type=int, default=2)
    args = parser.parse_args(argv)
    settings = StackSettings.from_env()
    spark = build_spark_session("simgate-maintenance", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    try:
        report = maintain(spark, settings, args.topic or list(DEFAULT_TOPICS), args.min_input_files)
    finally:
        spark.stop()
    for line in report:
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
