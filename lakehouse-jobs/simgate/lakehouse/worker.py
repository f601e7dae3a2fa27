"""The warm WAP worker: one Spark session kept between runs, so a run started by the gateway's local
launcher pays neither the JVM start nor a cold JVM (class loading, code generation, first Kafka and S3
clients). The launcher (gateway/src/jobs/warm-worker.ts) starts it and feeds it one run at a time.

    python -m simgate.lakehouse.worker

Input, one JSON request per stdin line:
    {"jobId": "job-parking-entries-3", "topic": "parking-entries", "wapRunId": "20261202T120000Z-0123abcd",
     "config": "/path/wap.json" or null (then SIMGATE_WAP_CONFIG or the built-in configuration)}
Output, per request: the run's `SIMGATE_WAP_RESULT {json}` line (exactly what `python -m
simgate.lakehouse.wap` prints; `timings.sparkStart` is 0 and `warmSession` true for a run in an already
started session), then `SIMGATE_WORKER_DONE {"jobId": ..., "exitCode": n, "workerExits": bool}` with the exit code the
one-shot job would have had (wap.py), and whether the worker exits now. Logs go to stderr.

With `--warm-up [--config FILE]` (the launcher's prewarm, when the gateway starts) it starts Spark at once and runs the
run's read paths on nothing new (each topic's published offsets, an empty Kafka range, the parse and the
record contract on one sample record) before it reads its first request, so that request finds a warm
JVM; a warm-up that fails is logged and changes nothing. It writes nothing to the catalog.

It exits 0 at the end of its input (the launcher closes it when idle), after SIMGATE_WORKER_MAX_RUNS runs
(default 50: a fresh JVM now and then), and 70 right after reporting a run whose Spark JVM died: the
session is gone, and the launcher's next run starts a new worker.
"""

from __future__ import annotations

import json
import os
import sys
import time

from pyspark.sql import SparkSession

from .config import ConfigError, load_config
from .settings import StackSettings
from .wap import RESULT_PREFIX, WapResult, _jvm_alive, bad_usage, new_wap_run_id, run_job, stop_session, wap_session

DONE_PREFIX = "SIMGATE_WORKER_DONE "
EXIT_JVM_DIED = 70


def _done(job_id: str, code: int, worker_exits: bool = False) -> None:
    print(DONE_PREFIX + json.dumps({"jobId": job_id, "exitCode": code, "workerExits": worker_exits}), flush=True)


SAMPLE_RECORD = {
    "schemaVersion": 1, "eventId": "warm-up-000000", "runId": "warm-up", "sequence": 0, "eventType": "parking.entry",
    "timeStamp": "2026-01-01T00:00:00.000Z", "simTimeSeconds": 0.0, "carId": "00WU0000", "text": "warm-up",
    "coordinates": {"slotId": "A-01", "x": 0.0, "y": 0.0, "z": 0.0, "yawDeg": 0.0},
    "images": [], "attributes": {}, "ingest": {"receivedAt": "2026-01-01T00:00:00.040Z", "gatewayId": "warm-up"},
}


def warm_up(spark: SparkSession, settings: StackSettings, config) -> dict[str, float]:
    """Runs what every run does first, on nothing new and writing nothing: seconds per piece. A piece
    that fails (no table yet, Kafka down) is logged and skipped; the run that follows reports for real."""
    from datetime import datetime, timezone

    from .kafka_source import TopicNotFound, plan_ranges, read_ranges, watermarks
    from .tables import TopicTables, publications, table_exists
    from .transforms import decode_kafka, parse_records, with_contract

    timings: dict[str, float] = {}

    def piece(name: str, fn) -> None:
        started = time.monotonic()
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - a warm-up never stops the worker
            first_line = (str(err).splitlines() or [""])[0][:200]
            print(f"worker: warm-up {name} skipped: {type(err).__name__}: {first_line}", file=sys.stderr, flush=True)
        timings[name] = round(time.monotonic() - started, 3)

    topics = list(config.topics)

    def published() -> None:
        for topic in topics:
            tables = TopicTables(settings.catalog, topic)
            if table_exists(spark, tables.offsets):
                publications(spark, tables)

    def kafka() -> None:  # one topic is enough to load the Kafka source and its clients: the first that exists
        for topic in topics:
            try:
                marks = watermarks(settings, topic)
            except TopicNotFound:
                continue
            ranges = plan_ranges({p: high for p, (_low, high) in marks.items()}, marks)
            read_ranges(spark, settings, topic, ranges).count()
            return
        if topics:
            raise TopicNotFound(f"none of the configured topics exists yet ({', '.join(topics)})")

    def contract() -> None:
        row = ("warm-up", 0, 0, datetime.now(timezone.utc), b"warm-up", json.dumps(SAMPLE_RECORD).encode())
        raw = spark.createDataFrame([row], "topic string, partition int, offset long, timestamp timestamp, key binary, value binary")
        with_contract(parse_records(decode_kafka(raw)), config.accepted_schema_versions).collect()

    piece("published", published)
    piece("kafka", kafka)
    piece("contract", contract)
    return timings


def main(argv: list[str] | None = None) -> int:
    settings = StackSettings.from_env()
    max_runs = int(os.environ.get("SIMGATE_WORKER_MAX_RUNS", "50"))
    spark: SparkSession | None = None
    start_error: Exception | None = None
    runs = 0
    args = sys.argv[1:] if argv is None else argv
    if "--warm-up" in args:
        config_path = args[args.index("--config") + 1] if "--config" in args[:-1] else None
        started = time.monotonic()
        try:
            spark = wap_session("simgate-wap-worker", settings)
            session_s = round(time.monotonic() - started, 3)
            pieces = warm_up(spark, settings, load_config(config_path))
            print(f"worker: warm in {time.monotonic() - started:.1f} s (sparkStart {session_s}, {json.dumps(pieces)})",
                  file=sys.stderr, flush=True)
        except Exception as err:  # noqa: BLE001 - the first run starts the session again and reports
            print(f"worker: warm-up failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            stop_session(spark, "worker")
            spark = None
    try:
        while True:
            line = sys.stdin.readline()
            if not line:
                return 0
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                job_id, topic = str(request["jobId"]), str(request["topic"])
                wap_run_id = request.get("wapRunId")
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                print(f"worker: not a run request ({type(err).__name__}): {line.strip()[:200]}", file=sys.stderr, flush=True)
                _done("?", 64)
                continue
            problem = bad_usage(topic, wap_run_id)
            try:
                config = load_config(request.get("config"))
            except ConfigError as err:
                problem = problem or str(err)
            if problem is not None:
                print(f"wap: {problem}", file=sys.stderr, flush=True)
                _done(job_id, 64)
                continue

            started = time.monotonic()
            result = WapResult(status="failed", topic=topic, wap_run_id=wap_run_id or new_wap_run_id_now())
            if spark is None:
                try:
                    spark = wap_session("simgate-wap-worker", settings)
                except Exception as err:  # noqa: BLE001 - reported as the run's problem
                    start_error = err
                result.timings["sparkStart"] = round(time.monotonic() - started, 3)
            else:
                result.timings["sparkStart"] = 0.0
                result.warm_session = True
            code = run_job(spark, start_error, settings, config, result)
            result.timings["total"] = round(time.monotonic() - started, 3)
            print(RESULT_PREFIX + result.to_json(), flush=True)
            runs += 1
            jvm_gone = spark is None or not _jvm_alive(spark)
            _done(job_id, code, worker_exits=jvm_gone or runs >= max_runs)
            if jvm_gone:
                return EXIT_JVM_DIED
            if runs >= max_runs:
                return 0
    finally:
        stop_session(spark, "worker")


def new_wap_run_id_now() -> str:
    from datetime import datetime, timezone

    return new_wap_run_id(datetime.now(timezone.utc))


if __name__ == "__main__":
    sys.exit(main())
