"""Where the lakehouse jobs find the local stack (or a cluster's services): environment variables with
the local stack's defaults, read once into an immutable value that travels with the job."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def stack_versions() -> dict[str, str]:
    """deploy/local/versions.env as a dict (empty outside a checkout of the repository)."""
    versions = Path(__file__).resolve().parents[3] / "deploy" / "local" / "versions.env"
    values: dict[str, str] = {}
    if versions.exists():
        for line in versions.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    return values


def cache_dir() -> Path:
    """Where deploy/local/fetch keeps downloads: SIMGATE_CACHE, default ~/.cache/simgate."""
    return Path(os.environ.get("SIMGATE_CACHE", str(Path.home() / ".cache" / "simgate")))


def _default_spark_jars_dir() -> str:
    values = stack_versions()
    return str(
        cache_dir()
        / f"spark-jars-{values.get('SPARK_VERSION', '')}-iceberg-{values.get('ICEBERG_VERSION', '')}"
        f"-nessie-{values.get('NESSIE_VERSION', '')}"
    )


@dataclass(frozen=True)
class StackSettings:
    kafka_bootstrap: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    warehouse: str
    nessie_uri: str
    spark_jars_dir: str
    catalog: str = "nessie"

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> "StackSettings":
        e = dict(os.environ if env is None else env)
        return StackSettings(
            kafka_bootstrap=e.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            s3_endpoint=e.get("S3_ENDPOINT", "http://127.0.0.1:9333"),
            s3_access_key=e.get("S3_ACCESS_KEY", "simgate"),
            s3_secret_key=e.get("S3_SECRET_KEY", "simgate-secret"),
            s3_region=e.get("S3_REGION", "us-east-1"),
            warehouse=e.get("SIMGATE_WAREHOUSE", f"s3://{e.get('S3_WAREHOUSE_BUCKET', 'simgate-warehouse')}/"),
            nessie_uri=e.get("NESSIE_URI", "http://127.0.0.1:19120/api/v2"),
            spark_jars_dir=e.get("SPARK_JARS_DIR") or _default_spark_jars_dir(),
            catalog=e.get("SIMGATE_CATALOG", "nessie"),
        )
