// The parts of the fault matrix: a private stack started with the project's own script (signals go to
// the pids it recorded), the real gateway on fixed ports (so a restarted one is found at the same
// address), the real replayer, the real WAP job, and the counting of what landed in Kafka and on main.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import protobuf from "protobufjs";
import { freePort, GATEWAY_MAIN, pollUntil, REPO_ROOT } from "../support/gateway.js";
import { readTopic } from "../support/stack.js";

const run = promisify(execFile);
export const STACK_SCRIPT = join(REPO_ROOT, "deploy/local/stack");
export const PYTHON = join(REPO_ROOT, ".venv/bin/python");

export function log(message: string): void {
  process.stderr.write(`[faults ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------
// The stack: deploy/local/stack with a private SIMGATE_STATE; ports from the environment when set
// (a helper's port block), else free ones.

export type Service = "kafka" | "s3" | "nessie";

export class FaultStack {
  readonly env: Record<string, string>;
  private constructor(
    readonly state: string,
    private readonly baseEnv: Record<string, string>,
    endpoints: Record<string, string>,
  ) {
    this.env = { ...baseEnv, ...endpoints };
  }

  static async start(state: string, services: Service[] = ["s3", "kafka", "nessie"], portsFromEnv = true): Promise<FaultStack> {
    mkdirSync(state, { recursive: true });
    const port = async (name: string): Promise<string> => (portsFromEnv ? process.env[name] : undefined) ?? String(await freePort());
    const base: Record<string, string> = {
      SIMGATE_STATE: state,
      KAFKA_PORT: await port("KAFKA_PORT"),
      KAFKA_CONTROLLER_PORT: await port("KAFKA_CONTROLLER_PORT"),
      S3_PORT: await port("S3_PORT"),
      NESSIE_PORT: await port("NESSIE_PORT"),
      NESSIE_MANAGEMENT_PORT: await port("NESSIE_MANAGEMENT_PORT"),
    };
    // A loaded machine starts Nessie and Kafka slowly: the stack's own readiness wait, longer.
    base["UP_TIMEOUT_SECONDS"] = process.env["UP_TIMEOUT_SECONDS"] ?? "300";
    await stackCall(base, ["up", ...services]);
    const { stdout } = await run(STACK_SCRIPT, ["env"], { env: { ...process.env, ...base } });
    const endpoints: Record<string, string> = {};
    for (const line of stdout.split("\n")) {
      const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m && m[1] && m[2] !== undefined) endpoints[m[1]] = m[2].replace(/^['"]|['"]$/g, "");
    }
    return new FaultStack(state, base, endpoints);
  }

  up(...services: Service[]): Promise<void> {
    return stackCall(this.baseEnv, ["up", ...services]);
  }

  down(...services: Service[]): Promise<void> {
    return stackCall(this.baseEnv, ["down", ...services]);
  }

  /** The pid `stack up` recorded for a service. */
  pid(service: Service): number {
    return Number(readFileSync(join(this.state, "run", `${service}.pid`), "utf8").trim());
  }

  signal(service: Service, signal: NodeJS.Signals): void {
    const pid = this.pid(service);
    // The service runs in its own session (setsid): signal the process the script started.
    process.kill(pid, signal);
    log(`${signal} → ${service} (pid ${pid})`);
  }

  /** SIGKILL and wait until the process is gone. */
  async kill(service: Service): Promise<void> {
    const pid = this.pid(service);
    this.signal(service, "SIGKILL");
    await pollUntil(`${service} (pid ${pid}) to exit`, async () => !alive(pid), 30_000, 50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stackCall(env: Record<string, string>, args: string[]): Promise<void> {
  try {
    await run(STACK_SCRIPT, args, { env: { ...process.env, ...env }, timeout: 240_000 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`stack ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The gateway: the built one, on fixed ports, its log appended to a file.

export interface Topics {
  entries: string;
  exits: string;
  runs: string;
  deadLetter: string;
}

export function topicsFor(suffix: string): Topics {
  return {
    entries: `parking-entries-${suffix}`,
    exits: `parking-exits-${suffix}`,
    runs: `simgate-runs-${suffix}`,
    deadLetter: `simgate-dead-letter-${suffix}`,
  };
}

export class GatewayProc {
  child: ChildProcess | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);
  starts = 0;
  private constructor(
    readonly grpcPort: number,
    readonly httpPort: number,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
  ) {}

  static async create(stack: FaultStack, topics: Topics, logFile: string, extraEnv: Record<string, string> = {}): Promise<GatewayProc> {
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const env: Record<string, string> = {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      ...stack.env,
      SIMGATE_HOST: "127.0.0.1",
      SIMGATE_GRPC_PORT: String(grpcPort),
      SIMGATE_HTTP_PORT: String(httpPort),
      SIMGATE_TOPIC_MAP: `parking.entry=${topics.entries},parking.exit=${topics.exits}`,
      SIMGATE_RUNS_TOPIC: topics.runs,
      SIMGATE_DEAD_LETTER_TOPIC: topics.deadLetter,
      SIMGATE_HEALTH_INTERVAL_MS: "500",
      SIMGATE_LOG_LEVEL: "info",
      ...extraEnv,
    };
    return new GatewayProc(grpcPort, httpPort, env, logFile);
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.httpPort}/v1/events`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(waitReady = true): Promise<void> {
    const fd = openSync(this.logFile, "a");
    const child = spawn(process.execPath, [GATEWAY_MAIN, "gateway"], { cwd: REPO_ROOT, env: this.env, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.child = child;
    this.starts += 1;
    this.exited = new Promise((r) => child.once("exit", (code) => r(code)));
    if (!waitReady) return;
    await pollUntil(
      "the gateway's /readyz",
      async () => {
        if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}; see ${this.logFile}`);
        const res = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`, { signal: AbortSignal.timeout(2000) });
        return res.status === 200;
      },
      120_000,
      100,
    );
  }

  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    log(`SIGKILL → gateway (pid ${this.child.pid})`);
    this.child.kill("SIGKILL");
    await this.exited;
  }

  async stop(): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? null;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), 60_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

// ---------------------------------------------------------------------------------------------------
// The recording: its event ids, read with the wire contract (proto/) and the documented frame layout
// (docs/recording-format.md), independent of the gateway's code.

let root: protobuf.Root | null = null;
export function contract(): protobuf.Root {
  root ??= protobuf.loadSync(join(REPO_ROOT, "proto/simgate/v1/simgate.proto"));
  return root;
}

export interface RecordedEvent {
  eventId: string;
  eventType: string;
}

export function recordingFrames(path: string): Uint8Array[] {
  const bytes = readFileSync(path);
  if (bytes.subarray(0, 6).toString("ascii") !== "SIMREC") throw new Error(`${path}: not a recording`);
  const frames: Uint8Array[] = [];
  let at = 8;
  while (at + 12 <= bytes.length) {
    if (bytes.subarray(at, at + 4).toString("ascii") !== "SGFR") throw new Error(`${path}: no frame marker at ${at}`);
    const length = bytes.readUInt32BE(at + 4);
    frames.push(bytes.subarray(at + 12, at + 12 + length));
    at += 12 + length;
  }
  return frames.slice(1); // frame 0 is the header
}

/** The events of a recording, with their ids as a replay `--as-run runId` sends them. */
export function recordedEvents(path: string, asRun: string): RecordedEvent[] {
  const ClientFrame = contract().lookupType("simgate.v1.ClientFrame");
  const out: RecordedEvent[] = [];
  for (const payload of recordingFrames(path)) {
    const frame = ClientFrame.toObject(ClientFrame.decode(payload), { longs: Number }) as { event?: { eventId: string; runId: string; eventType: string } };
    const e = frame.event;
    if (!e) continue;
    const id = e.eventId.startsWith(e.runId) ? asRun + e.eventId.slice(e.runId.length) : e.eventId;
    out.push({ eventId: id, eventType: e.eventType });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Kafka: progress (sum of the high-water marks) and the records with their event ids.

export class KafkaProgress {
  private readonly kafka: Kafka;
  private admin: ReturnType<Kafka["admin"]> | null = null;
  constructor(bootstrap: string, private readonly topics: string[]) {
    this.kafka = new Kafka({ clientId: "simgate-faults", brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 2000, requestTimeout: 3000 });
  }

  /** Records in the topics so far, or null when Kafka does not answer. */
  async records(): Promise<number | null> {
    try {
      if (!this.admin) {
        this.admin = this.kafka.admin();
        await this.admin.connect();
      }
      let total = 0;
      for (const topic of this.topics) {
        for (const o of await this.admin.fetchTopicOffsets(topic)) total += Number(o.high) - Number(o.low);
      }
      return total;
    } catch {
      await this.close();
      return null;
    }
  }

  private base = 0;

  /** Counts from here on: waitFor(n) waits for n records more than there are now. */
  async mark(): Promise<void> {
    this.base = (await this.records()) ?? 0;
  }

  async waitFor(records: number, timeoutMs = 600_000): Promise<number> {
    return pollUntil(`${records} records in ${this.topics.join(", ")}`, async () => {
      const n = await this.records();
      return n !== null && n - this.base >= records ? n : undefined;
    }, timeoutMs, 100);
  }

  async close(): Promise<void> {
    const a = this.admin;
    this.admin = null;
    await a?.disconnect().catch(() => undefined);
  }
}

export async function eventIdsInTopic(topic: string, bootstrap: string): Promise<string[]> {
  const records = await readTopic(topic, bootstrap, 120_000);
  return records.map((r) => {
    try {
      return String((JSON.parse(r.value ?? "null") as { eventId?: string }).eventId ?? `?${r.partition}:${r.offset}`);
    } catch {
      return `?${r.partition}:${r.offset}`;
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// The replayer and the WAP job, as the project runs them.

export interface ReplayResult {
  code: number | null;
  summary: { sent?: number; resends?: number; accepted?: number; duplicate?: number; rejected?: number; unanswered?: number; fatal?: string | null; totals?: { accepted: number; duplicate: number } } | null;
}

export function startReplay(recording: string, gw: GatewayProc, runId: string, dir: string, transport: "grpc" | "ws" = "grpc"): { child: ChildProcess; done: Promise<ReplayResult> } {
  const summaryFile = join(dir, `replay-${runId}.json`);
  const logFile = openSync(join(dir, `replay-${runId}.log`), "a");
  const args = [
    GATEWAY_MAIN, "replay", recording, "--max", "--as-run", runId,
    "--transport", transport, "--gateway", transport === "grpc" ? gw.grpcAddress : gw.wsUrl,
    "--checkpoint", join(dir, `replay-${runId}.ckpt`), "--summary-json", summaryFile,
    "--progress", "lines", "--give-up-after", "600000", "--concurrency", "16",
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", logFile, logFile] });
  closeSync(logFile);
  const done = new Promise<ReplayResult>((resolveDone) => {
    child.once("exit", (code) => {
      let summary: ReplayResult["summary"] = null;
      if (existsSync(summaryFile)) summary = JSON.parse(readFileSync(summaryFile, "utf8")) as ReplayResult["summary"];
      resolveDone({ code, summary });
    });
  });
  return { child, done };
}

export function wapConfig(topics: Topics, file: string): string {
  const required = ["eventId", "runId", "eventType", "timeStamp", "carId", "sequence"];
  writeFileSync(
    file,
    JSON.stringify({
      runsTopic: topics.runs,
      topics: {
        [topics.entries]: { eventType: "parking.entry", requiredFields: [...required, "coordinates"], orderWith: [topics.exits] },
        [topics.exits]: { eventType: "parking.exit", entryTopic: topics.entries, orderWith: [topics.entries] },
      },
    }),
  );
  return file;
}

export interface WapRun {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; result: Record<string, unknown> | null }>;
  /** Resolves when the job's stderr shows this text. */
  saw(text: string): Promise<void>;
}

export function startWap(stack: FaultStack, topic: string, config: string, logFile: string, extraEnv: Record<string, string> = {}): WapRun {
  const child = spawn(PYTHON, ["-m", "simgate.lakehouse.wap", "--topic", topic, "--config", config], {
    cwd: join(REPO_ROOT, "lakehouse-jobs"),
    env: { ...process.env, ...stack.env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const fd = openSync(logFile, "a");
  let stdout = "";
  let stderr = "";
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
    writeFileSync(fd, c);
  });
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
    writeFileSync(fd, c);
    for (const w of [...waiters]) if (stderr.includes(w.text)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; result: Record<string, unknown> | null }>((r) => {
    child.once("close", (code, signal) => {
      closeSync(fd);
      const line = stdout.split("\n").reverse().find((l) => l.startsWith("SIMGATE_WAP_RESULT "));
      r({ code, signal, result: line ? (JSON.parse(line.slice("SIMGATE_WAP_RESULT ".length)) as Record<string, unknown>) : null });
    });
  });
  return {
    child,
    done,
    saw: (text) => (stderr.includes(text) ? Promise.resolve() : new Promise((resolve) => waiters.push({ text, resolve }))),
  };
}

/** Runs a topic's WAP job until it publishes (or has nothing new), like the gateway's job driver retries. */
export async function wapUntilDone(stack: FaultStack, topic: string, config: string, logFile: string, attempts = 4): Promise<{ runs: number; last: Record<string, unknown> | null }> {
  for (let i = 1; i <= attempts; i++) {
    const { code, result } = await startWap(stack, topic, config, logFile).done;
    if (code === 0) return { runs: i, last: result };
    log(`WAP ${topic}: exit ${code} (${JSON.stringify(result?.["problems"] ?? null)}); retrying`);
    await sleep(2000);
  }
  throw new Error(`WAP ${topic} did not publish in ${attempts} runs; see ${logFile}`);
}

export interface LakeRows {
  production: string[];
  untrusted: Array<{ eventId: string | null; reasons: string[] }>;
}

export async function lakeRows(stack: FaultStack, topics: string[]): Promise<Record<string, LakeRows>> {
  const { stdout } = await run(PYTHON, [join(REPO_ROOT, "test/faults/lake_rows.py"), ...topics.flatMap((t) => ["--topic", t])], {
    cwd: join(REPO_ROOT, "lakehouse-jobs"),
    env: { ...process.env, ...stack.env },
    maxBuffer: 256 * 1024 * 1024,
    timeout: 600_000,
  });
  const line = stdout.split("\n").find((l) => l.startsWith("SIMGATE_LAKE_ROWS "));
  if (!line) throw new Error(`lake_rows.py printed no result:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice("SIMGATE_LAKE_ROWS ".length)) as Record<string, LakeRows>;
}
