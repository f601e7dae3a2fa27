"""The one Spark-session factory of the lakehouse jobs.

Spark runs in local mode from the project's pyspark, with the pinned Iceberg, Nessie and Kafka jars from
the cache (deploy/local/fetch). The Iceberg catalog named `settings.catalog` (default `nessie`) is a
NessieCatalog whose files live in the object store through Iceberg's S3FileIO; the Nessie SQL extensions
(CREATE BRANCH, MERGE BRANCH, CREATE TAG, USE REFERENCE) are enabled.
"""

from __future__ import annotations

import glob
import os
import sys

from pyspark.sql import SparkSession

from .jvm import jobs_jar
from .nessie_auth import NessieAuth
from .settings import StackSettings


def spark_jars(settings: StackSettings) -> list[str]:
    """The pinned Iceberg, Nessie and Kafka jars, and the jobs' own jar (jvm.py: the record contract)."""
    jars = sorted(glob.glob(os.path.join(settings.spark_jars_dir, "*.jar")))
    if not jars:
        raise RuntimeError(
            f"no Spark jars in {settings.spark_jars_dir}: run deploy/local/fetch spark (or scripts/setup)"
        )
    own = jobs_jar()
    return jars if any(os.path.basename(j) == os.path.basename(own) for j in jars) else [*jars, own]


def build_spark_session(
    app_name: str,
    settings: StackSettings | None = None,
    *,
    ref: str = "main",
    master: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    s = settings or StackSettings.from_env()
    # Local mode stays on loopback (otherwise Spark binds the machine's first interface address).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers (if a job ever runs a Python UDF) run this interpreter, which has the simgate
    # package; Spark's default is whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    cat = f"spark.sql.catalog.{s.catalog}"
    conf = {
        "spark.jars": ",".join(spark_jars(s)),
        "spark.sql.extensions": ",".join(
            [
                "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
                "org.projectnessie.spark.extensions.NessieSparkSessionExtensions",
            ]
        ),
        cat: "org.apache.iceberg.spark.SparkCatalog",
        f"{cat}.catalog-impl": "org.apache.iceberg.nessie.NessieCatalog",
        f"{cat}.uri": s.nessie_uri,
        f"{cat}.client-api-version": "2",
        f"{cat}.ref": ref,
        f"{cat}.warehouse": s.warehouse,
        f"{cat}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{cat}.s3.endpoint": s.s3_endpoint,
        f"{cat}.s3.path-style-access": "true",
        f"{cat}.s3.access-key-id": s.s3_access_key,
        f"{cat}.s3.secret-access-key": s.s3_secret_key,
        f"{cat}.client.region": s.s3_region,
        "spark.sql.defaultCatalog": s.catalog,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": os.environ.get("SIMGATE_SPARK_SHUFFLE_PARTITIONS", "4"),
        "spark.driver.memory": os.environ.get("SIMGATE_SPARK_DRIVER_MEMORY", "1g"),
        "spark.ui.enabled": "false",
        "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
        # Iceberg's Arrow-vectorized Parquet reads. With Iceberg 1.6.1 they brought the JVM down (SIGSEGV)
        # when a 10,000-event run's staging table was scanned, every time; with the pinned Iceberg they
        # do not (tests/test_vectorized_reads.py; docs/lakehouse.md, "Versions"). The variable turns
        # them off where a reader misbehaves.
        "spark.sql.iceberg.vectorization.enabled": os.environ.get("SIMGATE_ICEBERG_VECTORIZATION", "true"),
    }
    conf.update(NessieAuth.from_env().catalog_properties(cat))
    conf.update(extra_conf or {})
    builder = SparkSession.builder.appName(app_name).master(
        master or os.environ.get("SIMGATE_SPARK_MASTER", "local[2]")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SIMGATE_SPARK_LOG_LEVEL", "WARN"))
    # Iceberg's NessieTableOperations never closes the S3FileIO it opens per table load, and S3FileIO's
    # finalizer then logs "Unclosed S3FileIO instance" with a stack trace at WARN (apache/iceberg#10144):
    # noise in every job's output, not a leak we can act on. Its errors still show.
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        "org.apache.iceberg.aws.s3.S3FileIO", jvm.org.apache.logging.log4j.Level.ERROR
    )
    return spark
