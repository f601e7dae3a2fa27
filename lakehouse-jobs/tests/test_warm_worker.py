"""The warm worker (python -m simgate.lakehouse.worker) against the real stack: runs of two topics in one
Spark session, each published as a one-shot job would; a run whose JVM dies is reported with the cause,
and the worker exits so that the launcher starts a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from simgate.lakehouse.nessie import NessieClient
from simgate.lakehouse.wap import RESULT_PREFIX, tag_name
from simgate.lakehouse.worker import DONE_PREFIX, EXIT_JVM_DIED

from conftest import as_record, event


class Worker:
    def __init__(self, config_file: str, extra_env: dict[str, str] | None = None, warm_up_log=None) -> None:
        self.config_file = config_file
        args = ["--warm-up", "--config", config_file] if warm_up_log is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simgate.lakehouse.worker", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if warm_up_log is None else warm_up_log, text=True,
            env={**os.environ, **(extra_env or {})},
        )

    def run(self, topic: str, wap_run_id: str) -> tuple[dict, dict]:
        job_id = f"job-{topic}-{uuid.uuid4().hex[:6]}"
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"jobId": job_id, "topic": topic, "wapRunId": wap_run_id, "config": self.config_file}) + "\n")
        self.proc.stdin.flush()
        result = None
        while True:
            line = self.proc.stdout.readline()
            assert line, "the worker ended without answering"
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line.removeprefix(RESULT_PREFIX))
            elif line.startswith(DONE_PREFIX):
                done = json.loads(line.removeprefix(DONE_PREFIX))
                assert done["jobId"] == job_id and result is not None
                return result, done

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=300)


def test_runs_of_two_topics_share_one_session_and_publish_as_one_shot_jobs_do(settings, kafka, tmp_path):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    first, second = kafka.create("warm-a"), kafka.create("warm-b")
    config = tmp_path / "wap.json"
    config.write_text(json.dumps({"runsTopic": None, "topics": {t: {"eventType": "parking.entry"} for t in (first, second)}}))
    kafka.produce(first, map(as_record, [event(run_id, seq) for seq in range(1, 7)]))
    kafka.produce(second, map(as_record, [event(f"{run_id}-b", seq) for seq in range(1, 5)] + ['{"not": "closed"']))

    worker = Worker(str(config))
    try:
        a, done_a = worker.run(first, "20261202T120000Z-0000000a")
        b, done_b = worker.run(second, "20261202T120001Z-0000000b")
        again, done_again = worker.run(first, "20261202T120002Z-0000000c")
    finally:
        code = worker.close()
    assert code == 0
    assert (done_a["exitCode"], done_b["exitCode"], done_again["exitCode"]) == (0, 0, 0)
    assert not done_a["workerExits"] and not done_b["workerExits"]
    assert (a["status"], a["trusted"], a["untrusted"], a["warmSession"]) == ("published", 6, 0, False)
    assert a["timings"]["sparkStart"] > 0
    assert (b["status"], b["trusted"], b["untrusted"], b["warmSession"]) == ("published", 4, 1, True)
    assert b["timings"]["sparkStart"] == 0 and b["reasons"] == {"unparseable_json": 1}
    assert (again["status"], again["warmSession"]) == ("nothing_to_publish", True)
    nessie = NessieClient(settings.nessie_uri)
    assert nessie.reference(tag_name(first, a["wapRunId"])).hash == a["mergedHash"]
    assert nessie.reference(tag_name(second, b["wapRunId"])).hash == b["mergedHash"]


def test_a_run_whose_jvm_died_is_reported_and_the_worker_exits(settings, kafka, tmp_path):
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("warm-jvm")
    config = tmp_path / "wap.json"
    config.write_text(json.dumps({"runsTopic": None, "topics": {topic: {"eventType": "parking.entry"}}}))
    kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in range(1, 5)]))

    worker = Worker(str(config), {"SIMGATE_WAP_FAIL_AT": "after_staging", "SIMGATE_WAP_FAIL_MODE": "kill-jvm"})
    result, done = worker.run(topic, "20261202T120003Z-0000000d")
    assert worker.proc.wait(timeout=300) == EXIT_JVM_DIED
    assert done == {"jobId": done["jobId"], "exitCode": 1, "workerExits": True}
    assert result["status"] == "failed" and result["read"] == 4
    assert result["problems"][0].startswith("the Spark JVM died (killed by SIGKILL) during audit"), result["problems"]
    # The branch went through Nessie's REST API; the next run (a new worker) publishes everything. That
    # worker is started as the gateway's prewarm starts one: Spark and the run's read paths warmed up
    # before the first request, which then finds the session started.
    warm_up_log = tmp_path / "warm-up.log"
    with warm_up_log.open("w") as log:
        fresh = Worker(str(config), warm_up_log=log)
        try:
            published, _ = fresh.run(topic, "20261202T120004Z-0000000e")
        finally:
            fresh.close()
    assert (published["status"], published["trusted"]) == ("published", 4)
    assert (published["warmSession"], published["timings"]["sparkStart"]) == (True, 0)
    warmed = [line for line in warm_up_log.read_text().splitlines() if line.startswith("worker: warm in")]
    assert warmed and '"published"' in warmed[0] and '"contract"' in warmed[0], warm_up_log.read_text()[-2000:]
    assert "skipped" not in warm_up_log.read_text()  # every piece ran: the topic and its tables exist
