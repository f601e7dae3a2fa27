// Environment variables → configuration keys. These names are a stable interface (tests, replay, the
// Python client and deployments use them); add new ones, never rename.
export type EnvKind = "string" | "int" | "bool" | "list" | "map";

export interface EnvBinding {
  readonly name: string;
  readonly path: readonly string[];
  readonly kind: EnvKind;
}

export const ENV_BINDINGS: readonly EnvBinding[] = [
  { name: "SIMGATE_GATEWAY_ID", path: ["gatewayId"], kind: "string" },
  { name: "SIMGATE_HOST", path: ["host"], kind: "string" },
  { name: "SIMGATE_GRPC_PORT", path: ["grpc", "port"], kind: "int" },
  { name: "SIMGATE_GRPC_STREAM_WINDOW_BYTES", path: ["grpc", "streamWindowBytes"], kind: "int" },
  { name: "SIMGATE_GRPC_CONNECTION_WINDOW_BYTES", path: ["grpc", "connectionWindowBytes"], kind: "int" },
  { name: "SIMGATE_GRPC_MAX_CONCURRENT_STREAMS", path: ["grpc", "maxConcurrentStreams"], kind: "int" },
  { name: "SIMGATE_GRPC_KEEPALIVE_TIME_MS", path: ["grpc", "keepaliveTimeMs"], kind: "int" },
  { name: "SIMGATE_GRPC_KEEPALIVE_TIMEOUT_MS", path: ["grpc", "keepaliveTimeoutMs"], kind: "int" },
  { name: "SIMGATE_HTTP_PORT", path: ["http", "port"], kind: "int" },
  { name: "SIMGATE_WS_PATH", path: ["http", "wsPath"], kind: "string" },
  { name: "SIMGATE_HTTP_KEEPALIVE_TIMEOUT_MS", path: ["http", "keepAliveTimeoutMs"], kind: "int" },
  { name: "SIMGATE_TOKEN", path: ["auth", "token"], kind: "string" },
  { name: "SIMGATE_TLS_CERT", path: ["tls", "certFile"], kind: "string" },
  { name: "SIMGATE_TLS_KEY", path: ["tls", "keyFile"], kind: "string" },
  { name: "KAFKA_BOOTSTRAP", path: ["kafka", "brokers"], kind: "list" },
  { name: "SIMGATE_KAFKA_CLIENT_ID", path: ["kafka", "clientId"], kind: "string" },
  { name: "SIMGATE_TOPIC_MAP", path: ["kafka", "topicMap"], kind: "map" },
  { name: "SIMGATE_DEAD_LETTER_TOPIC", path: ["kafka", "deadLetterTopic"], kind: "string" },
  { name: "SIMGATE_RUNS_TOPIC", path: ["kafka", "runsTopic"], kind: "string" },
  { name: "SIMGATE_TOPIC_PARTITIONS", path: ["kafka", "partitions"], kind: "int" },
  { name: "SIMGATE_PRODUCE_TIMEOUT_MS", path: ["kafka", "produceTimeoutMs"], kind: "int" },
  { name: "SIMGATE_KAFKA_REQUEST_TIMEOUT_MS", path: ["kafka", "requestTimeoutMs"], kind: "int" },
  { name: "SIMGATE_KAFKA_CONNECTION_TIMEOUT_MS", path: ["kafka", "connectionTimeoutMs"], kind: "int" },
  { name: "SIMGATE_KAFKA_MAX_BATCH_RECORDS", path: ["kafka", "maxBatchRecords"], kind: "int" },
  { name: "SIMGATE_KAFKA_CLIENT_RETRIES", path: ["kafka", "clientRetries"], kind: "int" },
  { name: "SIMGATE_KAFKA_RETRY_INITIAL_MS", path: ["kafka", "retryInitialMs"], kind: "int" },
  { name: "SIMGATE_KAFKA_RETRY_MAX_MS", path: ["kafka", "retryMaxMs"], kind: "int" },
  { name: "SIMGATE_KAFKA_RESEND_MAX_MS", path: ["kafka", "resendMaxMs"], kind: "int" },
  { name: "S3_ENDPOINT", path: ["s3", "endpoint"], kind: "string" },
  { name: "S3_REGION", path: ["s3", "region"], kind: "string" },
  { name: "S3_ACCESS_KEY", path: ["s3", "accessKeyId"], kind: "string" },
  { name: "S3_SECRET_KEY", path: ["s3", "secretAccessKey"], kind: "string" },
  { name: "S3_BLOB_BUCKET", path: ["s3", "bucket"], kind: "string" },
  { name: "SIMGATE_BLOB_PREFIX", path: ["s3", "keyPrefix"], kind: "string" },
  { name: "SIMGATE_S3_CHECK_EXISTING", path: ["s3", "checkExisting"], kind: "string" },
  { name: "SIMGATE_S3_TIMEOUT_MS", path: ["s3", "requestTimeoutMs"], kind: "int" },
  { name: "SIMGATE_S3_MAX_SOCKETS", path: ["s3", "maxSockets"], kind: "int" },
  { name: "SIMGATE_S3_CONNECTION_TIMEOUT_MS", path: ["s3", "connectionTimeoutMs"], kind: "int" },
  { name: "SIMGATE_S3_MAX_ATTEMPTS", path: ["s3", "maxAttempts"], kind: "int" },
  { name: "SIMGATE_RAW_FORMAT", path: ["images", "rawFormat"], kind: "string" },
  { name: "SIMGATE_IMAGE_VERIFY", path: ["images", "verify"], kind: "string" },
  { name: "SIMGATE_MAX_IMAGES", path: ["images", "maxPerEvent"], kind: "int" },
  { name: "SIMGATE_MAX_MESSAGE_BYTES", path: ["limits", "maxMessageBytes"], kind: "int" },
  { name: "SIMGATE_MAX_IMAGE_PIXELS", path: ["limits", "maxImagePixels"], kind: "int" },
  { name: "SIMGATE_MAX_CONNECTIONS", path: ["limits", "maxConnections"], kind: "int" },
  { name: "SIMGATE_MAX_IN_FLIGHT", path: ["limits", "maxInFlight"], kind: "int" },
  { name: "SIMGATE_MAX_IN_FLIGHT_BYTES", path: ["limits", "maxInFlightBytes"], kind: "int" },
  { name: "SIMGATE_MAX_IN_FLIGHT_PER_CONNECTION", path: ["limits", "maxInFlightPerConnection"], kind: "int" },
  { name: "SIMGATE_WHEN_FULL", path: ["limits", "whenFull"], kind: "string" },
  { name: "SIMGATE_DEDUPE_ENTRIES", path: ["dedupe", "maxEntries"], kind: "int" },
  { name: "SIMGATE_DEDUPE_RUNS", path: ["dedupe", "maxRuns"], kind: "int" },
  { name: "SIMGATE_HEALTH_INTERVAL_MS", path: ["health", "checkIntervalMs"], kind: "int" },
  { name: "SIMGATE_PROBE_TIMEOUT_MS", path: ["health", "probeTimeoutMs"], kind: "int" },
  { name: "SIMGATE_PROBE_RETRIES", path: ["health", "probeRetries"], kind: "int" },
  { name: "SIMGATE_DRAIN_TIMEOUT_MS", path: ["shutdown", "drainTimeoutMs"], kind: "int" },
  { name: "SIMGATE_LOG_LEVEL", path: ["log", "level"], kind: "string" },
  { name: "SIMGATE_RECORDING", path: ["recording", "mode"], kind: "string" },
  { name: "SIMGATE_RECORDING_DIR", path: ["recording", "directory"], kind: "string" },
  { name: "SIMGATE_RECORDING_PREFIX", path: ["recording", "keyPrefix"], kind: "string" },
  { name: "SIMGATE_JOBS_LAUNCHER", path: ["jobs", "launcher"], kind: "string" },
  { name: "SIMGATE_JOBS_TOPICS", path: ["jobs", "topics"], kind: "list" },
  { name: "SIMGATE_JOBS_ON_RUN_END", path: ["jobs", "onRunEnd"], kind: "bool" },
  { name: "SIMGATE_JOBS_EVERY_RECORDS", path: ["jobs", "everyRecords"], kind: "int" },
  { name: "SIMGATE_JOBS_EVERY_MS", path: ["jobs", "everyMs"], kind: "int" },
  { name: "SIMGATE_JOBS_MAX_CONCURRENT", path: ["jobs", "maxConcurrent"], kind: "int" },
  { name: "SIMGATE_JOBS_MAX_ATTEMPTS", path: ["jobs", "maxAttempts"], kind: "int" },
  { name: "SIMGATE_JOBS_BACKOFF_MS", path: ["jobs", "backoffMs"], kind: "int" },
  { name: "SIMGATE_JOBS_BACKOFF_MAX_MS", path: ["jobs", "backoffMaxMs"], kind: "int" },
  { name: "SIMGATE_JOBS_TIMEOUT_MS", path: ["jobs", "timeoutMs"], kind: "int" },
  { name: "SIMGATE_JOBS_MAINTENANCE_EVERY_MS", path: ["jobs", "maintenanceEveryMs"], kind: "int" },
  { name: "SIMGATE_JOBS_HISTORY_SIZE", path: ["jobs", "historySize"], kind: "int" },
  { name: "SIMGATE_JOBS_PYTHON", path: ["jobs", "local", "python"], kind: "string" },
  { name: "SIMGATE_WAP_CONFIG", path: ["jobs", "local", "wapConfigFile"], kind: "string" },
  { name: "SIMGATE_JOBS_WARM", path: ["jobs", "local", "warm"], kind: "bool" },
  { name: "SIMGATE_JOBS_WARM_IDLE_MS", path: ["jobs", "local", "warmIdleMs"], kind: "int" },
  { name: "SIMGATE_JOBS_PREWARM", path: ["jobs", "local", "prewarm"], kind: "bool" },
  { name: "SIMGATE_JOBS_K8S_API", path: ["jobs", "kubernetes", "apiUrl"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_NAMESPACE", path: ["jobs", "kubernetes", "namespace"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_TOKEN_FILE", path: ["jobs", "kubernetes", "tokenFile"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_CA_FILE", path: ["jobs", "kubernetes", "caFile"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_IMAGE", path: ["jobs", "kubernetes", "image"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_POLL_MS", path: ["jobs", "kubernetes", "pollMs"], kind: "int" },
  { name: "SIMGATE_JOBS_K8S_LEASE", path: ["jobs", "kubernetes", "leaseName"], kind: "string" },
];

/** Read for backwards compatibility only: a JSON file holding the `jobs` section alone (the job
 *  driver's own file before it became a section of the one configuration). Its keys go over the
 *  `jobs` section of SIMGATE_CONFIG's file, and the environment over both. */
export const LEGACY_JOBS_FILE_ENV = "SIMGATE_JOBS_CONFIG";

/** Parses one environment value; throws with the variable's name when it is malformed. */
export function parseEnvValue(binding: EnvBinding, raw: string): unknown {
  switch (binding.kind) {
    case "string":
      return raw;
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${binding.name}: expected an integer, got "${raw}"`);
      return Number(raw.trim());
    }
    case "bool":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw new Error(`${binding.name}: expected true or false, got "${raw}"`);
    case "list":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    case "map": {
      // "parking.entry=parking-entries,parking.exit=parking-exits"
      const out: Record<string, string> = {};
      for (const pair of raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
        const eq = pair.indexOf("=");
        if (eq <= 0 || eq === pair.length - 1) throw new Error(`${binding.name}: expected key=value pairs separated by commas, got "${pair}"`);
        const key = pair.slice(0, eq).trim();
        if (Object.hasOwn(out, key)) throw new Error(`${binding.name}: ${key} is mapped twice ("${key}=${out[key]}" and "${pair}")`);
        out[key] = pair.slice(eq + 1).trim();
      }
      return out;
    }
  }
}

/** SIMGATE_* variables that are not the gateway's but that its environment may carry (other parts of
 *  the product: the job driver, the WAP jobs, the demo scripts, the recorder). */
const OTHER_PREFIXES = ["SIMGATE_WAP_", "SIMGATE_SPARK_", "SIMGATE_ICEBERG_", "SIMGATE_GC_", "SIMGATE_BLOB_GRACE"];
const OTHER_NAMES = new Set([
  "SIMGATE_CONFIG",
  LEGACY_JOBS_FILE_ENV,
  "SIMGATE_CACHE",
  "SIMGATE_CATALOG",
  "SIMGATE_CRDS_DIR",
  "SIMGATE_JOB_ID",
  "SIMGATE_MAVEN_SETTINGS",
  "SIMGATE_PYTHON",
  "SIMGATE_ROOT",
  "SIMGATE_STACK_HOST",
  "SIMGATE_STATE",
  "SIMGATE_VENV",
  "SIMGATE_WAREHOUSE",
]);

/** SIMGATE_* variables set in env that nothing reads (likely typos); the gateway warns about them. */
export function unknownEnvNames(env: NodeJS.ProcessEnv, extraKnown: readonly string[] = []): string[] {
  const known = new Set([...ENV_BINDINGS.map((b) => b.name), ...OTHER_NAMES, ...extraKnown]);
  return Object.keys(env)
    .filter((name) => name.startsWith("SIMGATE_") && !known.has(name) && !OTHER_PREFIXES.some((p) => name.startsWith(p)))
    .sort();
}
