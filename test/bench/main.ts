// Gateway benchmark: events with two 1280x720 render-like images (PNG ≈ 1.1 MB each, JPEG ≈ 100 KB
// each) sent over gRPC (one StreamEvents call per stream) and WebSocket (one socket per stream) with
// 1/4/16/64 concurrent streams, next to a direct baseline in the same run: the same payloads written
// straight to the object store (S3 SDK) and Kafka (kafkajs, idempotent, acks=all) with the same
// concurrency. Prints events/s, MB/s, ack latency p50/p99, the gateway's peak RSS, and the CPU time per
// event of each process on the machine (gateway, this sender or direct writer, S3 server, Kafka): where
// everything shares the same cores, throughput follows the sum. Each scenario deletes the blobs it
// wrote once it is measured. The headline printed first is the gateway process's CPU time per event
// against the direct writer's (the baseline's own process: the same S3 PUTs with sha256 and the Kafka
// produce), for the same events. Results, with their commands, go to test/bench/RESULTS.md.
//
//   npm run bench                              (root; builds the gateway first)
//   BENCH_SECONDS=5 BENCH_STREAMS=1,4,16,64 BENCH_VARIANTS=png,jpeg BENCH_PATHS=baseline,grpc,ws npm run bench
//   BENCH_ROUNDS=3 BENCH_STREAMS=16 BENCH_VARIANTS=png npm run bench   (interleaved rounds, medians)
//   BENCH_PIN=1 npm run bench        (this process on CPU 0; the gateway, S3Proxy and Kafka on CPU 1, taskset)
//   BENCH_HISTORY=100000 npm run bench   (each fresh gateway first accepts that many events without images,
//                                         untimed: measured as a gateway in operation, its dedupe window full)
//
// Every scenario runs for BENCH_SECONDS (default 4) after a short warm-up, every event has a new id (so
// every blob is really written). The gateway runs as a child process with its default limits unless
// BENCH_GATEWAY_ENV adds some ("KEY=V,KEY=V").
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Partitioners, type Producer } from "kafkajs";
import protobuf from "protobufjs/minimal.js";
import { withPayloadSha256 } from "../../gateway/src/exporters/s3/blob-store.js";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest, WsIngest, type EventStream } from "../support/clients.js";
import { startGateway, uniqueId, STACK, type TestGateway } from "../support/gateway.js";
import { makeJpeg, makePng } from "../support/images.js";
import { kafkaClient, s3Client } from "../support/stack.js";
import { drive as driveFor, median, percentile, processCpuMs, rssMb, selfCpuMs, stackPid } from "./measure.js";

type Variant = "png" | "jpeg";
type Path = "baseline" | "grpc" | "ws";

const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 4);
const WARMUP_SECONDS = Number(process.env["BENCH_WARMUP_SECONDS"] ?? 1);
const STREAMS = (process.env["BENCH_STREAMS"] ?? "1,4,16,64").split(",").map(Number);
const VARIANTS = (process.env["BENCH_VARIANTS"] ?? "png,jpeg").split(",") as Variant[];
const PATHS = (process.env["BENCH_PATHS"] ?? "baseline,grpc,ws").split(",") as Path[];
/** Each streams count runs the paths this many times, interleaved (baseline, grpc, ws, baseline, ...):
 *  on a shared machine single runs vary by ±10-15 %, so the summary compares medians. */
const ROUNDS = Math.max(1, Number(process.env["BENCH_ROUNDS"] ?? 1));
/** Events each stream keeps outstanding (unacknowledged) at once. */
const WINDOW = Number(process.env["BENCH_WINDOW"] ?? 2);
/** BENCH_PIN=1: this process (the sender, or the direct writer) on CPU 0; the gateway, S3Proxy and
 *  Kafka on CPU 1 (taskset), as when the simulator has a machine of its own. */
const PIN = process.env["BENCH_PIN"] === "1";
// Events without images sent to each fresh gateway before it is measured (untimed): a gateway in
// operation remembers its last accepted events (the dedupe window, 100,000 by default), and what it
// keeps in memory is what every full garbage collection has to walk.
const HISTORY = Number(process.env["BENCH_HISTORY"] ?? 0);
const DISTINCT_PAIRS = 4;
const notAccepted = new Map<string, number>();
const drive = (lanes: number, one: (lane: number, seq: number) => Promise<boolean>, onWarm: () => void) => driveFor(lanes, SECONDS, WARMUP_SECONDS, one, onWarm);

interface Payload {
  variant: Variant;
  images: Array<{ view: string; encoding: simgate.v1.ImageEncoding; data: Buffer; sha256: string; contentType: string; ext: string }>;
  /** Event field 10 (images), encoded once: an Event's encoding is the concatenation of its fields. */
  encodedImages: Buffer;
  bytes: number;
}

interface Result {
  variant: Variant;
  path: Path;
  streams: number;
  events: number;
  seconds: number;
  latenciesMs: number[];
  bytes: number;
  peakRssMb: number | null;
  errors: number;
  /** CPU per event: the gateway process, and this process (the senders, or the direct writer). */
  gatewayCpuMs: number | null;
  clientCpuMs: number;
  /** CPU per event of the object store and of Kafka (when the local stack's pid files are there). */
  storeCpuMs: StoresCpu | null;
}

interface StoresCpu {
  s3: number;
  kafka: number;
}

/** Pins every thread of a process to the given CPUs (taskset -a). */
function pin(pid: number, cpuList: string): void {
  const r = spawnSync("taskset", ["-a", "-p", "-c", cpuList, String(pid)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpuList} ${pid} failed: ${r.stderr || r.error?.message}`);
}

/** CPU time (ms) used so far by the object store and Kafka, or null when they are not local processes. */
function storesCpuMs(): StoresCpu | null {
  const s3 = stackPid("s3");
  const kafka = stackPid("kafka");
  return s3 === undefined || kafka === undefined ? null : { s3: processCpuMs(s3), kafka: processCpuMs(kafka) };
}

function storesPerEvent(before: StoresCpu | null, after: StoresCpu | null, events: number): StoresCpu | null {
  if (before === null || after === null) return null;
  const n = Math.max(1, events);
  return { s3: (after.s3 - before.s3) / n, kafka: (after.kafka - before.kafka) / n };
}

/** Deletes every object under prefix (what a scenario wrote), outside the measured window: every event
 *  writes two new blobs, so without this a full run leaves gigabytes in the local object store. */
async function deletePrefix(s3: S3Client, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: STACK.blobBucket, Prefix: prefix, ContinuationToken: token }));
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length > 0) {
      const out = await s3.send(new DeleteObjectsCommand({ Bucket: STACK.blobBucket, Delete: { Objects: keys, Quiet: true } }));
      if ((out.Errors ?? []).length > 0) throw new Error(`deleting ${prefix}: ${JSON.stringify(out.Errors?.[0])}`);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

async function makePayloads(variant: Variant): Promise<Payload[]> {
  const payloads: Payload[] = [];
  for (let i = 0; i < DISTINCT_PAIRS; i++) {
    const make = (seed: number): Promise<Buffer> => (variant === "png" ? makePng(1280, 720, seed, 18) : makeJpeg(1280, 720, seed, 75, 8));
    const [a, b] = await Promise.all([make(100 + i * 2), make(101 + i * 2)]);
    const encoding = variant === "png" ? simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG : simgate.v1.ImageEncoding.IMAGE_ENCODING_JPEG;
    const images = [
      { view: "entry", encoding, data: a, sha256: "", contentType: `image/${variant}`, ext: variant === "png" ? "png" : "jpg" },
      { view: "overview", encoding, data: b, sha256: "", contentType: `image/${variant}`, ext: variant === "png" ? "png" : "jpg" },
    ];
    for (const img of images) img.sha256 = createHash("sha256").update(img.data).digest("hex");
    const encodedImages = Buffer.from(
      simgate.v1.Event.encode({
        images: images.map((img) => ({ view: img.view, cameraPrimPath: `/World/Gates/${img.view}/Camera`, encoding: img.encoding, width: 1280, height: 720, data: img.data })),
      }).finish(),
    );
    payloads.push({ variant, images, encodedImages, bytes: a.length + b.length });
  }
  return payloads;
}

function meta(runId: string, seq: number): simgate.v1.IEvent {
  return {
    eventId: `${runId}-${seq}`,
    runId,
    sequence: seq,
    eventType: seq % 2 === 0 ? "parking.exit" : "parking.entry",
    simTimeSeconds: seq * 0.5,
    captureTimeUnixMs: Date.now(),
    carId: `CAR${seq % 50}`,
    text: "",
    coordinates: { slotId: `S-${seq % 40}`, x: seq % 100, y: 0, z: 3, yawDeg: 90 },
    attributes: { bench: "1" },
  };
}

/** The event's bytes, optionally inside a ClientFrame (field 1, length-delimited), built with one copy
 *  of the images: a sender serialises each message once, and on this shared machine every extra copy
 *  the sender makes is CPU taken from the gateway and the stores. */
function encodeEvent(m: simgate.v1.IEvent, p: Payload, asClientFrame = false): Buffer {
  const fields = simgate.v1.Event.encode(m).finish();
  const eventLength = fields.length + p.encodedImages.length;
  // ClientFrame field 1 (event), length-delimited: its tag and the event's length as varints.
  const prefix = asClientFrame ? protobuf.Writer.create().uint32((1 << 3) | 2).uint32(eventLength).finish() : new Uint8Array(0);
  const out = Buffer.allocUnsafe(prefix.length + eventLength);
  out.set(prefix, 0);
  out.set(fields, prefix.length);
  p.encodedImages.copy(out, prefix.length + fields.length);
  return out;
}

async function runBaseline(variant: Variant, payloads: Payload[], streams: number, producer: Producer, topics: Record<string, string>): Promise<Result> {
  const s3 = s3Client();
  const runId = uniqueId(`bench-base-${variant}-${streams}`);
  let cpu0 = 0;
  let stores0: StoresCpu | null = null;
  const { latencies, events, seconds, errors, completedSinceOpen } = await drive(
    streams * WINDOW,
    async (_lane, seq) => {
      const p = payloads[seq % payloads.length] as Payload;
      const m = meta(runId, seq);
      try {
        const blobs = await Promise.all(
          p.images.map(async (img) => {
            // A direct writer hashes what it stores too (for the object metadata and the record), and
            // hands that hash to SigV4 as the gateway does, so the SDK does not hash the bytes again.
            const sha256 = createHash("sha256").update(img.data).digest("hex");
            const key = `bench-baseline/runs/${runId}/events/${m.eventId}/${img.view}.${img.ext}`;
            const put = new PutObjectCommand({ Bucket: STACK.blobBucket, Key: key, Body: img.data, ContentType: img.contentType, Metadata: { sha256, width: "1280", height: "720" } });
            await s3.send(withPayloadSha256(put, sha256));
            return { view: img.view, uri: `s3://${STACK.blobBucket}/${key}`, sha256, sizeBytes: img.data.length, contentType: img.contentType, width: 1280, height: 720 };
          }),
        );
        await producer.send({
          topic: topics[m.eventType ?? ""] ?? "",
          acks: -1,
          messages: [{ key: `${runId}/${m.carId}`, value: JSON.stringify({ schemaVersion: 1, ...m, images: blobs }), headers: { "schema-version": "1", "run-id": runId, "event-id": m.eventId ?? "" } }],
        });
        return true;
      } catch {
        return false;
      }
    },
    () => {
      cpu0 = selfCpuMs();
      stores0 = storesCpuMs();
    },
  );
  const clientCpuMs = (selfCpuMs() - cpu0) / Math.max(1, completedSinceOpen);
  const storeCpuMs = storesPerEvent(stores0, storesCpuMs(), completedSinceOpen);
  await deletePrefix(s3, `bench-baseline/runs/${runId}/`);
  s3.destroy();
  return { variant, path: "baseline", streams, events, seconds, latenciesMs: latencies, bytes: events * (payloads[0]?.bytes ?? 0), peakRssMb: null, errors, gatewayCpuMs: null, clientCpuMs, storeCpuMs };
}

async function runGateway(path: "grpc" | "ws", variant: Variant, payloads: Payload[], streams: number, gw: TestGateway): Promise<Result> {
  const runId = uniqueId(`bench-${path}-${variant}-${streams}`);
  let peak = 0;
  const pid = gw.process.pid ?? 0;
  const sampler = setInterval(() => {
    const r = rssMb(pid);
    if (r !== null && r > peak) peak = r;
  }, 50);
  let send: (lane: number, id: string, bytes: Buffer) => Promise<simgate.v1.Ack>;
  let close: () => Promise<void>;
  if (path === "grpc") {
    const client = new GrpcIngest(gw.grpcAddress);
    const lanes: EventStream[] = Array.from({ length: streams }, () => client.openStream(true));
    send = (lane, id, bytes) => (lanes[lane % streams] as EventStream).sendEncoded(id, bytes);
    close = async () => {
      for (const s of lanes) s.end();
      await Promise.all(lanes.map((s) => s.done));
      client.close();
    };
  } else {
    const sockets = await Promise.all(Array.from({ length: streams }, () => WsIngest.connect(gw.wsUrl)));
    send = (lane, id, bytes) => (sockets[lane % streams] as WsIngest).sendEncodedFrame(id, bytes);
    close = async () => {
      await Promise.all(sockets.map((s) => s.close()));
    };
  }
  let measuringPeak = false;
  let cpu0 = 0;
  let gwCpu0 = 0;
  let stores0: StoresCpu | null = null;
  const { latencies, events, seconds, errors, completedSinceOpen } = await drive(
    streams * WINDOW,
    async (lane, seq) => {
      const p = payloads[seq % payloads.length] as Payload;
      const m = meta(runId, seq);
      const ack = await send(lane % streams, m.eventId ?? "", encodeEvent(m, p, path === "ws"));
      if (!ack.accepted) notAccepted.set(ack.rejected?.code ?? ack.retryLater?.code ?? "?", (notAccepted.get(ack.rejected?.code ?? ack.retryLater?.code ?? "?") ?? 0) + 1);
      return Boolean(ack.accepted);
    },
    () => {
      measuringPeak = true;
      peak = 0;
      cpu0 = selfCpuMs();
      gwCpu0 = processCpuMs(pid);
      stores0 = storesCpuMs();
    },
  );
  const storeCpuMs = storesPerEvent(stores0, storesCpuMs(), completedSinceOpen);
  const clientCpuMs = (selfCpuMs() - cpu0) / Math.max(1, completedSinceOpen);
  const gatewayCpuMs = (processCpuMs(pid) - gwCpu0) / Math.max(1, completedSinceOpen);
  clearInterval(sampler);
  await close();
  const s3 = s3Client();
  await deletePrefix(s3, `runs/${runId}/`);
  s3.destroy();
  return { variant, path, streams, events, seconds, latenciesMs: latencies, bytes: events * (payloads[0]?.bytes ?? 0), peakRssMb: measuringPeak ? peak : null, errors, gatewayCpuMs, clientCpuMs, storeCpuMs };
}

/** Gives the gateway `count` accepted events without images (64 gRPC streams, untimed), as one that has
 *  been running remembers them. */
async function sendHistory(gw: TestGateway, count: number): Promise<void> {
  if (count <= 0) return;
  const started = performance.now();
  const runId = uniqueId("bench-history");
  const client = new GrpcIngest(gw.grpcAddress);
  const lanes: EventStream[] = Array.from({ length: 64 }, () => client.openStream(true));
  let next = 0;
  let refused = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      for (let seq = next++; seq < count; seq = next++) {
        const m = meta(runId, seq);
        const ack = await lane.sendEncoded(m.eventId ?? "", Buffer.from(simgate.v1.Event.encode(m).finish()));
        if (!ack.accepted) refused++;
      }
    }),
  );
  for (const lane of lanes) lane.end();
  await Promise.all(lanes.map((l) => l.done));
  client.close();
  if (refused > 0) throw new Error(`history: ${refused} of ${count} events not accepted`);
  console.log(`  history: ${count} events without images accepted in ${((performance.now() - started) / 1000).toFixed(1)} s (untimed)`);
}

/** The headline: the gateway process's CPU time per event against the direct writer's (the baseline's
 *  own process, which does the same S3 PUTs with sha256 and the Kafka produce), per variant and
 *  transport; the median of the per-row ratios, each row against the baseline of its streams and round. */
function printCpuHeadline(results: Result[]): void {
  const baseline = new Map<string, Result>();
  const ratios = new Map<string, { ratio: number[]; gw: number[]; direct: number[] }>();
  for (const r of results) {
    if (r.path === "baseline") {
      baseline.set(`${r.variant}/${r.streams}`, r);
      continue;
    }
    const base = baseline.get(`${r.variant}/${r.streams}`);
    if (!base || r.gatewayCpuMs === null) continue;
    const key = `${r.variant} ${r.path}`;
    const entry = ratios.get(key) ?? { ratio: [], gw: [], direct: [] };
    entry.ratio.push(r.gatewayCpuMs / base.clientCpuMs);
    entry.gw.push(r.gatewayCpuMs);
    entry.direct.push(base.clientCpuMs);
    ratios.set(key, entry);
  }
  if (ratios.size === 0) return;
  console.log(`gateway CPU per event / direct writer CPU per event (goal <= 1.2; median over ${ROUNDS} round(s) x streams ${STREAMS.join("/")}, each row against its own baseline):`);
  for (const [key, e] of ratios) {
    console.log(`  ${key.padEnd(10)} ${median(e.ratio).toFixed(2)}x  (gateway ${median(e.gw).toFixed(2)} ms/event, direct writer ${median(e.direct).toFixed(2)} ms/event; rows ${Math.min(...e.ratio).toFixed(2)}-${Math.max(...e.ratio).toFixed(2)}x)`);
  }
  console.log("");
}

function printTable(results: Result[]): void {
  // Each row against the baseline run just before it (the same round).
  const baseline = new Map<string, Result>();
  const header = ["variant", "path", "streams", "events", "events/s", "MB/s", "p50 ms", "p99 ms", "gw peak RSS MB", "vs baseline", "gw CPU ms/ev", "sender CPU ms/ev", "S3 CPU ms/ev", "Kafka CPU ms/ev", "all CPU ms/ev", "errors"];
  const rows = results.map((r) => {
    const eps = r.events / r.seconds;
    const sorted = [...r.latenciesMs].sort((a, b) => a - b);
    if (r.path === "baseline") baseline.set(`${r.variant}/${r.streams}`, r);
    const base = baseline.get(`${r.variant}/${r.streams}`);
    const rel = r.path !== "baseline" && base ? `${((eps / (base.events / base.seconds)) * 100).toFixed(0)}%` : "";
    return [r.variant, r.path, String(r.streams), String(r.events), eps.toFixed(1), (r.bytes / r.seconds / 1e6).toFixed(1), percentile(sorted, 50).toFixed(1), percentile(sorted, 99).toFixed(1), r.peakRssMb === null ? "" : r.peakRssMb.toFixed(0), rel, r.gatewayCpuMs === null ? "" : r.gatewayCpuMs.toFixed(1), r.clientCpuMs.toFixed(1),
      r.storeCpuMs === null ? "" : r.storeCpuMs.s3.toFixed(1),
      r.storeCpuMs === null ? "" : r.storeCpuMs.kafka.toFixed(1),
      r.storeCpuMs === null ? "" : ((r.gatewayCpuMs ?? 0) + r.clientCpuMs + r.storeCpuMs.s3 + r.storeCpuMs.kafka).toFixed(1),
      String(r.errors)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
}

/** With BENCH_ROUNDS > 1: per variant, streams and path, the median events/s of the rounds and its
 *  ratio to the baseline's median, with the range of the per-round ratios. */
function printMedians(results: Result[]): void {
  const groups = new Map<string, Result[]>();
  for (const r of results) {
    const key = `${r.variant}|${r.streams}|${r.path}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  console.log(`\nmedians over ${ROUNDS} interleaved rounds:`);
  for (const [key, runs] of groups) {
    const [variant, streams, path] = key.split("|") as [string, string, string];
    const eps = runs.map((r) => r.events / r.seconds);
    const base = groups.get(`${variant}|${streams}|baseline`)?.map((r) => r.events / r.seconds) ?? [];
    const ratios = path === "baseline" ? [] : eps.map((e, i) => (base[i] !== undefined ? e / (base[i] as number) : Number.NaN)).filter((x) => !Number.isNaN(x));
    const vs = path === "baseline" || base.length === 0 ? "" : `, ${((median(eps) / median(base)) * 100).toFixed(0)}% of the baseline's median (rounds ${Math.round(Math.min(...ratios) * 100)}-${Math.round(Math.max(...ratios) * 100)}%)`;
    console.log(`  ${variant} ${path} x${streams}: ${median(eps).toFixed(1)} events/s${vs}`);
  }
}

function gatewayMemoryLine(metrics: string): string {
  const gauge = (name: string): string => ((Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(metrics)?.[1] ?? Number.NaN)) / 1e6).toFixed(0);
  return `rss ${gauge("process_resident_memory_bytes")} MB, heap used ${gauge("nodejs_heap_size_used_bytes")} MB, external ${gauge("nodejs_external_memory_bytes")} MB`;
}

function meanLine(metrics: string): string {
  const mean = (name: string): string => {
    const total = (suffix: string): number =>
      [...metrics.matchAll(new RegExp(`^${name}_${suffix}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "gm"))].reduce((sum, m) => sum + Number(m[1]), 0);
    const count = total("count");
    return count ? `${((total("sum") / count) * 1000).toFixed(1)} ms over ${count}` : "n/a";
  };
  return `blob HEAD+PUT ${mean("simgate_gateway_blob_put_seconds")}, Kafka produce ${mean("simgate_gateway_produce_seconds")}, in-gateway ack ${mean("simgate_gateway_ack_seconds")}`;
}

/** The gateway's garbage collection pauses per accepted event, by kind (prom-client's
 *  nodejs_gc_duration_seconds; main-thread pause time, so inflated on a loaded machine like any wall time). */
function gcLine(metrics: string): string {
  const sum = (name: string, label = ""): number =>
    [...metrics.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.e+-]+)$`, "gm"))].filter((m) => (m[1] ?? "").includes(label)).reduce((t, m) => t + Number(m[2]), 0);
  const accepted = sum("simgate_gateway_events_total", 'outcome="accepted"');
  if (!accepted) return "n/a";
  const kinds = ["minor", "major", "incremental", "weakcb"].map((k) => `${k} ${((sum("nodejs_gc_duration_seconds_sum", `kind="${k}"`) * 1000) / accepted).toFixed(2)}`);
  return `${kinds.join(", ")} ms per accepted event (${accepted} events; ${sum("nodejs_gc_duration_seconds_count")} collections)`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const extraEnv = Object.fromEntries((process.env["BENCH_GATEWAY_ENV"] ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
  console.log(`simgate gateway benchmark: ${SECONDS}s per scenario (+${WARMUP_SECONDS}s warm-up), window ${WINDOW} events per stream, streams ${STREAMS.join("/")}; a fresh gateway per variant`);
  const kafka = kafkaClient();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const results: Result[] = [];
  const stores = [stackPid("s3"), stackPid("kafka")].filter((p): p is number => p !== undefined);
  if (PIN) {
    if (stores.length < 2) throw new Error("BENCH_PIN=1 needs the local stack's S3Proxy and Kafka (deploy/local/stack up)");
    pin(process.pid, "0");
    for (const p of stores) pin(p, "1");
    console.log(`pinned: this sender / direct writer on CPU 0; gateway, S3Proxy (${stores[0]}) and Kafka (${stores[1]}) on CPU 1`);
  }
  try {
    for (const variant of VARIANTS) {
      const payloads = await makePayloads(variant);
      console.log(`${variant}: ${DISTINCT_PAIRS} image pairs, ${(payloads.reduce((s, p) => s + p.bytes, 0) / payloads.length / 2 / 1e3).toFixed(0)} KB per image on average`);
      const gw = await startGateway({
        // The default health-check interval (2 s), not the test helper's 0.5 s, so probes are billed as in production.
        env: { SIMGATE_LOG_LEVEL: "warn", SIMGATE_HEALTH_INTERVAL_MS: "2000", ...extraEnv },
        nodeArgs: (process.env["BENCH_GATEWAY_NODE_ARGS"] ?? "").split(" ").filter(Boolean),
        echoLogs: process.env["BENCH_ECHO_LOGS"] === "1",
      });
      if (PIN) pin(gw.process.pid ?? 0, "1");
      try {
        await sendHistory(gw, HISTORY);
        for (const streams of STREAMS) {
          for (let round = 1; round <= ROUNDS; round++) {
            for (const path of PATHS) {
              const r = path === "baseline" ? await runBaseline(variant, payloads, streams, producer, gw.topics.map) : await runGateway(path, variant, payloads, streams, gw);
              results.push(r);
              console.log(`  ${variant} ${path} x${streams}${ROUNDS > 1 ? ` (round ${round})` : ""}: ${(r.events / r.seconds).toFixed(1)} events/s${r.peakRssMb ? `, gateway RSS ${r.peakRssMb.toFixed(0)} MB` : ""}${r.errors ? `, ${r.errors} not accepted` : ""}`);
            }
          }
        }
        const metrics = (await gw.get("/metrics")).body;
        if (notAccepted.size > 0) console.log(`  not accepted by code: ${JSON.stringify(Object.fromEntries(notAccepted))}`);
        console.log(`  gateway means: ${meanLine(metrics)}`);
        console.log(`  gateway memory at the end: ${gatewayMemoryLine(metrics)}`);
        console.log(`  gateway GC pauses: ${gcLine(metrics)}`);
      } finally {
        const exit = await gw.stop();
        if (exit !== 0) console.error(`gateway exited with ${exit}`);
      }
    }
  } finally {
    await producer.disconnect();
    if (PIN) for (const p of stores) pin(p, `0-${cpus().length - 1}`);
  }
  console.log("");
  printCpuHeadline(results);
  printTable(results);
  if (ROUNDS > 1) printMedians(results);
  console.log(`\nmachine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ${PIN ? "this process on CPU 0, gateway, S3Proxy and Kafka on CPU 1 (BENCH_PIN=1)" : "gateway, S3Proxy, Kafka and this client share them"}. Total ${((Date.now() - started) / 1000).toFixed(0)} s.`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
