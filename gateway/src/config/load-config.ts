// Loads the configuration, the job driver's section included: defaults ← JSON file (--config or
// SIMGATE_CONFIG) ← the legacy jobs file (SIMGATE_JOBS_CONFIG, its keys into `jobs`) ← environment
// variables. Fails fast with a ConfigError naming the offending key.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { configSchema, type GatewayConfig } from "./schema.js";
import { ENV_BINDINGS, LEGACY_JOBS_FILE_ENV, parseEnvValue } from "./env.js";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node: Tree = tree;
  for (const [i, key] of path.entries()) {
    if (i === path.length - 1) {
      node[key] = value;
      return;
    }
    const child = node[key];
    if (typeof child !== "object" || child === null || Array.isArray(child)) node[key] = {};
    node = node[key] as Tree;
  }
}

export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

export interface LoadOptions {
  configFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Applied last (e.g. command-line flags). */
  overrides?: Tree;
}

/** A JSON object from a file; a ConfigError naming the file otherwise. */
function readJsonObject(file: string, what: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("expected a JSON object");
    return parsed as Tree;
  } catch (err) {
    throw new ConfigError(`${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function loadConfig(options: LoadOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  let tree: Tree = {};
  const file = options.configFile ?? env["SIMGATE_CONFIG"];
  if (file !== undefined && file !== "") tree = readJsonObject(file, "config file");
  const jobsFile = env[LEGACY_JOBS_FILE_ENV];
  if (jobsFile !== undefined && jobsFile !== "") {
    const section = tree["jobs"];
    const base = typeof section === "object" && section !== null && !Array.isArray(section) ? (section as Tree) : {};
    tree["jobs"] = { ...base, ...readJsonObject(jobsFile, `${LEGACY_JOBS_FILE_ENV} file`) };
  }
  for (const binding of ENV_BINDINGS) {
    const raw = env[binding.name];
    if (raw === undefined || raw === "") continue;
    try {
      setPath(tree, binding.path, parseEnvValue(binding, raw));
    } catch (err) {
      throw new ConfigError(err instanceof Error ? err.message : String(err));
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) tree[key] = value;

  const result = configSchema.safeParse(tree);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.join(".");
      const env = ENV_BINDINGS.find((b) => b.path.join(".") === key);
      const keys = issue.code === "unrecognized_keys" ? ` ${issue.keys.join(", ")}` : "";
      return `${key === "" ? "(top level)" : key}${env ? ` (env ${env.name})` : ""}:${keys} ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const config = result.data;
  if (config.auth.token === undefined && !isLoopback(config.host)) {
    throw new ConfigError(`host: listening on ${config.host} (not loopback) requires auth.token (env SIMGATE_TOKEN)`);
  }
  for (const topic of Object.values(config.kafka.topicMap)) {
    if (topic === config.kafka.deadLetterTopic || topic === config.kafka.runsTopic) {
      throw new ConfigError(`kafka.topicMap: topic ${topic} is also the dead-letter or runs topic`);
    }
  }
  return config;
}
