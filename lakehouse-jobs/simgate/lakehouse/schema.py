"""The declared schemas: the Kafka record (docs/records.md, schema version 1) as Spark parses it, and the
Iceberg tables the WAP job writes (production/staging trusted, staging untrusted, published offsets).

Column names in the tables are snake_case; the record's camelCase names stay in the record schema only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

CORRUPT_COLUMN = "_corrupt_record"

RECORD_IMAGE = StructType(
    [
        StructField("view", StringType()),
        StructField("cameraPrimPath", StringType()),
        StructField("uri", StringType()),
        StructField("sha256", StringType()),
        StructField("sizeBytes", LongType()),
        StructField("contentType", StringType()),
        StructField("width", IntegerType()),
        StructField("height", IntegerType()),
    ]
)

# The record value as published by the gateway. The corrupt-record column collects the raw text of a
# record whose fields do not have the declared types (Spark's PERMISSIVE JSON mode).
RECORD_SCHEMA = StructType(
    [
        StructField("schemaVersion", IntegerType()),
        StructField("eventId", StringType()),
        StructField("runId", StringType()),
        StructField("sequence", LongType()),
        StructField("eventType", StringType()),
        StructField("timeStamp", TimestampType()),
        StructField("simTimeSeconds", DoubleType()),
        StructField("carId", StringType()),
        StructField("text", StringType()),
        StructField(
            "coordinates",
            StructType(
                [
                    StructField("slotId", StringType()),
                    StructField("x", DoubleType()),
                    StructField("y", DoubleType()),
                    StructField("z", DoubleType()),
                    StructField("yawDeg", DoubleType()),
                ]
            ),
        ),
        StructField("images", ArrayType(RECORD_IMAGE)),
        StructField("attributes", MapType(StringType(), StringType())),
        StructField(
            "ingest",
            StructType([StructField("receivedAt", TimestampType()), StructField("gatewayId", StringType())]),
        ),
        StructField(CORRUPT_COLUMN, StringType()),
    ]
)

TABLE_IMAGE = StructType(
    [
        StructField("view", StringType()),
        StructField("camera_prim_path", StringType()),
        StructField("uri", StringType()),
        StructField("sha256", StringType()),
        StructField("size_bytes", LongType()),
        StructField("content_type", StringType()),
        StructField("width", IntegerType()),
        StructField("height", IntegerType()),
    ]
)

EVENT_COLUMNS = StructType(
    [
        StructField("event_id", StringType()),
        StructField("run_id", StringType()),
        StructField("sequence", LongType()),
        StructField("event_type", StringType()),
        StructField("event_time", TimestampType()),
        StructField("sim_time_seconds", DoubleType()),
        StructField("car_id", StringType()),
        StructField("text", StringType()),
        StructField("slot_id", StringType()),
        StructField("x", DoubleType()),
        StructField("y", DoubleType()),
        StructField("z", DoubleType()),
        StructField("yaw_deg", DoubleType()),
        StructField("images", ArrayType(TABLE_IMAGE)),
        StructField("attributes", MapType(StringType(), StringType())),
        StructField("schema_version", IntegerType()),
        StructField("received_at", TimestampType()),
        StructField("gateway_id", StringType()),
    ]
)

INGESTION_COLUMNS = StructType(
    [
        StructField("kafka_topic", StringType()),
        StructField("kafka_partition", IntegerType()),
        StructField("kafka_offset", LongType()),
        StructField("kafka_timestamp", TimestampType()),
        StructField("ingested_at", TimestampType()),
        StructField("wap_run_id", StringType()),
    ]
)

# production.<topic> and staging.<topic>_trusted
TRUSTED_SCHEMA = StructType(EVENT_COLUMNS.fields + INGESTION_COLUMNS.fields)

# staging.<topic>_untrusted: the raw record (nothing is lost), what could be parsed, and the reasons.
UNTRUSTED_SCHEMA = StructType(
    [
        StructField("reasons", ArrayType(StringType())),
        StructField("raw_key", StringType()),
        StructField("raw_value", StringType()),
    ]
    + EVENT_COLUMNS.fields
    + INGESTION_COLUMNS.fields
)

# production.<topic>_offsets: the Kafka offset ranges published with the data, one row per partition
# and WAP run; end_offset is exclusive (the next run starts there).
OFFSETS_SCHEMA = StructType(
    [
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("start_offset", LongType()),
        StructField("end_offset", LongType()),
        StructField("records", LongType()),
        StructField("wap_run_id", StringType()),
        StructField("published_at", TimestampType()),
    ]
)

# Trusted columns that may never be null (checked per row, then audited).
REQUIRED_TRUSTED_COLUMNS = ("event_id", "run_id", "event_type", "event_time", "schema_version", "wap_run_id")


def ddl_columns(schema: StructType) -> str:
    """`name type, ...` for CREATE TABLE, from a Spark schema."""
    return ", ".join(f"{field.name} {field.dataType.simpleString()}" for field in schema.fields)


def local_rows(spark: SparkSession, rows: Sequence[Sequence[Any]], schema: StructType) -> DataFrame:
    """A run's own few rows (its offset ranges, its ops row) as a local relation built in the JVM from
    literals: one partition, so one file per write, and no Python RDD behind it. Spark's createDataFrame
    of a Python list parallelises it over every core and unpickles it in tasks, which made each such
    3-row write a job of two tasks and two files."""
    if not rows:
        return spark.createDataFrame([], schema)
    structs = [
        F.struct(*[F.lit(value).cast(field.dataType).alias(field.name) for value, field in zip(row, schema.fields, strict=True)])
        for row in rows
    ]
    return spark.range(0, 1, 1, numPartitions=1).select(F.inline(F.array(*structs)))


def same_columns(actual: StructType, declared: StructType) -> list[str]:
    """Differences between a table's schema and the declared one (names, order and types; nullability
    is ignored because Iceberg columns are optional here and the audit checks nulls itself)."""
    problems: list[str] = []
    actual_cols = [(f.name, f.dataType.simpleString()) for f in actual.fields]
    declared_cols = [(f.name, f.dataType.simpleString()) for f in declared.fields]
    if actual_cols == declared_cols:
        return problems
    actual_map, declared_map = dict(actual_cols), dict(declared_cols)
    for name, dtype in declared_cols:
        if name not in actual_map:
            problems.append(f"missing column {name}")
        elif actual_map[name] != dtype:
            problems.append(f"column {name} is {actual_map[name]}, declared {dtype}")
    for name, _ in actual_cols:
        if name not in declared_map:
            problems.append(f"undeclared column {name}")
    if not problems:
        problems.append("column order differs from the declared schema")
    return problems
