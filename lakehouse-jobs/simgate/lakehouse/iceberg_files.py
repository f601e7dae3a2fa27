"""Iceberg's own Java API, through the Spark session's gateway, for what Spark SQL does not offer the
WAP job: the data files one snapshot added with their metrics (the audit's figures), and appending those
same files to another table (the publish: production gets the files staging already holds, no rewrite);
and, for maintenance, bounding a table's snapshot list without deleting files.

A snapshot is the run's when its summary carries `simgate.wap-run-id` = the run: every write of a WAP
run sets it, and the run's branch has no other writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

RUN_PROPERTY = "simgate.wap-run-id"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def load_table(spark: SparkSession, name: str) -> Any:
    """The Iceberg table `catalog.namespace.table` on the session's current reference (a Java object)."""
    return spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, name)  # noqa: SLF001


def spark_schema(spark: SparkSession, table: Any) -> StructType:
    """The table's schema as Spark types (what `spark.table(name).schema` gives, from the same load)."""
    import json

    converted = spark._jvm.org.apache.iceberg.spark.SparkSchemaUtil.convert(table.schema())  # noqa: SLF001
    return StructType.fromJson(json.loads(converted.json()))


def _iterate(iterable: Any) -> Iterator[Any]:
    it = iterable.iterator()
    while it.hasNext():
        yield it.next()


def run_snapshot(table: Any, wap_run_id: str) -> Any | None:
    """The table's current snapshot when the run made it, else None (the run added nothing to it)."""
    snapshot = table.currentSnapshot()
    if snapshot is None or snapshot.summary().get(RUN_PROPERTY) != wap_run_id:
        return None
    return snapshot


@dataclass
class AddedFiles:
    """What one snapshot added: its data files (Java objects) and, per column asked for, the null count
    (None when a file has no such metric) and the lowest and highest value over the files."""

    files: list[Any] = field(default_factory=list)
    records: int = 0
    nulls: dict[str, int | None] = field(default_factory=dict)
    lower: dict[str, Any] = field(default_factory=dict)
    upper: dict[str, Any] = field(default_factory=dict)
    deleted_files: int = 0


def added_files(spark: SparkSession, table: Any, snapshot: Any | None, null_columns: tuple[str, ...] = (), bound_columns: tuple[str, ...] = ()) -> AddedFiles:
    out = AddedFiles(nulls={c: 0 for c in null_columns})
    if snapshot is None:
        return out
    jvm = spark._jvm  # noqa: SLF001
    schema = table.schema()
    ids = {c: schema.findField(c).fieldId() for c in (*null_columns, *bound_columns)}
    out.deleted_files = sum(1 for _ in _iterate(snapshot.removedDataFiles(table.io())))
    out.files = list(_iterate(snapshot.addedDataFiles(table.io())))
    for data_file in out.files:
        out.records += int(data_file.recordCount())
        nulls = data_file.nullValueCounts()
        for column in null_columns:
            count = nulls.get(ids[column]) if nulls is not None else None
            known = out.nulls[column]
            out.nulls[column] = None if known is None or count is None else known + int(count)
        lowers, uppers = data_file.lowerBounds(), data_file.upperBounds()
        for column in bound_columns:
            kind = schema.findType(ids[column])
            for bounds, into, pick in ((lowers, out.lower, min), (uppers, out.upper, max)):
                buffer = bounds.get(ids[column]) if bounds is not None else None
                if buffer is None:
                    continue
                value = jvm.org.apache.iceberg.types.Conversions.fromByteBuffer(kind, buffer)
                into[column] = value if column not in into else pick(into[column], value)
    return out


def micros_to_datetime(micros: int | None) -> datetime | None:
    """An Iceberg timestamp bound (microseconds since the epoch, UTC) as a naive UTC datetime, the way
    Spark hands timestamps back in a UTC session."""
    if micros is None:
        return None
    return (EPOCH + timedelta(microseconds=int(micros))).replace(tzinfo=None)


def can_share_files(source: Any, target: Any, files: list[Any]) -> str | None:
    """None when `files` of `source` can be appended to `target` as they are: the same schema (names,
    types and field ids), and each file's partition spec and sort order are the target's own. Else why
    not (the caller then writes the rows instead)."""
    if not target.schema().sameSchema(source.schema()):
        return "the schemas differ"
    for data_file in files:
        spec_id = int(data_file.specId())
        if spec_id != int(target.spec().specId()) or not target.spec().equals(source.specs().get(spec_id)):
            return f"partition spec {spec_id} differs"
        order = data_file.sortOrderId()
        if order is not None and not (target.sortOrders().get(order) is not None and target.sortOrders().get(order).sameOrder(source.sortOrders().get(order))):
            return f"sort order {order} differs"
    return None


def append_files(target: Any, files: list[Any], properties: dict[str, str]) -> int:
    """One append commit to `target` (on its reference) of `files`, with `properties` in the snapshot
    summary. The files stay where they are: both tables reference them, which the warehouse GC
    (gc.py) handles, since it keeps every file any live table references. Returns the new snapshot id."""
    append = target.newAppend()
    for data_file in files:
        append.appendFile(data_file)
    for key, value in properties.items():
        append.set(key, value)
    append.commit()
    return int(target.currentSnapshot().snapshotId())


def keep_newest_snapshots(spark: SparkSession, table: Any, keep: int) -> tuple[int, int]:
    """Drops all but the newest `keep` snapshots (and the current one) from the table's metadata on its
    reference, in one commit; returns (snapshots removed, snapshots kept). Deletes no file.

    Each commit writes a metadata file listing every snapshot the table ever had, and each load reads
    it: without a bound the bytes written grow with the square of the commits, and gc keeps every
    commit's metadata file within its cutoff. Iceberg's expire_snapshots would
    bound it but also deletes the files only the expired snapshots reach, which on Nessie other branches
    and tags may still need: the tables carry gc.enabled=false, so it refuses. This removes the entries
    only, through Iceberg's metadata builder; history stays in Nessie's commits and tags (each holds its
    own metadata file), and gc.py deletes what no reference reaches any more."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    ops = table.operations()
    base = ops.current()
    snapshots = sorted(_iterate(base.snapshots()), key=lambda s: int(s.sequenceNumber()))
    current = base.currentSnapshot()
    keep_ids = {int(s.snapshotId()) for s in snapshots[-keep:]}
    if current is not None:
        keep_ids.add(int(current.snapshotId()))
    for ref in base.refs().values():  # a py4j map; Iceberg's own branches and tags, if anyone made one
        keep_ids.add(int(ref.snapshotId()))
    drop = spark._jvm.java.util.ArrayList()  # noqa: SLF001
    for snapshot in snapshots:
        if int(snapshot.snapshotId()) not in keep_ids:
            drop.add(snapshot)
    if drop.size() == 0:
        return 0, len(snapshots)
    trimmed = spark._jvm.org.apache.iceberg.TableMetadata.buildFrom(base).removeSnapshots(drop).build()  # noqa: SLF001
    ops.commit(base, trimmed)
    return int(drop.size()), len(snapshots) - int(drop.size())
