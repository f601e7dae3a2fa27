"""The lakehouse jobs' own JVM code (lakehouse-jobs/jvm/src): the record contract's check, run inside
Spark as a Java UDF instead of a Python one.

The jar is built from those sources against the pyspark install's jars by the Eclipse compiler (ecj, from
Maven Central through deploy/local/fetch spark; it runs on the JRE Spark needs anyway, no JDK), once per
version of the sources, into the download cache (SIMGATE_CACHE, default ~/.cache/simgate), and put on
the session's class path by spark.py. Where the jar is built ahead (the jobs image), SIMGATE_JOBS_JAR
names it and nothing is compiled.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from .settings import cache_dir, stack_versions

SOURCES = Path(__file__).resolve().parents[2] / "jvm" / "src"
JAR_NAME = "simgate-lakehouse-jobs.jar"


class JarUnavailable(RuntimeError):
    pass


def _java_sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def jobs_jar() -> str:
    """The path of the jobs' jar: SIMGATE_JOBS_JAR, else the cached build of the current sources (built
    now when missing; a lock keeps concurrent jobs from building it twice)."""
    given = os.environ.get("SIMGATE_JOBS_JAR")
    if given:
        if not Path(given).is_file():
            raise JarUnavailable(f"SIMGATE_JOBS_JAR={given} is not a file")
        return given
    sources = _java_sources()
    if not sources:
        raise JarUnavailable(f"no Java sources under {SOURCES} and no SIMGATE_JOBS_JAR")
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.relative_to(SOURCES).as_posix().encode() + b"\0" + source.read_bytes())
    import pyspark

    digest.update(pyspark.__version__.encode())
    target = cache_dir() / "lakehouse-jobs-jar" / digest.hexdigest()[:16] / JAR_NAME
    if target.is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            _build(sources, target)
    return str(target)


def _ecj_jar() -> Path:
    given = os.environ.get("SIMGATE_ECJ_JAR")
    if given:
        return Path(given)
    version = stack_versions().get("ECJ_VERSION", "")
    return cache_dir() / f"ecj-{version}" / f"ecj-{version}.jar"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise JarUnavailable("no java found (JAVA_HOME or PATH); Spark needs one too")
    return java


def _build(sources: list[Path], target: Path) -> None:
    ecj = _ecj_jar()
    if not ecj.is_file():
        raise JarUnavailable(f"the Eclipse compiler {ecj} is missing: run deploy/local/fetch spark (or scripts/setup), or set SIMGATE_JOBS_JAR")
    classpath = os.pathsep.join(str(j) for j in sorted(_pyspark_jars().glob("*.jar")))
    with tempfile.TemporaryDirectory(prefix="simgate-jar-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        done = subprocess.run(
            [_java(), "-jar", str(ecj), "--release", "11", "-nowarn", "-cp", classpath, "-d", str(classes), *map(str, sources)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise JarUnavailable(f"compiling {SOURCES} failed ({done.returncode}): {(done.stdout + done.stderr).strip()[:2000]}")
        partial = target.with_suffix(".jar.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: simgate\r\n\r\n")
            for cls in sorted(classes.rglob("*.class")):
                jar.write(cls, cls.relative_to(classes).as_posix())
        os.replace(partial, target)  # whole or not at all


def contract_spec(contract, accepted_schema_versions) -> str:
    """The contract declaration (contract.Kind) and the accepted schema versions as the JSON that
    RecordContract's constructor reads."""

    def kind(k) -> dict:
        return {
            "kind": k.kind,
            "nullable": k.nullable,
            "fields": [[name, kind(field)] for name, field in k.fields],
            "items": None if k.items is None else kind(k.items),
            "bounds": list(k.bounds),
        }

    return json.dumps({"contract": kind(contract), "accepted": [int(v) for v in accepted_schema_versions]})


def register_contract(spark, contract, accepted_schema_versions) -> str:
    """Registers the record contract's Java UDF in `spark` (once per contract and versions) and returns
    its SQL function name. The column it gives is array<string>: the reasons, empty when conforming."""
    from pyspark.sql.types import ArrayType, StringType

    spec = contract_spec(contract, accepted_schema_versions)
    name = "simgate_record_contract_" + hashlib.sha256(spec.encode()).hexdigest()[:12]
    registered = getattr(spark, "_simgate_udfs", None)
    if registered is None:
        registered = set()
        spark._simgate_udfs = registered  # noqa: SLF001 - a per-session memo
    if name not in registered:
        jvm = spark.sparkContext._jvm  # noqa: SLF001
        udf = jvm.dev.simgate.lakehouse.RecordContract(spec)
        return_type = jvm.org.apache.spark.sql.types.DataType.fromJson(ArrayType(StringType()).json())
        spark._jsparkSession.udf().register(name, udf, return_type)  # noqa: SLF001
        registered.add(name)
    return name
