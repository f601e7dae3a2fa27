// The WebSocket receiver alone, on a loopback HTTP server, with a fake IngestConsumer: one ServerFrame
// per ClientFrame, text/empty/undecodable frames handed on as such, refused upgrades with the code's
// HTTP status, the in-flight limit, and the drain (the answer first, then close 1001).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { simgate } from "../../generated/simgate.js";
import { GatewayMetrics } from "../../telemetry/metrics.js";
import { BearerAuth } from "../auth.js";
import { FakeConsumer } from "../fake-consumer.test-support.js";
import { InFlightLimiter } from "../flow/in-flight.js";
import { WS_CLOSE, WebSocketReceiver } from "./websocket-receiver.js";

const TOKEN = "unit-test-token-0123456789";
const open: Array<{ receiver: WebSocketReceiver; server: Server; sockets: WebSocket[] }> = [];
afterEach(async () => {
  for (const { receiver, server, sockets } of open.splice(0)) {
    for (const s of sockets) s.terminate();
    await receiver.stop(100);
    await new Promise((r) => server.close(r));
  }
});

async function setUp(maxInFlight = 16) {
  const consumer = new FakeConsumer();
  const receiver = new WebSocketReceiver({ path: "/v1/events", maxMessageBytes: 1 << 20, maxConnections: 4, maxInFlightPerConnection: 4, whenFull: "block" }, consumer, new InFlightLimiter(maxInFlight), new BearerAuth(TOKEN), new GatewayMetrics(), pino({ level: "silent" }));
  const server = createServer();
  receiver.attach(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  const sockets: WebSocket[] = [];
  open.push({ receiver, server, sockets });
  const connect = async (path = "/v1/events", token = TOKEN): Promise<{ ws: WebSocket; frames: simgate.v1.ServerFrame[]; next: (n: number) => Promise<simgate.v1.ServerFrame[]> }> => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
    sockets.push(ws);
    const frames: simgate.v1.ServerFrame[] = [];
    const waiters = new Set<() => void>();
    ws.on("message", (d: Buffer) => {
      frames.push(simgate.v1.ServerFrame.decode(d));
      for (const w of [...waiters]) w();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const next = (n: number): Promise<simgate.v1.ServerFrame[]> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (frames.length >= n) {
            waiters.delete(check);
            resolve(frames.slice(0, n));
          }
        };
        waiters.add(check);
        check();
      });
    return { ws, frames, next };
  };
  const refusal = (path: string, token: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      ws.on("error", () => undefined);
    });
  return { consumer, receiver, connect, refusal };
}

const frame = (m: simgate.v1.IClientFrame): Buffer => Buffer.from(simgate.v1.ClientFrame.encode(m).finish());

describe("WebSocketReceiver with a fake consumer", () => {
  it("answers each ClientFrame with one ServerFrame and hands on the frame's bytes as received", async () => {
    const { consumer, connect } = await setUp();
    const { ws, next } = await connect();
    const sent = [frame({ runStart: { runId: "r" } }), frame({ event: { eventId: "e-1", runId: "r", sequence: 1 } }), frame({ runEnd: { runId: "r" } })];
    for (const [i, b] of sent.entries()) {
      ws.send(b);
      await next(i + 1);
    }
    const frames = await next(3);
    expect(frames.map((f) => (f.runAck ? `runAck ${f.runAck.runId}` : `ack ${f.ack?.eventId} ${f.ack?.accepted ? "accepted" : ""}`))).toEqual(["runAck r", "ack e-1 accepted", "runAck r"]);
    expect(consumer.calls.map((c) => c.kind)).toEqual(["runStart", "event", "runEnd"]);
    consumer.calls.forEach((c, i) => expect(c.raw.equals(sent[i] ?? Buffer.alloc(0))).toBe(true));
  });

  it("hands text, empty and undecodable frames on as such and answers with the consumer's code", async () => {
    const { consumer, connect } = await setUp();
    const { ws, next } = await connect();
    ws.send("hello");
    await next(1);
    ws.send(Buffer.alloc(0));
    await next(2);
    ws.send(Buffer.from([0xff, 0xff, 0xff]));
    const frames = await next(3);
    expect(frames.map((f) => f.error?.code)).toEqual(["GW_ERR_EMPTY_FRAME", "GW_ERR_EMPTY_FRAME", "GW_ERR_DECODE"]);
    expect(consumer.calls.map((c) => [c.kind, c.sentAs ?? "", c.raw.toString("hex")])).toEqual([
      ["empty", "text", Buffer.from("hello").toString("hex")],
      ["empty", "binary", ""],
      ["undecodable", "", "ffffff"],
    ]);
  });

  it("refuses an upgrade with the code's HTTP status and a JSON body naming it", async () => {
    const { consumer, refusal } = await setUp();
    expect(await refusal("/elsewhere", TOKEN)).toEqual({ status: 404, body: JSON.stringify({ code: "GW_ERR_NOT_FOUND", message: "no WebSocket endpoint at /elsewhere" }) });
    const unauthorised = await refusal("/v1/events", "wrong-token-0123456789");
    expect(unauthorised.status).toBe(401);
    expect(JSON.parse(unauthorised.body)).toMatchObject({ code: "GW_ERR_UNAUTHENTICATED" });
    expect(consumer.calls).toEqual([]);
  });

  it("whenFull = block: never more events at the consumer than the total limit; the others wait, none is refused", async () => {
    const { consumer, connect } = await setUp(2);
    const { ws, next } = await connect();
    consumer.hold();
    for (let i = 1; i <= 6; i++) ws.send(frame({ event: { eventId: `e-${i}`, runId: "r", sequence: i } }));
    await consumer.inFlight(2);
    expect(consumer.calls).toHaveLength(2);
    consumer.release();
    const frames = await next(6);
    expect(frames.every((f) => f.ack?.accepted)).toBe(true);
    expect(consumer.maxActive).toBe(2);
  });

  it("draining: answers the event in flight, then closes with 1001; a new upgrade is refused 503", async () => {
    const { consumer, receiver, connect, refusal } = await setUp();
    const { ws, frames } = await connect();
    consumer.hold();
    const closed = new Promise<{ code: number; framesAtClose: number }>((r) => ws.on("close", (code) => r({ code, framesAtClose: frames.length })));
    ws.send(frame({ event: { eventId: "e-1", runId: "r", sequence: 1 } }));
    await consumer.inFlight(1);
    receiver.beginDrain();
    expect(JSON.parse((await refusal("/v1/events", TOKEN)).body)).toMatchObject({ code: "GW_ERR_DRAINING" });
    consumer.release();
    const { code, framesAtClose } = await closed;
    expect(code).toBe(WS_CLOSE.goingAway);
    expect(framesAtClose).toBe(1);
    expect(frames[0]?.ack?.accepted).toBeTruthy();
  });
});
