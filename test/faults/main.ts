// The fault matrix: one simulated run replayed per fault through the real gateway while one fault is
// injected, then the real WAP jobs, then a count of what is in Kafka and on main. Prints one table; exits
// 1 when an accepted event is missing from the tables or is there twice.
//
//   npm run faults                         # every fault
//   npm run faults -- gateway-kill kafka-stop   # some of them (names in the table's first column)
//
//   FAULTS_EVENTS (2000), FAULTS_SIZE (320x180 JPEG images: "WxH"), FAULTS_KEEP_STACK=1 (leave the
//   private stack running), FAULTS_DIR (default $SIMGATE_STATE/faults, i.e. .simgate/faults)
// The stack is the project's own (deploy/local/stack) with its own SIMGATE_STATE under FAULTS_DIR, on the
// ports of the environment (KAFKA_PORT, S3_PORT, NESSIE_PORT, ...) or free ones.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { ensureGatewayBuilt, GATEWAY_MAIN, REPO_ROOT } from "../support/gateway.js";
import {
  eventIdsInTopic,
  FaultStack,
  GatewayProc,
  KafkaProgress,
  lakeRows,
  log,
  PYTHON,
  recordedEvents,
  sleep,
  startReplay,
  startWap,
  topicsFor,
  wapConfig,
  wapUntilDone,
  type LakeRows,
  type ReplayResult,
  type Topics,
} from "./harness.js";
import { runKitFault } from "./kit.js";

const run = promisify(execFile);

const EVENTS = Number(process.env["FAULTS_EVENTS"] ?? 2000);
const [WIDTH, HEIGHT] = (process.env["FAULTS_SIZE"] ?? "320x180").split("x").map(Number) as [number, number];
const DIR = resolve(process.env["FAULTS_DIR"] ?? join(process.env["SIMGATE_STATE"] ?? join(REPO_ROOT, ".simgate"), "faults"));

export interface FaultContext {
  stack: FaultStack;
  recording: string;
  dir: string;
  topics: Topics;
  runId: string;
  gateway: GatewayProc;
  progress: KafkaProgress;
  wapConfig: string;
}

export interface Outcome {
  /** Distinct events sent, and resends. */
  sent: number;
  resends: number;
  /** Events with a final accepted/duplicate answer. */
  accepted: number;
  /** Event ids the sender holds as accepted (their records must be on main once). */
  acceptedIds: string[] | null;
  /** Frames the sender dropped and counted (the Kit spool's limits). */
  dropped: number;
  /** Events the sender neither got accepted nor counted as dropped (must be 0). */
  lostUncounted?: number;
  notes: string[];
}

interface Fault {
  name: string;
  what: string;
  /** The replay phase with the fault; default: a plain replay. */
  send?: (ctx: FaultContext) => Promise<Outcome>;
  /** The WAP phase with the fault; default: entries then exits until published. */
  wap?: (ctx: FaultContext, notes: string[]) => Promise<void>;
}

// --- the faults -------------------------------------------------------------------------------------

const FAULTS: Fault[] = [
  { name: "none", what: "no fault (control)" },
  {
    name: "gateway-kill",
    what: "SIGKILL of the gateway at 25, 50 and 75 % of the records, restarted at once",
    send: (ctx) =>
      replayWith(ctx, async () => {
        for (const share of [0.25, 0.5, 0.75]) {
          await ctx.progress.waitFor(Math.floor(EVENTS * share));
          await ctx.gateway.kill();
          await ctx.gateway.start(false);
        }
      }),
  },
  {
    name: "kafka-kill",
    what: "SIGKILL of Kafka at 40 %, restarted 5 s later (stack up kafka)",
    send: (ctx) =>
      replayWith(ctx, async () => {
        await ctx.progress.waitFor(Math.floor(EVENTS * 0.4));
        await ctx.stack.kill("kafka");
        await sleep(5000);
        await ctx.stack.up("kafka");
      }),
  },
  {
    name: "kafka-stop",
    what: "SIGSTOP of Kafka for 15 s at 40 %, then SIGCONT",
    send: (ctx) =>
      replayWith(ctx, async () => {
        await ctx.progress.waitFor(Math.floor(EVENTS * 0.4));
        ctx.stack.signal("kafka", "SIGSTOP");
        await sleep(15_000);
        ctx.stack.signal("kafka", "SIGCONT");
      }),
  },
  {
    name: "s3-down",
    what: "S3Proxy stopped for 30 s at 40 % (stack down s3, stack up s3)",
    send: (ctx) =>
      replayWith(ctx, async () => {
        await ctx.progress.waitFor(Math.floor(EVENTS * 0.4));
        await ctx.stack.down("s3");
        log("s3 down");
        await sleep(30_000);
        await ctx.stack.up("s3");
        log("s3 up");
      }),
  },
  {
    name: "kit-outage",
    what: "the Kit worker (headless) loses the gateway for 60 s at 20 %: its spool fills, then drains",
    send: (ctx) => runKitFault(ctx, "outage", EVENTS),
  },
  {
    name: "kit-disk-full",
    what: "the Kit worker's spool on a 4 MiB tmpfs, the gateway away for 60 s: the disk fills, the oldest frames are dropped and counted",
    send: (ctx) => runKitFault(ctx, "disk-full", EVENTS),
  },
  ...(["after_production", "after_merge"] as const).map(
    (point): Fault => ({
      name: point === "after_production" ? "wap-kill-before-merge" : "wap-kill-after-merge",
      what: `the entries' WAP process SIGKILLed ${point === "after_production" ? "just before" : "just after"} the merge (SIMGATE_WAP_FAIL_AT=${point}, FAIL_MODE=kill); the next WAP run recovers`,
      wap: async (ctx, notes) => {
        const logFile = join(ctx.dir, "wap.log");
        const killed = await startWap(ctx.stack, ctx.topics.entries, ctx.wapConfig, logFile, {
          SIMGATE_WAP_FAIL_AT: point,
          SIMGATE_WAP_FAIL_MODE: "kill",
        }).done;
        notes.push(`WAP run SIGKILLed at ${point}`);
        if (killed.signal !== "SIGKILL") throw new Error(`the WAP job was not killed at ${point}: exit ${killed.code} ${JSON.stringify(killed.result?.["problems"] ?? null)}`);
        // No rerun here: the next WAP run of the matrix (the next lake fault's, or the final one) is the rerun.
      },
    }),
  ),
  {
    name: "nessie-down",
    what: "Nessie stopped (stack down nessie) during the entries' WAP run, after it made its branch; up again 20 s later",
    wap: async (ctx, notes) => {
      const logFile = join(ctx.dir, "wap.log");
      const first = startWap(ctx.stack, ctx.topics.entries, ctx.wapConfig, logFile);
      await Promise.race([first.saw(" on branch "), first.done]);
      await ctx.stack.down("nessie");
      log("nessie down");
      await sleep(20_000);
      await ctx.stack.up("nessie");
      log("nessie up");
      const r = await first.done;
      const recovered = r.result?.["recoveredTag"] ? ", it first tagged the run killed after its merge" : "";
      notes.push(`WAP run with Nessie down: exit ${r.code}${r.result ? ` (${String(r.result["status"])}${recovered})` : ""}`);
      // The final WAP runs of the matrix publish what this one could not.
    },
  },
];

// --- one replay with a fault running beside it ------------------------------------------------------

async function replayWith(ctx: FaultContext, inject: () => Promise<void>): Promise<Outcome> {
  const replay = startReplay(ctx.recording, ctx.gateway, ctx.runId, ctx.dir);
  let injectError: unknown = null;
  const injected = inject().catch((err: unknown) => {
    injectError = err;
  });
  const result = await replay.done;
  await injected;
  if (injectError) throw injectError;
  return outcomeOf(result);
}

function outcomeOf(r: ReplayResult): Outcome {
  const s = r.summary;
  const notes: string[] = [];
  if (r.code !== 0) notes.push(`replay exit ${r.code}${s?.fatal ? `: ${s.fatal}` : ""}`);
  if (s?.rejected) notes.push(`${s.rejected} rejected`);
  if (s?.unanswered) notes.push(`${s.unanswered} unanswered`);
  const accepted = s?.totals ? s.totals.accepted + s.totals.duplicate : (s?.accepted ?? 0) + (s?.duplicate ?? 0);
  return { sent: s?.sent ?? 0, resends: s?.resends ?? 0, accepted, acceptedIds: null, dropped: 0, notes };
}

// --- counting ---------------------------------------------------------------------------------------

export interface Row {
  fault: string;
  sent: string;
  accepted: number;
  kafka: string;
  production: string;
  untrusted: string;
  missing: number;
  dropped: number;
  ok: boolean;
  notes: string;
}

function tally(ids: string[]): { total: number; distinct: number; dup: number } {
  const distinct = new Set(ids).size;
  return { total: ids.length, distinct, dup: ids.length - distinct };
}

const DEDUPE_REASONS = new Set(["duplicate_in_batch", "duplicate_of_published"]);

function rowOf(fault: Fault, ctx: FaultContext, outcome: Outcome, kafkaAll: string[], lake: Record<string, LakeRows>): Row {
  const mine = (id: string | null): id is string => id !== null && id.startsWith(`${ctx.runId}-`);
  const expectedIds = outcome.acceptedIds ?? recordedEvents(ctx.recording, ctx.runId).map((e) => e.eventId);
  const kafkaIds = kafkaAll.filter(mine);
  const production = [ctx.topics.entries, ctx.topics.exits].flatMap((t) => lake[t]?.production ?? []).filter(mine);
  const untrusted = [ctx.topics.entries, ctx.topics.exits].flatMap((t) => lake[t]?.untrusted ?? []).filter((u) => mine(u.eventId));
  const refused = untrusted.filter((u) => u.reasons.length > 0 && u.reasons.every((r) => DEDUPE_REASONS.has(r)));
  const flawed = untrusted.filter((u) => !refused.includes(u));
  // Where each event is on main: production, or untrusted for a reason other than being a copy.
  const onMain = new Map<string, number>();
  for (const id of production) onMain.set(id, (onMain.get(id) ?? 0) + 1);
  for (const u of flawed) if (u.eventId) onMain.set(u.eventId, (onMain.get(u.eventId) ?? 0) + 1);
  const missing = expectedIds.filter((id) => !onMain.has(id)).length;
  const duplicated = [...onMain.values()].filter((n) => n > 1).length;
  const k = tally(kafkaIds);
  const p = tally(production);
  const acceptedAll = outcome.acceptedIds !== null || outcome.accepted === expectedIds.length;
  const ok = missing === 0 && duplicated === 0 && p.dup === 0 && acceptedAll && (outcome.lostUncounted ?? 0) === 0;
  const notes = [...outcome.notes];
  if (!acceptedAll) notes.push(`only ${outcome.accepted} of ${expectedIds.length} accepted`);
  if (flawed.length > 0) notes.push(`untrusted for other reasons: ${flawed.length} (${[...new Set(flawed.flatMap((u) => u.reasons))].join(", ")})`);
  return {
    fault: fault.name,
    sent: `${outcome.sent} (+${outcome.resends} resent)`,
    accepted: outcome.accepted,
    kafka: `${k.total} (${k.dup} dup)`,
    production: `${p.total} (${p.dup} dup)`,
    untrusted: `${untrusted.length} (${refused.length} refused copies, ${duplicated} dup)`,
    missing,
    dropped: outcome.dropped,
    ok,
    notes: notes.join("; "),
  };
}

function table(rows: Row[]): string {
  const head = "| fault | events sent | accepted | records in Kafka | rows in production | rows in untrusted | missing | dropped (counted) | result |";
  const lines = [head, "|---|---|---|---|---|---|---|---|---|"];
  for (const r of rows) {
    lines.push(`| ${r.fault} | ${r.sent} | ${r.accepted} | ${r.kafka} | ${r.production} | ${r.untrusted} | ${r.missing} | ${r.dropped} | ${r.ok ? "ok" : "**FAIL**"}${r.notes ? `: ${r.notes}` : ""} |`);
  }
  return lines.join("\n");
}

// --- main -------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !FAULTS.some((f) => f.name === w));
  if (unknown.length > 0) {
    console.error(`unknown fault(s): ${unknown.join(", ")}; known: ${FAULTS.map((f) => f.name).join(", ")}`);
    return 64;
  }
  const faults = wanted.length > 0 ? FAULTS.filter((f) => wanted.includes(f.name)) : FAULTS;
  ensureGatewayBuilt();
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run bash scripts/setup`);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
  const runDir = join(DIR, stamp);
  mkdirSync(runDir, { recursive: true });
  const recording = join(DIR, `sim-${EVENTS}-${WIDTH}x${HEIGHT}.simrec`);
  if (!existsSync(recording)) {
    log(`simulating ${EVENTS} events (${WIDTH}x${HEIGHT} JPEG) into ${recording}`);
    await run(process.execPath, [GATEWAY_MAIN, "simulate", "--seed", "12", "--events", String(EVENTS), "--width", String(WIDTH), "--height", String(HEIGHT), "--format", "jpeg", "--arrivals-per-minute", "6", "--out", recording]);
  }
  const stackState = join(DIR, "stack");
  if (process.env["FAULTS_KEEP_STACK"] !== "1") rmSync(stackState, { recursive: true, force: true });
  log(`starting the private stack (state ${stackState})`);
  const stack = await FaultStack.start(stackState);
  // One set of topics for the whole matrix, one run id per fault: the WAP jobs (minutes each on a
  // loaded machine) run once per lake fault and once at the end, and every count is per run id.
  const topics = topicsFor(`faults-${stamp}`.toLowerCase());
  const config = wapConfig(topics, join(runDir, "wap.json"));
  const bootstrap = stack.env["KAFKA_BOOTSTRAP"] ?? "";
  const rows: Row[] = [];
  const done: Array<{ fault: Fault; ctx: FaultContext; outcome: Outcome }> = [];
  try {
    for (const fault of faults) {
      const dir = join(runDir, fault.name);
      mkdirSync(dir, { recursive: true });
      const gateway = await GatewayProc.create(stack, topics, join(dir, "gateway.log"));
      const progress = new KafkaProgress(bootstrap, [topics.entries, topics.exits]);
      const ctx: FaultContext = { stack, recording, dir, topics, runId: `faults-${fault.name}-${stamp}`.toLowerCase(), gateway, progress, wapConfig: config };
      log(`--- ${fault.name}: ${fault.what}`);
      const started = Date.now();
      try {
        await gateway.start();
        await progress.mark();
        const outcome = await (fault.send ?? ((c) => replayWith(c, async () => undefined)))(ctx);
        await gateway.stop();
        log(`${fault.name}: sent ${outcome.sent}, accepted ${outcome.accepted}`);
        if (fault.wap) await fault.wap(ctx, outcome.notes);
        outcome.notes.push(`${Math.round((Date.now() - started) / 1000)} s`);
        done.push({ fault, ctx, outcome });
      } catch (err) {
        log(`${fault.name} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        rows.push({ fault: fault.name, sent: "-", accepted: 0, kafka: "-", production: "-", untrusted: "-", missing: -1, dropped: 0, ok: false, notes: `did not complete: ${(err instanceof Error ? err.message : String(err)).split("\n")[0]}` });
        await stack.up("kafka", "s3", "nessie").catch(() => undefined);
      } finally {
        await gateway.kill().catch(() => undefined);
        await progress.close();
      }
    }
    log("publishing what is left (and recovering from the lake faults): the WAP jobs of both topics, entries first");
    await wapUntilDone(stack, topics.entries, config, join(runDir, "wap.log"));
    await wapUntilDone(stack, topics.exits, config, join(runDir, "wap.log"));
    const kafkaIds = [...(await eventIdsInTopic(topics.entries, bootstrap)), ...(await eventIdsInTopic(topics.exits, bootstrap))];
    const lake = await lakeRows(stack, [topics.entries, topics.exits]);
    writeFileSync(join(runDir, "lake-rows.json"), JSON.stringify(lake));
    for (const { fault, ctx, outcome } of done) rows.push(rowOf(fault, ctx, outcome, kafkaIds, lake));
    rows.sort((a, b) => faults.findIndex((f) => f.name === a.fault) - faults.findIndex((f) => f.name === b.fault));
    writeFileSync(join(runDir, "table.md"), table(rows) + "\n");
  } finally {
    if (process.env["FAULTS_KEEP_STACK"] !== "1") await stack.down().catch(() => undefined);
  }
  const out = table(rows);
  console.log(`\nFault matrix: ${EVENTS} simulated events (seed 12, ${WIDTH}x${HEIGHT} JPEG) per fault, one fault per run (its own run id); logs in ${runDir}\n`);
  console.log(out);
  const failed = rows.filter((r) => !r.ok);
  if (failed.length > 0) console.log(`\n${failed.length} fault(s) lost or duplicated accepted events, or did not complete: ${failed.map((r) => r.fault).join(", ")}`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack ?? err.message : String(err));
    process.exit(1);
  },
);
