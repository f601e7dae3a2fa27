"""Shared fixtures of the lakehouse tests: the stack settings, one Spark session for the module, and
records in the docs/records.md format produced to unique per-test Kafka topics."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from simgate.lakehouse.nessie import NessieClient
from simgate.lakehouse.settings import StackSettings


def plain_spark_session(app_name: str):
    """A local Spark session without a catalog, for the tests of pure transforms: every jar of the
    session factory on its class path (the jobs' own, with the record contract, among them), because the
    first session of a test process launches the JVM that every later module's session runs in."""
    from pyspark.sql import SparkSession

    from simgate.lakehouse.spark import spark_jars

    return (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.jars", ",".join(spark_jars(StackSettings.from_env())))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


@pytest.fixture(scope="session")
def settings() -> StackSettings:
    return StackSettings.from_env()


# What a new client may hear about a just-created topic while the broker's metadata catches up.
LEADERSHIP_ERRORS = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}


class KafkaTopics:
    def __init__(self, settings: StackSettings) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap})
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all"})
        self.created: list[str] = []

    def create(self, prefix: str, partitions: int = 2) -> str:
        name = f"test-{prefix}-{uuid.uuid4().hex[:10]}"
        futures = self.admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)
        self.created.append(name)
        self.wait_until_known(name, partitions)
        return name

    def wait_until_known(self, topic: str, partitions: int, timeout: float = 30.0) -> None:
        """Until the producer's own metadata shows the new topic with a leader for every partition.
        A producer that meets a just-created topic as 'unknown' drops its partition state, and an
        idempotent producer then restarts its sequence numbers, which the broker takes as duplicates
        of what it already has: delivered in the reports, missing from the log."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.producer.list_topics(topic, timeout=5).topics.get(topic)
            if info is not None and info.error is None and len(info.partitions) == partitions \
                    and all(p.leader >= 0 for p in info.partitions.values()):
                return
            assert time.monotonic() < deadline, f"topic {topic} not known with {partitions} led partitions after {timeout}s"
            time.sleep(0.1)

    def produce(self, topic: str, records: Iterable[tuple[str, str | bytes]]) -> int:
        """(key, value) pairs; returns how many were delivered (flush waits for every ack)."""
        errors: list[str] = []
        before = self.total_records(topic)
        count = 0
        for key, value in records:
            self.producer.produce(
                topic,
                key=key.encode(),
                value=value.encode() if isinstance(value, str) else value,
                headers=[("schema-version", b"1"), ("content-type", b"application/json")],
                on_delivery=lambda err, msg: errors.append(str(err)) if err else None,
            )
            count += 1
        remaining = self.producer.flush(30)
        assert remaining == 0 and not errors, f"produce failed: {errors}"
        self.wait_until_readable(topic, before + count)
        return count

    def total_records(self, topic: str, timeout: float = 30.0) -> int:
        """Records in the topic, from the broker's watermarks. A just-created topic can still answer
        NOT_LEADER_FOR_PARTITION to a new client (the broker's metadata lags the producer's): such
        retriable errors are retried until `timeout`, any other is raised."""
        deadline = time.monotonic() + timeout
        while True:
            consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "simgate-test-watermarks"})
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return sum(high - low for low, high in (
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions))
            except KafkaException as err:
                if err.args[0].code() not in LEADERSHIP_ERRORS or time.monotonic() >= deadline:
                    raise
            finally:
                consumer.close()
            time.sleep(0.2)

    def wait_until_readable(self, topic: str, expected: int, timeout: float = 30.0) -> None:
        """Delivery reports are in; wait (bounded) until the broker's watermarks show every record, so a
        job that reads up to the high watermark sees them all. Fails loudly if records went missing."""
        deadline = time.monotonic() + timeout
        total = self.total_records(topic)
        while total < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            total = self.total_records(topic)
        assert total >= expected, f"{topic}: {expected} records delivered but the broker holds {total}"


def drop_what_tests_made(settings: StackSettings, topics: list[str]) -> None:
    """The tables, tags and branches of the tests' topics, through Nessie's REST API (one commit on main),
    and the topics themselves: the shared catalog stays as clean as the tests found it."""
    from simgate.lakehouse.config import table_name
    from simgate.lakehouse.nessie import NessieClient

    nessie = NessieClient(settings.nessie_uri)
    keys = [
        key
        for topic in topics
        for key in (f"production.{table_name(topic)}", f"production.{table_name(topic)}_offsets",
                    f"staging.{table_name(topic)}_trusted", f"staging.{table_name(topic)}_untrusted")
    ]
    if keys:
        nessie.delete_contents(keys, f"tests: drop the tables of {len(topics)} test topics")
    names = tuple(table_name(t) for t in topics)
    for ref in list(nessie.references()):
        if ref.name == "main":
            continue
        if any(ref.name.startswith(f"wap-{t}-") for t in topics) or any(f"_{n}_" in ref.name for n in names):
            nessie.delete_reference(ref.name)
    if topics:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for future in admin.delete_topics(topics).values():
            try:
                future.result(timeout=30)
            except Exception:  # noqa: BLE001 - already gone
                pass


@pytest.fixture(scope="session")
def kafka(settings) -> KafkaTopics:
    topics = KafkaTopics(settings)
    yield topics
    drop_what_tests_made(settings, topics.created)


BASE_TIME = datetime(2026, 11, 27, 9, 0, 0, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def event(run_id: str, seq: int, event_type: str = "parking.entry", car: str | None = None, **overrides: Any) -> dict[str, Any]:
    """One event record as docs/records.md describes it."""
    t = BASE_TIME + timedelta(minutes=7 * seq)
    car_id = car if car is not None else f"CAR{seq:04d}"
    view = "entry" if event_type == "parking.entry" else "exit"
    record: dict[str, Any] = {
        "schemaVersion": 1,
        "eventId": f"{run_id}-{event_type.split('.')[-1]}-{seq:06d}",
        "runId": run_id,
        "sequence": seq,
        "eventType": event_type,
        "timeStamp": iso(t),
        "simTimeSeconds": float(seq * 420),
        "carId": car_id,
        "text": f"plate {car_id}",
        "coordinates": {"slotId": f"B-{seq % 40:02d}", "x": float(seq % 30), "y": 0.0, "z": 4.0 + seq % 5, "yawDeg": 90.0},
        "images": [
            {
                "view": view,
                "cameraPrimPath": f"/World/Gates/{view.title()}/Camera",
                "uri": f"s3://simgate-blobs/runs/{run_id}/events/{seq}/{view}.png",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "sizeBytes": 1203,
                "contentType": "image/png",
                "width": 64,
                "height": 48,
            }
        ],
        "attributes": {"gate": "north"},
        "ingest": {"receivedAt": iso(t + timedelta(milliseconds=300)), "gatewayId": "gw-test"},
    }
    record.update(overrides)
    return record


def as_record(value: dict[str, Any] | str) -> tuple[str, str]:
    if isinstance(value, str):
        return ("bad/none", value)
    return (f"{value.get('runId')}/{value.get('carId') or ''}", json.dumps(value))


# --- a clean catalog: what the tests put on Nessie's main goes again at the end of the session --------


def _is_test_key(elements: list[str]) -> bool:
    """Namespaces and tables the tests create: per-test topics (test-*), foundation_* and stacktest_*."""
    return elements[0].startswith(("foundation_", "stacktest_", "test_")) or (len(elements) > 1 and elements[-1].startswith("test_"))


# Main's hash when the session started and the tag that holds it (clean_main_catalog).
CATALOG_BASELINE: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def clean_main_catalog():
    """Main's entries are read at the start; at the end, one commit on main deletes the tables and
    namespaces the tests added, and puts the operations table (ops.wap_runs, which every WAP run of a
    test topic writes to) back as it was. The analysts' catalog (Trino, Superset) keeps the system's
    tables only.

    Main's state of before is tagged for the whole session: the GC tests sweep the warehouse, and the
    metadata files of the ops.wap_runs being put back are no longer main's by then. Nessie GC keeps what
    any tag references; untagged, they were deleted and main was left pointing at missing files."""
    import uuid

    import requests

    settings = StackSettings.from_env()  # not the fixture: some modules redefine it with a narrower scope

    def entries(ref: str = "main") -> dict[tuple[str, ...], dict]:
        body = requests.get(f"{settings.nessie_uri}/trees/{ref}/entries", params={"content": "true"}, timeout=30).json()
        return {tuple(e["name"]["elements"]): e.get("content") for e in body.get("entries", [])}

    try:
        head = requests.get(f"{settings.nessie_uri}/trees/main", timeout=30).json()["reference"]["hash"]
        before = entries(f"main@{head}")  # exactly the state the tag below holds
    except requests.RequestException:
        before = None  # no stack: the unit tests only
    if before is not None:
        nessie = NessieClient(settings.nessie_uri)
        tag = nessie.create_tag(f"tests-baseline-{uuid.uuid4().hex[:8]}", head)
        CATALOG_BASELINE.update(tag=tag.name, hash=head)
    yield
    if before is None:
        return
    try:
        _restore_main(settings, before, entries())
    finally:
        nessie.delete_reference(CATALOG_BASELINE["tag"])


def _restore_main(settings: StackSettings, before: dict, now: dict) -> None:
    import requests

    operations = []
    for key, content in sorted(now.items(), key=lambda kv: -len(kv[0])):
        if key in before:
            if key == ("ops", "wap_runs") and content != before[key]:
                operations.append({"type": "PUT", "key": {"elements": list(key)}, "content": before[key]})
        elif _is_test_key(list(key)) or key[0] == "ops":
            operations.append({"type": "DELETE", "key": {"elements": list(key)}})
    if not operations:
        return
    head = requests.get(f"{settings.nessie_uri}/trees/main", timeout=30).json()["reference"]["hash"]
    response = requests.post(
        f"{settings.nessie_uri}/trees/main@{head}/history/commit",
        json={"commitMeta": {"message": f"tests: clean up {len(operations)} test entries"}, "operations": operations},
        timeout=30,
    )
    assert response.ok, f"cleaning main's catalog failed: HTTP {response.status_code} {response.text[:500]}"
