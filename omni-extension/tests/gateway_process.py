"""Runs the REAL TypeScript gateway (node gateway/dist/cli/main.js gateway) for the Python contract test,
configured like test/support/gateway.ts does it: environment variables only, free ports, unique topic
names, waiting for /readyz. Also reads back what landed: Kafka (confluent-kafka) and S3 (boto3)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_MAIN = REPO_ROOT / "gateway" / "dist" / "cli" / "main.js"

STACK = {
    "KAFKA_BOOTSTRAP": os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    "S3_ENDPOINT": os.environ.get("S3_ENDPOINT", "http://127.0.0.1:9333"),
    "S3_ACCESS_KEY": os.environ.get("S3_ACCESS_KEY", "simgate"),
    "S3_SECRET_KEY": os.environ.get("S3_SECRET_KEY", "simgate-secret"),
    "S3_REGION": os.environ.get("S3_REGION", "us-east-1"),
    "S3_BLOB_BUCKET": os.environ.get("S3_BLOB_BUCKET", "simgate-blobs"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_built() -> None:
    sources = REPO_ROOT / "gateway" / "src"
    newest = max((p.stat().st_mtime for p in sources.rglob("*.ts")), default=0)
    if not GATEWAY_MAIN.exists() or newest > GATEWAY_MAIN.stat().st_mtime:
        subprocess.run(["npm", "run", "build", "-w", "gateway"], cwd=REPO_ROOT, check=True)


class GatewayProcess:
    def __init__(self, token: str) -> None:
        ensure_built()
        suffix = f"py-{int(time.time())}-{secrets.token_hex(3)}"
        self.topics = {
            "entries": f"parking-entries-{suffix}",
            "exits": f"parking-exits-{suffix}",
            "deadLetter": f"simgate-dead-letter-{suffix}",
            "runs": f"simgate-runs-{suffix}",
        }
        self.grpc_port, self.http_port = free_port(), free_port()
        self.token = token
        self.env = {
            **STACK,
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "SIMGATE_HOST": "127.0.0.1",
            "SIMGATE_GRPC_PORT": str(self.grpc_port),
            "SIMGATE_HTTP_PORT": str(self.http_port),
            "SIMGATE_TOPIC_MAP": f"parking.entry={self.topics['entries']},parking.exit={self.topics['exits']}",
            "SIMGATE_DEAD_LETTER_TOPIC": self.topics["deadLetter"],
            "SIMGATE_RUNS_TOPIC": self.topics["runs"],
            "SIMGATE_HEALTH_INTERVAL_MS": "500",
            "SIMGATE_TOKEN": token,
        }
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log_path = Path(f"/tmp/simgate-py-contract-gateway-{suffix}.log")

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/v1/events"

    def start(self, ready_timeout_s: float = 60.0) -> "GatewayProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ["node", str(GATEWAY_MAIN), "gateway"], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz", timeout=2) as res:
                    if res.status == 200:
                        return self
            except Exception:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the gateway was not ready within {ready_timeout_s}s:\n{self.logs()[-3000:]}")

    def freeze(self) -> None:
        """SIGSTOP: the gateway holds what it received and answers nothing (a hung process)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen gateway goes on."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no draining, no goodbye; what was in flight is lost on its side."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        self.process = None

    def stop(self) -> Optional[int]:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        finally:
            self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def read_topic(topic: str, timeout_s: float = 30.0) -> list[dict]:
    """Every record in the topic now, as dicts: partition, offset, key, value (parsed JSON), headers."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": STACK["KAFKA_BOOTSTRAP"],
        "group.id": f"py-contract-{secrets.token_hex(4)}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        highs: dict[int, int] = {}
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                highs[p] = high
                assignment.append(TopicPartition(topic, p, low))
        records: list[dict] = []
        if not assignment:
            return records
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout_s
        while highs and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            p, offset = msg.partition(), msg.offset()
            if p not in highs or offset >= highs[p]:
                continue
            records.append({
                "partition": p,
                "offset": offset,
                "key": msg.key().decode() if msg.key() is not None else None,
                "value": json.loads(msg.value()) if msg.value() is not None else None,
                "headers": {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])},
            })
            if offset >= highs[p] - 1:
                del highs[p]
        if highs:
            raise AssertionError(f"reading {topic} timed out; partitions left {sorted(highs)}")
        return sorted(records, key=lambda r: (r["partition"], r["offset"]))
    finally:
        consumer.close()


def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=STACK["S3_ENDPOINT"],
        aws_access_key_id=STACK["S3_ACCESS_KEY"],
        aws_secret_access_key=STACK["S3_SECRET_KEY"],
        region_name=STACK["S3_REGION"],
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )


def read_object(s3, uri: str) -> dict:
    assert uri.startswith("s3://"), uri
    bucket, key = uri[5:].split("/", 1)
    res = s3.get_object(Bucket=bucket, Key=key)
    return {"bytes": res["Body"].read(), "content_type": res.get("ContentType"), "metadata": res.get("Metadata", {})}
