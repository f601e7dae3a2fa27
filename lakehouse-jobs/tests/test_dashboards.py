"""The dashboards-as-code bundle (deploy/k8s/base/superset/provisioning.yaml) against the lakehouse's
own queries: one SQL text per chart, a published dashboard holding every chart, saved query contexts,
and no Trino address in the bundle. No services needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from simgate.lakehouse.queries import CHARTS, query_text

BUNDLE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "superset" / "provisioning.yaml"


@pytest.fixture(scope="module")
def bundle() -> dict[str, dict]:
    data = yaml.safe_load(BUNDLE.read_text())["data"]
    return {key: yaml.safe_load(text) for key, text in data.items() if key.endswith(".yaml")}


def of_kind(bundle: dict[str, dict], prefix: str) -> dict[str, dict]:
    return {k: v for k, v in bundle.items() if k.startswith(prefix)}


def test_every_chart_sql_is_the_lakehouse_query_on_trinos_catalog(bundle):
    datasets = {d["table_name"]: d for d in of_kind(bundle, "dataset-").values()}
    assert sorted(datasets) == sorted(CHARTS)
    for name, dataset in datasets.items():
        assert dataset["sql"].strip() == query_text(name, catalog="iceberg"), name
        # Spark's form of the same text differs in the catalog only.
        assert query_text(name, catalog="nessie").replace("nessie.", "iceberg.") == dataset["sql"].strip()


def test_the_dashboard_is_published_and_shows_every_chart_with_a_saved_query_context(bundle):
    datasets = {d["uuid"]: d for d in of_kind(bundle, "dataset-").values()}
    charts = of_kind(bundle, "chart-")
    (dashboard,) = of_kind(bundle, "dashboard-").values()
    assert dashboard["published"] is True
    placed = {node["meta"]["uuid"] for node in dashboard["position"].values() if isinstance(node, dict) and node.get("type") == "CHART"}
    assert placed == {c["uuid"] for c in charts.values()}
    for key, chart in charts.items():
        dataset = datasets[chart["dataset_uuid"]]
        context = json.loads(chart["query_context"])
        (query,) = context["queries"]
        names = {c["column_name"] for c in dataset["columns"]} | {m["metric_name"] for m in dataset["metrics"]}
        assert set(query["columns"]) | set(query["metrics"]) <= names, key
        assert set(chart["params"]["metrics"]) <= {m["metric_name"] for m in dataset["metrics"]}, key


def test_the_database_address_is_not_in_the_bundle(bundle):
    (database,) = of_kind(bundle, "database-").values()
    assert "from-the-environment" in database["sqlalchemy_uri"]
    assert all(d["database_uuid"] == database["uuid"] for d in of_kind(bundle, "dataset-").values())


def test_a_run_summary_row_carries_offsets_as_json_and_freshness_in_seconds():
    from datetime import datetime, timedelta, timezone

    from simgate.lakehouse.kafka_source import PartitionRange
    from simgate.lakehouse.ops_table import WAP_RUNS_SCHEMA, RunSummary

    published = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    captured = published - timedelta(minutes=5)
    summary = RunSummary("r1", "parking-entries", "wap-parking-entries-r1", 21, 18, 3,
                         (PartitionRange(0, 0, 4), PartitionRange(2, 8, 10)), published - timedelta(minutes=1),
                         captured.replace(tzinfo=None), published, captured + timedelta(minutes=2), published)
    row = dict(zip(WAP_RUNS_SCHEMA.fieldNames(), summary.row(published)))
    assert json.loads(row["offsets"]) == [{"partition": 0, "start": 0, "end": 4}, {"partition": 2, "start": 8, "end": 10}]
    assert row["capture_to_main_seconds"] == 300.0  # a naive capture time is UTC, as Spark hands it back
    assert row["ingest_to_main_seconds"] == 180.0
    assert (row["rows_read"], row["rows_trusted"], row["rows_untrusted"]) == (21, 18, 3)
