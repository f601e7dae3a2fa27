// Measurement helpers shared by the benchmarks (main.ts, peers.ts): CPU time of processes from /proc,
// the local stack's pids, percentiles and medians, and a closed-loop driver.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../support/gateway.js";

/** A local stack process (deploy/local/stack writes its pid under SIMGATE_STATE), or undefined. */
export function stackPid(name: string): number | undefined {
  const file = join(process.env["SIMGATE_STATE"] ?? join(REPO_ROOT, ".simgate"), "run", `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return pid > 0 && existsSync(`/proc/${pid}/stat`) ? pid : undefined;
}

/** CPU time (user + system) of a process, in ms, from /proc; NaN once it has gone. */
export function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return (ticks * 1000) / 100; // USER_HZ = 100 on Linux
  } catch {
    return Number.NaN;
  }
}

export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export function median(values: number[]): number {
  const sorted = [...values].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface DriveResult {
  latencies: number[];
  events: number;
  seconds: number;
  errors: number;
  /** Calls completed since the window opened (including those after it closed): the CPU divisor. */
  completedSinceOpen: number;
}

/** Runs `lanes` workers that each repeat `one()` until the time is up. The measurement window opens
 *  after the warm-up AND the first completion (so slow, deep pipelines are measured in steady state)
 *  and lasts `seconds`; it counts the calls that complete inside it, with their latencies. */
export async function drive(lanes: number, seconds: number, warmupSeconds: number, one: (lane: number, seq: number) => Promise<boolean>, onWarm: () => void): Promise<DriveResult> {
  const latencies: number[] = [];
  let events = 0;
  let completedSinceOpen = 0;
  let errors = 0;
  let seq = 0;
  const warmEnd = Date.now() + warmupSeconds * 1000;
  let start = 0;
  let end = Number.POSITIVE_INFINITY;
  const open = (now: number): void => {
    if (start === 0 && now >= warmEnd) {
      start = now;
      end = now + seconds * 1000;
      onWarm();
    }
  };
  const lane = async (k: number): Promise<void> => {
    while (Date.now() < end) {
      const t0 = performance.now();
      const ok = await one(k, ++seq);
      const now = Date.now();
      const ms = performance.now() - t0;
      open(now);
      if (start !== 0) completedSinceOpen++;
      if (start !== 0 && now <= end) {
        if (ok) {
          events++;
          latencies.push(ms);
        } else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, (_, k) => lane(k)));
  return { latencies, events, seconds: (end - start) / 1000, errors, completedSinceOpen };
}

/** Prints rows as a Markdown table with right-aligned cells. */
export function printMarkdownTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
}
