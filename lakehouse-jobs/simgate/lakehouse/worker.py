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


def main() -> int:
    settings = StackSettings.from_env()
    max_runs = int(os.environ.get("SIMGATE_WORKER_MAX_RUNS", "50"))
    spark: SparkSession | None = None
    start_error: Exception | None = None
    runs = 0
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
