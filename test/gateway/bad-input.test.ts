// Bad input: each case gets its documented code, is kept in the dead-letter topic with the reason, and
// the gateway stays ready afterwards.
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import WebSocket from "ws";
import { GrpcIngest, INGEST_SERVICE, RAW_INGEST_SERVICE, WsIngest, type UnaryError } from "../support/clients.js";
import { makeEvent, type EventImage } from "../support/events.js";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makeJpeg, makePng } from "../support/images.js";
import { objectExists, readObject, readTopic, s3Client, type ConsumedRecord } from "../support/stack.js";

const TOKEN = "test-token-0123456789abcdef";
const MAX_MESSAGE = 1024 * 1024;
const MAX_PIXELS = 100_000;
const PNG = simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG;
const JPEG = simgate.v1.ImageEncoding.IMAGE_ENCODING_JPEG;

let gw: TestGateway;
let grpcClient: GrpcIngest;
let png: Buffer; // 160x120
let bigJpeg: Buffer; // 640x360 = 230,400 pixels > MAX_PIXELS
const runId = uniqueId("bad-run");
let seq = 0;
const s3 = s3Client();

beforeAll(async () => {
  [png, bigJpeg] = await Promise.all([makePng(160, 120, 3), makeJpeg(640, 360, 4)]);
  gw = await startGateway({ token: TOKEN, env: { SIMGATE_MAX_MESSAGE_BYTES: String(MAX_MESSAGE), SIMGATE_MAX_IMAGE_PIXELS: String(MAX_PIXELS), SIMGATE_MAX_INFLIGHT: "3" } });
  grpcClient = new GrpcIngest(gw.grpcAddress, TOKEN);
});
afterAll(async () => {
  grpcClient.close();
  expect(await gw.stop()).toBe(0);
  s3.destroy();
});
afterEach(async () => {
  expect(await gw.isReady()).toBe(true);
});

function goodImage(): EventImage {
  return { view: "entry", encoding: PNG, width: 160, height: 120, data: png };
}
function event(overrides: Partial<simgate.v1.IEvent> = {}, images: EventImage[] = [goodImage()]): simgate.v1.IEvent {
  return makeEvent(runId, ++seq, images, overrides);
}

async function deadLetters(): Promise<Array<ConsumedRecord & { body: Record<string, unknown> }>> {
  return (await readTopic(gw.topics.deadLetter)).map((r) => ({ ...r, body: JSON.parse(r.value ?? "{}") as Record<string, unknown> }));
}

async function expectRejected(e: simgate.v1.IEvent, code: string): Promise<void> {
  // Over gRPC (stream and unary) and over WebSocket: the same code each time.
  const stream = grpcClient.openStream();
  const viaStream = await stream.send(e);
  stream.end();
  expect(viaStream.rejected?.code, JSON.stringify(viaStream.toJSON())).toBe(code);
  expect(viaStream.rejected?.message?.length).toBeGreaterThan(5);
  const viaUnary = await grpcClient.sendEvent(e);
  expect(viaUnary.rejected?.code).toBe(code);
  const ws = await WsIngest.connect(gw.wsUrl, TOKEN);
  const viaWs = await ws.sendEvent(e);
  await ws.close();
  expect(viaWs.rejected?.code).toBe(code);
  // Every refusal is kept with the bytes exactly as received, whatever the case (ids that are not
  // valid keys included): the Event twice (stream and unary), the ClientFrame once; a payload over 64 KiB
  // is compared through its quarantined object.
  const eventBytes = Buffer.from(simgate.v1.Event.encode(e).finish());
  const frameBytes = Buffer.from(simgate.v1.ClientFrame.encode({ event: e }).finish());
  const candidates = (await deadLetters()).filter((d) => d.body["code"] === code);
  const kept: Array<{ body: Record<string, unknown>; sentAs: string }> = [];
  for (const d of candidates) {
    const payload = await payloadOf(d.body);
    const sentAs = payload.equals(eventBytes) ? "event" : payload.equals(frameBytes) ? "frame" : undefined;
    if (sentAs !== undefined) kept.push({ body: d.body, sentAs });
  }
  expect(kept.map((k) => `${k.sentAs} ${k.body["transport"]} ${k.body["payloadType"]}`).sort()).toEqual(["event grpc simgate.v1.Event", "event grpc simgate.v1.Event", "frame ws simgate.v1.ClientFrame"]);
  for (const { body } of kept) {
    expect(body).toMatchObject({ schemaVersion: 1, code, eventId: e.eventId ? e.eventId : null, runId: e.runId ? e.runId : null });
    expect(String(body["message"]).length).toBeGreaterThan(5);
  }
}

/** A dead letter's payload: inline (base64) or its quarantined object. */
async function payloadOf(body: Record<string, unknown>): Promise<Buffer> {
  if (typeof body["payloadBase64"] === "string") return Buffer.from(body["payloadBase64"], "base64");
  if (typeof body["quarantineUri"] === "string") return (await readObject(s3, body["quarantineUri"])).bytes;
  throw new Error(`a dead letter with no payload: ${JSON.stringify(body)}`);
}

describe("bad input", () => {
  it("bytes that are not protobuf", async () => {
    // protobufjs is lenient (it clamps over-long strings and ignores wire types of known fields), so
    // "not protobuf" here is bytes it cannot read at all: an invalid wire type (7), an unterminated varint.
    const garbage = Buffer.from([0x7f, 0x01, 0x02]);
    const unterminated = Buffer.from([0x18, 0xff, 0xff]);
    const unary2 = await grpcClient.sendRawEvent(unterminated).catch((e: unknown) => e);
    expect(unary2).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const stream = grpcClient.openStream(true);
    const ack = await stream.sendRaw(garbage);
    stream.end();
    expect(ack.eventId).toBe("");
    expect(ack.rejected?.code).toBe("GW_ERR_DECODE");
    await expect(grpcClient.sendRawEvent(garbage)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining("GW_ERR_DECODE") });
    const ws = await WsIngest.connect(gw.wsUrl, TOKEN);
    const frame = await ws.sendRaw(garbage);
    expect(frame.error?.code).toBe("GW_ERR_DECODE");
    const text = await ws.sendRaw(Buffer.from("hello"), false);
    expect(text.error?.code).toBe("GW_ERR_EMPTY_FRAME");
    await ws.close();
    // Each kept with the bytes as received, as what it was sent as.
    const kept = (await deadLetters()).filter((d) => d.body["code"] === "GW_ERR_DECODE");
    const sent = (bytes: Buffer): string[] => kept.filter((d) => d.body["payloadBase64"] === bytes.toString("base64")).map((d) => `${d.body["transport"]} ${d.body["payloadType"]}`).sort();
    expect(sent(garbage)).toEqual(["grpc simgate.v1.Event", "grpc simgate.v1.Event", "ws simgate.v1.ClientFrame"]);
    expect(sent(unterminated)).toEqual(["grpc simgate.v1.Event"]);
  });

  it("an unknown event type", () => expectRejected(event({ eventType: "parking.teleport" }), "GW_ERR_UNKNOWN_EVENT_TYPE"));
  it("a missing event id", () => expectRejected(event({ eventId: "" }), "GW_ERR_INVALID_ID"));
  it("a missing run id", () => expectRejected(event({ runId: "" }), "GW_ERR_INVALID_ID"));
  it("an over-long event id", () => expectRejected(event({ eventId: "e".repeat(129) }), "GW_ERR_INVALID_ID"));
  it("a path-traversal id", async () => {
    const e = event({ runId: "../../../etc" });
    await expectRejected(e, "GW_ERR_INVALID_ID");
    await expectRejected(event({ eventId: ".." }), "GW_ERR_INVALID_ID");
    expect(await objectExists(s3, `s3://simgate-blobs/etc/events/${e.eventId}/entry.png`)).toBe(false);
  });
  it("non-finite coordinates", () => expectRejected(event({ coordinates: { slotId: "A-1", x: Number.NaN, y: Number.POSITIVE_INFINITY, z: 0, yawDeg: 0 } }), "GW_ERR_INVALID_COORDINATES"));
  it("a truncated PNG", () => expectRejected(event({}, [{ ...goodImage(), data: png.subarray(0, png.length - 100) }]), "GW_ERR_IMAGE_TRUNCATED"));
  it("a PNG with one byte flipped in its image data (the default container check's CRC-32 refuses it)", () => {
    const idat = png.indexOf(Buffer.from("IDAT"));
    const flipped = Buffer.from(png);
    flipped[idat + 4 + 100] = (flipped[idat + 4 + 100] as number) ^ 0x01;
    return expectRejected(event({}, [{ ...goodImage(), data: flipped }]), "GW_ERR_IMAGE_TRUNCATED");
  });
  it("bytes that are not an image", () => expectRejected(event({}, [{ ...goodImage(), data: Buffer.from("definitely not a PNG file, just text") }]), "GW_ERR_IMAGE_NOT_AN_IMAGE"));
  it("dimensions that disagree", () => expectRejected(event({}, [{ ...goodImage(), width: 161 }]), "GW_ERR_IMAGE_DIMENSIONS"));
  it("an image over the pixel limit", async () => {
    await expectRejected(event({}, [{ view: "plate", encoding: JPEG, width: 640, height: 360, data: bigJpeg }]), "GW_ERR_IMAGE_PIXEL_LIMIT");
    // declared small, real size large: caught from the header before decoding
    await expectRejected(event({}, [{ view: "plate", encoding: JPEG, width: 100, height: 100, data: bigJpeg }]), "GW_ERR_IMAGE_PIXEL_LIMIT");
  });

  it("a message over the size limit: rejected and quarantined; beyond the transport limit refused", async () => {
    // Otherwise valid, padded (with text) to just over the limit but under the transport's 2x.
    const big = event();
    const size = simgate.v1.Event.encode(big).finish().length;
    const padded = { ...big, text: "t".repeat(MAX_MESSAGE + 50_000 - size) };
    expect(simgate.v1.Event.encode(padded).finish().length).toBeGreaterThan(MAX_MESSAGE);
    await expectRejected(padded, "GW_ERR_MESSAGE_TOO_LARGE");
    const kept = (await deadLetters()).filter((d) => d.key === padded.eventId);
    const uri = kept[0]?.body["quarantineUri"];
    expect(typeof uri).toBe("string");
    expect(String(uri)).toMatch(/^s3:\/\/simgate-blobs\/quarantine\//);
    expect(await objectExists(s3, String(uri))).toBe(true);
    expect(kept[0]?.body["payloadBase64"]).toBeNull();

    const huge = { ...big, eventId: `${runId}-huge`, text: "h".repeat(MAX_MESSAGE * 2 + 10) };
    const err = (await grpcClient.sendEvent(huge).catch((e: unknown) => e)) as UnaryError;
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it("a run start or end with a bad run id, kept in the dead-letter topic too", async () => {
    const runStart = { runId: "../escape", startedUnixMs: Date.now() };
    const runEnd = { runId: "../escape", endedUnixMs: Date.now(), reason: "completed" };
    const start = await grpcClient.startRun(runStart);
    expect(start.rejected?.code).toBe("GW_ERR_INVALID_ID");
    const ws = await WsIngest.connect(gw.wsUrl, TOKEN);
    const end = await ws.endRun(runEnd);
    await ws.close();
    expect(end.rejected?.code).toBe("GW_ERR_INVALID_ID");
    const kept = (await deadLetters()).filter((d) => d.body["runId"] === "../escape");
    expect(kept.map((d) => `${d.body["code"]} ${d.body["transport"]} ${d.body["payloadType"]}`).sort()).toEqual(["GW_ERR_INVALID_ID grpc simgate.v1.RunStart", "GW_ERR_INVALID_ID ws simgate.v1.ClientFrame"]);
    // The bytes as received: the RunStart as gRPC carried it, the ClientFrame holding the RunEnd.
    const byTransport = new Map(await Promise.all(kept.map(async (d) => [d.body["transport"], (await payloadOf(d.body)).toString("hex")] as const)));
    expect(byTransport.get("grpc")).toBe(Buffer.from(simgate.v1.RunStart.encode(runStart).finish()).toString("hex"));
    expect(byTransport.get("ws")).toBe(Buffer.from(simgate.v1.ClientFrame.encode({ runEnd }).finish()).toString("hex"));
  });

  it("text, empty and bodiless WebSocket frames: GW_ERR_EMPTY_FRAME in the answer, the dead letter and the metrics", async () => {
    const ws = await WsIngest.connect(gw.wsUrl, TOKEN);
    const text = Buffer.from(`hello ${uniqueId("text")}`);
    // A ClientFrame with only an unknown field (15, varint): valid protobuf, no body.
    const bodiless = Buffer.from([0x78, 0x2a]);
    const answers = [await ws.sendRaw(text, false), await ws.sendRaw(Buffer.alloc(0)), await ws.sendRaw(bodiless)];
    await ws.close();
    for (const a of answers) {
      expect(a.error?.code, JSON.stringify(a.toJSON())).toBe("GW_ERR_EMPTY_FRAME");
      expect(a.error?.message).not.toMatch(/protobuf message/);
    }
    expect(answers[0]?.error?.message).toMatch(/text frame/);
    const kept = (await deadLetters()).filter((d) => d.body["code"] === "GW_ERR_EMPTY_FRAME").map((d) => `${d.body["payloadType"]} ${d.body["payloadBase64"]}`);
    expect(kept).toContain(`text ${text.toString("base64")}`);
    for (const raw of [Buffer.alloc(0), bodiless]) expect(kept).toContain(`simgate.v1.ClientFrame ${raw.toString("base64")}`);
    const metrics = (await gw.get("/metrics")).body;
    expect(metrics).toMatch(/simgate_gateway_events_total\{transport="ws",outcome="rejected",code="GW_ERR_EMPTY_FRAME"\} [3-9]/);
    expect(metrics).toMatch(/simgate_gateway_errors_total\{code="GW_ERR_EMPTY_FRAME",stage="receive"\} [3-9]/);
  });

  it("garbage bytes to unary StartRun/EndRun and invalid run messages over WebSocket are dead-lettered", async () => {
    const Raw = grpc.makeGenericClientConstructor(RAW_INGEST_SERVICE, "Ingest");
    const raw = new Raw(gw.grpcAddress, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${TOKEN}`);
    const call = (method: string, bytes: Buffer): Promise<unknown> =>
      new Promise((resolve) => {
        const fn = (raw as unknown as Record<string, (r: Buffer, m: grpc.Metadata, cb: (err: unknown, res: unknown) => void) => void>)[method];
        fn?.call(raw, bytes, md, (err, res) => resolve(err ?? res));
      });
    const garbage = Buffer.from([0x7f, 0x03, 0x04, ...Buffer.from(uniqueId("g"))]);
    for (const method of ["StartRun", "EndRun"]) {
      expect(await call(method, garbage)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining("GW_ERR_DECODE") });
    }
    raw.close();
    const ws = await WsIngest.connect(gw.wsUrl, TOKEN);
    const badRun = uniqueId("bad run id with spaces");
    const start = await ws.startRun({ runId: badRun, startedUnixMs: Date.now() });
    await ws.close();
    expect(start.rejected?.code).toBe("GW_ERR_INVALID_ID");
    const dead = await deadLetters();
    expect(dead.filter((d) => d.body["payloadBase64"] === garbage.toString("base64")).map((d) => `${d.body["code"]} ${d.body["payloadType"]}`).sort()).toEqual(["GW_ERR_DECODE simgate.v1.RunEnd", "GW_ERR_DECODE simgate.v1.RunStart"]);
    expect(dead.filter((d) => d.body["runId"] === badRun).map((d) => `${d.body["code"]} ${d.body["transport"]} ${d.body["payloadType"]}`)).toEqual(["GW_ERR_INVALID_ID ws simgate.v1.ClientFrame"]);
  });

  it("a missing or wrong token", async () => {
    for (const token of [undefined, "wrong-token-0123456789"]) {
      const client = new GrpcIngest(gw.grpcAddress, token);
      const err = (await client.sendEvent(event()).catch((e: unknown) => e)) as UnaryError;
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details).toContain("GW_ERR_UNAUTHENTICATED");
      const stream = client.openStream();
      const status = await stream.done;
      expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
      client.close();
      await expect(WsIngest.connect(gw.wsUrl, token)).rejects.toMatchObject({ statusCode: 401 });
    }
    // a token in the URL is not accepted
    await expect(WsIngest.connect(`${gw.wsUrl}?token=${TOKEN}`)).rejects.toMatchObject({ statusCode: 401 });
  });

  it("accepts the scheme in any case (authorization: bearer <token>), on both transports", async () => {
    const Client = grpc.makeGenericClientConstructor(INGEST_SERVICE, "Ingest");
    const client = new Client(gw.grpcAddress, grpc.credentials.createInsecure());
    for (const scheme of ["bearer", "BEARER", "Bearer"]) {
      const md = new grpc.Metadata();
      md.set("authorization", `${scheme} ${TOKEN}`);
      const ack = await new Promise<unknown>((resolve) => {
        const fn = (client as unknown as Record<string, (r: simgate.v1.IEvent, m: grpc.Metadata, cb: (err: unknown, res: unknown) => void) => void>)["SendEvent"];
        fn?.call(client, event(), md, (err, res) => resolve(err ?? res));
      });
      expect((ack as simgate.v1.Ack).accepted, `${scheme}: ${JSON.stringify(ack)}`).toBeTruthy();
      const socket = new WebSocket(gw.wsUrl, { headers: { authorization: `${scheme} ${TOKEN}` } });
      const opened = await new Promise<string>((resolve) => {
        socket.once("open", () => resolve("open"));
        socket.once("unexpected-response", (_req, res) => resolve(`HTTP ${res.statusCode}`));
        socket.once("error", (err) => resolve(err.message));
      });
      socket.terminate();
      expect(opened, scheme).toBe("open");
    }
    client.close();
  });

  it("counts unauthenticated unary calls in simgate_gateway_errors_total", async () => {
    const count = async (): Promise<number> => Number(/^simgate_gateway_errors_total\{code="GW_ERR_UNAUTHENTICATED",stage="receive"\} (\S+)$/m.exec((await gw.get("/metrics")).body)?.[1] ?? 0);
    const before = await count();
    const client = new GrpcIngest(gw.grpcAddress, "wrong-token-0123456789");
    await client.sendEvent(event()).catch(() => undefined);
    await client.startRun({ runId: uniqueId("unauth"), startedUnixMs: Date.now() }).catch(() => undefined);
    client.close();
    expect(await count()).toBe(before + 2);
  });

  it("warned at start-up about the unknown SIMGATE_* variable it was given", () => {
    const warning = gw.logs().find((l) => l.includes("unknown environment variables"));
    expect(warning).toContain("SIMGATE_MAX_INFLIGHT");
    expect(warning).toContain('"level":40');
  });

  it("good events still go through afterwards", async () => {
    const ack = await grpcClient.sendEvent(event());
    expect(ack.accepted?.record?.topic).toMatch(/^parking-/);
    const metrics = (await gw.get("/metrics")).body;
    expect(metrics).toMatch(/simgate_gateway_events_total\{transport="grpc",outcome="rejected",code="GW_ERR_IMAGE_TRUNCATED"\} [1-9]/);
  });
});
