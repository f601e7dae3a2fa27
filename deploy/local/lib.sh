# Shared settings of the local stack: sourced by deploy/local/stack, deploy/local/fetch and scripts/*.
# Every value can be overridden from the environment.

SIMGATE_ROOT=${SIMGATE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=versions.env
. "$SIMGATE_ROOT/deploy/local/versions.env"

# Downloads (jars, wheels) live outside the repository so that a fresh clone reuses them.
SIMGATE_CACHE=${SIMGATE_CACHE:-$HOME/.cache/simgate}
# Logs, pids and data of the running stack.
SIMGATE_STATE=${SIMGATE_STATE:-$SIMGATE_ROOT/.simgate}
SIMGATE_VENV=${SIMGATE_VENV:-$SIMGATE_ROOT/.venv}

SIMGATE_STACK_HOST=${SIMGATE_STACK_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
S3_PORT=${S3_PORT:-9333}
NESSIE_PORT=${NESSIE_PORT:-19120}
NESSIE_MANAGEMENT_PORT=${NESSIE_MANAGEMENT_PORT:-19121}
# Optional services (`stack up trino superset`): Trino's HTTP port, Superset's web port and its admin.
TRINO_PORT=${TRINO_PORT:-8090}
SUPERSET_PORT=${SUPERSET_PORT:-8088}
SUPERSET_ADMIN_USER=${SUPERSET_ADMIN_USER:-admin}
SUPERSET_ADMIN_PASSWORD=${SUPERSET_ADMIN_PASSWORD:-simgate-admin}
# The optional OpenTelemetry Collector peer (stack up otelcol): OTLP gRPC and its health_check extension.
OTELCOL_PORT=${OTELCOL_PORT:-4317}
OTELCOL_HEALTH_PORT=${OTELCOL_HEALTH_PORT:-13133}

S3_ACCESS_KEY=${S3_ACCESS_KEY:-simgate}
S3_SECRET_KEY=${S3_SECRET_KEY:-simgate-secret}
S3_REGION=${S3_REGION:-us-east-1}
S3_BLOB_BUCKET=${S3_BLOB_BUCKET:-simgate-blobs}
S3_WAREHOUSE_BUCKET=${S3_WAREHOUSE_BUCKET:-simgate-warehouse}

KAFKA_HOME="$SIMGATE_CACHE/kafka-$KAFKA_VERSION"
S3PROXY_JAR="$SIMGATE_CACHE/s3proxy-$S3PROXY_VERSION/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar"
NESSIE_JAR="$SIMGATE_CACHE/nessie-$NESSIE_VERSION/nessie-quarkus-$NESSIE_VERSION-runner.jar"
SPARK_JARS_DIR="$SIMGATE_CACHE/spark-jars-$SPARK_VERSION-iceberg-$ICEBERG_VERSION-nessie-$NESSIE_VERSION"
ECJ_JAR="$SIMGATE_CACHE/ecj-$ECJ_VERSION/ecj-$ECJ_VERSION.jar"
# Trino unpacked with only the plugins the stack uses (deploy/local/fetch trino), and its CLI jar.
TRINO_HOME="$SIMGATE_CACHE/trino-server-$TRINO_VERSION"
TRINO_CLI_JAR="$SIMGATE_CACHE/trino-cli-$TRINO_VERSION/trino-cli-$TRINO_VERSION-executable.jar"
# Superset's own virtual environment (its pins clash with .venv), from deploy/local/superset/constraints.txt.
SUPERSET_VENV=${SUPERSET_VENV:-$SIMGATE_CACHE/superset-$SUPERSET_VERSION-venv}
OTELCOL_BIN="$SIMGATE_CACHE/otelcol-$OTELCOL_VERSION/otelcol-simgate"

export SIMGATE_ROOT SIMGATE_CACHE SIMGATE_STATE SIMGATE_VENV SIMGATE_STACK_HOST KAFKA_PORT S3_PORT NESSIE_PORT \
  OTELCOL_PORT OTELCOL_HEALTH_PORT OTELCOL_BIN \
  S3_ACCESS_KEY S3_SECRET_KEY S3_REGION S3_BLOB_BUCKET S3_WAREHOUSE_BUCKET SPARK_JARS_DIR \
  KAFKA_VERSION S3PROXY_VERSION NESSIE_VERSION ICEBERG_VERSION SPARK_VERSION SPARK_SCALA_BINARY \
  TRINO_PORT SUPERSET_PORT SUPERSET_ADMIN_USER SUPERSET_ADMIN_PASSWORD TRINO_VERSION SUPERSET_VERSION \
  TRINO_HOME TRINO_CLI_JAR SUPERSET_VENV

die() { echo "simgate: error: $*" >&2; exit 1; }
note() { echo "simgate: $*" >&2; }

# find_java [MIN_MAJOR]: a Java runtime of at least that version (default 17). JAVA_HOME wins when it
# qualifies. Nessie's server needs 21 or newer (the Temurin 25 JDK under /usr/lib/jvm on these machines).
find_java() {
  local min=${1:-17} candidates=() j
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
  candidates+=("$(command -v java 2>/dev/null || true)" /usr/lib/jvm/java-17-openjdk-amd64/bin/java /usr/lib/jvm/*/bin/java)
  for j in "${candidates[@]}"; do
    [ -n "$j" ] && [ -x "$j" ] || continue
    local major
    major=$("$j" -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p')
    if [ -n "$major" ] && [ "$major" -ge "$min" ]; then echo "$j"; return 0; fi
  done
  return 1
}

# new_kafka_cluster_id [COUNT]: COUNT (default 1) new KRaft cluster ids, one a line: 16 random bytes in
# URL-safe base64, as Kafka writes them, drawn again when they start with '-' (as Kafka's own generator
# does): kafka-storage's option parser reads "-t -abc…" as a missing value and `stack up` failed.
new_kafka_cluster_id() {
  python3 - "${1:-1}" <<'PY'
import base64, sys, uuid
for _ in range(int(sys.argv[1])):
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    print(cid)
PY
}

# superset_env: the environment of the local Superset (deploy/local/stack, deploy/local/superset-import).
# Its config is the cluster's (deploy/k8s/base/superset/superset_config.py), which reads the metadata
# database and the secret key from the environment (SQLite and a key in the state folder), followed by
# deploy/local/superset/local_overrides.py (no Redis, no TLS on loopback).
superset_env() {
  local dir="$SIMGATE_STATE/data/superset"
  mkdir -p "$dir"
  [ -s "$dir/secret-key" ] || python3 -c 'import secrets;print(secrets.token_urlsafe(42))' >"$dir/secret-key"
  cat "$SIMGATE_ROOT/deploy/k8s/base/superset/superset_config.py" "$SIMGATE_ROOT/deploy/local/superset/local_overrides.py" \
    >"$dir/superset_config.py"
  export SUPERSET_CONFIG_PATH="$dir/superset_config.py" SUPERSET_DATABASE_URI="sqlite:///$dir/superset.db"
  export SUPERSET_HOME="$dir" FLASK_APP=superset SUPERSET_SECRET_KEY
  SUPERSET_SECRET_KEY=$(cat "$dir/secret-key")
  export SIMGATE_TRINO_SQLALCHEMY_URI="trino://superset@$SIMGATE_STACK_HOST:$TRINO_PORT/iceberg"
}

