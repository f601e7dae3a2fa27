"""What the lakehouse holds for some topics, on Nessie's main: every event id of production.<t> and of
staging.<t>_untrusted with its reasons, as one JSON line on stdout (read by test/faults/main.ts).

    .venv/bin/python test/faults/lake_rows.py --topic parking-entries-x --topic parking-exits-x

Stack settings from the environment like every lakehouse job (KAFKA_BOOTSTRAP, S3_*, NESSIE_URI).
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import functions as F

from simgate.lakehouse.settings import StackSettings
from simgate.lakehouse.spark import build_spark_session
from simgate.lakehouse.tables import TopicTables, table_exists


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", action="append", required=True)
    args = parser.parse_args(argv)
    settings = StackSettings.from_env()
    spark = build_spark_session("simgate-fault-rows", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    out: dict[str, dict[str, object]] = {}
    try:
        spark.sql(f"USE REFERENCE main IN {settings.catalog}")
        for topic in args.topic:
            t = TopicTables(settings.catalog, topic)
            entry: dict[str, object] = {"production": [], "untrusted": [], "offsets": []}
            if table_exists(spark, t.production):
                entry["production"] = [r["event_id"] for r in spark.table(t.production).select("event_id").collect()]
                entry["offsets"] = [
                    {"partition": r["partition"], "start": r["start_offset"], "end": r["end_offset"], "run": r["wap_run_id"]}
                    for r in spark.table(t.offsets).collect()
                ] if _has_columns(spark, t.offsets, ("partition", "start_offset", "end_offset")) else []
            if table_exists(spark, t.untrusted):
                entry["untrusted"] = [
                    {"eventId": r["event_id"], "reasons": list(r["reasons"] or [])}
                    for r in spark.table(t.untrusted).select("event_id", F.col("reasons")).collect()
                ]
            out[topic] = entry
    finally:
        spark.stop()
    print("SIMGATE_LAKE_ROWS " + json.dumps(out), flush=True)
    return 0


def _has_columns(spark, table: str, names: tuple[str, ...]) -> bool:
    columns = set(spark.table(table).columns)
    return all(n in columns for n in names)


if __name__ == "__main__":
    sys.exit(main())
