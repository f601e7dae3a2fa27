"""The dashboard's queries on the production and operations tables, as Superset shows them (through
Trino) and the demo and tests run them (through Spark or Trino). One SQL text per chart lives in
sql/<chart>.sql and is shared by every engine: {catalog} is the Iceberg catalog (Spark: nessie; Trino and
the Superset bundle: iceberg), {table} the table of the per-hour charts. The bundle's datasets carry the
Trino form of each text (deploy/k8s/base/superset/provisioning.yaml; tests/test_dashboards.py keeps them
equal).

    python -m simgate.lakehouse.queries [--topic parking-entries]
    python -m simgate.lakehouse.queries --sql entries_per_hour [--catalog iceberg]   print a chart's SQL
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession

from .settings import StackSettings
from .spark import build_spark_session
from .tables import TopicTables

SQL_DIR = Path(__file__).with_name("sql")


# The charts of the dashboard, by SQL file name; the per-hour ones name their table with {table}.
CHARTS = ("entries_per_hour", "exits_per_hour", "occupancy", "untrusted_by_reason", "wap_runs", "freshness")
DEFAULT_TABLES = {"entries_per_hour": "production.parking_entries", "exits_per_hour": "production.parking_exits"}


def query_text(name: str, table: str | None = None, catalog: str | None = None) -> str:
    """The SQL of `name` without its comment lines, with {table} and {catalog} filled in. Without a
    table, a per-hour query reads its default table in `catalog`."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    if table is None and name in DEFAULT_TABLES:
        table = f"{catalog}.{DEFAULT_TABLES[name]}"
    if table is not None:
        body = body.replace("{table}", table)
    if catalog is not None:
        body = body.replace("{catalog}", catalog)
    return body.strip()


def chart_rows(spark: SparkSession, settings: StackSettings, name: str) -> list[tuple]:
    """A chart's rows on main, through Spark (the same SQL Superset runs through Trino)."""
    spark.sql(f"USE REFERENCE main IN {settings.catalog}")
    return [tuple(r) for r in spark.sql(query_text(name, catalog=settings.catalog)).collect()]


def entries_per_hour_lines(rows: list[tuple[datetime, int]]) -> list[str]:
    """The entries-per-hour rows as text: hour, count and a bar (capped at 60 characters)."""
    return [f"  {hour:%Y-%m-%d %H:00}  {entries:6d}  {'#' * min(entries, 60)}" for hour, entries in rows]


def entries_per_hour(spark: SparkSession, settings: StackSettings, topic: str = "parking-entries") -> list[tuple[datetime, int]]:
    """(hour, entries) from production.<topic> on main, oldest hour first."""
    spark.sql(f"USE REFERENCE main IN {settings.catalog}")
    rows = spark.sql(query_text("entries_per_hour", TopicTables(settings.catalog, topic).production)).collect()
    return [(r["hour"], int(r["entries"])) for r in rows]


def table_contents(spark: SparkSession, settings: StackSettings, topic: str) -> dict:
    """The event ids in production.<topic> and (event id, reasons) in its untrusted table, on main."""
    spark.sql(f"USE REFERENCE main IN {settings.catalog}")
    tables = TopicTables(settings.catalog, topic)
    return {
        "production": sorted(r["event_id"] for r in spark.table(tables.production).select("event_id").collect()),
        "untrusted": sorted(
            ([r["event_id"], list(r["reasons"])] for r in spark.table(tables.untrusted).select("event_id", "reasons").collect()),
            key=lambda row: (row[0] or "", row[1]),
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.queries", description="entries per hour")
    parser.add_argument("--topic", default="parking-entries")
    parser.add_argument("--dump", action="append", metavar="TOPIC", help="print the topic's production ids and untrusted reasons as JSON instead")
    parser.add_argument("--sql", choices=CHARTS, help="print the chart's SQL (no Spark) and exit")
    parser.add_argument("--catalog", default="iceberg", help="catalog for --sql (default iceberg, Trino's)")
    args = parser.parse_args(argv)
    if args.sql:
        print(query_text(args.sql, catalog=args.catalog))
        return 0
    settings = StackSettings.from_env()
    spark = build_spark_session("simgate-queries", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    try:
        if args.dump:
            print(json.dumps({topic: table_contents(spark, settings, topic) for topic in args.dump}))
            return 0
        print(f"entries per hour (production.{TopicTables(settings.catalog, args.topic).base}, main):")
        print("\n".join(entries_per_hour_lines(entries_per_hour(spark, settings, args.topic))))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
