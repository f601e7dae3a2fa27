"""The price of Write-Audit-Publish: one WAP run over N events against a plain Spark job that reads the
same topic and appends it to one Iceberg table, without branch, checks, audit or merge. Both run in the
same Spark session (local[2]) after a small warm-up run, against the real local stack.

    python -m simgate.lakehouse.bench [--events 10000] [--partitions 3] [--flaw-every 50]

Prints both times (wall clock, and CPU seconds of the Spark JVM, its Python workers and the driver:
steadier than wall time on a shared machine), their ratios, the WAP run's per-step timings and the
load average. Each invocation makes its own topics
and tables (unique names: namespace `bench` for the plain table, `bench-*` topics for the WAP tables)
and removes all of them at the end (tables from main through Nessie's REST API, tags, branches, topics),
so the catalog it points at is left as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from pyspark.sql import functions as F

from .config import parse_config
from .kafka_source import plan_ranges, read_ranges, watermarks
from .settings import StackSettings
from .tables import COMMON_PROPERTIES
from .transforms import decode_kafka, parse_records, trusted_rows
from .wap import run_wap, use_reference, wap_session

START = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)


def _record(run_id: str, seq: int, flawed: bool) -> tuple[bytes, bytes]:
    t = START + timedelta(seconds=seq * 3)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"  # noqa: E731
    car = f"{seq % 90 + 10:02d}GA{seq % 10000:04d}"
    value = {
        "schemaVersion": 1,
        "eventId": f"{run_id}-{seq:06d}",
        "runId": run_id,
        "sequence": seq,
        "eventType": "parking.entry",
        "timeStamp": iso(t),
        "simTimeSeconds": seq * 3.0,
        "carId": None if flawed else car,
        "text": f"entry camera: plate {car}",
        "coordinates": {"slotId": f"A-{seq % 12 + 1:02d}", "x": 3 + 2.5 * (seq % 12 + 0.5), "y": 0.0, "z": 5.5, "yawDeg": 90.0},
        "images": [
            {
                "view": "entry",
                "cameraPrimPath": "/World/Gates/Entry/Camera",
                "uri": f"s3://simgate-blobs/runs/{run_id}/events/{run_id}-{seq:06d}/entry.png",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "sizeBytes": 1_203_344,
                "contentType": "image/png",
                "width": 1280,
                "height": 720,
            }
        ],
        "attributes": {"gate": "entry", "car.color": "red"},
        "ingest": {"receivedAt": iso(t + timedelta(milliseconds=40)), "gatewayId": "gw-bench"},
    }
    return f"{run_id}/{car}".encode(), json.dumps(value).encode()


def produce_topic(settings: StackSettings, name: str, events: int, partitions: int, flaw_every: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(timeout=30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
    run_id = f"bench-{uuid.uuid4().hex[:6]}"
    for seq in range(1, events + 1):
        key, value = _record(run_id, seq, flaw_every > 0 and seq % flaw_every == 0)
        while True:
            try:
                producer.produce(name, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("the bench records were not all delivered")


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (the Spark JVM and the Python
    workers it forks), including children already reaped, from /proc. 0 where /proc is missing."""
    import os

    stats: dict[int, tuple[int, int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0.0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state, ppid, ..., utime (12th), stime, cutime, cstime
        stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


class CpuClock:
    """Wall and CPU seconds of a stretch of work in one Spark session: the JVM with its Python workers,
    plus this Python driver."""

    def __init__(self, spark) -> None:
        self.pid = spark.sparkContext._gateway.proc.pid  # noqa: SLF001

    def now(self) -> tuple[float, float]:
        import os

        own = os.times()
        return time.perf_counter(), process_tree_cpu_seconds(self.pid) + own.user + own.system


def plain_append(spark, settings: StackSettings, topic: str, table: str) -> int:
    """The baseline: read the whole topic, parse it into the same columns, append to one table on main."""
    ranges = plan_ranges({}, watermarks(settings, topic))
    parsed = parse_records(decode_kafka(read_ranges(spark, settings, topic, ranges)))
    rows = trusted_rows(parsed.withColumn("reasons", F.array().cast("array<string>")), "plain", datetime.now(timezone.utc))
    rows.writeTo(table).append()
    return spark.table(table).count()


def cleanup(settings: StackSettings, topics: list[str], extra_tables: list[str]) -> None:
    """Drops what the bench made: its tables on main (one Nessie commit), its tags and branches, its topics."""
    from confluent_kafka.admin import AdminClient

    from .config import table_name
    from .nessie import NessieClient
    from .tables import TopicTables

    nessie = NessieClient(settings.nessie_uri)
    keys = list(extra_tables)
    for topic in topics:
        keys += [t.split(".", 1)[1] for t in TopicTables(settings.catalog, topic).all()]
    nessie.delete_contents(keys, f"bench: drop the tables of {', '.join(topics)}")
    try:
        nessie.delete_contents(["bench"], "bench: drop the bench namespace")
    except Exception:  # noqa: BLE001 - another bench's table is still in it
        pass
    names = [table_name(t) for t in topics]
    for ref in list(nessie.references()):
        if ref.name != "main" and (any(ref.name.startswith(f"wap-{t}-") for t in topics) or any(f"_{n}_" in ref.name for n in names)):
            nessie.delete_reference(ref.name)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.delete_topics(topics).values():
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--flaw-every", type=int, default=50, help="every n-th event lacks its car id (0: none)")
    args = parser.parse_args(argv)
    settings = StackSettings.from_env()
    suffix = uuid.uuid4().hex[:8]
    warm, topic = f"bench-warm-{suffix}", f"bench-entries-{suffix}"
    config = parse_config(
        {"runsTopic": None, "topics": {t: {"eventType": "parking.entry", "orderWith": []} for t in (warm, topic)}}
    )

    t0 = time.perf_counter()
    produce_topic(settings, warm, 50, args.partitions, args.flaw_every)
    produce_topic(settings, topic, args.events, args.partitions, args.flaw_every)
    produced_s = time.perf_counter() - t0
    print(f"produced {args.events} events to {topic} ({args.partitions} partitions) in {produced_s:.1f} s", flush=True)

    spark = wap_session("simgate-bench", settings)
    quiet = lambda message: None  # noqa: E731
    try:
        # Warm-up: JVM, catalog, Kafka and S3 clients, code generation; not measured.
        run_wap(spark, settings, config, warm, log=quiet)
        use_reference(spark, settings.catalog, "main")
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog}.bench")
        table = f"{settings.catalog}.bench.plain_{suffix}"
        props = ", ".join(f"'{k}'='{v}'" for k, v in COMMON_PROPERTIES.items())
        from .schema import TRUSTED_SCHEMA, ddl_columns

        spark.sql(f"CREATE TABLE {table} ({ddl_columns(TRUSTED_SCHEMA)}) USING iceberg PARTITIONED BY (days(event_time)) TBLPROPERTIES ({props})")
        spark.sql(f"ALTER TABLE {table} WRITE DISTRIBUTED BY PARTITION LOCALLY ORDERED BY event_time, car_id")

        clock = CpuClock(spark)
        t1, c1 = clock.now()
        plain_rows = plain_append(spark, settings, topic, table)
        t1e, c1e = clock.now()
        plain_s, plain_cpu = t1e - t1, c1e - c1

        # Like for like: the plain table was created before its clock started, so are the WAP tables.
        from .tables import TopicTables, ensure_tables

        ensure_tables(spark, TopicTables(settings.catalog, topic))
        t2, c2 = clock.now()
        result = run_wap(spark, settings, config, topic, log=quiet)
        t2e, c2e = clock.now()
        wap_s, wap_cpu = t2e - t2, c2e - c2
    finally:
        spark.stop()
        cleanup(settings, [warm, topic], [f"bench.plain_{suffix}"])

    load = _load_average()
    print(f"plain append : {plain_s:7.2f} s wall, {plain_cpu:7.2f} s CPU  ({plain_rows} rows into {table}, no branch, no checks)")
    print(
        f"WAP run      : {wap_s:7.2f} s wall, {wap_cpu:7.2f} s CPU  ({result.read} read, {result.trusted} trusted, "
        f"{result.untrusted} untrusted, status {result.status}, tag {result.tag})"
    )
    print(f"ratio        : {wap_s / plain_s:7.2f} x wall, {wap_cpu / plain_cpu if plain_cpu else float('nan'):7.2f} x CPU  (WAP / plain)")
    print(f"WAP steps (s): {json.dumps(result.timings)}")
    print(f"load average : {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
