"""Foundation check: real Spark writes an Iceberg table on a Nessie branch, its files land in the object
store, the branch is merged, and the table reads back from main."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse

import boto3
import pytest
import requests
from botocore.config import Config

from simgate.lakehouse.settings import StackSettings
from simgate.lakehouse.spark import build_spark_session


@pytest.fixture(scope="module")
def settings() -> StackSettings:
    return StackSettings.from_env()


@pytest.fixture(scope="module")
def spark(settings):
    session = build_spark_session("simgate-foundation-test", settings)
    yield session
    session.stop()


def s3_client(settings: StackSettings):
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
        config=Config(s3={"addressing_style": "path"}),
    )


def test_iceberg_table_on_a_nessie_branch_merges_into_main(spark, settings):
    suffix = uuid.uuid4().hex[:8]
    branch = f"foundation_{suffix}"
    namespace = f"foundation_{suffix}"
    table = f"nessie.{namespace}.cars"

    # The namespace is committed on main first: Nessie cannot find a merge base when the target branch
    # has no commit at all, and the WAP job, too, creates its namespaces on main before branching.
    spark.sql("USE REFERENCE main IN nessie")
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS nessie.{namespace}")
    spark.sql(f"CREATE BRANCH {branch} IN nessie FROM main")
    spark.sql(f"USE REFERENCE {branch} IN nessie")
    spark.sql(f"CREATE TABLE {table} (car_id STRING, x DOUBLE) USING iceberg")
    spark.sql(f"INSERT INTO {table} VALUES ('car-1', 1.5), ('car-2', -2.0)")

    # The data files are real objects in the warehouse bucket.
    files = [row.file_path for row in spark.sql(f"SELECT file_path FROM {table}.files").collect()]
    assert files, "the insert wrote no data file"
    s3 = s3_client(settings)
    for path in files:
        url = urlparse(path)
        assert url.scheme == "s3", path
        head = s3.head_object(Bucket=url.netloc, Key=url.path.lstrip("/"))
        assert head["ContentLength"] > 0

    # The table is on the branch, and not on main before the merge.
    def table_on(ref: str) -> bool:
        entries = requests.get(f"{settings.nessie_uri}/trees/{ref}/entries", timeout=10).json()["entries"]
        return any(e["name"]["elements"] == [namespace, "cars"] for e in entries)

    assert table_on(branch)
    assert not table_on("main")

    spark.sql(f"MERGE BRANCH {branch} INTO main IN nessie")
    assert table_on("main")
    spark.sql("USE REFERENCE main IN nessie")
    rows = spark.sql(f"SELECT car_id, x FROM {table} ORDER BY car_id").collect()
    assert [(r.car_id, r.x) for r in rows] == [("car-1", 1.5), ("car-2", -2.0)]

    spark.sql(f"DROP BRANCH {branch} IN nessie")
    # Leave main's catalog as it was (analysts see it through Trino and Superset).
    spark.sql(f"DROP TABLE {table}")
    spark.sql(f"DROP NAMESPACE nessie.{namespace}")
    assert not table_on("main")
