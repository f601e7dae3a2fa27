"""Storage reclaimed, against the real stack: compaction then the warehouse GC (every reference marked,
the rest swept) give the bucket back without losing a file any branch or tag needs; the blob sweep
removes an orphaned image after its grace period and not before."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import boto3
import pytest

from simgate.lakehouse.blobs import sweep
from simgate.lakehouse.config import parse_config, table_name
from simgate.lakehouse.gc import collect
from simgate.lakehouse.maintenance import maintain
from simgate.lakehouse.nessie import NessieClient
from simgate.lakehouse.tables import TopicTables
from simgate.lakehouse.wap import run_wap, tag_name, use_reference, wap_session

from conftest import as_record, event

# Files younger than this are never swept (a writer's files before its commit are safe; the suite runs
# one Spark test at a time). The test waits out this age after its last write, a fixed wait for a known
# threshold, so every superseded file of its topic is old enough to go.
MIN_AGE = timedelta(seconds=5)


@pytest.fixture(scope="module")
def spark(settings):
    session = wap_session("simgate-gc-test", settings)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def s3(settings):
    return boto3.client(
        "s3", endpoint_url=settings.s3_endpoint, aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key, region_name=settings.s3_region,
    )


def warehouse_bytes(s3, settings, topic: str) -> tuple[int, int]:
    """(objects, bytes) of the topic's four tables in the warehouse bucket, listed by S3 itself."""
    bucket = settings.warehouse.removeprefix("s3://").split("/")[0]
    base = table_name(topic)
    count = size = 0
    for prefix in (f"production/{base}_", f"staging/{base}_"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                count, size = count + 1, size + obj["Size"]
    return count, size


def rows_at(spark, settings, tables: TopicTables, ref: str) -> dict[str, list]:
    """Every row of the four tables at a reference (reading them reads every data file)."""
    use_reference(spark, settings.catalog, ref)
    try:
        return {t: sorted(map(str, spark.table(t).collect())) for t in tables.all()}
    finally:
        use_reference(spark, settings.catalog, "main")


def test_compaction_and_gc_give_the_bucket_back_and_keep_every_live_file(spark, settings, kafka, s3):
    nessie = NessieClient(settings.nessie_uri)
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    topic = kafka.create("gc")
    config = parse_config({"runsTopic": None, "topics": {topic: {"eventType": "parking.entry"}}})
    tables = TopicTables(settings.catalog, topic)
    tags = []
    for batch in (range(1, 5), range(5, 9), range(9, 13)):
        kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in batch]))
        result = run_wap(spark, settings, config, topic)
        assert result.status == "published"
        tags.append(result.tag)
    # A branch someone keeps (as a failed audit's branch is kept), at the second publication.
    keep = f"gc_keep_{table_name(topic)}_x"
    nessie.create_branch(keep, nessie.hash_of(tags[1]))

    before = warehouse_bytes(s3, settings, topic)
    assert {r["table"].split(".")[1] for r in maintain(spark, settings, [topic])} >= {f"{table_name(topic)}_offsets"}
    compacted = warehouse_bytes(s3, settings, topic)
    assert compacted[1] > before[1]  # compaction adds files; nothing is deleted yet

    kafka.produce(topic, map(as_record, [event(run_id, seq) for seq in range(13, 17)]))
    newest = run_wap(spark, settings, config, topic)
    assert newest.status == "published"
    for dropped in tags[1:]:  # retention dropped the middle tags; the oldest and the newest stay
        nessie.delete_reference(dropped)
    live_refs = ["main", tags[0], newest.tag, keep]
    expected = {ref: rows_at(spark, settings, tables, ref) for ref in live_refs}
    grown = warehouse_bytes(s3, settings, topic)
    time.sleep(MIN_AGE.total_seconds() + 1)

    dry = collect(spark, settings, nessie, cutoff=timedelta(0), min_age=MIN_AGE, dry_run=True)
    assert dry.deletable_files > 0 and dry.deleted_files == 0
    assert warehouse_bytes(s3, settings, topic) == grown

    report = collect(spark, settings, nessie, cutoff=timedelta(0), min_age=MIN_AGE, dry_run=False)
    assert report.deleted_files == dry.deletable_files or report.deleted_files > 0
    after = warehouse_bytes(s3, settings, topic)
    assert after[1] < compacted[1], (before, compacted, grown, after)
    assert after[0] < grown[0]

    # Every file a branch or tag needs survived: each reference reads the same rows as before the GC,
    # the oldest tag included.
    for ref in live_refs:
        assert rows_at(spark, settings, tables, ref) == expected[ref], ref
    use_reference(spark, settings.catalog, tags[0])
    oldest_ids = sorted(r.event_id for r in spark.table(tables.production).select("event_id").collect())
    use_reference(spark, settings.catalog, "main")
    assert oldest_ids == sorted(f"{run_id}-entry-{seq:06d}" for seq in range(1, 5))
    # A second pass finds nothing more of this topic to delete.
    again = collect(spark, settings, nessie, cutoff=timedelta(0), min_age=MIN_AGE, dry_run=True)
    assert not [p for p in again.sample if f"/{table_name(topic)}_" in p]


def test_an_orphaned_image_is_removed_after_its_grace_period_and_not_before(spark, settings, kafka, s3):
    bucket = "simgate-blobs"
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    prefix = f"runs/{run_id}/"
    topic = kafka.create("blobs", partitions=4)  # two records: some partitions stay empty, as in real topics
    referenced = f"{prefix}events/{run_id}-1/entry.png"
    untrusted = f"{prefix}events/{run_id}-2/entry.png"
    orphan = f"{prefix}events/{run_id}-3/entry.png"  # stored, but its event never reached Kafka
    for key in (referenced, untrusted, orphan):
        s3.put_object(Bucket=bucket, Key=key, Body=b"\x89PNG fake image bytes")
    good = event(run_id, 1)
    good["images"][0]["uri"] = f"s3://{bucket}/{referenced}"
    wrong_type = event(run_id, 2, carId={"plate": "AB123"})  # an untrusted record still keeps its image
    wrong_type["images"][0]["uri"] = f"s3://{bucket}/{untrusted}"
    kafka.produce(topic, map(as_record, [good, wrong_type]))

    def keys() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])}

    try:
        early = sweep(spark, settings, [topic], bucket=bucket, grace=timedelta(hours=1), dry_run=False, prefix=prefix)
        assert (early.listed, early.young, early.deleted) == (3, 1, 0)
        assert keys() == {referenced, untrusted, orphan}

        time.sleep(3)
        dry = sweep(spark, settings, [topic], bucket=bucket, grace=timedelta(seconds=2), dry_run=True, prefix=prefix)
        assert dry.orphans == 1 and dry.sample == [f"s3://{bucket}/{orphan}"] and dry.deleted == 0
        late = sweep(spark, settings, [topic], bucket=bucket, grace=timedelta(seconds=2), dry_run=False, prefix=prefix)
        assert late.deleted == 1
        assert keys() == {referenced, untrusted}
    finally:
        for key in keys():
            s3.delete_object(Bucket=bucket, Key=key)
