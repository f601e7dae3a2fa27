// The gRPC receiver alone, on a loopback port, with a fake IngestConsumer: what it hands on (the bytes
// as received, one connection id per stream), how it answers (acks in the stream, statuses with the
// code in simgate-error-code), auth, the in-flight limits and the drain.
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { simgate } from "../../generated/simgate.js";
import { GatewayMetrics } from "../../telemetry/metrics.js";
import { BearerAuth } from "../auth.js";
import { FakeConsumer } from "../fake-consumer.test-support.js";
import { InFlightLimiter } from "../flow/in-flight.js";
import { GrpcReceiver } from "./grpc-receiver.js";

const TOKEN = "unit-test-token-0123456789";
const enc = <T>(fn: (m: T) => { finish(): Uint8Array }) => (m: T): Buffer => Buffer.from(fn(m).finish());
const raw = (b: Buffer): Buffer => b;
const SERVICE: grpc.ServiceDefinition = {
  StreamEvents: { path: "/simgate.v1.Ingest/StreamEvents", requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: enc((m: simgate.v1.IAck) => simgate.v1.Ack.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b) },
  SendEvent: { path: "/simgate.v1.Ingest/SendEvent", requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: enc((m: simgate.v1.IAck) => simgate.v1.Ack.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b) },
  StartRun: { path: "/simgate.v1.Ingest/StartRun", requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: enc((m: simgate.v1.IRunAck) => simgate.v1.RunAck.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b) },
};
const Client = grpc.makeGenericClientConstructor(SERVICE, "Ingest");
type Unary = (req: Buffer, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

const eventBytes = (eventId: string, sequence = 1): Buffer => Buffer.from(simgate.v1.Event.encode({ eventId, runId: "r", sequence, eventType: "parking.entry" }).finish());

const open: Array<{ receiver: GrpcReceiver; client: grpc.Client }> = [];
afterEach(async () => {
  for (const { receiver, client } of open.splice(0)) {
    client.close();
    await receiver.stop(200);
  }
});

async function setUp(limits: { maxInFlight?: number; perConnection?: number; whenFull?: "block" | "reject" } = {}) {
  const consumer = new FakeConsumer();
  const limiter = new InFlightLimiter(limits.maxInFlight ?? 16);
  const metrics = new GatewayMetrics();
  const receiver = new GrpcReceiver(
    { host: "127.0.0.1", port: 0, maxMessageBytes: 1 << 20, maxConnections: 8, maxInFlightPerConnection: limits.perConnection ?? 4, whenFull: limits.whenFull ?? "block", streamWindowBytes: 1 << 20, connectionWindowBytes: 1 << 22, maxConcurrentStreams: 16, keepaliveTimeMs: 0, keepaliveTimeoutMs: 20_000 },
    consumer,
    limiter,
    { ready: true },
    new BearerAuth(TOKEN),
    metrics,
    pino({ level: "silent" }),
  );
  const port = await receiver.start();
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  open.push({ receiver, client });
  const md = (token = TOKEN): grpc.Metadata => {
    const m = new grpc.Metadata();
    m.set("authorization", `Bearer ${token}`);
    return m;
  };
  const unary = <T>(method: string, req: Buffer, token?: string): Promise<T> =>
    new Promise((resolve, reject) => (client as unknown as Record<string, Unary>)[method]?.call(client, req, md(token), (err, res) => (err ? reject(err) : resolve(res as T))));
  const stream = (): grpc.ClientDuplexStream<Buffer, simgate.v1.Ack> => (client as unknown as { StreamEvents(md: grpc.Metadata): grpc.ClientDuplexStream<Buffer, simgate.v1.Ack> }).StreamEvents(md());
  return { consumer, limiter, metrics, receiver, unary, stream };
}

function collect(call: grpc.ClientDuplexStream<Buffer, simgate.v1.Ack>): Promise<{ acks: simgate.v1.Ack[]; status: grpc.StatusObject }> {
  const acks: simgate.v1.Ack[] = [];
  call.on("data", (a: simgate.v1.Ack) => acks.push(a));
  call.on("error", () => undefined);
  return new Promise((resolve) => call.on("status", (status: grpc.StatusObject) => resolve({ acks, status })));
}

describe("GrpcReceiver with a fake consumer", () => {
  it("hands each streamed event on with its bytes as received and one connection id, and writes back each answer", async () => {
    const { consumer, stream } = await setUp();
    const call = stream();
    const done = collect(call);
    const sent = ["e-1", "bad-2", "e-3"].map((id, i) => eventBytes(id, i + 1));
    for (const b of sent) call.write(b);
    call.end();
    const { acks, status } = await done;
    expect(status.code).toBe(grpc.status.OK);
    expect(acks.map((a) => [a.eventId, a.accepted ? "accepted" : a.rejected?.code]).sort()).toEqual([["bad-2", "GW_ERR_INVALID_ID"], ["e-1", "accepted"], ["e-3", "accepted"]]);
    expect(consumer.calls.map((c) => c.raw.toString("hex")).sort()).toEqual(sent.map((b) => b.toString("hex")).sort());
    expect(new Set(consumer.calls.map((c) => c.connectionId)).size).toBe(1);
  });

  it("answers bytes that do not decode with the consumer's code (a rejected ack in a stream, INVALID_ARGUMENT unary)", async () => {
    const { consumer, unary, stream } = await setUp();
    const garbage = Buffer.from([0xff, 0xff, 0xff]);
    const err = (await unary("SendEvent", garbage).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.metadata.get("simgate-error-code")).toEqual(["GW_ERR_DECODE"]);
    const call = stream();
    const done = collect(call);
    call.write(garbage);
    call.end();
    const { acks } = await done;
    expect(acks.map((a) => a.rejected?.code)).toEqual(["GW_ERR_DECODE"]);
    expect(consumer.calls.map((c) => [c.kind, c.raw.equals(garbage)])).toEqual([["undecodable", true], ["undecodable", true]]);
    // A run message that does not decode is kept as what it was sent as.
    await unary("StartRun", garbage).catch(() => undefined);
    expect(consumer.calls.at(-1)?.sentAs).toBe("simgate.v1.RunStart");
  });

  it("refuses a wrong token with UNAUTHENTICATED (code in the metadata) and hands nothing on", async () => {
    const { consumer, unary, metrics } = await setUp();
    const err = (await unary("SendEvent", eventBytes("e-1"), "wrong-token-0123456789").catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.metadata.get("simgate-error-code")).toEqual(["GW_ERR_UNAUTHENTICATED"]);
    expect(consumer.calls).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString("simgate_gateway_errors_total")).toMatch(/code="GW_ERR_UNAUTHENTICATED",stage="receive"} 1/);
  });

  it("whenFull = reject: beyond the total it answers GW_ERR_THROTTLED with the catalogue's delay, without the consumer", async () => {
    const { consumer, unary, stream } = await setUp({ maxInFlight: 1, whenFull: "reject" });
    consumer.hold();
    const call = stream();
    const done = collect(call);
    call.write(eventBytes("e-1"));
    await consumer.inFlight(1);
    const throttled = await unary<simgate.v1.Ack>("SendEvent", eventBytes("e-2"));
    expect(throttled.retryLater).toMatchObject({ code: "GW_ERR_THROTTLED", retryAfterMs: 200 });
    consumer.release();
    call.end();
    await done;
    expect(consumer.calls.map((c) => c.eventId)).toEqual(["e-1"]);
  });

  it("whenFull = block: never more events at the consumer than the total limit; the others wait, none is refused", async () => {
    const { consumer, stream } = await setUp({ maxInFlight: 2 });
    consumer.hold();
    const call = stream();
    const done = collect(call);
    for (let i = 1; i <= 8; i++) call.write(eventBytes(`e-${i}`, i));
    await consumer.inFlight(2);
    expect(consumer.calls).toHaveLength(2);
    consumer.release();
    call.end();
    const { acks } = await done;
    expect(acks).toHaveLength(8);
    expect(consumer.maxActive).toBe(2);
  });

  it("draining: a stream ends only after its in-flight event is answered", async () => {
    const { consumer, receiver, stream } = await setUp();
    consumer.hold();
    const call = stream();
    const done = collect(call);
    call.write(eventBytes("e-1"));
    await consumer.inFlight(1);
    receiver.beginDrain();
    const stopped = receiver.stop(5_000);
    consumer.release();
    const { acks, status } = await done;
    await stopped;
    expect(acks.map((a) => a.eventId)).toEqual(["e-1"]);
    expect(acks[0]?.accepted).toBeTruthy();
    expect(status.code).toBe(grpc.status.OK);
  });
});
