"""Which Kafka records a WAP run reads: from the offsets published with the last run on main up to the
topic's current end, per partition, and the Spark batch read of exactly that range."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from .settings import StackSettings


class TopicNotFound(RuntimeError):
    pass


# The longest the broker holds a fetch that finds fewer bytes than the consumer asked for (Kafka's
# default: 500 ms). A fetch that reaches the log end finds nothing, and Spark's task consumer sends such
# fetches around a bounded range (it polls ahead, and moves to the log end to learn the partition's
# offsets): with the default every task of a read waited about half a second per wave of tasks, so a
# read of ten records took as long as one of ten thousand. The ranges read here always hold their
# records, so a short wait loses nothing.
FETCH_MAX_WAIT_MS = 20


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int  # inclusive
    end: int  # exclusive
    # Records between the published offset and the log start were deleted by retention before being read.
    skipped: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start


def watermarks(settings: StackSettings, topic: str, timeout: float = 15.0) -> dict[int, tuple[int, int]]:
    """partition → (low, high) offsets of the topic, from the broker."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "simgate-wap-offsets-probe",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise TopicNotFound(f"topic {topic} does not exist on {settings.kafka_bootstrap}")
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            for p in sorted(info.partitions)
        }
    finally:
        consumer.close()


def plan_ranges(published: dict[int, int], marks: dict[int, tuple[int, int]]) -> list[PartitionRange]:
    """The ranges to read: from the published end (or the log start for a new partition) to the high
    watermark. Pure, so the resume logic is unit-tested."""
    ranges = []
    for partition, (low, high) in sorted(marks.items()):
        done = published.get(partition)
        start = low if done is None else max(done, low)
        skipped = 0 if done is None else max(0, low - done)
        ranges.append(PartitionRange(partition, start, max(start, high), skipped))
    return ranges


def read_ranges(
    spark: SparkSession,
    settings: StackSettings,
    topic: str,
    ranges: list[PartitionRange],
    *,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
) -> DataFrame:
    """Spark's batch read of exactly `ranges`, which must name every partition of the topic (an empty
    range for a partition with nothing to read): given offsets for only some, Spark's Kafka source fails
    the query's planning with an AssertionError (an INTERNAL_ERROR)."""
    starting = {topic: {str(r.partition): r.start for r in ranges}}
    ending = {topic: {str(r.partition): r.end for r in ranges}}
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", json.dumps(starting))
        .option("endingOffsets", json.dumps(ending))
        .option("failOnDataLoss", "true")
        .option("kafka.fetch.max.wait.ms", str(fetch_max_wait_ms))
        .load()
    )


def describe(ranges: list[PartitionRange]) -> str:
    """`0:12-40,1:0-7` (end exclusive), for snapshot summaries and logs."""
    return ",".join(f"{r.partition}:{r.start}-{r.end}" for r in ranges)
