// The job driver's options: every key, its default and its unit, parsed once (zod) from the environment
// (SIMGATE_JOBS_*) and an optional JSON file (SIMGATE_JOBS_CONFIG). Invalid values fail fast, naming
// the key. The driver is off unless a launcher is chosen, so a gateway without Spark runs as before.
import { readFileSync } from "node:fs";
import { z } from "zod";

const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/);

export const jobsConfigSchema = z
  .object({
    /** "none": no jobs are started (the driver still counts records and shows /jobs); "local": spawn
     *  the WAP job from the project's Python; "kubernetes": create SparkApplications. */
    launcher: z.enum(["none", "local", "kubernetes"]).default("none"),
    /** Topics with a WAP job. Empty: every event topic of the gateway's topic map. */
    topics: z.array(topicName).default([]),
    /** Start a topic's job when its run ends (a run-end record was produced). */
    onRunEnd: z.boolean().default(true),
    /** Start a topic's job after this many records since its last start (0 = off). */
    everyRecords: z.number().int().min(0).default(0),
    /** Start a topic's job this long after its first record not yet handed to a job (0 = off). */
    everyMs: z.number().int().min(0).default(0),
    /** Jobs running at once over all topics (one topic never runs twice at once). On a 2-core
     *  machine one Spark job at a time; it also runs entries before exits when a run end starts both. */
    maxConcurrent: z.number().int().min(1).default(1),
    /** Attempts per job, the first included; then the job is given up until the next trigger. */
    maxAttempts: z.number().int().min(1).default(4),
    /** Back-off before attempt n+1: backoffMs * 2^(n-1), at most backoffMaxMs. */
    backoffMs: z.number().int().min(0).default(10_000),
    backoffMaxMs: z.number().int().min(0).default(300_000),
    /** A job running longer is stopped and counts as failed. */
    timeoutMs: z.number().int().min(1000).default(30 * 60_000),
    /** Storage maintenance (simgate.lakehouse.maintenance: compaction, manifest rewrite on main) every
     *  this many ms, queued with the WAP runs so it never runs beside them (0 = off; local launcher
     *  only: in a cluster it is a ScheduledSparkApplication). */
    maintenanceEveryMs: z.number().int().min(0).default(0),
    /** Finished runs kept for /jobs. */
    historySize: z.number().int().min(1).default(50),
    local: z
      .object({
        /** Python of the project's venv (pyspark, the lakehouse-jobs package). Default <repo>/.venv/bin/python. */
        python: z.string().min(1).optional(),
        /** The job's JSON configuration (passed as --config). */
        wapConfigFile: z.string().min(1).optional(),
        /** Extra environment for the job (the stack settings are passed through from the gateway's). */
        env: z.record(z.string(), z.string()).default({}),
        /** WAP runs go to a warm worker that keeps its Spark session between runs (no JVM start per
         *  run); false: one process per run. A worker whose JVM died is replaced at the next run. */
        warm: z.boolean().default(true),
        /** A warm worker idle this long is stopped (its JVM holds about 1 GB); the next run starts one. */
        warmIdleMs: z.number().int().min(1000).default(600_000),
      })
      .strict()
      .prefault({}),
    kubernetes: z
      .object({
        /** API server; in a pod, https://kubernetes.default.svc. */
        apiUrl: z.string().url().default("https://kubernetes.default.svc"),
        /** Namespace of the SparkApplications; default: the service account's namespace file, else "simgate". */
        namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).optional(),
        tokenFile: z.string().default("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        caFile: z.string().default("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        image: z.string().min(1).default("registry.example.com/simgate/lakehouse-jobs:0.1.0"),
        serviceAccount: z.string().min(1).default("simgate-spark"),
        /** How often a running SparkApplication's state is read. */
        pollMs: z.number().int().min(100).default(5_000),
        executorInstances: z.number().int().min(1).default(2),
        /** Leader election among the gateway replicas (leader-lease.ts): only the holder of this
         *  coordination.k8s.io Lease starts jobs. "" turns it off (a single replica). */
        leaseName: z.union([z.literal(""), z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)]).default("simgate-gateway-jobs"),
        /** A holder that has not renewed for this long is replaced; it renews every leaseDurationMs / 7.5 (client-go's 15 s / 2 s). */
        leaseDurationMs: z.number().int().min(3000).default(15_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type JobsConfig = z.output<typeof jobsConfigSchema>;
export type JobsConfigInput = z.input<typeof jobsConfigSchema>;

export class JobsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JobsConfigError";
  }
}

type Kind = "string" | "int" | "bool" | "list";
const ENV: ReadonlyArray<{ name: string; path: readonly string[]; kind: Kind }> = [
  { name: "SIMGATE_JOBS_LAUNCHER", path: ["launcher"], kind: "string" },
  { name: "SIMGATE_JOBS_TOPICS", path: ["topics"], kind: "list" },
  { name: "SIMGATE_JOBS_ON_RUN_END", path: ["onRunEnd"], kind: "bool" },
  { name: "SIMGATE_JOBS_EVERY_RECORDS", path: ["everyRecords"], kind: "int" },
  { name: "SIMGATE_JOBS_EVERY_MS", path: ["everyMs"], kind: "int" },
  { name: "SIMGATE_JOBS_MAX_CONCURRENT", path: ["maxConcurrent"], kind: "int" },
  { name: "SIMGATE_JOBS_MAX_ATTEMPTS", path: ["maxAttempts"], kind: "int" },
  { name: "SIMGATE_JOBS_BACKOFF_MS", path: ["backoffMs"], kind: "int" },
  { name: "SIMGATE_JOBS_BACKOFF_MAX_MS", path: ["backoffMaxMs"], kind: "int" },
  { name: "SIMGATE_JOBS_TIMEOUT_MS", path: ["timeoutMs"], kind: "int" },
  { name: "SIMGATE_JOBS_MAINTENANCE_EVERY_MS", path: ["maintenanceEveryMs"], kind: "int" },
  { name: "SIMGATE_JOBS_PYTHON", path: ["local", "python"], kind: "string" },
  { name: "SIMGATE_WAP_CONFIG", path: ["local", "wapConfigFile"], kind: "string" },
  { name: "SIMGATE_JOBS_WARM", path: ["local", "warm"], kind: "bool" },
  { name: "SIMGATE_JOBS_WARM_IDLE_MS", path: ["local", "warmIdleMs"], kind: "int" },
  { name: "SIMGATE_JOBS_K8S_API", path: ["kubernetes", "apiUrl"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_NAMESPACE", path: ["kubernetes", "namespace"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_TOKEN_FILE", path: ["kubernetes", "tokenFile"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_CA_FILE", path: ["kubernetes", "caFile"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_IMAGE", path: ["kubernetes", "image"], kind: "string" },
  { name: "SIMGATE_JOBS_K8S_POLL_MS", path: ["kubernetes", "pollMs"], kind: "int" },
  { name: "SIMGATE_JOBS_K8S_LEASE", path: ["kubernetes", "leaseName"], kind: "string" },
];

function parseValue(name: string, kind: Kind, raw: string): unknown {
  switch (kind) {
    case "string":
      return raw;
    case "int":
      if (!/^\d+$/.test(raw.trim())) throw new JobsConfigError(`${name}: expected a non-negative integer, got "${raw}"`);
      return Number(raw.trim());
    case "bool":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw new JobsConfigError(`${name}: expected true or false, got "${raw}"`);
    case "list":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }
}

export function loadJobsConfig(env: NodeJS.ProcessEnv = process.env): JobsConfig {
  let tree: Record<string, unknown> = {};
  const file = env["SIMGATE_JOBS_CONFIG"];
  if (file) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("expected a JSON object");
      tree = parsed as Record<string, unknown>;
    } catch (err) {
      throw new JobsConfigError(`SIMGATE_JOBS_CONFIG ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const binding of ENV) {
    const raw = env[binding.name];
    if (raw === undefined || raw === "") continue;
    let node = tree;
    for (const key of binding.path.slice(0, -1)) {
      const child = node[key];
      if (typeof child !== "object" || child === null || Array.isArray(child)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[binding.path[binding.path.length - 1] as string] = parseValue(binding.name, binding.kind, raw);
  }
  return parseJobsConfig(tree);
}

export function parseJobsConfig(input: unknown): JobsConfig {
  const result = jobsConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join(".");
      const env = ENV.find((b) => b.path.join(".") === key);
      return `jobs.${key}${env ? ` (env ${env.name})` : ""}: ${issue.message}`;
    });
    throw new JobsConfigError(`invalid job driver configuration:\n  ${lines.join("\n  ")}`);
  }
  return result.data;
}
