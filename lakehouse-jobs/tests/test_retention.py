"""Retention of WAP tags and failed-audit branches: the plan on its own, then the CLI against the real
Nessie of the local stack (references whose run ids say 2020 stand in for old runs)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from simgate.lakehouse import retention
from simgate.lakehouse.nessie import NessieClient, Reference
from simgate.lakehouse.retention import plan
from simgate.lakehouse.settings import StackSettings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def tag(topic: str, stamp: str, suffix: str = "0a1b2c3d") -> Reference:
    return Reference(f"wap-{topic}-{stamp}-{suffix}", "TAG", "h")


def branch(table: str, stamp: str, suffix: str = "0a1b2c3d", prefix: str = "wap") -> Reference:
    return Reference(f"{prefix}_{table}_{stamp}_{suffix}", "BRANCH", "h")


def deleted(decisions) -> set[str]:
    return {d.reference for d in decisions if d.delete}


def test_keeps_the_newest_tags_per_topic_and_the_young_ones_and_drops_the_rest() -> None:
    refs = [
        tag("parking-entries", "20261127T100000Z"),  # newest, kept by count
        tag("parking-entries", "20261126T100000Z"),  # kept by count
        tag("parking-entries", "20261125T100000Z"),  # beyond the count, but younger than 7 days
        tag("parking-entries", "20261001T100000Z"),  # beyond the count and old: dropped
        tag("parking-exits", "20200101T000000Z"),  # the only (so newest) exits tag: kept however old
        Reference("release-2026", "TAG", "h"),  # not a WAP tag: never touched
        Reference("wap-parking-entries-latest", "TAG", "h"),  # no run id: never touched
    ]
    decisions = plan(refs, NOW, keep_tags=2, keep_days=7)
    assert deleted(decisions) == {"wap-parking-entries-20261001T100000Z-0a1b2c3d"}
    assert {d.reference for d in decisions} == {r.name for r in refs[:5]}
    assert all(d.group in ("parking-entries", "parking-exits") for d in decisions)


def test_drops_wap_branches_older_than_the_limit_only() -> None:
    refs = [
        branch("parking_entries", "20261001T100000Z"),  # a failed audit, long ago
        branch("parking_entries", "20261126T100000Z"),  # recent: still being inspected, or running
        branch("parking_exits", "20261001T100000Z", prefix="other"),  # another prefix
        Reference("main", "BRANCH", "h"),
        Reference("wap_parking_entries_manual", "BRANCH", "h"),  # no run id
    ]
    decisions = plan(refs, NOW, branch_days=14)
    assert deleted(decisions) == {"wap_parking_entries_20261001T100000Z_0a1b2c3d"}
    assert [d.group for d in decisions] == ["parking_entries", "parking_entries"]
    assert deleted(plan(refs, NOW, branch_days=14, branch_prefix="other")) == {"other_parking_exits_20261001T100000Z_0a1b2c3d"}


def test_always_keeps_at_least_the_newest_tag() -> None:
    with pytest.raises(ValueError):
        plan([tag("t", "20200101T000000Z")], NOW, keep_tags=0)


def test_the_cli_deletes_old_references_in_nessie_and_only_them(settings: StackSettings, capsys) -> None:
    nessie = NessieClient(settings.nessie_uri)
    main_hash = nessie.hash_of("main")
    topic = f"test-retention-{uuid.uuid4().hex[:8]}"
    table = topic.replace("-", "_")
    now = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tags = {name: f"wap-{topic}-{name}-0a1b2c3d" for name in (now, "20200104T000000Z", "20200103T000000Z", "20200102T000000Z")}
    branches = {name: f"wap_{table}_{name}_0a1b2c3d" for name in (now, "20200101T000000Z")}
    other = f"keep-{topic}"
    for name in tags.values():
        nessie.create_tag(name, main_hash)
    for name in branches.values():
        nessie.create_branch(name, main_hash)
    nessie.create_tag(other, main_hash)
    try:
        assert retention.main(["--keep-tags", "2", "--dry-run"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        planned = {line["reference"] for line in lines if line.get("delete")}
        assert {tags["20200103T000000Z"], tags["20200102T000000Z"], branches["20200101T000000Z"]} <= planned
        assert lines[-1]["deleted"] == 0 and lines[-1]["dryRun"] is True
        assert all(nessie.reference(name) is not None for name in [*tags.values(), *branches.values()])

        assert retention.main(["--keep-tags", "2"]) == 0
        summary = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert summary["deleted"] >= 3
        gone = {tags["20200103T000000Z"], tags["20200102T000000Z"], branches["20200101T000000Z"]}
        kept = {tags[now], tags["20200104T000000Z"], branches[now], other}
        assert {name for name in gone | kept if nessie.reference(name) is None} == gone
    finally:
        for name in [*tags.values(), *branches.values(), other]:
            nessie.delete_reference(name)
