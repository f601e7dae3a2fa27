// Peer benchmark, records only: the gateway against the OpenTelemetry Collector (OTLP gRPC -> Kafka
// exporter) and Kafka's own kafka-producer-perf-test, on the same broker, with ~1 KB records and acks from
// all in-sync replicas. Per concurrency (1, 4, 16, 64, 256 streams, each waiting for its record's ack
// before the next one) it prints records/s, p50/p99 latency, the CPU time per record of every process
// (server, this sender, Kafka) and the ratio to the collector and to the broker's own limit.
//
//   deploy/local/stack up kafka s3 && eval "$(deploy/local/stack env)"
//   npm run bench:peers                       (root; builds the gateway and, once, the collector)
//   BENCH_ROUNDS=3 BENCH_STREAMS=16 npm run bench:peers       (interleaved rounds, medians)
//   deploy/local/stack down otelcol           (the command leaves the collector it started running)
//
// Rows: simgate over gRPC (one StreamEvents call per stream) and WebSocket (one socket per stream);
// otelcol-fair (deploy/local/otelcol/config-fair.yaml: answers after Kafka's ack, started with
// `deploy/local/stack up otelcol`); otelcol-default (config-default.yaml: the exporter's sending queue
// answers BEFORE Kafka holds the record, so its latency is not comparable); and perf-test, Kafka's
// producer (batching, 5 requests in flight, no per-record wait): the broker's limit on this machine.
// Knobs: BENCH_SECONDS (4), BENCH_WARMUP_SECONDS (1), BENCH_STREAMS, BENCH_PATHS, BENCH_ROUNDS,
// BENCH_RECORD_BYTES (1024), BENCH_PERF_RECORDS (300000), BENCH_GATEWAY_ENV, BENCH_GATEWAY_NODE_ARGS.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { eventRecord } from "../../gateway/src/exporters/kafka/records.js";
import type { ValidEvent } from "../../gateway/src/processors/validate/event-schema.js";
import { EventStream, RAW_INGEST_SERVICE, WsIngest } from "../support/clients.js";
import { freePort, pollUntil, REPO_ROOT, startGateway, STACK, uniqueId, type TestGateway } from "../support/gateway.js";
import { kafkaClient } from "../support/stack.js";
import { drive, median, percentile, printMarkdownTable, processCpuMs, selfCpuMs, stackPid } from "./measure.js";
import { encodeLogRequest, OtlpLogsClient } from "./otlp-logs.js";

type Path = "simgate-grpc" | "simgate-ws" | "otelcol-fair" | "otelcol-default";
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 4);
const WARMUP_SECONDS = Number(process.env["BENCH_WARMUP_SECONDS"] ?? 1);
const STREAMS = (process.env["BENCH_STREAMS"] ?? "1,4,16,64,256").split(",").map(Number);
const PATHS = (process.env["BENCH_PATHS"] ?? "otelcol-fair,otelcol-default,simgate-grpc,simgate-ws").split(",") as Path[];
const ROUNDS = Math.max(1, Number(process.env["BENCH_ROUNDS"] ?? 1));
const RECORD_BYTES = Number(process.env["BENCH_RECORD_BYTES"] ?? 1024);
const PERF_RECORDS = Number(process.env["BENCH_PERF_RECORDS"] ?? 300_000);
/** Streams per HTTP/2 connection: a gRPC server allows 100-128 concurrent streams per connection. */
const STREAMS_PER_CONNECTION = 64;
const OTELCOL_TOPIC = process.env["OTELCOL_TOPIC"] ?? "simgate.otlp.logs";

interface Row {
  path: Path | "perf-test";
  streams: number;
  records: number;
  seconds: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time per record in µs: the server (gateway, collector, or the perf-test's JVM), this sender, Kafka. */
  serverUs: number;
  clientUs: number;
  kafkaUs: number;
}

const rate = (r: Row): number => r.records / r.seconds;

function stack(args: string[], env: Record<string, string> = {}): void {
  const r = spawnSync(join(REPO_ROOT, "deploy/local/stack"), args, { stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`deploy/local/stack ${args.join(" ")} failed`);
}

/** Values of deploy/local/lib.sh (shell expressions), e.g. "$KAFKA_HOME" or "$(find_java)". */
function libValues(...expressions: string[]): string[] {
  const r = spawnSync("bash", ["-c", `. "${REPO_ROOT}/deploy/local/lib.sh" && ${expressions.map((e) => `echo "${e}"`).join(" && ")}`], { encoding: "utf8" });
  const values = r.stdout.trim().split("\n");
  if (r.status !== 0 || values.length !== expressions.length || values.some((v) => v === "")) throw new Error(`deploy/local/lib.sh gave no ${expressions.join(", ")}: ${r.stderr}`);
  return values;
}

function kafkaPid(): number {
  const pid = stackPid("kafka");
  if (pid === undefined) throw new Error("no local Kafka (deploy/local/stack up kafka s3, then eval \"$(deploy/local/stack env)\")");
  return pid;
}

/** The event's fields, with `text` padded so that the gateway's Kafka record (JSON) is RECORD_BYTES. */
function eventFields(runId: string, seq: number, text: string): simgate.v1.IEvent {
  return {
    eventId: `${runId}-${seq}`,
    runId,
    sequence: seq,
    eventType: seq % 2 === 0 ? "parking.exit" : "parking.entry",
    simTimeSeconds: seq * 0.5,
    captureTimeUnixMs: Date.now(),
    carId: `CAR${seq % 50}`,
    text,
    coordinates: { slotId: `S-${seq % 40}`, x: seq % 100, y: 0, z: 3, yawDeg: 90 },
    attributes: { bench: "1" },
  };
}

/** The padding that makes a record of RECORD_BYTES, measured on the gateway's own record builder. */
function gatewayPadding(): string {
  const runId = uniqueId("bench-peers-simgate");
  const m = eventFields(runId, 123456, "");
  const valid = { ...m, images: [], attempt: 0, coordinates: m.coordinates } as unknown as ValidEvent;
  const base = Buffer.byteLength(String(eventRecord("t", valid, [], Date.now(), "gw-bench-000").value));
  return "x".repeat(Math.max(0, RECORD_BYTES - base));
}

function otlpRequest(runId: string, seq: number, body: string): Buffer {
  return encodeLogRequest(body, { "event.id": `${runId}-${seq}`, "run.id": runId }, Date.now());
}

function otlpPadding(): string {
  const base = otlpRequest(uniqueId("bench-peers-otelcol"), 123456, "").length;
  return "x".repeat(Math.max(0, RECORD_BYTES - base));
}

interface Sender {
  send(lane: number, seq: number): Promise<boolean>;
  close(): Promise<void>;
}

async function simgateSender(path: "simgate-grpc" | "simgate-ws", gw: TestGateway, streams: number, runId: string, text: string): Promise<Sender> {
  const encode = (seq: number): { id: string; bytes: Buffer } => {
    const m = eventFields(runId, seq, text);
    const bytes = path === "simgate-ws" ? simgate.v1.ClientFrame.encode({ event: m }).finish() : simgate.v1.Event.encode(m).finish();
    return { id: m.eventId ?? "", bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  };
  if (path === "simgate-grpc") {
    const RawClient = grpc.makeGenericClientConstructor(RAW_INGEST_SERVICE, "Ingest");
    const clients = Array.from({ length: Math.ceil(streams / STREAMS_PER_CONNECTION) }, () => new RawClient(gw.grpcAddress, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
    const lanes = Array.from({ length: streams }, (_, i) => {
      const client = clients[Math.floor(i / STREAMS_PER_CONNECTION)] as grpc.Client;
      const call = (client as unknown as { StreamEvents: (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, simgate.v1.Ack> }).StreamEvents(new grpc.Metadata());
      return new EventStream(call);
    });
    return {
      send: async (lane, seq) => {
        const { id, bytes } = encode(seq);
        return Boolean((await (lanes[lane] as EventStream).sendEncoded(id, bytes)).accepted);
      },
      close: async () => {
        for (const s of lanes) s.end();
        await Promise.all(lanes.map((s) => s.done));
        for (const c of clients) c.close();
      },
    };
  }
  const sockets = await Promise.all(Array.from({ length: streams }, () => WsIngest.connect(gw.wsUrl)));
  return {
    send: async (lane, seq) => {
      const { id, bytes } = encode(seq);
      return Boolean((await (sockets[lane] as WsIngest).sendEncodedFrame(id, bytes)).accepted);
    },
    close: async () => {
      await Promise.all(sockets.map((s) => s.close()));
    },
  };
}

function otelcolSender(address: string, streams: number, runId: string, body: string): Sender {
  const clients = Array.from({ length: Math.ceil(streams / STREAMS_PER_CONNECTION) }, () => new OtlpLogsClient(address));
  return {
    send: (lane, seq) => (clients[Math.floor(lane / STREAMS_PER_CONNECTION)] as OtlpLogsClient).export(otlpRequest(runId, seq, body)),
    close: async () => {
      for (const c of clients) c.close();
    },
  };
}

async function measure(path: Path, streams: number, serverPid: number, sender: Sender): Promise<Row> {
  const kafka = kafkaPid();
  let cpu0 = 0;
  let server0 = 0;
  let kafka0 = 0;
  const r = await drive(streams, SECONDS, WARMUP_SECONDS, (lane, seq) => sender.send(lane, seq), () => {
    cpu0 = selfCpuMs();
    server0 = processCpuMs(serverPid);
    kafka0 = processCpuMs(kafka);
  });
  const n = Math.max(1, r.completedSinceOpen);
  const row: Row = {
    path,
    streams,
    records: r.events,
    seconds: r.seconds,
    p50: percentile([...r.latencies].sort((a, b) => a - b), 50),
    p99: percentile([...r.latencies].sort((a, b) => a - b), 99),
    errors: r.errors,
    serverUs: ((processCpuMs(serverPid) - server0) / n) * 1000,
    clientUs: ((selfCpuMs() - cpu0) / n) * 1000,
    kafkaUs: ((processCpuMs(kafka) - kafka0) / n) * 1000,
  };
  await sender.close();
  return row;
}

/** The collector with its default set-up, as a child of this process on free ports (the stack's
 *  otelcol service runs the fair set-up at the same time). */
async function startDefaultCollector(): Promise<{ address: string; process: ChildProcess; stop: () => Promise<void> }> {
  const [port, health] = [await freePort(), await freePort()];
  const [bin] = libValues("$OTELCOL_BIN") as [string];
  const child = spawn(bin, ["--config", join(REPO_ROOT, "deploy/local/otelcol/config-default.yaml")], {
    env: {
      PATH: process.env["PATH"] ?? "",
      OTELCOL_KAFKA_BROKERS: STACK.kafkaBootstrap,
      OTELCOL_TOPIC,
      OTELCOL_ENDPOINT: `127.0.0.1:${port}`,
      OTELCOL_HEALTH_ENDPOINT: `127.0.0.1:${health}`,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.on("data", (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  await pollUntil("the default-set-up collector's health check", async () => {
    if (child.exitCode !== null) throw new Error(`the collector exited: ${log}`);
    return (await fetch(`http://127.0.0.1:${health}/`).catch(() => undefined))?.status === 200;
  }, 30_000, 200);
  return {
    address: `127.0.0.1:${port}`,
    process: child,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance from the cached Kafka), acks=all,
 *  the same record size, as fast as it can; its JVM's CPU is sampled from /proc while it runs. */
async function perfTest(topic: string): Promise<Row> {
  const [kafkaHome, java] = libValues("$KAFKA_HOME", "$(find_java)") as [string, string];
  const kafka = kafkaPid();
  const kafka0 = processCpuMs(kafka);
  const t0 = Date.now();
  const child = spawn(java, [
    "-Xmx512m", `-Dlog4j2.configurationFile=${join(REPO_ROOT, "deploy/local/conf/log4j2-tools.properties")}`, "-cp", `${kafkaHome}/libs/*`,
    "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", String(PERF_RECORDS), "--record-size", String(RECORD_BYTES),
    "--throughput", "-1", "--producer-props", `bootstrap.servers=${STACK.kafkaBootstrap}`, "acks=all",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  let lastCpu = 0;
  const sampler = setInterval(() => {
    const c = processCpuMs(child.pid ?? 0);
    if (!Number.isNaN(c)) lastCpu = c;
  }, 100);
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  clearInterval(sampler);
  const kafkaCpu = processCpuMs(kafka) - kafka0;
  // "300000 records sent, 51234.5 records/sec (50.03 MB/sec), 512.3 ms avg latency, 900.0 ms max latency, 480 ms 50th, 700 ms 95th, 850 ms 99th, 890 ms 99.9th."
  const m = /(\d+) records sent, ([\d.]+) records\/sec .*?, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th/.exec(out);
  if (code !== 0 || !m) throw new Error(`kafka-producer-perf-test failed (exit ${code}): ${out.slice(-2000)}`);
  const records = Number(m[1]);
  const perSecond = Number(m[2]);
  console.log(`  perf-test: ${out.trim().split("\n").at(-1)} (${((Date.now() - t0) / 1000).toFixed(1)} s with JVM start-up)`);
  return {
    path: "perf-test",
    streams: 0,
    records,
    seconds: records / perSecond,
    p50: Number(m[3]),
    p99: Number(m[5]),
    errors: 0,
    serverUs: (lastCpu / records) * 1000,
    clientUs: 0,
    kafkaUs: (kafkaCpu / records) * 1000,
  };
}

function printRows(rows: Row[]): void {
  const perf = median(rows.filter((r) => r.path === "perf-test").map(rate));
  const fair = new Map<string, number>();
  const header = ["streams", "path", "records", "records/s", "p50 ms", "p99 ms", "server CPU µs/rec", "sender CPU µs/rec", "Kafka CPU µs/rec", "vs otelcol-fair", "vs broker limit", "errors"];
  const out = rows.map((r) => {
    if (r.path === "otelcol-fair") fair.set(String(r.streams), rate(r));
    const f = fair.get(String(r.streams));
    const vsFair = r.path.startsWith("simgate") && f ? `${((rate(r) / f) * 100).toFixed(0)}%` : "";
    return [r.path === "perf-test" ? "-" : String(r.streams), r.path, String(r.records), rate(r).toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1), r.serverUs.toFixed(0), r.path === "perf-test" ? "(in server)" : r.clientUs.toFixed(0), r.kafkaUs.toFixed(0), vsFair, Number.isNaN(perf) ? "" : `${((rate(r) / perf) * 100).toFixed(1)}%`, String(r.errors)];
  });
  printMarkdownTable(header, out);
}

function printMedians(rows: Row[]): void {
  console.log(`\nmedians over ${ROUNDS} interleaved rounds (records/s, p99 ms, server CPU µs/record):`);
  const perf = median(rows.filter((r) => r.path === "perf-test").map(rate));
  for (const streams of STREAMS) {
    const cell = (p: Path): string => {
      const rs = rows.filter((r) => r.path === p && r.streams === streams);
      return rs.length === 0 ? "" : `${p} ${median(rs.map(rate)).toFixed(0)}/s p99 ${median(rs.map((r) => r.p99)).toFixed(1)} cpu ${median(rs.map((r) => r.serverUs)).toFixed(0)}`;
    };
    const fair = median(rows.filter((r) => r.path === "otelcol-fair" && r.streams === streams).map(rate));
    const ratios = (["simgate-grpc", "simgate-ws"] as Path[]).map((p) => {
      const v = median(rows.filter((r) => r.path === p && r.streams === streams).map(rate));
      return Number.isNaN(v) ? "" : `${p}: ${((v / fair) * 100).toFixed(0)}% of otelcol-fair, ${((v / perf) * 100).toFixed(1)}% of the broker limit`;
    }).filter(Boolean);
    console.log(`  x${streams}: ${PATHS.map(cell).filter(Boolean).join("; ")}\n        ${ratios.join("; ")}`);
  }
  if (!Number.isNaN(perf)) console.log(`  broker limit (kafka-producer-perf-test, acks=all): ${perf.toFixed(0)} records/s`);
}

async function main(): Promise<void> {
  const started = Date.now();
  kafkaPid();
  if (PATHS.includes("otelcol-fair") || PATHS.includes("otelcol-default")) stack(["up", "otelcol"], { OTELCOL_MODE: "fair", OTELCOL_TOPIC });
  const fairPid = stackPid("otelcol");
  const fairAddress = process.env["OTELCOL_ENDPOINT"] ?? `127.0.0.1:${process.env["OTELCOL_PORT"] ?? "4317"}`;
  const admin = kafkaClient().admin();
  await admin.connect();
  const perfTopic = uniqueId("simgate-bench-perf-test");
  await admin.createTopics({ topics: [{ topic: perfTopic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  const text = gatewayPadding();
  const body = otlpPadding();
  console.log(`simgate peer benchmark: records of ${RECORD_BYTES} bytes (gateway JSON record; OTLP request), acks=all, ${SECONDS}s per scenario (+${WARMUP_SECONDS}s warm-up), one record outstanding per stream, streams ${STREAMS.join("/")}, ${ROUNDS} round(s)`);
  const extraEnv = Object.fromEntries((process.env["BENCH_GATEWAY_ENV"] ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
  // The gateway's default health-check interval (2 s; the test helper's 0.5 s would bill four times the probes to it).
  const gw = await startGateway({ env: { SIMGATE_LOG_LEVEL: "warn", SIMGATE_HEALTH_INTERVAL_MS: "2000", ...extraEnv }, nodeArgs: (process.env["BENCH_GATEWAY_NODE_ARGS"] ?? "").split(" ").filter(Boolean) });
  const def = PATHS.includes("otelcol-default") ? await startDefaultCollector() : undefined;
  const rows: Row[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      if (round === 1 || ROUNDS > 1) rows.push(await perfTest(perfTopic));
      for (const streams of STREAMS) {
        for (const path of PATHS) {
          const runId = uniqueId(`bench-peers-${streams}`);
          let row: Row;
          if (path === "otelcol-fair") {
            if (fairPid === undefined) throw new Error("the stack's otelcol is not running");
            row = await measure(path, streams, fairPid, otelcolSender(fairAddress, streams, runId, body));
          } else if (path === "otelcol-default") {
            if (!def) throw new Error("no default-set-up collector");
            row = await measure(path, streams, def.process.pid ?? 0, otelcolSender(def.address, streams, runId, body));
          } else {
            row = await measure(path, streams, gw.process.pid ?? 0, await simgateSender(path, gw, streams, runId, text));
          }
          rows.push(row);
          console.log(`  ${path} x${streams}${ROUNDS > 1 ? ` (round ${round})` : ""}: ${rate(row).toFixed(0)} records/s, p99 ${row.p99.toFixed(1)} ms${row.errors ? `, ${row.errors} not accepted` : ""}`);
        }
      }
    }
  } finally {
    await def?.stop();
    const exit = await gw.stop();
    if (exit !== 0) console.error(`gateway exited with ${exit}`);
    await admin.deleteTopics({ topics: [perfTopic, ...Object.values(gw.topics.map)] }).catch(() => undefined);
    await admin.disconnect();
  }
  console.log("");
  printRows(rows);
  if (ROUNDS > 1) printMedians(rows);
  console.log(`\nmachine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; every process shares them. Total ${((Date.now() - started) / 1000).toFixed(0)} s.`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
