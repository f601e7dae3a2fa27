// Fuzz: mutated VALID frames on both transports against the real gateway (on a private Kafka + S3Proxy
// started with deploy/local/stack). Every frame must get an answer that carries a code, the gateway must
// not crash, and its memory must stay flat (VmHWM after a warm-up and at the end).
//
//   npm run fuzz                      # 10,000 frames per transport
//   FUZZ_FRAMES=2000 FUZZ_SEED=7 npm run fuzz
//   FUZZ_WARMUP (2000 frames per transport before the memory baseline), FUZZ_SAMPLE_EVERY (1000 frames),
//   FUZZ_LIVE_MB (4: allowed growth of the live heap), FUZZ_RSS_MB (16: allowed growth of VmRSS), FUZZ_LEAK=1
//   (a deliberate leak in the gateway, to see the check fail; test/fuzz/leak.cjs)
//
// Memory rule (docs in test/faults/RESULTS.md): the gateway runs with the V8 inspector on loopback; every
// FUZZ_SAMPLE_EVERY frames the fuzz forces a full garbage collection through it and reads the live heap
// (process.memoryUsage: heapUsed + external) and VmRSS. Its bounded caches (dedupe window, run ledger)
// are set small so that they are full before the measurement. After the warm-up, the measured frames
// are cut in two halves: the live heap must not grow by more than FUZZ_LIVE_MB from the first half to
// the second (median of each half's samples), and neither may VmRSS by more than FUZZ_RSS_MB (highest
// sample of each half). A leak grows in both halves, a plateau (V8 reserving heap space, allocator
// arenas) only before it is reached. VmHWM is printed, not checked: it only ever rises.
//
// Mutations, in turns, of an event taken from a simulated recording (each with a fresh event id first):
//   bitflip    1 to 8 random bits flipped
//   truncate   cut at a random length
//   swap       two top-level fields swap their field numbers (type confusion) or their contents
//   lengthlie  a length-delimited field's length replaced (±1..16, 0, 2^31-1, 2^32-1, a 10-byte varint)
// WebSocket frames wrap the event in a ClientFrame; a quarter of its length lies are told by the wrapper.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import WebSocket from "ws";
import { ensureGatewayBuilt, freePort, GATEWAY_MAIN, REPO_ROOT } from "../support/gateway.js";
import { contract, FaultStack, GatewayProc, log, recordingFrames, topicsFor } from "../faults/harness.js";

const run = promisify(execFile);
const FRAMES = Number(process.env["FUZZ_FRAMES"] ?? 10_000);
const SEED = Number(process.env["FUZZ_SEED"] ?? 12);
const PARALLEL = 8;
const WARMUP = Number(process.env["FUZZ_WARMUP"] ?? 2000);
const SAMPLE_EVERY = Number(process.env["FUZZ_SAMPLE_EVERY"] ?? 1000);
const LIVE_MB = Number(process.env["FUZZ_LIVE_MB"] ?? 4);
const RSS_MB = Number(process.env["FUZZ_RSS_MB"] ?? 16);
/** Set small so that the gateway's bounded caches are full after the warm-up (their bound is the
 *  gateway's unit tests' business): what still grows after it is not a cache filling up. */
const DEDUPE_ENTRIES = Number(process.env["FUZZ_DEDUPE_ENTRIES"] ?? 1000);
const DEDUPE_RUNS = Number(process.env["FUZZ_DEDUPE_RUNS"] ?? 200);
const ANSWER_TIMEOUT_MS = 15_000;
const DIR = resolve(process.env["FUZZ_DIR"] ?? join(process.env["SIMGATE_STATE"] ?? join(REPO_ROOT, ".simgate"), "fuzz"));
const KINDS = ["bitflip", "truncate", "swap", "lengthlie"] as const;
type Kind = (typeof KINDS)[number];

// --- a seeded PRNG (mulberry32): the same seed gives the same frames --------------------------------
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- protobuf wire format, just enough to find top-level fields -------------------------------------
function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function readVarint(buf: Buffer, at: number): [bigint, number] | null {
  let v = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i] as number;
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) return [v, i + 1];
  }
  return null;
}

interface Field {
  number: number;
  wire: number;
  /** The bytes after the tag: the value (varint, fixed, or length + data). */
  body: Buffer;
  /** For length-delimited fields: the data. */
  data?: Buffer;
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const tag = readVarint(buf, at);
    if (!tag) break;
    const number = Number(tag[0] >> 3n);
    const wire = Number(tag[0] & 7n);
    const start = tag[1];
    let end: number;
    let data: Buffer | undefined;
    if (wire === 0) {
      const v = readVarint(buf, start);
      if (!v) break;
      end = v[1];
    } else if (wire === 1) end = start + 8;
    else if (wire === 5) end = start + 4;
    else if (wire === 2) {
      const len = readVarint(buf, start);
      if (!len) break;
      end = len[1] + Number(len[0]);
      data = buf.subarray(len[1], end);
    } else break;
    if (end > buf.length) break;
    out.push({ number, wire, body: buf.subarray(start, end), data });
    at = end;
  }
  return out;
}

const tagOf = (number: number, wire: number): Buffer => varint((number << 3) | wire);
const encodeFields = (list: Field[]): Buffer => Buffer.concat(list.flatMap((f) => [tagOf(f.number, f.wire), f.body]));

// --- the mutations ------------------------------------------------------------------------------------
function mutate(kind: Kind, event: Buffer, rnd: () => number, pick: (n: number) => number): Buffer {
  switch (kind) {
    case "bitflip": {
      const out = Buffer.from(event);
      const flips = 1 + pick(8);
      for (let i = 0; i < flips; i++) {
        const at = pick(out.length);
        out[at] = (out[at] as number) ^ (1 << pick(8));
      }
      return out;
    }
    case "truncate":
      return Buffer.from(event.subarray(0, pick(event.length)));
    case "swap": {
      const list = fields(event);
      if (list.length < 2) return Buffer.from(event).reverse();
      const i = pick(list.length);
      let j = pick(list.length - 1);
      if (j >= i) j += 1;
      const a = list[i] as Field;
      const b = list[j] as Field;
      if (rnd() < 0.5) {
        // field numbers swapped, each keeps its wire type: a string where a number is expected, ...
        list[i] = { ...a, number: b.number };
        list[j] = { ...b, number: a.number };
      } else {
        // contents swapped between two fields (both keep their tags)
        list[i] = { ...a, wire: b.wire, body: b.body };
        list[j] = { ...b, wire: a.wire, body: a.body };
      }
      return encodeFields(list);
    }
    case "lengthlie": {
      const list = fields(event);
      const delimited = list.map((f, i) => [f, i] as const).filter(([f]) => f.wire === 2 && f.data);
      if (delimited.length === 0) return Buffer.concat([event, Buffer.from([0x0a, 0x7f])]);
      const [f, i] = delimited[pick(delimited.length)] as readonly [Field, number];
      const real = (f.data as Buffer).length;
      const lies = [real + 1 + pick(16), Math.max(0, real - 1 - pick(16)), 0, 0x7fffffff, 0xffffffff, 2n ** 63n];
      const lie = lies[pick(lies.length)] as number | bigint;
      list[i] = { ...f, body: Buffer.concat([varint(lie), f.data as Buffer]) };
      return encodeFields(list);
    }
  }
}

// --- the run ------------------------------------------------------------------------------------------
interface Tally {
  frames: number;
  byKind: Record<string, number>;
  codes: Record<string, number>;
  uncoded: number;
  unanswered: number;
  reconnects: number;
  samples: string[];
}

const newTally = (): Tally => ({ frames: 0, byKind: {}, codes: {}, uncoded: 0, unanswered: 0, reconnects: 0, samples: [] });

function vm(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { hwm: kb("VmHWM") / 1024, rss: kb("VmRSS") / 1024 };
}

/** The gateway's live memory through its V8 inspector (loopback): a full garbage collection, then
 *  process.memoryUsage(). Live heap = heapUsed + external (Buffers), in MB. */
async function liveMemory(inspectPort: number): Promise<{ heap: number; external: number }> {
  const targets = (await fetch(`http://127.0.0.1:${inspectPort}/json/list`).then((r) => r.json())) as Array<{ webSocketDebuggerUrl: string }>;
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error("the gateway's inspector lists no target");
  const ws = new WebSocket(url);
  await new Promise<void>((ok, fail) => {
    ws.once("open", () => ok());
    ws.once("error", fail);
  });
  let id = 0;
  const call = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((ok, fail) => {
      const mine = ++id;
      const onMessage = (data: Buffer): void => {
        const msg = JSON.parse(data.toString("utf8")) as { id?: number; result?: Record<string, unknown>; error?: unknown };
        if (msg.id !== mine) return;
        ws.off("message", onMessage);
        if (msg.error) fail(new Error(`${method}: ${JSON.stringify(msg.error)}`));
        else ok(msg.result ?? {});
      };
      ws.on("message", onMessage);
      ws.send(JSON.stringify({ id: mine, method, params }));
    });
  try {
    await call("HeapProfiler.collectGarbage");
    const r = await call("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())", returnByValue: true });
    const usage = JSON.parse(String((r["result"] as { value: string }).value)) as { heapUsed: number; external: number };
    return { heap: usage.heapUsed / 1e6, external: usage.external / 1e6 };
  } finally {
    ws.close();
  }
}

interface MemorySample {
  frames: number;
  rss: number;
  hwm: number;
  heap: number;
  external: number;
}

const signed = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;

const medianOf = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** The memory rule: the measured samples cut in two halves; the live heap (median per half) and VmRSS
 *  (highest per half) must not grow from the first half to the second by more than the limits. */
function memoryVerdict(samples: MemorySample[], liveMb: number, rssMb: number): { live: number; rss: number; ok: boolean } {
  const half = Math.floor(samples.length / 2);
  const first = samples.slice(0, half);
  const second = samples.slice(samples.length - half);
  const live = medianOf(second.map((s) => s.heap + s.external)) - medianOf(first.map((s) => s.heap + s.external));
  const rss = Math.max(...second.map((s) => s.rss)) - Math.max(...first.map((s) => s.rss));
  return { live, rss, ok: half > 0 && live <= liveMb && rss <= rssMb };
}

type Answer = { code: string; coded: boolean } | null;

interface Lane {
  send(frame: Buffer): Promise<Answer>;
  close(): void;
}

function ackCode(ack: Record<string, unknown>): Answer {
  if (ack["accepted"]) return { code: "accepted", coded: true };
  if (ack["duplicate"]) return { code: "duplicate", coded: true };
  const rejected = ack["rejected"] as { code?: string } | undefined;
  if (rejected) return { code: rejected.code || "rejected(no code)", coded: Boolean(rejected.code) };
  const retry = ack["retryLater"] as { code?: string } | undefined;
  if (retry) return { code: `retry:${retry.code ?? ""}`, coded: Boolean(retry.code) };
  return { code: "ack without outcome", coded: false };
}

function grpcLane(address: string, tally: Tally): Lane {
  const Ack = contract().lookupType("simgate.v1.Ack");
  const Client = grpc.makeGenericClientConstructor(
    {
      StreamEvents: {
        path: "/simgate.v1.Ingest/StreamEvents",
        requestStream: true,
        responseStream: true,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => Ack.toObject(Ack.decode(b)),
      },
    },
    "Ingest",
  );
  const client = new Client(address, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 64 << 20 });
  let call: grpc.ClientDuplexStream<Buffer, Record<string, unknown>> | null = null;
  let waiter: ((a: Answer) => void) | null = null;
  const open = (): grpc.ClientDuplexStream<Buffer, Record<string, unknown>> => {
    const c = (client as unknown as { StreamEvents(): grpc.ClientDuplexStream<Buffer, Record<string, unknown>> }).StreamEvents();
    c.on("data", (ack: Record<string, unknown>) => {
      const w = waiter;
      waiter = null;
      w?.(ackCode(ack));
    });
    c.on("error", (err: grpc.ServiceError) => {
      if (call === c) call = null;
      const gw = err.metadata?.get("simgate-error-code")[0];
      const w = waiter;
      waiter = null;
      w?.({ code: gw ? String(gw) : `grpc-status-${err.code}`, coded: Boolean(gw) });
    });
    c.on("end", () => {
      if (call === c) call = null;
    });
    return c;
  };
  return {
    send: (frame) =>
      new Promise<Answer>((resolveAnswer) => {
        if (!call) {
          if (tally.frames > 0) tally.reconnects += 1;
          call = open();
        }
        const timer = setTimeout(() => {
          waiter = null;
          call?.cancel();
          call = null;
          resolveAnswer(null);
        }, ANSWER_TIMEOUT_MS);
        waiter = (a) => {
          clearTimeout(timer);
          resolveAnswer(a);
        };
        call.write(frame);
      }),
    close: () => {
      call?.end();
      client.close();
    },
  };
}

function wsLane(url: string, tally: Tally): Lane {
  const ServerFrame = contract().lookupType("simgate.v1.ServerFrame");
  let socket: Promise<WebSocket> | null = null;
  let waiter: ((a: Answer) => void) | null = null;
  const open = (): Promise<WebSocket> =>
    new Promise((resolveOpen, reject) => {
      const ws = new WebSocket(url, { maxPayload: 64 << 20 });
      ws.binaryType = "nodebuffer";
      ws.once("open", () => resolveOpen(ws));
      ws.once("error", reject);
      ws.on("message", (data: Buffer) => {
        const w = waiter;
        waiter = null;
        try {
          const f = ServerFrame.toObject(ServerFrame.decode(data)) as Record<string, Record<string, unknown> | undefined>;
          if (f["ack"]) w?.(ackCode(f["ack"]));
          else if (f["error"]) w?.({ code: String(f["error"]["code"] || "error(no code)"), coded: Boolean(f["error"]["code"]) });
          else w?.({ code: "server frame without body", coded: false });
        } catch {
          w?.({ code: "undecodable server frame", coded: false });
        }
      });
      ws.on("close", (code, reason) => {
        socket = null;
        const w = waiter;
        waiter = null;
        const r = reason.toString();
        w?.({ code: `ws-close-${code}${r ? ` ${r.split(":")[0]}` : ""}`, coded: code === 1009 || /GW_ERR_/.test(r) });
      });
    });
  return {
    send: async (frame) => {
      if (!socket) {
        if (tally.frames > 0) tally.reconnects += 1;
        socket = open();
      }
      const ws = await socket;
      return new Promise<Answer>((resolveAnswer) => {
        const timer = setTimeout(() => {
          waiter = null;
          ws.terminate();
          resolveAnswer(null);
        }, ANSWER_TIMEOUT_MS);
        waiter = (a) => {
          clearTimeout(timer);
          resolveAnswer(a);
        };
        ws.send(frame);
      });
    },
    close: () => {
      void socket?.then((ws) => ws.close());
    },
  };
}

async function fuzz(transport: "grpc" | "ws", gw: GatewayProc, events: Buffer[], runId: string, count: number, seed: number, sample: (frames: number) => Promise<void>): Promise<Tally> {
  const Event = contract().lookupType("simgate.v1.Event");
  const tally = newTally();
  const rnd = prng(seed + (transport === "ws" ? 1 : 0));
  const pick = (n: number): number => Math.floor(rnd() * n);
  // The frames, made up front so the PRNG sequence does not depend on timing.
  const frames: Array<{ kind: Kind; bytes: Buffer }> = [];
  for (let n = 0; n < count; n++) {
    const base = Event.decode(events[n % events.length] as Buffer) as unknown as { eventId: string; runId: string };
    base.eventId = `${runId}-${transport}-${n}`;
    base.runId = runId;
    const valid = Buffer.from(Event.encode(base as never).finish());
    const kind = KINDS[n % KINDS.length] as Kind;
    let bytes = mutate(kind, valid, rnd, pick);
    if (transport === "ws") {
      // a ClientFrame { event = 1 }; a quarter of the length lies are in the wrapper
      const lieOutside = kind === "lengthlie" && pick(4) === 0;
      const inner = lieOutside ? valid : bytes;
      const len = lieOutside ? inner.length + 1 + pick(64) : inner.length;
      bytes = Buffer.concat([Buffer.from([0x0a]), varint(len), inner]);
    }
    frames.push({ kind, bytes });
  }
  const lanes = Array.from({ length: PARALLEL }, () => (transport === "grpc" ? grpcLane(gw.grpcAddress, tally) : wsLane(gw.wsUrl, tally)));
  let next = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      while (next < frames.length) {
        const { kind, bytes } = frames[next++] as { kind: Kind; bytes: Buffer };
        let answer: Answer;
        try {
          answer = await lane.send(bytes);
        } catch (err) {
          answer = null;
          if (tally.samples.length < 5) tally.samples.push(`send failed: ${String(err)}`);
        }
        tally.frames += 1;
        tally.byKind[kind] = (tally.byKind[kind] ?? 0) + 1;
        if (answer === null) tally.unanswered += 1;
        else {
          tally.codes[answer.code] = (tally.codes[answer.code] ?? 0) + 1;
          if (!answer.coded) {
            tally.uncoded += 1;
            if (tally.samples.length < 5) tally.samples.push(`${kind}: ${answer.code} (${bytes.subarray(0, 48).toString("hex")})`);
          }
        }
        if (tally.frames % SAMPLE_EVERY === 0) await sample(tally.frames);
      }
    }),
  );
  for (const lane of lanes) lane.close();
  return tally;
}

async function main(): Promise<number> {
  ensureGatewayBuilt();
  mkdirSync(DIR, { recursive: true });
  const recording = join(DIR, "fuzz-base.simrec");
  if (!existsSync(recording)) {
    await run(process.execPath, [GATEWAY_MAIN, "simulate", "--seed", "5", "--events", "40", "--width", "64", "--height", "48", "--format", "jpeg", "--out", recording]);
  }
  const ClientFrame = contract().lookupType("simgate.v1.ClientFrame");
  const events = recordingFrames(recording)
    .map((p) => ClientFrame.decode(p) as unknown as { event?: unknown })
    .filter((f) => f.event)
    .map((f) => Buffer.from(contract().lookupType("simgate.v1.Event").encode(f.event as never).finish()));
  const stackState = join(DIR, "stack");
  rmSync(stackState, { recursive: true, force: true });
  log("starting a private Kafka + S3Proxy (free ports, so it can run beside the fault matrix)");
  const stack = await FaultStack.start(stackState, ["s3", "kafka"], false);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
  const inspectPort = await freePort();
  const preload = process.env["FUZZ_LEAK"] === "1" ? ` --require ${join(REPO_ROOT, "test/fuzz/leak.cjs")}` : "";
  const gw = await GatewayProc.create(stack, topicsFor(`fuzz-${stamp}`.toLowerCase()), join(DIR, `gateway-${stamp}.log`), {
    SIMGATE_LOG_LEVEL: "warn",
    SIMGATE_DEDUPE_ENTRIES: String(DEDUPE_ENTRIES),
    SIMGATE_DEDUPE_RUNS: String(DEDUPE_RUNS),
    NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}${preload}`,
  });
  const rows: string[] = [];
  let failed = false;
  try {
    await gw.start();
    const pid = gw.pid as number;
    const atStart = vm(pid);
    let done = 0;
    const take = async (list: MemorySample[], frames: number): Promise<void> => {
      const live = await liveMemory(inspectPort);
      const m = vm(pid);
      list.push({ frames: done + frames, rss: m.rss, hwm: m.hwm, heap: live.heap, external: live.external });
    };
    // Warm-up: the same mix, other ids, so the measurement starts after the gateway's lazy start-up
    // (JIT, connection pools, topic metadata) and with its bounded caches full.
    log(`warm-up: ${WARMUP} frames per transport`);
    const warmSamples: MemorySample[] = [];
    for (const transport of ["grpc", "ws"] as const) {
      await fuzz(transport, gw, events, `fuzzwarm-${stamp}`, WARMUP, SEED + 1000, (n) => take(warmSamples, n));
      done += WARMUP;
    }
    const warm = vm(pid);
    const samples: MemorySample[] = [];
    const tallies: Array<[string, Tally]> = [];
    for (const transport of ["grpc", "ws"] as const) {
      log(`fuzzing ${transport}: ${FRAMES} frames`);
      tallies.push([transport, await fuzz(transport, gw, events, `fuzz-${stamp}`, FRAMES, SEED, (n) => take(samples, n))]);
      done += FRAMES;
      const last = samples[samples.length - 1];
      if (last) log(`${transport} done: live heap ${(last.heap + last.external).toFixed(1)} MB, VmRSS ${last.rss.toFixed(0)} MB, VmHWM ${last.hwm.toFixed(0)} MB`);
    }
    const alive = gw.child?.exitCode === null;
    const end = alive ? vm(pid) : { hwm: NaN, rss: NaN };
    const healthy = alive && (await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`).then((r) => r.status === 200).catch(() => false));
    const verdict = memoryVerdict(samples, LIVE_MB, RSS_MB);
    rows.push("| transport | frames | bitflip / truncate / swap / lengthlie | answered with a code | without a code | unanswered | reconnects | codes (most frequent) |");
    rows.push("|---|---|---|---|---|---|---|---|");
    for (const [transport, t] of tallies) {
      const coded = t.frames - t.uncoded - t.unanswered;
      const top = Object.entries(t.codes).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([c, n]) => `${c} ${n}`).join(", ");
      rows.push(`| ${transport} | ${t.frames} | ${KINDS.map((k) => t.byKind[k] ?? 0).join(" / ")} | ${coded} | ${t.uncoded} | ${t.unanswered} | ${t.reconnects} | ${top} |`);
      if (t.uncoded > 0 || t.unanswered > 0) failed = true;
      for (const s of t.samples) rows.push(`\n  ${transport} sample: ${s}`);
    }
    rows.push("");
    rows.push(`Gateway pid ${pid}: ${alive ? "alive" : "**exited**"} at the end, /readyz ${healthy ? "200" : "**not ready**"}.`);
    rows.push(`Memory: live heap (heapUsed + external after a full GC) ${signed(verdict.live)} MB and VmRSS ${signed(verdict.rss)} MB from the first half of the ` +
      `${2 * FRAMES} measured frames to the second: ${verdict.ok ? "flat" : "**grew**"} (limits +${LIVE_MB} MB live, +${RSS_MB} MB VmRSS). ` +
      `VmHWM ${atStart.hwm.toFixed(0)} MB at start, ${warm.hwm.toFixed(0)} MB after the warm-up (${WARMUP} frames per transport), ${end.hwm.toFixed(0)} MB at the end (not checked).`);
    const fmt = (list: MemorySample[]): string => list.map((m) => `${m.frames}: ${(m.heap + m.external).toFixed(1)}/${m.rss.toFixed(0)}`).join(", ");
    rows.push(`\nSamples, frames so far: live heap MB / VmRSS MB (every ${SAMPLE_EVERY} frames; gRPC, then WebSocket).`);
    rows.push(`- warm-up: ${fmt(warmSamples)}`);
    rows.push(`- measured: ${fmt(samples)}`);
    if (!alive || !healthy || !verdict.ok) failed = true;
  } finally {
    await gw.stop().catch(() => undefined);
    await stack.down().catch(() => undefined);
  }
  const text = rows.join("\n");
  console.log(`\nFuzz: ${FRAMES} mutated valid frames per transport (seed ${SEED}, ${PARALLEL} streams/sockets, one frame in flight on each)\n`);
  console.log(text);
  writeFileSync(join(DIR, `table-${stamp}.md`), text + "\n");
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack ?? err.message : String(err));
    process.exit(1);
  },
);
