"""The test session's own care for the catalog it runs on (conftest.clean_main_catalog): a developer's
local stack keeps its tables, ops.wap_runs among them, across a run of this suite."""

from __future__ import annotations

import requests

import conftest


def test_mains_state_before_the_tests_is_held_by_a_tag_while_they_run(settings):
    """The session puts ops.wap_runs back as it was, and the GC tests sweep the warehouse in between:
    without a reference to main's state of before, that table's old metadata files are garbage to
    Nessie GC, and main is left pointing at deleted files (the next WAP run fails to load the table)."""
    baseline = conftest.CATALOG_BASELINE
    assert baseline.get("tag", "").startswith("tests-baseline-"), baseline
    tag = requests.get(f"{settings.nessie_uri}/trees/{baseline['tag']}", timeout=30).json()["reference"]
    assert tag["type"] == "TAG" and tag["hash"] == baseline["hash"]
