"""Retention of the WAP job's Nessie references: old publication tags and old failed-audit branches.

    python -m simgate.lakehouse.retention [--keep-tags 30] [--keep-days 7] [--branch-days 14] [--dry-run]

Every WAP run tags its publication (`wap-<topic>-<run>`), and a failed audit keeps its branch
(`<prefix>_<table>_<run>`) for inspection. Each pins the data files it reaches, so Nessie GC cannot reclaim
them while the reference exists (docs/lakehouse.md). This drops, per topic, the tags beyond the newest
`--keep-tags` that are also older than `--keep-days`, and the WAP branches older than `--branch-days`.
A reference's age is that of its run id (`YYYYMMDDTHHMMSSZ-<hex>`, UTC), which is in its name; references
whose names do not parse are never touched, nor is any other reference. The newest tag of every topic is
always kept: the WAP job looks for it to tell whether its last publication was tagged.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

from .config import ConfigError, load_config
from .nessie import NessieClient, Reference
from .settings import StackSettings

RUN_ID = r"(?P<stamp>\d{8}T\d{6}Z)[-_](?P<suffix>[0-9a-f]{8})"
TAG = re.compile(rf"^wap-(?P<topic>.+)-{RUN_ID}$")


@dataclass(frozen=True)
class Decision:
    reference: str
    kind: str  # "tag" or "branch"
    group: str  # the topic (tags) or the table (branches)
    run_time: datetime
    delete: bool
    why: str

    def as_json(self) -> dict[str, str | bool]:
        return {
            "reference": self.reference,
            "kind": self.kind,
            "group": self.group,
            "runTime": self.run_time.isoformat(),
            "delete": self.delete,
            "why": self.why,
        }


def _run_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def plan(
    references: Iterable[Reference],
    now: datetime,
    keep_tags: int = 30,
    keep_days: float = 7,
    branch_days: float = 14,
    branch_prefix: str = "wap",
) -> list[Decision]:
    """What to keep and what to delete (pure: no calls). keep_tags is at least 1."""
    if keep_tags < 1:
        raise ValueError("keep_tags must be at least 1: the newest tag of each topic is always kept")
    branch = re.compile(rf"^{re.escape(branch_prefix)}_(?P<table>[a-z0-9_]+?)_{RUN_ID}$")
    tags: dict[str, list[tuple[datetime, Reference]]] = {}
    decisions: list[Decision] = []
    for ref in references:
        if ref.type == "TAG":
            m = TAG.match(ref.name)
            if m:
                tags.setdefault(m["topic"], []).append((_run_time(m["stamp"]), ref))
        elif ref.type == "BRANCH" and ref.name != "main":
            m = branch.match(ref.name)
            if m:
                when = _run_time(m["stamp"])
                old = now - when > timedelta(days=branch_days)
                why = f"older than {branch_days:g} days" if old else f"younger than {branch_days:g} days"
                decisions.append(Decision(ref.name, "branch", m["table"], when, old, why))
    for topic, found in tags.items():
        found.sort(key=lambda item: (item[0], item[1].name), reverse=True)
        for rank, (when, ref) in enumerate(found):
            if rank < keep_tags:
                decisions.append(Decision(ref.name, "tag", topic, when, False, f"among the newest {keep_tags}"))
            elif now - when <= timedelta(days=keep_days):
                decisions.append(Decision(ref.name, "tag", topic, when, False, f"younger than {keep_days:g} days"))
            else:
                decisions.append(Decision(ref.name, "tag", topic, when, True, f"beyond the newest {keep_tags} and older than {keep_days:g} days"))
    return sorted(decisions, key=lambda d: (d.kind, d.group, d.run_time))


def apply(nessie: NessieClient, decisions: list[Decision], dry_run: bool) -> int:
    """Deletes what the plan says; returns how many references were deleted."""
    deleted = 0
    for d in decisions:
        if d.delete and not dry_run and nessie.delete_reference(d.reference):
            deleted += 1
    return deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simgate.lakehouse.retention", description=__doc__.split("\n")[0])
    parser.add_argument("--keep-tags", type=int, default=30, help="newest WAP tags kept per topic, whatever their age (>= 1)")
    parser.add_argument("--keep-days", type=float, default=7, help="WAP tags younger than this are kept too")
    parser.add_argument("--branch-days", type=float, default=14, help="WAP branches (failed audits) older than this are dropped")
    parser.add_argument("--config", help="JSON job configuration, for its branchPrefix (default: SIMGATE_WAP_CONFIG or built-in)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    args = parser.parse_args(argv)
    if args.keep_tags < 1:
        parser.error("--keep-tags must be at least 1")
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"retention: {err}", file=sys.stderr)
        return 2
    settings = StackSettings.from_env()
    nessie = NessieClient(settings.nessie_uri)
    decisions = plan(nessie.references(), datetime.now(timezone.utc), args.keep_tags, args.keep_days, args.branch_days, config.branch_prefix)
    for d in decisions:
        print(json.dumps(d.as_json()))
    deleted = apply(nessie, decisions, args.dry_run)
    planned = sum(1 for d in decisions if d.delete)
    print(json.dumps({"planned": planned, "deleted": deleted, "kept": len(decisions) - planned, "dryRun": args.dry_run}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
