"""The WAP job's configuration: what each topic holds and which rules apply to it. It travels with the
job: built-in defaults for the two parking topics, overridden by a JSON file (`--config FILE` or
SIMGATE_WAP_CONFIG). A topic that is not listed gets the defaults (no event-type or entry rule).

File format (every key optional; camelCase like the records):

    {
      "acceptedSchemaVersions": [1],
      "requiredFields": ["eventId", "runId", "eventType", "timeStamp", "carId", "sequence"],
      "lotBounds": {"xMin": 0, "xMax": 36, "yMin": -0.5, "yMax": 3, "zMin": 0, "zMax": 28},
      "audit": {"maxSchemaErrorRatio": 0.5},
      "branchPrefix": "wap",
      "runsTopic": "simgate-runs",
      "topics": {
        "parking-entries": {"eventType": "parking.entry", "requiredFields": [..., "coordinates"]},
        "parking-exits": {"eventType": "parking.exit", "entryTopic": "parking-entries",
                          "orderWith": ["parking-entries"]}
      }
    }
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_REQUIRED_FIELDS = ("eventId", "runId", "eventType", "timeStamp", "carId", "sequence")


@dataclass(frozen=True)
class LotBounds:
    """The parking lot in stage metres (x, y, z as the simulator writes them). Coordinates outside are
    rejected. A run whose start record carries `lot.minX` ... `lot.maxZ` in its lineage is checked
    against those (docs/recording-format.md); these defaults, the 24-slot sample lot (x 0..36, z 0..28,
    ground at y = 0, a little height allowed), apply to runs without them."""

    x_min: float = 0.0
    x_max: float = 36.0
    y_min: float = -0.5
    y_max: float = 3.0
    z_min: float = 0.0
    z_max: float = 28.0


@dataclass(frozen=True)
class TopicRules:
    topic: str
    # Events on this topic must have this type (None: any type).
    event_type: str | None = None
    required_fields: tuple[str, ...] = DEFAULT_REQUIRED_FIELDS
    # For exits: the topic whose production table holds the entries an exit must follow.
    entry_topic: str | None = None
    # Topics whose events share the runs' sequence numbers (entries and exits): the time-order rule
    # compares against their events too (published, and not yet published in Kafka).
    order_with: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return table_name(self.topic)


@dataclass(frozen=True)
class JobConfig:
    accepted_schema_versions: tuple[int, ...] = (1,)
    lot_bounds: LotBounds = field(default_factory=LotBounds)
    # Audit: when more than this share of the rows read fail schema conformity (unparseable, wrong types,
    # unknown schema version), the producer's schema has changed and the run stops instead of shunting
    # everything into untrusted.
    max_schema_error_ratio: float = 0.5
    branch_prefix: str = "wap"
    # Run lifecycle topic: run-start records carry each run's lot bounds in their lineage (None: unused).
    runs_topic: str | None = "simgate-runs"
    topics: dict[str, TopicRules] = field(default_factory=dict)

    def rules_for(self, topic: str) -> TopicRules:
        return self.topics.get(topic) or TopicRules(topic=topic)


def table_name(topic: str) -> str:
    """Iceberg table name of a topic (docs/records.md): `-` and `.` become `_`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", topic).lower()
    if not name or name[0].isdigit():
        name = f"t_{name}"
    return name


def _builtin_topics() -> dict[str, TopicRules]:
    return {
        "parking-entries": TopicRules(
            topic="parking-entries",
            event_type="parking.entry",
            required_fields=DEFAULT_REQUIRED_FIELDS + ("coordinates",),
            order_with=("parking-exits",),
        ),
        "parking-exits": TopicRules(
            topic="parking-exits",
            event_type="parking.exit",
            entry_topic="parking-entries",
            order_with=("parking-entries",),
        ),
    }


class ConfigError(ValueError):
    pass


def _number(tree: dict[str, Any], key: str, default: float, where: str) -> float:
    value = tree.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def parse_config(tree: dict[str, Any]) -> JobConfig:
    if not isinstance(tree, dict):
        raise ConfigError("the configuration must be a JSON object")
    known = {"acceptedSchemaVersions", "requiredFields", "lotBounds", "audit", "branchPrefix", "runsTopic", "topics"}
    unknown = set(tree) - known
    if unknown:
        raise ConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
    cfg = JobConfig(topics=_builtin_topics())
    if "acceptedSchemaVersions" in tree:
        versions = tree["acceptedSchemaVersions"]
        if not isinstance(versions, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in versions):
            raise ConfigError("acceptedSchemaVersions: expected a list of integers")
        cfg = replace(cfg, accepted_schema_versions=tuple(versions))
    required = _strings(tree["requiredFields"], "requiredFields") if "requiredFields" in tree else None
    if "lotBounds" in tree:
        b = tree["lotBounds"]
        if not isinstance(b, dict):
            raise ConfigError("lotBounds: expected an object")
        d = LotBounds()
        bounds = LotBounds(
            *(
                _number(b, key, getattr(d, attr), "lotBounds")
                for key, attr in (
                    ("xMin", "x_min"), ("xMax", "x_max"), ("yMin", "y_min"),
                    ("yMax", "y_max"), ("zMin", "z_min"), ("zMax", "z_max"),
                )
            )
        )
        if bounds.x_min > bounds.x_max or bounds.y_min > bounds.y_max or bounds.z_min > bounds.z_max:
            raise ConfigError("lotBounds: a minimum is larger than its maximum")
        cfg = replace(cfg, lot_bounds=bounds)
    if "audit" in tree:
        audit = tree["audit"]
        if not isinstance(audit, dict) or set(audit) - {"maxSchemaErrorRatio"}:
            raise ConfigError("audit: expected {\"maxSchemaErrorRatio\": number}")
        ratio = _number(audit, "maxSchemaErrorRatio", cfg.max_schema_error_ratio, "audit")
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError("audit.maxSchemaErrorRatio: expected a number between 0 and 1")
        cfg = replace(cfg, max_schema_error_ratio=ratio)
    if "branchPrefix" in tree:
        prefix = tree["branchPrefix"]
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,30}", prefix):
            raise ConfigError("branchPrefix: expected a short name ([A-Za-z][A-Za-z0-9_-]*)")
        cfg = replace(cfg, branch_prefix=prefix)
    if "runsTopic" in tree:
        runs = tree["runsTopic"]
        if runs is not None and (not isinstance(runs, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", runs)):
            raise ConfigError("runsTopic: expected a Kafka topic name or null")
        cfg = replace(cfg, runs_topic=runs)
    topics = dict(cfg.topics)
    if required is not None:
        topics = {name: replace(rules, required_fields=required) for name, rules in topics.items()}
    for name, spec in (tree.get("topics") or {}).items():
        where = f"topics.{name}"
        if not isinstance(spec, dict) or set(spec) - {"eventType", "requiredFields", "entryTopic", "orderWith"}:
            raise ConfigError(f"{where}: expected an object with eventType, requiredFields, entryTopic, orderWith")
        base = topics.get(name) or TopicRules(topic=name, required_fields=required or DEFAULT_REQUIRED_FIELDS)
        if "eventType" in spec:
            base = replace(base, event_type=spec["eventType"])
        if "requiredFields" in spec:
            base = replace(base, required_fields=_strings(spec["requiredFields"], f"{where}.requiredFields"))
        if "entryTopic" in spec:
            base = replace(base, entry_topic=spec["entryTopic"])
        if "orderWith" in spec:
            base = replace(base, order_with=_strings(spec["orderWith"], f"{where}.orderWith"))
        topics[name] = base
    return replace(cfg, topics=topics)


def load_config(path: str | None = None) -> JobConfig:
    path = path or os.environ.get("SIMGATE_WAP_CONFIG") or None
    if path is None:
        return parse_config({})
    try:
        tree = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"config file {path}: {err}") from err
    return parse_config(tree)
