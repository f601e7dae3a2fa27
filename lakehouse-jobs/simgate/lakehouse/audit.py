"""Step 7 of a WAP run: the audit of what was written on the branch. The decision is a pure function of
figures read back from the branch tables, so every rule is unit-tested without Spark."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AuditFigures:
    read: int
    trusted: int
    untrusted: int
    schema_errors: int
    # required trusted column → rows where it is null
    trusted_nulls: dict[str, int] = field(default_factory=dict)
    # table → its differences from the declared schema
    schema_problems: dict[str, list[str]] = field(default_factory=dict)
    # event_time range of the run's trusted rows (ISO-8601 UTC), for the run's summary
    capture_time_min: str | None = None
    capture_time_max: str | None = None
    # files the run's staging snapshots removed (an append removes none)
    removed_files: int = 0


def audit_problems(figures: AuditFigures, max_schema_error_ratio: float) -> list[str]:
    """Every reason the run must not be published; empty when it may."""
    problems: list[str] = []
    if figures.trusted + figures.untrusted != figures.read:
        problems.append(
            f"counts do not reconcile: read {figures.read}, trusted {figures.trusted} + untrusted {figures.untrusted}"
        )
    if figures.removed_files:
        problems.append(f"the run's staging writes removed {figures.removed_files} file(s); they may only add")
    for column, nulls in sorted(figures.trusted_nulls.items()):
        if nulls:
            problems.append(f"trusted column {column} has {nulls} null(s)")
    for table, diffs in sorted(figures.schema_problems.items()):
        for diff in diffs:
            problems.append(f"{table} is not the declared schema: {diff}")
    if figures.read and figures.schema_errors / figures.read > max_schema_error_ratio:
        problems.append(
            f"schema change suspected: {figures.schema_errors} of {figures.read} records fail schema conformity "
            f"(more than {max_schema_error_ratio:.0%})"
        )
    return problems
