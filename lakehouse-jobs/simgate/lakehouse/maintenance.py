"""Storage maintenance: compaction on main, Nessie-safe garbage collection of the warehouse, and the
blob bucket's sweep.

    python -m simgate.lakehouse.maintenance [compact] [--topic T ...] [--keep-snapshots 100]  # rewrites, snapshot list bounded
    python -m simgate.lakehouse.maintenance gc [--cutoff 7d] [--min-age 1h] [--dry-run]
    python -m simgate.lakehouse.maintenance blobs [--topic T ...] [--grace 24h] [--dry-run]
    python -m simgate.lakehouse.maintenance all [--topic T ...]           # the three, in that order

Compaction covers each topic's production, offsets and staging tables and ops.wap_runs, and keeps the
newest --keep-snapshots snapshots in each one's metadata on main (entries only, no file). It never calls Iceberg's
expire_snapshots or remove_orphan_files: on Nessie, a data file may be referenced by other branches and
tags than main, and those procedures only see one reference, so they would delete live data (the tables
also carry gc.enabled=false, which makes them refuse). `gc` (gc.py) marks what every reference still
reaches and sweeps the rest; `blobs` (blobs.py) removes images no record or row references. Defaults
come from SIMGATE_GC_CUTOFF, SIMGATE_GC_MIN_AGE and SIMGATE_BLOB_GRACE when set. Each prints one JSON
line per table or one `{"gc": ...}` / `{"blobs": ...}` line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta

from pyspark.sql import SparkSession

from .iceberg_files import keep_newest_snapshots, load_table
from .ops_table import wap_runs_table
from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables, table_exists

DEFAULT_TOPICS = ("parking-entries", "parking-exits")
# Snapshots kept in each table's metadata on main: Iceberg time travel on main reaches this far back;
# older states are read at the WAP tags (retention.py decides how many of those stay).
DEFAULT_KEEP_SNAPSHOTS = 100
FORBIDDEN_PROCEDURES = ("expire_snapshots", "remove_orphan_files")


def maintain(
    spark: SparkSession, settings: StackSettings, topics: list[str], min_input_files: int = 2, keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS
) -> list[dict]:
    """On main, for every existing table of the topics and for ops.wap_runs (a row, so a file and a
    manifest, per run of any topic): the two rewrites, then the table's snapshot list cut to the newest
    `keep_snapshots` (iceberg_files.keep_newest_snapshots; no file is deleted). Returns what each did."""
    catalog = settings.catalog
    spark.sql(f"USE REFERENCE main IN {catalog}")
    names = [table for topic in topics for table in TopicTables(catalog, topic).all()] + [wap_runs_table(catalog)]
    report: list[dict] = []
    for table in names:
        if not table_exists(spark, table):
            continue
        name = table.split(".", 1)[1]  # without the catalog, as the procedures want it
        files = spark.sql(
            f"CALL {catalog}.system.rewrite_data_files(table => '{name}', "
            f"options => map('min-input-files', '{min_input_files}'))"
        ).collect()[0]
        manifests = spark.sql(f"CALL {catalog}.system.rewrite_manifests(table => '{name}')").collect()[0]
        removed, kept = keep_newest_snapshots(spark, load_table(spark, table), keep_snapshots)
        report.append(
            {
                "table": name,
                "rewrittenDataFiles": int(files["rewritten_data_files_count"]),
                "addedDataFiles": int(files["added_data_files_count"]),
                "rewrittenManifests": int(manifests["rewritten_manifests_count"]),
                "addedManifests": int(manifests["added_manifests_count"]),
                "removedSnapshots": removed,
                "snapshots": kept,
            }
        )
    return report


COMMANDS = ("compact", "gc", "blobs", "all")


def main(argv: list[str] | None = None) -> int:
    from .blobs import sweep
    from .gc import collect, parse_duration
    from .nessie import NessieClient

    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "compact"
    parser = argparse.ArgumentParser(prog=f"python -m simgate.lakehouse.maintenance {command}", description=__doc__.split("\n")[0])
    parser.add_argument("--topic", action="append", help="topic whose tables (compact) or images (blobs) to maintain (repeatable)")
    parser.add_argument("--min-input-files", type=int, default=2)
    # A string default goes through `type` too, so a bad SIMGATE_KEEP_SNAPSHOTS is a usage error, not a traceback.
    parser.add_argument("--keep-snapshots", type=int, default=os.environ.get("SIMGATE_KEEP_SNAPSHOTS", str(DEFAULT_KEEP_SNAPSHOTS)),
                        help="compact: snapshots kept in each table's metadata on main (no file is deleted)")
    parser.add_argument("--cutoff", default=os.environ.get("SIMGATE_GC_CUTOFF", "7d"),
                        help="gc: a branch's commits newer than this stay live (besides every reference's head)")
    parser.add_argument("--min-age", default=os.environ.get("SIMGATE_GC_MIN_AGE", "1h"),
                        help="gc: files younger than this are never deleted")
    parser.add_argument("--grace", default=os.environ.get("SIMGATE_BLOB_GRACE", "24h"),
                        help="blobs: unreferenced images younger than this are kept")
    parser.add_argument("--blob-prefix", default="runs/", help="blobs: the keys considered")
    parser.add_argument("--dry-run", action="store_true", help="gc, blobs: report, delete nothing")
    args = parser.parse_args(argv)
    try:
        cutoff, min_age, grace = parse_duration(args.cutoff), parse_duration(args.min_age), parse_duration(args.grace)
    except ValueError as err:
        print(f"maintenance: {err}", file=sys.stderr)
        return 64
    if args.keep_snapshots < 1:
        print("maintenance: --keep-snapshots must be at least 1", file=sys.stderr)
        return 64
    settings = StackSettings.from_env()
    topics = args.topic or list(DEFAULT_TOPICS)
    spark = build_spark_session("simgate-maintenance", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    try:
        if command in ("compact", "all"):
            for line in maintain(spark, settings, topics, args.min_input_files, args.keep_snapshots):
                print(json.dumps(line), flush=True)
        if command in ("gc", "all"):
            report = collect(spark, settings, NessieClient(settings.nessie_uri), cutoff=cutoff, min_age=min_age, dry_run=args.dry_run)
            print(json.dumps({"gc": report.to_dict()}), flush=True)
        if command in ("blobs", "all"):
            bucket = os.environ.get("S3_BLOB_BUCKET", "simgate-blobs")
            blob_report = sweep(spark, settings, topics, bucket=bucket, grace=grace, dry_run=args.dry_run, prefix=args.blob_prefix)
            print(json.dumps({"blobs": blob_report.to_dict()}), flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
