"""Nessie-safe garbage collection of the warehouse: mark what every Nessie reference still needs, sweep
the rest. `python -m simgate.lakehouse.maintenance gc` runs it (see maintenance.py).

Why not the Nessie project's own GC tool: its standalone jar (`nessie-gc-tool`) is not served by the
package registry this project installs from (checked for 0.99.0 and other versions, under both Nessie
group ids), and Iceberg's expire_snapshots / remove_orphan_files see one reference only. This is the same
mark-and-sweep, made of Nessie's REST API and Iceberg's own Java readers (TableMetadataParser,
ManifestFiles, S3FileIO from the Spark jars already pinned), so no file format is parsed here.

Mark. The live contents are, for every reference (branches and tags alike):
  - its head;
  - for a branch, also every commit newer than the cutoff (`--cutoff`, default 7 days), so that a
    reader at a recent commit of main still finds its files.
A live content is an Iceberg table at one commit: (metadata location, snapshot id). Its live files are
the metadata file, the snapshot's manifest list, its manifests, their data and delete files, and the
table's statistics files. Older snapshots inside a metadata file are not live: on Nessie, history is
kept by commits and tags, not by Iceberg snapshots (every WAP tag pins its publication).

Sweep. Every object under the warehouse that is not live and was created before the mark started minus
`--min-age` (default 1 h: files a writer is putting in place now are never touched) is deleted, or only
listed with `--dry-run`. A mark that cannot read a live metadata file or manifest stops before any
delete. The warehouse bucket must hold only the catalog's tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from .nessie import NessieClient, Reference


class CamelCaseReport:
    """A report printed as JSON: its fields in camelCase, as the jobs' result lines are."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            first, *others = key.split("_")
            out[first + "".join(o.title() for o in others)] = value
        return out


@dataclass
class GcReport(CamelCaseReport):
    dry_run: bool
    cutoff: str
    references: int = 0
    live_contents: int = 0
    live_files: int = 0
    listed_files: int = 0
    listed_bytes: int = 0
    deletable_files: int = 0
    deletable_bytes: int = 0
    deleted_files: int = 0
    kept_young_files: int = 0
    sample: list[str] = field(default_factory=list)
    seconds: float = 0.0



def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `45s`, `0` → timedelta."""
    text = text.strip()
    if text in ("0", ""):
        return timedelta(0)
    unit = text[-1]
    seconds = {"d": 86400, "h": 3600, "m": 60, "s": 1}.get(unit)
    if seconds is None or not text[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"not a duration (e.g. 7d, 12h, 30m, 45s): {text!r}")
    return timedelta(seconds=float(text[:-1]) * seconds)


def _commit_time(meta: dict[str, Any]) -> datetime | None:
    value = meta.get("commitTime") or meta.get("authorTime")
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def live_commits(nessie: NessieClient, ref: Reference, cutoff: datetime) -> list[str]:
    """The commit hashes of a reference that are live: its head, and for a branch every commit newer
    than the cutoff (first-parent history, newest first)."""
    hashes = [ref.hash]
    if ref.type != "BRANCH":
        return hashes
    token: str | None = None
    while True:
        params: dict[str, Any] = {"maxRecords": 200}
        if token:
            params["pageToken"] = token
        body = nessie._call("GET", f"/trees/{ref.name}@{ref.hash}/history", params=params)  # noqa: SLF001
        for entry in body.get("logEntries", []):
            meta = entry["commitMeta"]
            when = _commit_time(meta)
            if when is None or when < cutoff:
                return hashes
            if meta["hash"] not in hashes:
                hashes.append(meta["hash"])
        token = body.get("token")
        if not body.get("hasMore") or not token:
            return hashes


def table_contents(nessie: NessieClient, ref_name: str, commit: str) -> Iterator[tuple[str, int]]:
    """(metadata location, snapshot id) of every Iceberg table at a commit."""
    token: str | None = None
    while True:
        params: dict[str, Any] = {"maxRecords": 500, "content": "true"}
        if token:
            params["pageToken"] = token
        body = nessie._call("GET", f"/trees/{ref_name}@{commit}/entries", params=params)  # noqa: SLF001
        for entry in body.get("entries", []):
            content = entry.get("content") or {}
            if content.get("type") == "ICEBERG_TABLE" and content.get("metadataLocation"):
                yield content["metadataLocation"], int(content.get("snapshotId", -1))
        token = body.get("token")
        if not body.get("hasMore") or not token:
            return


def mark(nessie: NessieClient, cutoff: datetime) -> tuple[int, set[tuple[str, int]]]:
    """Every reference's live contents; returns (references, contents)."""
    contents: set[tuple[str, int]] = set()
    refs = list(nessie.references())
    for ref in refs:
        for commit in live_commits(nessie, ref, cutoff):
            contents.update(table_contents(nessie, ref.name, commit))
    return len(refs), contents


def normal(location: str) -> str:
    """s3a:// and s3n:// name the same object as s3://."""
    for scheme in ("s3a://", "s3n://"):
        if location.startswith(scheme):
            return "s3://" + location[len(scheme):]
    return location


class IcebergFiles:
    """Iceberg's Java readers and S3FileIO through a Spark session's JVM."""

    def __init__(self, spark, settings) -> None:
        self.jvm = spark.sparkContext._jvm  # noqa: SLF001
        props = self.jvm.java.util.HashMap()
        for key, value in {
            "s3.endpoint": settings.s3_endpoint,
            "s3.path-style-access": "true",
            "s3.access-key-id": settings.s3_access_key,
            "s3.secret-access-key": settings.s3_secret_key,
            "client.region": settings.s3_region,
        }.items():
            props.put(key, value)
        self.io = self.jvm.org.apache.iceberg.aws.s3.S3FileIO()
        self.io.initialize(props)

    def live_files(self, contents: set[tuple[str, int]]) -> set[str]:
        iceberg = self.jvm.org.apache.iceberg
        live: set[str] = set()
        by_metadata: dict[str, set[int]] = {}
        for location, snapshot_id in contents:
            by_metadata.setdefault(location, set()).add(snapshot_id)
        for location, snapshot_ids in by_metadata.items():
            metadata = iceberg.TableMetadataParser.read(self.io, location)
            live.add(location)
            for stats in metadata.statisticsFiles():
                live.add(str(stats.path()))
            for snapshot_id in snapshot_ids:
                if snapshot_id < 0:
                    continue  # a table without a snapshot: only its metadata file
                snapshot = metadata.snapshot(snapshot_id)
                if snapshot is None:
                    raise RuntimeError(f"snapshot {snapshot_id} not in {location}")
                live.add(str(snapshot.manifestListLocation()))
                for manifest in snapshot.allManifests(self.io):
                    live.add(str(manifest.path()))
                    if str(manifest.content().name()) == "DATA":
                        paths = iceberg.ManifestFiles.readPaths(manifest, self.io, metadata.specsById())
                        iterator = paths.iterator()
                        while iterator.hasNext():
                            live.add(str(iterator.next()))
                        paths.close()
                    else:
                        deletes = iceberg.ManifestFiles.readDeleteManifest(manifest, self.io, metadata.specsById())
                        iterator = deletes.iterator()
                        while iterator.hasNext():
                            live.add(str(iterator.next().location()))
                        deletes.close()
        return live

    def listing(self, prefix: str) -> Iterator[tuple[str, int, int]]:
        """(location, size, created at ms) of every object under the prefix."""
        iterator = self.io.listPrefix(prefix).iterator()
        while iterator.hasNext():
            info = iterator.next()
            yield str(info.location()), int(info.size()), int(info.createdAtMillis())

    def delete(self, paths: list[str]) -> None:
        for start in range(0, len(paths), 500):
            batch = self.jvm.java.util.ArrayList()
            for path in paths[start : start + 500]:
                batch.add(path)
            self.io.deleteFiles(batch)


def collect(spark, settings, nessie: NessieClient, *, cutoff: timedelta, min_age: timedelta, dry_run: bool, prefix: str | None = None, log=print) -> GcReport:
    started = time.monotonic()
    mark_start = datetime.now(timezone.utc)
    cutoff_at = mark_start - cutoff
    report = GcReport(dry_run=dry_run, cutoff=cutoff_at.isoformat(timespec="seconds"))
    report.references, contents = mark(nessie, cutoff_at)
    report.live_contents = len(contents)
    files = IcebergFiles(spark, settings)
    live = {normal(p) for p in files.live_files(contents)}  # raises before any delete if something live cannot be read
    report.live_files = len(live)
    newest = (mark_start - min_age).timestamp() * 1000
    doomed: list[str] = []
    root = prefix or settings.warehouse
    for location, size, created_ms in files.listing(root):
        report.listed_files += 1
        report.listed_bytes += size
        if normal(location) in live:
            continue
        if created_ms > newest:
            report.kept_young_files += 1
            continue
        doomed.append(location)
        report.deletable_bytes += size
    report.deletable_files = len(doomed)
    report.sample = sorted(doomed)[:10]
    if not dry_run and doomed:
        files.delete(doomed)
        report.deleted_files = len(doomed)
    report.seconds = round(time.monotonic() - started, 3)
    return report
