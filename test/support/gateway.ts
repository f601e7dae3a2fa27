// Test helper: runs the BUILT gateway (`node gateway/dist/cli/main.js gateway`) as a child process,
// configured through environment variables only, on free ports and with unique topic names, and waits
// until /readyz answers 200. Used by the gateway's tests and by every other part that needs a gateway.
//
//   const gw = await startGateway({ token: "a-token-of-16-chars+" });
//   ... gRPC at gw.grpcAddress, WebSocket at gw.wsUrl, topics in gw.topics ...
//   await gw.stop();   // SIGTERM: drains, exits 0 (returns the exit code)
//
// The stack's settings (KAFKA_BOOTSTRAP, S3_ENDPOINT, ...) are passed through from the environment.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { request as httpsRequest } from "node:https";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** SIMGATE_TEST_GATEWAY_DIST runs the tests against another build of the gateway (a before/after
 *  comparison); it is used as it is, never rebuilt. */
const OTHER_DIST = process.env["SIMGATE_TEST_GATEWAY_DIST"];
export const GATEWAY_MAIN = OTHER_DIST ? resolve(OTHER_DIST, "cli/main.js") : join(REPO_ROOT, "gateway/dist/cli/main.js");

/** The local stack's settings, from the environment with the defaults of deploy/local/stack. */
export const STACK = {
  kafkaBootstrap: process.env["KAFKA_BOOTSTRAP"] ?? "127.0.0.1:9092",
  s3Endpoint: process.env["S3_ENDPOINT"] ?? "http://127.0.0.1:9333",
  s3AccessKey: process.env["S3_ACCESS_KEY"] ?? "simgate",
  s3SecretKey: process.env["S3_SECRET_KEY"] ?? "simgate-secret",
  s3Region: process.env["S3_REGION"] ?? "us-east-1",
  blobBucket: process.env["S3_BLOB_BUCKET"] ?? "simgate-blobs",
};

export interface StartGatewayOptions {
  /** Bearer token (SIMGATE_TOKEN); unset = no auth, loopback. */
  token?: string;
  /** Event type → topic. Default: parking.entry / parking.exit mapped to unique topic names. */
  topicMap?: Record<string, string>;
  /** Suffix that makes the default topic names unique; random by default. */
  topicSuffix?: string;
  /** Extra environment variables (any SIMGATE_* option, or KAFKA_BOOTSTRAP / S3_* to point elsewhere). */
  env?: Record<string, string>;
  /** How long to wait for /readyz (default 60 s). */
  readyTimeoutMs?: number;
  /** Wait for /readyz = 200 (default true); false returns as soon as /healthz answers. */
  waitReady?: boolean;
  /** TLS: PEM certificate and key files for the gateway, and the CA (PEM text) the helper trusts. */
  tls?: { certFile: string; keyFile: string; ca: string };
  /** Extra arguments for node before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Copy the gateway's log lines to this process's stderr. */
  echoLogs?: boolean;
}

export interface TestGateway {
  grpcAddress: string;
  grpcPort: number;
  httpUrl: string;
  httpPort: number;
  wsUrl: string;
  topics: { entries: string; exits: string; deadLetter: string; runs: string; map: Record<string, string> };
  token: string | undefined;
  env: Record<string, string>;
  process: ChildProcess;
  /** Log lines (JSON) printed so far. */
  logs(): string[];
  /** GET a path on the HTTP port; returns status and body text. */
  get(path: string): Promise<{ status: number; body: string }>;
  isReady(): Promise<boolean>;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
}

export { freePort };

export function uniqueId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

let buildChecked = false;
/** Builds the gateway when dist/ is missing or older than src/ (once per test process). */
export function ensureGatewayBuilt(): void {
  if (buildChecked || OTHER_DIST) return;
  const stale = !existsSync(GATEWAY_MAIN) || newestMtime(join(REPO_ROOT, "gateway/src")) > statSync(GATEWAY_MAIN).mtimeMs;
  if (stale) {
    const result = spawnSync("npm", ["run", "build", "-w", "gateway"], { cwd: REPO_ROOT, stdio: "inherit" });
    if (result.status !== 0) throw new Error("building the gateway failed (npm run build -w gateway)");
  }
  buildChecked = true;
}

/** Thrown inside a pollUntil callback to stop polling at once. */
export class GiveUp extends Error {}

export async function pollUntil<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function startGateway(options: StartGatewayOptions = {}): Promise<TestGateway> {
  ensureGatewayBuilt();
  const suffix = options.topicSuffix ?? uniqueId("t");
  const map = options.topicMap ?? { "parking.entry": `parking-entries-${suffix}`, "parking.exit": `parking-exits-${suffix}` };
  const deadLetter = `simgate-dead-letter-${suffix}`;
  const runs = `simgate-runs-${suffix}`;
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    KAFKA_BOOTSTRAP: STACK.kafkaBootstrap,
    S3_ENDPOINT: STACK.s3Endpoint,
    S3_ACCESS_KEY: STACK.s3AccessKey,
    S3_SECRET_KEY: STACK.s3SecretKey,
    S3_REGION: STACK.s3Region,
    S3_BLOB_BUCKET: STACK.blobBucket,
    SIMGATE_HOST: "127.0.0.1",
    SIMGATE_GRPC_PORT: String(grpcPort),
    SIMGATE_HTTP_PORT: String(httpPort),
    SIMGATE_TOPIC_MAP: Object.entries(map).map(([k, v]) => `${k}=${v}`).join(","),
    SIMGATE_DEAD_LETTER_TOPIC: deadLetter,
    SIMGATE_RUNS_TOPIC: runs,
    SIMGATE_HEALTH_INTERVAL_MS: "500",
    SIMGATE_LOG_LEVEL: "info",
    ...(options.token !== undefined ? { SIMGATE_TOKEN: options.token } : {}),
    ...(options.tls ? { SIMGATE_TLS_CERT: options.tls.certFile, SIMGATE_TLS_KEY: options.tls.keyFile } : {}),
    ...options.env,
  };
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), GATEWAY_MAIN, "gateway"], {
    cwd: REPO_ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString("utf8");
    for (const line of text.split("\n")) if (line.trim() !== "") lines.push(line);
    if (options.echoLogs) process.stderr.write(text);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));

  const tls = options.tls;
  const httpUrl = `${tls ? "https" : "http"}://127.0.0.1:${httpPort}`;
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    if (!tls) {
      const res = await fetch(`${httpUrl}${path}`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: await res.text() };
    }
    return new Promise((resolveGet, reject) => {
      const req = httpsRequest(`${httpUrl}${path}`, { ca: tls.ca, servername: "localhost", timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolveGet({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      });
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.end();
    });
  };
  const isReady = async (): Promise<boolean> => {
    try {
      return (await get("/readyz")).status === 200;
    } catch {
      return false;
    }
  };
  const gateway: TestGateway = {
    grpcAddress: `127.0.0.1:${grpcPort}`,
    grpcPort,
    httpUrl,
    httpPort,
    wsUrl: `${tls ? "wss" : "ws"}://127.0.0.1:${httpPort}${env["SIMGATE_WS_PATH"] ?? "/v1/events"}`,
    topics: { entries: map["parking.entry"] ?? "", exits: map["parking.exit"] ?? "", deadLetter, runs, map },
    token: options.token,
    env,
    process: child,
    logs: () => [...lines],
    get,
    isReady,
    stop: async (timeoutMs = 60_000) => {
      if (exitCode !== undefined) return exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill: async () => {
      if (exitCode !== undefined) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
  try {
    await pollUntil(
      options.waitReady === false ? "the gateway's /healthz" : "the gateway's /readyz",
      async () => {
        if (exitCode !== undefined) throw new GiveUp(`the gateway exited with ${exitCode}:\n${lines.slice(-20).join("\n")}`);
        if (options.waitReady === false) return (await get("/healthz")).status === 200;
        return isReady();
      },
      options.readyTimeoutMs ?? 60_000,
      100,
    );
  } catch (err) {
    await gateway.kill();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- gateway log ---\n${lines.slice(-30).join("\n")}`);
  }
  return gateway;
}
