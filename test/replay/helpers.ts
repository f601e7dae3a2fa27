// Shared by the replay integration tests: run the built `simgate` CLI, read a recording's events, read
// what the gateway stored.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { RecordingReader } from "../../gateway/src/recording/reader.js";
import { ensureGatewayBuilt, GATEWAY_MAIN, REPO_ROOT } from "../support/gateway.js";
import { readTopic, type ConsumedRecord } from "../support/stack.js";

export { REPO_ROOT };
export const PYTHON = process.env["SIMGATE_PYTHON"] ?? join(REPO_ROOT, ".venv/bin/python");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  ensureGatewayBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [GATEWAY_MAIN, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function recordedEvents(path: string): Promise<simgate.v1.Event[]> {
  const reader = await RecordingReader.open(path);
  const events: simgate.v1.Event[] = [];
  try {
    for await (const item of reader.frames()) {
      if (item.kind === "corrupt") throw new Error(item.error.describe());
      if (item.frame.event) events.push(item.frame.event as simgate.v1.Event);
    }
  } finally {
    await reader.close();
  }
  return events;
}

export interface EventRecord {
  record: ConsumedRecord;
  body: {
    eventId: string;
    runId: string;
    sequence: number;
    eventType: string;
    carId: string | null;
    simTimeSeconds: number;
    coordinates: { slotId: string; x: number; y: number; z: number; yawDeg: number } | null;
    images: { view: string; uri: string; sha256: string; sizeBytes: number; width: number; height: number }[];
    attributes: Record<string, string>;
  };
}

/** The event records of one run in the given topics. */
export async function runRecords(topics: string[], runId: string): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (const topic of topics) {
    for (const record of await readTopic(topic)) {
      if (record.headers["run-id"] !== runId) continue;
      out.push({ record, body: JSON.parse(record.value ?? "{}") as EventRecord["body"] });
    }
  }
  return out;
}

export function summaryOf(stdoutJsonPath: string): Promise<Record<string, unknown>> {
  return import("node:fs/promises").then(async (fs) => JSON.parse(await fs.readFile(stdoutJsonPath, "utf8")) as Record<string, unknown>);
}
