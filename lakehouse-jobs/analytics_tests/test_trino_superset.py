"""The analytics end against the real services, after the demo's run (scripts/test-analytics runs the
demo on a stack state of its own, then these tests): Trino reads what Spark reads on Nessie's main,
both equal what the gateway accepted, and Superset's charts (chart data API) equal the same SQL on
Trino. The dashboard bundle imports idempotently, and a broken one is refused without touching it.

Environment: the stack's (deploy/local/stack env) and SIMGATE_ANALYTICS_SUMMARY, the demo's replay
summary (JSON; recordsByTopic: the events accepted per topic, from the acks)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import trino.dbapi
import yaml

from simgate.lakehouse.ops_table import wap_runs_table
from simgate.lakehouse.queries import CHARTS, query_text
from simgate.lakehouse.settings import StackSettings
from simgate.lakehouse.spark import build_spark_session
from simgate.lakehouse.tables import TopicTables

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "deploy" / "k8s" / "base" / "superset" / "provisioning.yaml"
TOPICS = ("parking-entries", "parking-exits")


@pytest.fixture(scope="module")
def settings() -> StackSettings:
    return StackSettings.from_env()


@pytest.fixture(scope="module")
def spark(settings):
    session = build_spark_session("simgate-analytics-test", settings, extra_conf={f"spark.sql.catalog.{settings.catalog}.cache-enabled": "false"})
    session.sql(f"USE REFERENCE main IN {settings.catalog}")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def trino_cursor():
    url = urlparse(os.environ["TRINO_URI"])
    conn = trino.dbapi.connect(host=url.hostname, port=url.port, user="simgate-test", catalog="iceberg", http_scheme="http")
    return conn.cursor()


def on_trino(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return [tuple(r) for r in cursor.fetchall()]


@pytest.fixture(scope="module")
def accepted() -> dict[str, int]:
    summary = json.loads(Path(os.environ["SIMGATE_ANALYTICS_SUMMARY"]).read_text())
    return {topic: int(n) for topic, n in summary["recordsByTopic"].items()}


def norm(value):
    """One form for both engines: timestamps as UTC epoch milliseconds, floats rounded."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


def rows(values) -> list[tuple]:
    return sorted((tuple(norm(v) for v in row) for row in values), key=repr)


def trino_table(spark_table: str, settings: StackSettings) -> str:
    return "iceberg." + spark_table.split(".", 1)[1]


# --- Trino against Spark and the gateway ---------------------------------------------------------------


@pytest.mark.parametrize("topic", TOPICS)
def test_trino_counts_and_entries_per_hour_equal_sparks_and_the_accepted_events(topic, settings, spark, trino_cursor, accepted):
    tables = TopicTables(settings.catalog, topic)
    total = 0
    for table in (tables.production, tables.untrusted):
        spark_count = spark.table(table).count()
        (trino_count,), = on_trino(trino_cursor, f"SELECT count(*) FROM {trino_table(table, settings)}")
        assert trino_count == spark_count, table
        total += spark_count
        per_hour_spark = [tuple(r) for r in spark.sql(query_text("entries_per_hour", table)).collect()]
        per_hour_trino = on_trino(trino_cursor, query_text("entries_per_hour", trino_table(table, settings)))
        assert rows(per_hour_trino) == rows(per_hour_spark), table
        assert sum(n for _, n in per_hour_trino) == spark_count
    # Every accepted event is in exactly one of the two tables.
    assert total == accepted[topic]


@pytest.mark.parametrize("chart", CHARTS)
def test_every_chart_query_gives_the_same_rows_on_trino_and_spark(chart, settings, spark, trino_cursor):
    on_spark = [tuple(r) for r in spark.sql(query_text(chart, catalog=settings.catalog)).collect()]
    assert on_spark, f"{chart}: no rows on main"
    assert rows(on_trino(trino_cursor, query_text(chart, catalog="iceberg"))) == rows(on_spark)


def test_ops_wap_runs_holds_one_row_per_published_run_with_its_rows(settings, spark, trino_cursor):
    runs = spark.table(wap_runs_table(settings.catalog)).collect()
    for topic in TOPICS:
        tables = TopicTables(settings.catalog, topic)
        published = {r["wap_run_id"] for r in spark.table(tables.offsets).select("wap_run_id").distinct().collect()}
        mine = [r for r in runs if r["topic"] == topic]
        assert {r["wap_run_id"] for r in mine} == published
        assert sum(r["rows_trusted"] for r in mine) == spark.table(tables.production).count()
        for r in mine:
            assert r["rows_read"] == r["rows_trusted"] + r["rows_untrusted"]
            assert r["started_at"] <= r["published_at"] and r["first_capture_time"] <= r["last_capture_time"]
            assert r["ingest_to_main_seconds"] > 0 and r["tag"] == f"wap-{topic}-{r['wap_run_id']}"
            assert [o["end"] - o["start"] for o in json.loads(r["offsets"])]


# --- Superset ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def superset() -> requests.Session:
    base = os.environ["SUPERSET_URL"]
    session = requests.Session()
    token = session.post(f"{base}/api/v1/security/login", json={
        "username": os.environ["SUPERSET_ADMIN_USER"], "password": os.environ["SUPERSET_ADMIN_PASSWORD"],
        "provider": "db", "refresh": False}, timeout=60).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    session.base = base  # type: ignore[attr-defined]
    return session


def api(session: requests.Session, path: str) -> dict:
    response = session.get(f"{session.base}{path}", timeout=120)  # type: ignore[attr-defined]
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:300]}"
    return response.json()


def bundle_configs(kind: str) -> list[dict]:
    data = yaml.safe_load(BUNDLE.read_text())["data"]
    return [yaml.safe_load(text) for key, text in data.items() if key.startswith(f"{kind}-")]


def charts_by_uuid(superset) -> dict[str, dict]:
    listed = api(superset, "/api/v1/chart/?q=(page_size:100,columns:!(id,uuid))")["result"]
    return {c["uuid"]: api(superset, f"/api/v1/chart/{c['id']}")["result"] for c in listed}


def test_each_charts_data_api_rows_equal_the_same_query_on_trino(superset, trino_cursor):
    datasets = {d["uuid"]: d for d in bundle_configs("dataset")}
    live = charts_by_uuid(superset)
    for chart in bundle_configs("chart"):
        dataset = datasets[chart["dataset_uuid"]]
        chart_id = live[chart["uuid"]]["id"]
        result = api(superset, f"/api/v1/chart/{chart_id}/data/")["result"][0]
        query = json.loads(chart["query_context"])["queries"][0]
        expr = {m["metric_name"]: m["expression"] for m in dataset["metrics"]}
        # The dataset SQL is at the chart's grain: each metric is SUM or MAX of one column of it.
        metric_columns = [re.fullmatch(r"(?:SUM|MAX)\((\w+)\)", expr[m]).group(1) for m in query["metrics"]]
        select = ", ".join(query["columns"] + metric_columns)
        expected = on_trino(trino_cursor, f"SELECT {select} FROM ({query_text(dataset['table_name'], catalog='iceberg')}) t")
        got = [tuple(row[c] for c in query["columns"] + query["metrics"]) for row in result["data"]]
        assert expected, chart["slice_name"]
        # The API answers timestamps as epoch milliseconds and numbers as JSON numbers.
        assert rows(got) == rows(expected), chart["slice_name"]


def dashboard_state(superset) -> dict:
    dashboard = api(superset, "/api/v1/dashboard/parking")["result"]
    charts = api(superset, "/api/v1/dashboard/parking/charts")["result"]
    datasets = api(superset, "/api/v1/dataset/?q=(page_size:100,columns:!(id,table_name,sql,uuid))")["result"]
    return {
        "dashboard": {k: dashboard[k] for k in ("id", "dashboard_title", "published", "position_json", "json_metadata", "slug")},
        "charts": sorted((c["id"], c["slice_name"], json.dumps(c["form_data"], sort_keys=True)) for c in charts),
        "saved": sorted((c["id"], c["params"], c["query_context"]) for c in charts_by_uuid(superset).values()),
        "datasets": sorted((d["id"], d["table_name"], d["sql"], d["uuid"]) for d in datasets),
    }


def superset_import(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "deploy" / "local" / "superset-import"), *args], capture_output=True, text=True, timeout=900)


def test_the_dashboard_is_published_and_a_second_import_changes_nothing(superset):
    before = dashboard_state(superset)
    assert before["dashboard"]["published"] is True
    assert len(before["charts"]) == len(bundle_configs("chart"))
    done = superset_import()
    assert done.returncode == 0, done.stderr
    assert dashboard_state(superset) == before


def test_a_bundle_naming_a_missing_table_is_refused_and_the_dashboard_is_kept(superset, tmp_path):
    before = dashboard_state(superset)
    manifest = yaml.safe_load(BUNDLE.read_text())
    key = "dataset-wap-runs.yaml"
    manifest["data"][key] = manifest["data"][key].replace("iceberg.ops.wap_runs", "iceberg.ops.no_such_runs_table")
    broken = tmp_path / "provisioning.yaml"
    broken.write_text(yaml.safe_dump(manifest, sort_keys=False))
    done = superset_import(str(broken))
    assert done.returncode == 65, (done.returncode, done.stdout, done.stderr)
    assert "bundle refused" in done.stderr
    assert re.search(r"dataset wap_runs: .*no_such_runs_table.* does not exist", done.stderr), done.stderr
    assert dashboard_state(superset) == before
