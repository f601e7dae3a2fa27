"""The price of Write-Audit-Publish: one WAP run over N events against a plain Spark job that reads a
topic of the same records and appends it to one Iceberg table, without branch, checks, audit or merge.
Both run in the same Spark session (local[2]) after a small warm-up run, against the real local stack.
A third kind, the floor, is that plain append made on a Nessie branch and merged into main: what the
branch and the merge cost before any rule, staging table or audit.

    python -m simgate.lakehouse.bench [--events 10000] [--partitions 3] [--flaw-every 50] [--rounds 3] [--history 0]
    python -m simgate.lakehouse.bench --kafka-reads [--events 10000] [--rounds 3]

Runs --rounds rounds (default 3), each on topics of its own, the order of the three kinds rotating by
round (plain, floor and WAP first in turn). Prints per round the times (wall clock, and CPU seconds of the Spark JVM, its Python workers
and the driver: steadier than wall time on a shared machine), their ratios and the WAP run's per-step
timings; then the first round's ratio (the session's first runs of that size) apart from the median of
the later rounds (a warm session, as in the job driver's warm worker), and the load average.
--history N first gives each WAP run's production table N earlier events of other runs (untimed): what
a run reads of production then shows in its cost, as on a table in operation.
--kafka-reads times the jobs' Kafka read alone instead (kafka_source.read_ranges, parsed and counted),
of 10 records and of --events records, with the consumer's fetch wait at Kafka's default (500 ms) and at
the jobs' setting, interleaved, in one Spark session.

Each invocation makes its own topics and tables (unique names: namespace `bench` for the plain tables,
`bench-*` topics for the WAP tables)
and removes all of them at the end (tables from main through Nessie's REST API, tags, branches, topics),
so the catalog it points at is left as it was.
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def bench_record(run_id: str, seq: int, flawed: bool) -> tuple[bytes, bytes]:
    """One bench event as (Kafka key, JSON value): a car entering at the 3 s step `seq`; a flawed one lacks
    its car id."""
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
        key, value = bench_record(run_id, seq, flaw_every > 0 and seq % flaw_every == 0)
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


def branch_append(spark, settings: StackSettings, topic: str, table: str) -> int:
    """The floor of any WAP run: the plain append made on a Nessie branch from main, then merged into main
    (guarded by main's hash, as the job's merge) and the branch dropped. No rules, staging or audit."""
    from .nessie import NessieClient

    nessie = NessieClient(settings.nessie_uri)
    base = nessie.hash_of("main")
    branch = f"bench-floor-{uuid.uuid4().hex[:8]}"
    nessie.create_branch(branch, base)
    try:
        use_reference(spark, settings.catalog, branch)
        rows = plain_append(spark, settings, topic, table)
        nessie.merge(branch, "main", base, f"bench: floor append of {topic}")
    finally:
        use_reference(spark, settings.catalog, "main")
        nessie.delete_reference(branch)
    return rows


def write_history(spark, table: str, events: int, per_run: int = 1000) -> None:
    """Gives a production table `events` earlier events of other runs (`hist-NNNNNN`, `per_run` events
    each, one run an hour, ending before the bench's own events), in one append: a table with weeks of
    history, as a WAP run meets it in operation. Written by Spark directly (no Kafka, no WAP run)."""
    from .schema import TRUSTED_SCHEMA

    runs = (events + per_run - 1) // per_run
    first_hour = int(START.timestamp()) - (runs + 1) * 3600
    ids = spark.range(events).select((F.col("id") / per_run).cast("long").alias("r"), (F.col("id") % per_run + 1).alias("seq"), "id")
    run = F.concat(F.lit("hist-"), F.lpad(F.col("r").cast("string"), 6, "0"))
    at = F.timestamp_seconds(F.lit(first_hour) + F.col("r") * 3600 + F.col("seq") * 3)
    car = F.concat(F.lit("H"), F.lpad((F.col("seq") % 400).cast("string"), 4, "0"))
    values = {
        "event_id": F.concat(run, F.lit("-"), F.lpad(F.col("seq").cast("string"), 6, "0")),
        "run_id": run,
        "sequence": F.col("seq"),
        "event_type": F.lit("parking.entry"),
        "event_time": at,
        "sim_time_seconds": F.col("seq") * 3.0,
        "car_id": car,
        "text": F.concat(F.lit("entry camera: plate "), car),
        "slot_id": F.lit("A-01"),
        "x": F.lit(4.0), "y": F.lit(0.0), "z": F.lit(5.5), "yaw_deg": F.lit(90.0),
        "schema_version": F.lit(1),
        "received_at": at,
        "gateway_id": F.lit("gw-history"),
        "kafka_topic": F.lit("history"),
        "kafka_partition": F.lit(0),
        "kafka_offset": F.col("id"),
        "kafka_timestamp": at,
        "ingested_at": at,
        "wap_run_id": F.lit("history"),
    }
    rows = ids.select(*[values.get(f.name, F.lit(None)).cast(f.dataType).alias(f.name) for f in TRUSTED_SCHEMA.fields])
    rows.writeTo(table).append()


def cleanup(settings: StackSettings, topics: list[str], extra_tables: list[str], plain_topics: list[str] = ()) -> None:
    """Drops what the bench made: its tables on main (one Nessie commit), its tags and branches, its
    topics (`topics` have WAP tables, `plain_topics` none)."""
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
    for future in admin.delete_topics([*topics, *plain_topics]).values():
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


def _plain_table(spark, settings: StackSettings, name: str) -> str:
    """The plain append's table, made like the WAP tables (partitioning, write order, properties)."""
    from .schema import TRUSTED_SCHEMA, ddl_columns

    table = f"{settings.catalog}.bench.{name}"
    props = ", ".join(f"'{k}'='{v}'" for k, v in COMMON_PROPERTIES.items())
    spark.sql(f"CREATE TABLE {table} ({ddl_columns(TRUSTED_SCHEMA)}) USING iceberg PARTITIONED BY (days(event_time)) TBLPROPERTIES ({props})")
    spark.sql(f"ALTER TABLE {table} WRITE DISTRIBUTED BY PARTITION LOCALLY ORDERED BY event_time, car_id")
    return table


def kafka_reads(spark, settings: StackSettings, topics: dict[int, str], rounds: int) -> None:
    """Prints the wall and CPU seconds of a Kafka read (planned, parsed, counted) per size and fetch wait,
    the order alternating by round, and the median ratio of the default wait to the jobs' setting."""
    from .kafka_source import FETCH_MAX_WAIT_MS

    clock = CpuClock(spark)
    waits = {"Kafka's default (500 ms)": 500, f"the jobs' ({FETCH_MAX_WAIT_MS} ms)": FETCH_MAX_WAIT_MS}
    times: dict[tuple[int, str], list[float]] = {}
    for i in range(rounds + 1):  # round 0 warms the session up and is not counted
        for size, topic in topics.items():
            for name in (list(waits) if i % 2 else list(reversed(waits))):
                ranges = plan_ranges({}, watermarks(settings, topic))
                read = lambda: parse_records(decode_kafka(  # noqa: E731
                    read_ranges(spark, settings, topic, ranges, fetch_max_wait_ms=waits[name])
                )).agg(F.count(F.lit(1))).collect()[0][0]
                n, (wall, cpu) = _timed(clock, read)
                if n != size:
                    raise RuntimeError(f"read {n} records of {topic}, expected {size}")
                if i:
                    times.setdefault((size, name), []).append(wall)
                    print(f"round {i}: {size:6d} records, fetch wait {name:26s} {wall:5.2f} s wall {cpu:5.2f} s CPU", flush=True)
    for size in topics:
        default, ours = (statistics.median(times[(size, name)]) for name in waits)
        print(f"{size:6d} records: median {default:5.2f} s with Kafka's default wait, {ours:5.2f} s with the jobs' ({default / ours:4.1f}x)")
    print(f"load average : {_load_average()}")


def _timed(clock: CpuClock, run):
    """run() and the wall and CPU seconds it took: (its value, (wall, cpu))."""
    wall, cpu = clock.now()
    value = run()
    wall_end, cpu_end = clock.now()
    return value, (wall_end - wall, cpu_end - cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--flaw-every", type=int, default=50, help="every n-th event lacks its car id (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (plain, WAP), each on topics of its own")
    parser.add_argument(
        "--history", type=int, default=0,
        help="earlier events of other runs in each WAP run's production table before it runs (a table in operation; "
        "written untimed, 1,000 per run)",
    )
    parser.add_argument(
        "--kafka-reads", action="store_true",
        help="time the Kafka read alone (10 and --events records) with Kafka's default fetch wait and the jobs' setting",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.history < 0:
        parser.error("--history must not be negative")
    settings = StackSettings.from_env()
    suffix = uuid.uuid4().hex[:8]
    if args.kafka_reads:
        topics = {n: f"bench-read{n}-{suffix}" for n in sorted({10, args.events})}
        for n, topic in topics.items():
            produce_topic(settings, topic, n, args.partitions, 0)
        spark = wap_session("simgate-bench", settings)
        try:
            kafka_reads(spark, settings, topics, args.rounds)
        finally:
            spark.stop()
            cleanup(settings, [], [], list(topics.values()))
        return 0
    warm = f"bench-warm-{suffix}"
    plain_topics = [f"bench-plain{i}-{suffix}" for i in range(args.rounds)]
    floor_topics = [f"bench-floor{i}-{suffix}" for i in range(args.rounds)]
    wap_topics = [f"bench-entries{i}-{suffix}" for i in range(args.rounds)]
    config = parse_config(
        {"runsTopic": None, "topics": {t: {"eventType": "parking.entry", "orderWith": []} for t in [warm, *wap_topics]}}
    )

    t0 = time.perf_counter()
    produce_topic(settings, warm, 50, args.partitions, args.flaw_every)
    for topic in plain_topics + floor_topics + wap_topics:
        produce_topic(settings, topic, args.events, args.partitions, args.flaw_every)
    produced_s = time.perf_counter() - t0
    print(f"produced {args.events} events to each of {3 * args.rounds} topics ({args.partitions} partitions) in {produced_s:.1f} s", flush=True)

    spark = wap_session("simgate-bench", settings)
    quiet = lambda message: None  # noqa: E731
    plain_names = [f"plain_{suffix}_{i}" for i in range(args.rounds)]
    floor_names = [f"floor_{suffix}_{i}" for i in range(args.rounds)]
    rounds: list[dict] = []
    try:
        # Warm-up: JVM, catalog, Kafka and S3 clients, code generation; not measured.
        run_wap(spark, settings, config, warm, log=quiet)
        use_reference(spark, settings.catalog, "main")
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog}.bench")
        from .tables import TopicTables, ensure_tables

        if args.history:
            t0 = time.perf_counter()
            for topic in wap_topics:
                tables = TopicTables(settings.catalog, topic)
                ensure_tables(spark, tables)
                write_history(spark, tables.production, args.history)
            print(f"history: {args.history} earlier events in each WAP production table ({time.perf_counter() - t0:.1f} s, untimed)", flush=True)

        clock = CpuClock(spark)
        for i in range(args.rounds):
            # Like for like: each run's tables exist before its clock starts. The order alternates, so
            # neither kind always runs in the JVM the other has just warmed.
            use_reference(spark, settings.catalog, "main")
            table = _plain_table(spark, settings, plain_names[i])
            floor_table = _plain_table(spark, settings, floor_names[i])
            ensure_tables(spark, TopicTables(settings.catalog, wap_topics[i]))
            kinds = {
                "plain": lambda: plain_append(spark, settings, plain_topics[i], table),
                "floor": lambda: branch_append(spark, settings, floor_topics[i], floor_table),
                "WAP": lambda: run_wap(spark, settings, config, wap_topics[i], log=quiet),
            }
            order = [("plain", "floor", "WAP"), ("WAP", "plain", "floor"), ("floor", "WAP", "plain")][i % 3]
            measured = {kind: _timed(clock, kinds[kind]) for kind in order}  # run in this order
            row = {"order": ", ".join(order), "plain": measured["plain"][1], "floor": measured["floor"][1], "wap": measured["WAP"][1]}
            rounds.append(row)
            result = measured["WAP"][0]
            ratio = lambda kind, k: row[kind][k] / row["plain"][k] if row["plain"][k] else float("nan")  # noqa: E731
            print(
                f"round {i + 1} ({row['order']}): plain {row['plain'][0]:6.2f} s wall {row['plain'][1]:6.2f} s CPU | "
                f"floor {row['floor'][0]:6.2f} s wall {row['floor'][1]:6.2f} s CPU | "
                f"WAP {row['wap'][0]:6.2f} s wall {row['wap'][1]:6.2f} s CPU ({result.read} read, {result.trusted} trusted, "
                f"{result.untrusted} untrusted, {result.status}) | floor / plain {ratio('floor', 0):5.2f} x wall | "
                f"WAP / plain {ratio('wap', 0):5.2f} x wall {ratio('wap', 1):5.2f} x CPU",
                flush=True,
            )
            print(f"         WAP steps (s): {json.dumps(result.timings)}", flush=True)
    finally:
        spark.stop()
        cleanup(settings, [warm, *wap_topics], [f"bench.{n}" for n in plain_names + floor_names], plain_topics + floor_topics)

    wall = [r["wap"][0] / r["plain"][0] for r in rounds]
    cpu = [r["wap"][1] / r["plain"][1] for r in rounds if r["plain"][1]]
    floor = [r["floor"][0] / r["plain"][0] for r in rounds]
    later = wall[1:] or wall
    print(f"first round  : {wall[0]:5.2f} x wall (the session's first {args.events}-event runs of either kind)")
    print(f"later rounds : median {statistics.median(later):5.2f} x wall, {statistics.median(cpu[1:] or cpu):5.2f} x CPU (WAP / plain, a warm session)")
    print(f"floor        : median {statistics.median(floor[1:] or floor):5.2f} x wall (the plain append on a Nessie branch, merged, / plain; later rounds)")
    print(f"load average : {_load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
