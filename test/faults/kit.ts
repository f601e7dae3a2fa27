// The Kit worker's faults: test/faults/kit_worker.py drives the extension's real GatewayWorker (outbox,
// DiskSpool, gRPC transport) headless against the real gateway, which this side takes away for 60 s.
// "disk-full" puts the spool on a small tmpfs (mount -t tmpfs, so root), larger limits than the disk.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../support/gateway.js";
import { log, PYTHON, sleep } from "./harness.js";
import type { FaultContext, Outcome } from "./main.js";

interface KitProgress {
  submitted: number;
  events: number;
  answered: number;
  spool_frames: number;
  spool_bytes: number;
  spool_dropped: number;
  worker_alive: boolean;
}

interface KitResult {
  events: number;
  submitted: number;
  acceptedIds: string[];
  rejected: string[];
  pendingAtEnd: number;
  workerStopped: boolean;
  stats: Record<string, number>;
  spoolDropped: number;
  errors: string[];
  errorCount: number;
}

export const TMPFS_BYTES = 4 * 1024 * 1024;

export async function runKitFault(ctx: FaultContext, kind: "outage" | "disk-full", events: number): Promise<Outcome> {
  const spoolDir = join(ctx.dir, "spool");
  mkdirSync(spoolDir, { recursive: true });
  let mounted = false;
  if (kind === "disk-full") {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_BYTES}`, "simgate-faults-spool", spoolDir]);
    mounted = true;
    log(`spool on a ${TMPFS_BYTES / 1024 / 1024} MiB tmpfs at ${spoolDir}`);
  }
  try {
    const logFd = openSync(join(ctx.dir, "kit-worker.log"), "a");
    const child = spawn(
      PYTHON,
      [join(REPO_ROOT, "test/faults/kit_worker.py"), "--recording", ctx.recording, "--as-run", ctx.runId, "--gateway", ctx.gateway.grpcAddress, "--spool", spoolDir, "--rate", "40"],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", logFd] },
    );
    closeSync(logFd);
    let latest: KitProgress | null = null;
    let result: KitResult | null = null;
    let peak = { frames: 0, bytes: 0 };
    let buffered = "";
    child.stdout?.on("data", (c: Buffer) => {
      buffered += c.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith("SIMGATE_KIT_PROGRESS ")) {
          latest = JSON.parse(line.slice(21)) as KitProgress;
          peak = { frames: Math.max(peak.frames, latest.spool_frames), bytes: Math.max(peak.bytes, latest.spool_bytes) };
        } else if (line.startsWith("SIMGATE_KIT_RESULT ")) result = JSON.parse(line.slice(19)) as KitResult;
      }
    });
    const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
    // The outage: the gateway goes away at 20 % of the submitted events and comes back 60 s later.
    const trigger = Math.floor(events * 0.2);
    const deadline = Date.now() + 600_000;
    while (((latest as KitProgress | null)?.submitted ?? 0) < trigger) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error("the Kit worker did not reach the outage point");
      await sleep(100);
    }
    await ctx.gateway.kill();
    log("gateway away for 60 s");
    await sleep(60_000);
    const during = latest as KitProgress | null;
    await ctx.gateway.start();
    log(`gateway back; spool held ${peak.frames} frames / ${(peak.bytes / 1e6).toFixed(1)} MB at most`);
    const code = await exited;
    const r = result as KitResult | null;
    if (!r) throw new Error(`the Kit worker printed no result (exit ${code}); see ${join(ctx.dir, "kit-worker.log")}`);
    writeFileSync(join(ctx.dir, "kit-result.json"), JSON.stringify(r, null, 1));
    const notes = [`spool peak ${peak.frames} frames, ${(peak.bytes / 1e6).toFixed(1)} MB`];
    if (during && !during.worker_alive) notes.push("worker thread died during the outage");
    if (r.errorCount > 0) notes.push(`submit raised ${r.errorCount}x: ${r.errors[0]}`);
    if (r.pendingAtEnd > 0) notes.push(`${r.pendingAtEnd} frames never delivered`);
    const unaccounted = r.events - r.acceptedIds.length - r.rejected.length - r.spoolDropped;
    if (unaccounted !== 0) notes.push(`${unaccounted} events neither accepted nor counted as dropped`);
    return {
      sent: r.submitted,
      resends: r.stats["resent"] ?? 0,
      accepted: r.acceptedIds.length,
      acceptedIds: r.acceptedIds,
      dropped: r.spoolDropped,
      notes,
      lostUncounted: unaccounted,
    };
  } finally {
    if (mounted) {
      try {
        execFileSync("umount", [spoolDir]);
      } catch (err) {
        log(`umount ${spoolDir}: ${String(err)}`);
      }
    }
  }
}
