// Operations: gRPC health and reflection (what grpcurl uses), HTTP probes and metrics, flow control and
// the reject-when-full policy, and SIGTERM draining (in-flight events finish, exit 0).
import { createRequire } from "node:module";
import { connect as http2Connect } from "node:http2";
import { connect, createServer, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest, WsIngest } from "../support/clients.js";
import { makeEvent, type EventImage } from "../support/events.js";
import { pollUntil, STACK, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makeJpeg, makePng } from "../support/images.js";
import { readObject, readTopic, s3Client } from "../support/stack.js";

const require = createRequire(import.meta.url);
let jpeg: Buffer;
let png: Buffer;
const images = (): EventImage[] => [
  { view: "entry", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_JPEG, width: 640, height: 360, data: jpeg },
  { view: "overview", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG, width: 640, height: 360, data: png },
];

beforeAll(async () => {
  [jpeg, png] = await Promise.all([makeJpeg(640, 360, 5), makePng(640, 360, 6)]);
});

describe("probes, health and reflection", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    expect(await gw.stop()).toBe(0);
  });

  it("answers /healthz, /readyz and /metrics with the fixed metric names", async () => {
    expect((await gw.get("/healthz")).status).toBe(200);
    const ready = await gw.get("/readyz");
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, dependencies: { kafka: { up: true }, s3: { up: true } } });
    const client = new GrpcIngest(gw.grpcAddress);
    await client.sendEvent(makeEvent(uniqueId("metrics-run"), 1, images()));
    client.close();
    const metrics = (await gw.get("/metrics")).body;
    for (const name of [
      "simgate_gateway_events_total",
      "simgate_gateway_errors_total",
      "simgate_gateway_received_bytes_total",
      "simgate_gateway_blob_bytes_total",
      "simgate_gateway_blob_requests_total",
      "simgate_gateway_blob_put_seconds_bucket",
      "simgate_gateway_produce_seconds_bucket",
      "simgate_gateway_ack_seconds_bucket",
      "simgate_gateway_in_flight_events",
      "simgate_gateway_connections",
      "simgate_gateway_ready 1",
    ]) expect(metrics).toContain(name);
    expect(metrics).toMatch(/simgate_gateway_events_total\{transport="grpc",outcome="accepted",code=""\} 1/);
    expect((await gw.get("/nope")).status).toBe(404);
  });

  it("advertises the configured HTTP/2 receive windows (4 MiB per stream, 16 MiB per connection), not Node's 64 KiB", async () => {
    // What a sender really gets: the stream window in the server's SETTINGS, the connection window
    // through the WINDOW_UPDATE that follows. If grpc-js changes the internals flow-control.ts uses,
    // this fails instead of the gateway silently falling back to 64 KiB.
    const session = http2Connect(`http://${gw.grpcAddress}`);
    try {
      const settings = await new Promise<{ initialWindowSize?: number }>((resolve, reject) => {
        session.once("remoteSettings", resolve);
        session.once("error", reject);
      });
      expect(settings.initialWindowSize).toBe(4 * 1024 * 1024);
      const window = await pollUntil("the connection window update", async () => {
        const remote = session.state.remoteWindowSize ?? 0;
        return remote > 65535 ? remote : undefined;
      }, 5000, 20);
      expect(window).toBe(16 * 1024 * 1024);
    } finally {
      session.destroy();
    }
  });

  it("serves grpc.health.v1 as SERVING", async () => {
    const health = require("grpc-health-check") as { service: grpc.ServiceDefinition };
    const Client = grpc.makeGenericClientConstructor(health.service, "Health");
    const client = new Client(gw.grpcAddress, grpc.credentials.createInsecure()) as unknown as {
      check(req: { service: string }, cb: (err: Error | null, res: { status: string | number }) => void): void;
      close(): void;
    };
    const res = await new Promise<{ status: string | number }>((resolve, reject) => client.check({ service: "simgate.v1.Ingest" }, (e, r) => (e ? reject(e) : resolve(r))));
    expect(res.status === "SERVING" || res.status === 1).toBe(true);
    client.close();
  });

  it("serves reflection with valid descriptors (map entries named as protoc does)", async () => {
    const reflectionProto = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto");
    const def = protoLoader.loadSync(reflectionProto, { keepCase: true, longs: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1alpha: { ServerReflection: grpc.ServiceClientConstructor } } } };
    const client = new pkg.grpc.reflection.v1alpha.ServerReflection(gw.grpcAddress, grpc.credentials.createInsecure());
    const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, Record<string, unknown>> }).ServerReflectionInfo();
    const answers: Array<Record<string, unknown>> = [];
    const done = new Promise<void>((resolve) => {
      call.on("data", (m: Record<string, unknown>) => {
        answers.push(m);
        if (answers.length === 2) call.end();
      });
      call.on("end", () => resolve());
      call.on("error", () => resolve());
    });
    call.write({ list_services: "" });
    call.write({ file_containing_symbol: "simgate.v1.Ingest" });
    await done;
    client.close();
    const services = (answers[0]?.["list_services_response"] as { service: Array<{ name: string }> }).service.map((s) => s.name);
    expect(services).toEqual(expect.arrayContaining(["simgate.v1.Ingest", "grpc.health.v1.Health"]));
    const files = (answers[1]?.["file_descriptor_response"] as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
    const descriptor = require("protobufjs/ext/descriptor") as { FileDescriptorProto: { decode(b: Buffer): { messageType: Array<{ name: string; nestedType: Array<{ name: string }>; field: Array<{ name: string; typeName?: string }> }> } } };
    const file = files.map((f) => descriptor.FileDescriptorProto.decode(f)).find((f) => f.messageType.some((m) => m.name === "Event"));
    const event = file?.messageType.find((m) => m.name === "Event");
    expect(event?.nestedType.map((n) => n.name)).toEqual(["AttributesEntry"]);
    expect(event?.field.find((f) => f.name === "attributes")?.typeName).toBe(".simgate.v1.Event.AttributesEntry");
    expect(event?.field.map((f) => f.name)).toContain("event_id");
  });
});

describe("logs", () => {
  it("every line the gateway writes, from its start to its stop, is one JSON log record (process warnings too)", async () => {
    // On Node.js 20 the AWS SDK warns at start-up that its releases after January 2027 need Node.js 22;
    // Node prints such warnings as several lines of text, which a log pipeline reading one JSON record
    // per line cannot parse.
    const gw = await startGateway();
    expect((await gw.get("/readyz")).status).toBe(200);
    expect(await gw.stop()).toBe(0);
    const lines = gw.logs();
    expect(lines.length).toBeGreaterThan(0);
    const notJson = lines.filter((line) => {
      try {
        const record = JSON.parse(line) as { level?: unknown; msg?: unknown };
        return typeof record.level !== "number" || typeof record.msg !== "string";
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
  });
});

describe("in-flight limits", () => {
  it("with whenFull = reject answers retry-later GW_ERR_THROTTLED beyond the total, and accepts the rest", async () => {
    const gw = await startGateway({ env: { SIMGATE_MAX_IN_FLIGHT: "2", SIMGATE_WHEN_FULL: "reject" } });
    try {
      const runId = uniqueId("throttle-run");
      const events = Array.from({ length: 24 }, (_, i) => makeEvent(runId, i + 1, images()));
      const sockets = await Promise.all([0, 1, 2, 3].map(() => WsIngest.connect(gw.wsUrl)));
      const acks = (await Promise.all(sockets.map((ws, k) => ws.sendAll(events.filter((_, i) => i % 4 === k), 6)))).flat();
      await Promise.all(sockets.map((ws) => ws.close()));
      const throttled = acks.filter((a) => a.retryLater?.code === "GW_ERR_THROTTLED");
      const accepted = acks.filter((a) => a.accepted);
      expect(throttled.length).toBeGreaterThan(0);
      expect(accepted.length + throttled.length).toBe(events.length);
      const records = [...(await readTopic(gw.topics.entries)), ...(await readTopic(gw.topics.exits))].filter((r) => r.headers["run-id"] === runId);
      expect(records.length).toBe(accepted.length);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it("the byte total (limits.maxInFlightBytes) throttles large messages the event count lets through", async () => {
    // About 345 KB per event (a 640x360 JPEG and PNG): with a 300,000-byte total one event fills it,
    // although the event count (64) would let them all in.
    const gw = await startGateway({ env: { SIMGATE_MAX_IN_FLIGHT_BYTES: String(300_000), SIMGATE_WHEN_FULL: "reject" } });
    try {
      const runId = uniqueId("bytes-run");
      const events = Array.from({ length: 16 }, (_, i) => makeEvent(runId, i + 1, images()));
      const sockets = await Promise.all([0, 1, 2, 3].map(() => WsIngest.connect(gw.wsUrl)));
      const acks = (await Promise.all(sockets.map((ws, k) => ws.sendAll(events.filter((_, i) => i % 4 === k), 4)))).flat();
      await Promise.all(sockets.map((ws) => ws.close()));
      const throttled = acks.filter((a) => a.retryLater?.code === "GW_ERR_THROTTLED");
      expect(throttled.length).toBeGreaterThan(0);
      expect(acks.filter((a) => a.accepted).length + throttled.length).toBe(events.length);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it("with whenFull = block stops reading instead, and every event is accepted", async () => {
    const gw = await startGateway({ env: { SIMGATE_MAX_IN_FLIGHT: "2", SIMGATE_MAX_IN_FLIGHT_PER_CONNECTION: "1" } });
    try {
      const runId = uniqueId("block-run");
      const events = Array.from({ length: 24 }, (_, i) => makeEvent(runId, i + 1, images()));
      const client = new GrpcIngest(gw.grpcAddress);
      const acks = (await Promise.all([0, 1, 2].map((k) => client.streamEvents(events.filter((_, i) => i % 3 === k), 8)))).flat();
      client.close();
      expect(acks.filter((a) => a.accepted).length).toBe(events.length);
      const metrics = (await gw.get("/metrics")).body;
      expect(metrics).not.toContain("GW_ERR_THROTTLED");
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});

describe("beyond the dedupe window", () => {
  it("a resend finds its blobs already stored (same sha256) and stores nothing again; marked as a resend (attempt > 0) it sends no image bytes at all; the record is written again", async () => {
    const gw = await startGateway({ env: { SIMGATE_DEDUPE_ENTRIES: "0" } });
    try {
      const metrics = async (): Promise<{ bytes: number; puts: number; heads: number }> => {
        const body = (await gw.get("/metrics")).body;
        const value = (re: RegExp): number => Number(re.exec(body)?.[1] ?? 0);
        return {
          bytes: value(/^simgate_gateway_blob_bytes_total (\S+)$/m),
          puts: value(/^simgate_gateway_blob_requests_total\{request="put"\} (\S+)$/m),
          heads: value(/^simgate_gateway_blob_requests_total\{request="head"\} (\S+)$/m),
        };
      };
      const client = new GrpcIngest(gw.grpcAddress);
      const event = makeEvent(uniqueId("window-run"), 1, images());
      const first = await client.sendEvent(event);
      expect(first.accepted).toBeTruthy();
      const afterFirst = await metrics();
      expect(afterFirst).toEqual({ bytes: jpeg.length + png.length, puts: 2, heads: 0 });
      // A resend without the hint: each conditional PUT is refused (412, the bytes crossed the wire),
      // then a HEAD finds the same sha256.
      const second = await client.sendEvent(event);
      expect(second.accepted, JSON.stringify(second.toJSON())).toBeTruthy();
      expect(second.accepted?.blobs?.map((b) => `${b.uri} ${b.sha256}`)).toEqual(first.accepted?.blobs?.map((b) => `${b.uri} ${b.sha256}`));
      const afterSecond = await metrics();
      expect(afterSecond).toEqual({ bytes: afterFirst.bytes, puts: 4, heads: 2 });
      // Marked as a resend: HEAD first, no PUT.
      const third = await client.sendEvent({ ...event, attempt: 1 });
      client.close();
      expect(third.accepted?.blobs?.map((b) => `${b.uri} ${b.sha256}`)).toEqual(first.accepted?.blobs?.map((b) => `${b.uri} ${b.sha256}`));
      expect(await metrics()).toEqual({ bytes: afterFirst.bytes, puts: 4, heads: 4 });
      const records = (await readTopic(gw.topics.exits)).concat(await readTopic(gw.topics.entries)).filter((r) => r.headers["event-id"] === event.eventId);
      expect(records).toHaveLength(3); // the lakehouse drops all but one by event id
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });

  it("a resend (attempt > 0) inside the window is a duplicate like any other: the attempt is not content", async () => {
    const gw = await startGateway();
    try {
      const client = new GrpcIngest(gw.grpcAddress);
      const event = makeEvent(uniqueId("attempt-run"), 1, images());
      const first = await client.sendEvent(event);
      const again = await client.sendEvent({ ...event, attempt: 3 });
      client.close();
      expect(first.accepted).toBeTruthy();
      expect(again.duplicate?.record?.offset, JSON.stringify(again.toJSON())).toEqual(first.accepted?.record?.offset);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});

describe("an event id reused with different images", () => {
  for (const mode of ["conditional", "always", "on-retry"]) {
    it(`${mode}: beyond the dedupe window it is rejected GW_ERR_EVENT_ID_CONFLICT, dead-lettered, and the first blob is not overwritten`, async () => {
      const gw = await startGateway({ env: { SIMGATE_DEDUPE_ENTRIES: "0", SIMGATE_S3_CHECK_EXISTING: mode } });
      const s3 = s3Client();
      try {
        const client = new GrpcIngest(gw.grpcAddress);
        const event = makeEvent(uniqueId("conflict-run"), 1, images());
        const first = await client.sendEvent(event);
        expect(first.accepted, JSON.stringify(first.toJSON())).toBeTruthy();
        const otherJpeg = await makeJpeg(640, 360, 99);
        const changed = { ...event, images: [{ ...(event.images?.[0] ?? {}), data: otherJpeg }, ...(event.images ?? []).slice(1)] };
        const second = await client.sendEvent(changed);
        // Sent twice: the on-retry mode HEADs first on the second attempt; all must refuse it.
        const third = await client.sendEvent(changed);
        client.close();
        for (const ack of [second, third]) expect(ack.rejected?.code, JSON.stringify(ack.toJSON())).toBe("GW_ERR_EVENT_ID_CONFLICT");
        for (const blob of first.accepted?.blobs ?? []) expect((await readObject(s3, blob.uri ?? "")).sha256).toBe(blob.sha256);
        const dead = (await readTopic(gw.topics.deadLetter)).map((r) => JSON.parse(r.value ?? "{}") as { code?: string; eventId?: string });
        expect(dead.filter((d) => d.eventId === event.eventId).map((d) => d.code)).toEqual(["GW_ERR_EVENT_ID_CONFLICT", "GW_ERR_EVENT_ID_CONFLICT"]);
        const records = (await readTopic(gw.topics.exits)).concat(await readTopic(gw.topics.entries)).filter((r) => r.headers["event-id"] === event.eventId);
        expect(records).toHaveLength(1);
      } finally {
        s3.destroy();
        expect(await gw.stop()).toBe(0);
      }
    });
  }
});

describe("SIGTERM", () => {
  for (const transport of ["grpc", "ws"] as const) {
    it(`finishes what is in flight, flushes the producer and exits 0 (${transport})`, async () => {
      const gw = await startGateway();
      const runId = uniqueId("drain-run");
      const events = Array.from({ length: 40 }, (_, i) => makeEvent(runId, i + 1, images()));
      const client = new GrpcIngest(gw.grpcAddress);
      const ws = transport === "ws" ? await WsIngest.connect(gw.wsUrl) : undefined;
      const stream = client.openStream();
      const pending = events.map((e) => (ws ? ws.sendEvent(e).catch(() => simgate.v1.Ack.create({ retryLater: { code: "STREAM_ENDED" } })) : stream.send(e)));
      // Stop while events are really in flight: the gauge says so just before SIGTERM.
      const inFlight = await pollUntil("events in flight", async () => {
        const n = Number(/^simgate_gateway_in_flight_events (\d+)$/m.exec((await gw.get("/metrics")).body)?.[1] ?? 0);
        return n >= 2 ? n : undefined;
      }, 30_000, 20);
      const exit = gw.stop();
      const acks = await Promise.all(pending);
      expect(await exit).toBe(0);
      client.close();
      await ws?.close();
      const accepted = acks.filter((a) => a.accepted);
      const other = acks.filter((a) => !a.accepted);
      // What was in flight at SIGTERM finished (accepted), it was not cut off.
      expect(accepted.length).toBeGreaterThanOrEqual(inFlight);
      // Whatever was not accepted was answered retry-later (draining) or left unanswered when the stream
      // ended (the sender resends both); none is in Kafka without an accepted ack.
      for (const a of other) expect(a.retryLater?.code, JSON.stringify(a.toJSON())).toMatch(/^(GW_ERR_DRAINING|STREAM_ENDED|STREAM_FAILED)$/);
      const records = [...(await readTopic(gw.topics.entries)), ...(await readTopic(gw.topics.exits))].filter((r) => r.headers["run-id"] === runId);
      expect(new Set(records.map((r) => r.headers["event-id"]))).toEqual(new Set(accepted.map((a) => a.eventId)));
      expect(gw.logs().some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    });
  }

  it("when the drain timeout runs out with events in flight, exits 3 and logs how many were abandoned", async () => {
    // A TCP relay in front of the object store that can be frozen: the uploads then hang in flight.
    const upstream = new URL(STACK.s3Endpoint);
    let frozen = false;
    const sockets = new Set<Socket>();
    const relay = createServer((client) => {
      const server = connect(Number(upstream.port), upstream.hostname);
      for (const s of [client, server]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => sockets.delete(s));
      }
      client.on("data", (d) => void (frozen || server.write(d)));
      server.on("data", (d) => void (frozen || client.write(d)));
      client.on("close", () => server.destroy());
      server.on("close", () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    const relayPort = (relay.address() as { port: number }).port;
    const gw = await startGateway({ env: { S3_ENDPOINT: `http://127.0.0.1:${relayPort}`, SIMGATE_DRAIN_TIMEOUT_MS: "1000", SIMGATE_S3_TIMEOUT_MS: "60000", SIMGATE_PROBE_TIMEOUT_MS: "60000" } });
    try {
      const client = new GrpcIngest(gw.grpcAddress);
      const runId = uniqueId("abandon-run");
      expect((await client.sendEvent(makeEvent(runId, 1, images()))).accepted).toBeTruthy();
      frozen = true;
      const pending = [2, 3, 4].map((i) => client.sendEvent(makeEvent(runId, i, images())).catch((e: unknown) => e));
      await pollUntil("three events in flight", async () => /^simgate_gateway_in_flight_events 3$/m.test((await gw.get("/metrics")).body), 20_000);
      expect(await gw.stop()).toBe(3);
      const stopped = gw.logs().find((l) => l.includes("drain timeout"));
      expect(stopped).toContain('"abandoned":3');
      client.close();
      await Promise.all(pending);
    } finally {
      await gw.kill();
      for (const s of sockets) s.destroy();
      relay.close();
    }
  });
});
