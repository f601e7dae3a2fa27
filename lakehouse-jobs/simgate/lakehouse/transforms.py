"""The WAP job's transforms: pure DataFrame → DataFrame functions with plain parameters, so each one
runs on a few hand-made rows in a unit test. Nothing here reads or writes a table.

Reason codes (stable; documented in docs/lakehouse.md, never reused):
  unparseable_json        the value is not a JSON object
  schema_mismatch:<field>:<found>  a field does not have its contract type (contract.py: e.g.
                          schema_mismatch:carId:object, schema_mismatch:timeStamp:timestamp-without-zone)
  schema_mismatch         the contract passed but Spark's typed parse still refused the record (a safety net)
  unknown_schema_version  schemaVersion missing or not accepted by the configuration
  missing:<field>         a required field is null or blank (e.g. missing:carId)
  unexpected_event_type   eventType differs from the topic's configured type
  coordinates_out_of_bounds  x, y or z outside the lot bounds (the run's lineage, else the configuration)
  time_out_of_order       simTimeSeconds earlier than an event of the same run with a smaller sequence
  exit_without_entry      an exit whose car has no known entry in the run (the entry topic's production
                          and untrusted tables and its records not yet published)
  exit_before_entry       an exit earlier than the car's first entry in the run
  duplicate_in_batch      the event id appeared earlier in the same read (first one wins)
  duplicate_of_published  the event id is already in the production table
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType, StructField, StructType

from .config import LotBounds, TopicRules
from .contract import EVENT_CONTRACT
from .jvm import register_contract
from .schema import CORRUPT_COLUMN, RECORD_SCHEMA, TRUSTED_SCHEMA, UNTRUSTED_SCHEMA

SCHEMA_REASONS = ("unparseable_json", "schema_mismatch", "unknown_schema_version")
SCHEMA_MISMATCH_PREFIX = "schema_mismatch:"


def is_schema_reason(reason: Column) -> Column:
    """True for a reason of schema conformity (the fixed codes and every schema_mismatch:<field>:<found>)."""
    return reason.isin(list(SCHEMA_REASONS)) | reason.startswith(SCHEMA_MISMATCH_PREFIX)


def contract_reasons(spark: SparkSession, accepted_schema_versions: tuple[int, ...]) -> Column:
    """The contract's schema reasons of each record value (`raw_value`): an empty array when the value
    conforms. contract.schema_reasons says what they are; the job runs the same contract in the Spark
    JVM (jvm.py, RecordContract.java), which spares each record a round trip to a Python worker."""
    return F.call_udf(register_contract(spark, EVENT_CONTRACT, accepted_schema_versions), F.col("raw_value"))


CONTRACT_COLUMN = "_contract"


def with_contract(parsed: DataFrame, accepted_schema_versions: tuple[int, ...]) -> DataFrame:
    """Adds the contract's reasons as a column (`_contract`). The WAP job caches the result, so the
    check runs once per record however many times the checks use it (check_reasons computes it itself
    when the column is missing)."""
    return parsed.withColumn(CONTRACT_COLUMN, contract_reasons(parsed.sparkSession, accepted_schema_versions))


def decode_kafka(raw: DataFrame) -> DataFrame:
    """Rows of Spark's Kafka source → key and value as text plus where they came from."""
    return raw.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").cast("int").alias("kafka_partition"),
        F.col("offset").cast("long").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("raw_key"),
        F.col("value").cast("string").alias("raw_value"),
    )


def parse_records(decoded: DataFrame) -> DataFrame:
    """Adds `record` (the value parsed with the declared schema; PERMISSIVE, so a record with wrongly
    typed fields keeps its text in record._corrupt_record). Whether the value is a JSON object at all is
    the record contract's first question (contract_reasons: `unparseable_json`), so no column asks it
    again: that would parse every record a third time."""
    return decoded.withColumn(
        "record",
        F.from_json(
            F.col("raw_value"),
            RECORD_SCHEMA,
            {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN},
        ),
    )


def _field(path: str) -> Column:
    column = F.col("record")
    for part in path.split("."):
        column = column[part]
    return column


def _missing(path: str) -> Column:
    value = _field(path)
    leaf = RECORD_SCHEMA
    for part in path.split("."):
        leaf = leaf[part].dataType if hasattr(leaf, "fieldNames") and part in leaf.fieldNames() else None
        if leaf is None:
            break
    if leaf is not None and leaf.simpleString() == "string":
        return value.isNull() | (F.trim(value) == "")
    return value.isNull()


def _outside(value: Column, low: Column, high: Column) -> Column:
    return value.isNull() | (value < low) | (value > high)


def check_quality(parsed: DataFrame, *args, broadcast_flags: bool = False, **kwargs) -> DataFrame:
    """Adds `reasons` (array<string>, empty = trusted) to parsed rows: check_reasons (same arguments)
    joined back to them by with_reasons; broadcast_flags is with_reasons' broadcast."""
    reasons = check_reasons(parsed, *args, **kwargs)
    return with_reasons(parsed, reasons, broadcast=broadcast_flags).drop(CONTRACT_COLUMN)


REASON_KEYS = ("_p", "_o")


def with_reasons(parsed: DataFrame, reasons: DataFrame, broadcast: bool = False) -> DataFrame:
    """The parsed rows with their `reasons`, from check_reasons' narrow rows (matched by Kafka partition
    and offset, which name a record once). broadcast: send the reasons to every task (a batch that fits
    in memory), so the full rows are never shuffled."""
    reasons = F.broadcast(reasons) if broadcast else reasons
    joined = parsed.join(
        reasons, (F.col("kafka_partition") == F.col("_p")) & (F.col("kafka_offset") == F.col("_o")), "left"
    )
    return joined.drop(*REASON_KEYS)


def check_reasons(
    parsed: DataFrame,
    rules: TopicRules,
    accepted_schema_versions: tuple[int, ...],
    lot_bounds: LotBounds,
    published_ids: DataFrame | None = None,
    first_entries: DataFrame | None = None,
    run_bounds: DataFrame | None = None,
    published_times: DataFrame | None = None,
) -> DataFrame:
    """The reasons of each parsed row, as narrow rows: `_p` (Kafka partition), `_o` (offset) and
    `reasons` (array<string>, empty = trusted), one per row. Narrow, so that a job can keep them cached
    beside its batch and join them to the full rows per write (with_reasons), instead of caching a
    second copy of the full rows.

    published_ids: one column `event_id`, the ids already in production.
    first_entries: columns run_id, car_id, entry_time (the first entry per run and car), for exits.
    run_bounds: run_id, x_min, x_max, y_min, y_max, z_min, z_max: a run's own lot (from its lineage);
      runs without one use `lot_bounds`.
    published_times: run_id, sequence, sim_time_seconds of the runs' other events: published ones, and
      those of sibling topics (entries/exits share a run's sequence numbers) not yet published.
    A record failing schema conformity gets only that reason: its other fields mean nothing.

    Every rule runs on a narrow projection keyed by (partition, offset): the windows and joins of the
    rules that need other rows (bounds of the run, time order, the car's entry, duplicates) shuffle a
    few columns only."""
    for path in rules.required_fields:
        if path.split(".")[0] not in RECORD_SCHEMA.fieldNames():
            raise ValueError(f"required field {path!r} is not in the record schema")
    record = F.col("record")
    # Schema conformity: the contract on the JSON text first (a JSON object at all, then types, zones,
    # undeclared fields), then Spark's own typed parse as a safety net: a value the contract passed is a
    # JSON object, so what Spark's parse still refuses is a schema mismatch. Either way the record gets
    # only its schema reasons.
    df = parsed if CONTRACT_COLUMN in parsed.columns else with_contract(parsed, accepted_schema_versions)
    schema_array = F.when(F.size(CONTRACT_COLUMN) > 0, F.col(CONTRACT_COLUMN)).when(
        record[CORRUPT_COLUMN].isNotNull(), F.array(F.lit("schema_mismatch"))
    )

    # The rules of the row alone, computed in the projection too (the full rows are not needed again).
    row_checks: list[Column] = [F.when(_missing(path), F.lit(f"missing:{path}")) for path in rules.required_fields]
    if rules.event_type is not None:
        row_checks.append(
            F.when(
                record["eventType"].isNotNull() & (record["eventType"] != F.lit(rules.event_type)),
                F.lit("unexpected_event_type"),
            )
        )
    coords = record["coordinates"]
    keys = df.select(
        F.col("kafka_partition").alias("_p"),
        F.col("kafka_offset").alias("_o"),
        record["eventId"].alias("_event_id"),
        record["runId"].alias("_run"),
        record["carId"].alias("_car"),
        record["sequence"].alias("_seq"),
        record["simTimeSeconds"].alias("_t"),
        record["timeStamp"].alias("_ts"),
        coords.isNotNull().alias("_has_coords"),
        coords["x"].alias("_x"),
        coords["y"].alias("_y"),
        coords["z"].alias("_z"),
        schema_array.alias("_schema_reasons"),
        F.array(*row_checks).alias("_row_checks") if row_checks else F.array().cast("array<string>").alias("_row_checks"),
    )

    # The lot: the run's own bounds (its lineage), else the configured ones.
    b = lot_bounds
    bound_names = ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")
    if run_bounds is not None:
        keys = keys.join(
            F.broadcast(run_bounds.select(F.col("run_id").alias("_run"), *[F.col(n).alias(f"_{n}") for n in bound_names])),
            "_run",
            "left",
        )
        bound = {n: F.coalesce(F.col(f"_{n}"), F.lit(getattr(b, n))) for n in bound_names}
    else:
        bound = {n: F.lit(getattr(b, n)) for n in bound_names}
    out_of_bounds = F.col("_has_coords") & (
        _outside(F.col("_x"), bound["x_min"], bound["x_max"])
        | _outside(F.col("_y"), bound["y_min"], bound["y_max"])
        | _outside(F.col("_z"), bound["z_min"], bound["z_max"])
    )

    # Time order within a run: an event earlier than any event of its run with a smaller sequence.
    timed = keys.filter(
        F.col("_run").isNotNull() & F.col("_seq").isNotNull() & F.col("_t").isNotNull() & F.col("_schema_reasons").isNull()
    ).select("_p", "_o", "_run", "_seq", "_t")
    if published_times is not None:
        timed = timed.unionByName(
            published_times.select(
                F.lit(None).cast("int").alias("_p"),
                F.lit(None).cast("long").alias("_o"),
                F.col("run_id").alias("_run"),
                F.col("sequence").alias("_seq"),
                F.col("sim_time_seconds").alias("_t"),
            )
        )
    before = Window.partitionBy("_run").orderBy("_seq").rowsBetween(Window.unboundedPreceding, -1)
    late = (
        timed.withColumn("_prev_max", F.max("_t").over(before))
        .filter(F.col("_p").isNotNull() & (F.col("_t") < F.col("_prev_max")))
        .select("_p", "_o", F.lit(True).alias("_late"))
    )
    keys = keys.join(late, ["_p", "_o"], "left")

    entry_check = F.lit(None).cast("string")
    if first_entries is not None:
        entries = first_entries.select(
            F.col("run_id").alias("_run"), F.col("car_id").alias("_car"), F.col("entry_time").alias("_entry_time")
        )
        keys = keys.join(entries, ["_run", "_car"], "left")
        entry_check = F.when(
            F.col("_car").isNotNull() & F.col("_run").isNotNull() & F.col("_entry_time").isNull(),
            F.lit("exit_without_entry"),
        ).when(
            F.col("_entry_time").isNotNull() & (F.col("_entry_time") > F.col("_ts")),
            F.lit("exit_before_entry"),
        )

    first_seen = Window.partitionBy("_event_id").orderBy("_p", "_o")
    duplicate = F.col("_event_id").isNotNull() & (F.row_number().over(first_seen) > 1)

    published = F.lit(False)
    if published_ids is not None:
        ids = published_ids.select(F.col("event_id").alias("_event_id")).distinct().withColumn("_published", F.lit(True))
        keys = keys.join(ids, "_event_id", "left")
        published = F.coalesce(F.col("_published"), F.lit(False))

    checks: list[Column] = [
        F.col("_row_checks"),
        F.array(F.when(out_of_bounds, F.lit("coordinates_out_of_bounds"))),
        F.array(F.when(F.coalesce(F.col("_late"), F.lit(False)), F.lit("time_out_of_order"))),
    ]
    if first_entries is not None:
        checks.append(F.array(entry_check))
    checks.append(F.array(F.when(duplicate, F.lit("duplicate_in_batch"))))
    if published_ids is not None:
        checks.append(F.array(F.when(published, F.lit("duplicate_of_published"))))
    content_reasons = F.filter(F.concat(*checks), lambda reason: reason.isNotNull())
    return keys.select(
        "_p",
        "_o",
        F.coalesce(F.col("_schema_reasons"), content_reasons).alias("reasons"),  # content_reasons is never null
    )


def first_entries_of(entries: DataFrame) -> DataFrame:
    """From known entries (run_id, car_id, event_time): the first entry time per run and car."""
    return entries.groupBy("run_id", "car_id").agg(F.min("event_time").alias("entry_time"))


def _event_columns() -> list[Column]:
    record = F.col("record")
    coords = record["coordinates"]
    ingest = record["ingest"]
    image_struct = lambda image: F.struct(  # noqa: E731 - a column lambda for F.transform
        image["view"].alias("view"),
        image["cameraPrimPath"].alias("camera_prim_path"),
        image["uri"].alias("uri"),
        image["sha256"].alias("sha256"),
        image["sizeBytes"].alias("size_bytes"),
        image["contentType"].alias("content_type"),
        image["width"].alias("width"),
        image["height"].alias("height"),
    )
    return [
        record["eventId"].alias("event_id"),
        record["runId"].alias("run_id"),
        record["sequence"].alias("sequence"),
        record["eventType"].alias("event_type"),
        record["timeStamp"].alias("event_time"),
        record["simTimeSeconds"].alias("sim_time_seconds"),
        record["carId"].alias("car_id"),
        record["text"].alias("text"),
        coords["slotId"].alias("slot_id"),
        coords["x"].alias("x"),
        coords["y"].alias("y"),
        coords["z"].alias("z"),
        coords["yawDeg"].alias("yaw_deg"),
        F.transform(record["images"], image_struct).alias("images"),
        record["attributes"].alias("attributes"),
        record["schemaVersion"].alias("schema_version"),
        ingest["receivedAt"].alias("received_at"),
        ingest["gatewayId"].alias("gateway_id"),
    ]


def _ingestion_columns(wap_run_id: str, ingested_at: datetime) -> list[Column]:
    return [
        F.col("kafka_topic"),
        F.col("kafka_partition"),
        F.col("kafka_offset"),
        F.col("kafka_timestamp"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(wap_run_id).alias("wap_run_id"),
    ]


def _conform(df: DataFrame, schema) -> DataFrame:
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def trusted_rows(checked: DataFrame, wap_run_id: str, ingested_at: datetime) -> DataFrame:
    """Rows without reasons, in the trusted table's declared columns."""
    rows = checked.filter(F.size("reasons") == 0).select(
        *_event_columns(), *_ingestion_columns(wap_run_id, ingested_at)
    )
    return _conform(rows, TRUSTED_SCHEMA)


def untrusted_rows(checked: DataFrame, wap_run_id: str, ingested_at: datetime) -> DataFrame:
    """Rows with reasons: the raw record, what could be parsed, and the reasons."""
    rows = checked.filter(F.size("reasons") > 0).select(
        F.col("reasons"),
        F.col("raw_key"),
        F.col("raw_value"),
        *_event_columns(),
        *_ingestion_columns(wap_run_id, ingested_at),
    )
    return _conform(rows, UNTRUSTED_SCHEMA)


RUN_RECORD_SCHEMA = StructType(
    [
        StructField("kind", StringType()),
        StructField("runId", StringType()),
        StructField("lineage", StructType([StructField("extra", MapType(StringType(), StringType()))])),
    ]
)

LINEAGE_BOUNDS = {
    "x_min": "lot.minX", "x_max": "lot.maxX", "y_min": "lot.minY",
    "y_max": "lot.maxY", "z_min": "lot.minZ", "z_max": "lot.maxZ",
}


def conforming(parsed: DataFrame, accepted_schema_versions: tuple[int, ...]) -> DataFrame:
    """Parsed rows that pass schema conformity (used for other topics' events in the time-order rule)."""
    record = F.col("record")
    return parsed.filter(
        record[CORRUPT_COLUMN].isNull()
        & record["schemaVersion"].isin(list(accepted_schema_versions))
        & (F.size(contract_reasons(parsed.sparkSession, accepted_schema_versions)) == 0)
    )


def run_bounds_of(run_records: DataFrame) -> DataFrame:
    """From the runs topic (decoded): each run's lot bounds as its run-start lineage states them
    (docs/recording-format.md, "The lot"); a run without them is left out."""
    parsed = run_records.select(F.from_json(F.col("raw_value"), RUN_RECORD_SCHEMA).alias("r")).filter(
        (F.col("r.kind") == "run.start") & F.col("r.runId").isNotNull()
    )
    extra = F.col("r.lineage.extra")
    bounds = parsed.select(
        F.col("r.runId").alias("run_id"),
        *[extra[key].cast("double").alias(name) for name, key in LINEAGE_BOUNDS.items()],
    )
    complete = F.lit(True)
    for name in LINEAGE_BOUNDS:
        complete = complete & F.col(name).isNotNull()
    return bounds.filter(complete).dropDuplicates(["run_id"])
