// limits.whenFull = block, end to end: with uploads hanging (a frozen relay in front of the object
// store) and greedy senders, the gateway stops reading. The in-flight gauge never exceeds
// limits.maxInFlight, a WebSocket sender's bytes stay unsent (its TCP window is closed), and nothing
// is refused; once the store answers again every event is accepted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { pollUntil, STACK, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makePng } from "../support/images.js";
import { metricSum } from "../support/metrics.js";
import { freezableRelay, type FreezableRelay } from "../support/relay.js";

const MAX_IN_FLIGHT = 2;
let png: Buffer;
let relay: FreezableRelay;
let gw: TestGateway;

beforeAll(async () => {
  png = await makePng(1600, 1200, 31); // ≈ 2.2 MB
  const s3 = new URL(STACK.s3Endpoint);
  relay = await freezableRelay(s3.hostname, Number(s3.port));
  gw = await startGateway({
    env: {
      S3_ENDPOINT: `http://127.0.0.1:${relay.port}`,
      SIMGATE_WHEN_FULL: "block",
      SIMGATE_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
      SIMGATE_MAX_IN_FLIGHT_PER_CONNECTION: "1",
      SIMGATE_S3_TIMEOUT_MS: "120000",
      SIMGATE_PROBE_TIMEOUT_MS: "120000",
    },
  });
}, 120_000);
afterAll(async () => {
  relay.thaw();
  expect(await gw.stop()).toBe(0);
  await relay.close();
});

const event = (runId: string, n: number): simgate.v1.IEvent =>
  makeEvent(runId, n, [{ view: "entry", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG, width: 1600, height: 1200, data: png }]);

describe("whenFull = block with greedy senders", () => {
  it("stops reading: the gauge stays at the limit, the WebSocket sender's bytes stay unsent, then every event is accepted", async () => {
    const runId = uniqueId("block");
    let maxGauge = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxGauge = Math.max(maxGauge, metricSum((await gw.get("/metrics")).body, "simgate_gateway_in_flight_events"));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    relay.freeze();
    // A greedy WebSocket sender: ten 2.2 MB events written at once, without waiting for acks.
    const ws = new WebSocket(gw.wsUrl, { perMessageDeflate: false });
    await new Promise((r, j) => ws.once("open", r).once("error", j));
    const wsAcks: simgate.v1.Ack[] = [];
    ws.on("message", (d: Buffer) => {
      const frame = simgate.v1.ServerFrame.decode(d);
      if (frame.ack) wsAcks.push(frame.ack as simgate.v1.Ack);
    });
    const wsEvents = Array.from({ length: 10 }, (_, i) => event(runId, i + 1));
    for (const e of wsEvents) ws.send(simgate.v1.ClientFrame.encode({ event: e }).finish());
    // A greedy gRPC stream and a second one: more events than the limit.
    const client = new GrpcIngest(gw.grpcAddress);
    const grpcEvents = Array.from({ length: 6 }, (_, i) => event(runId, 100 + i));
    const grpcAcks = Promise.all([client.streamEvents(grpcEvents.slice(0, 3), 3), client.streamEvents(grpcEvents.slice(3), 3)]);

    await pollUntil("the limit reached", async () => maxGauge >= MAX_IN_FLIGHT, 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const unsent = ws.bufferedAmount;
    await new Promise((r) => setTimeout(r, 1000));
    // The gateway reads nothing more from the socket: what the sender could not hand to the kernel stays
    // in its buffer, not one byte less a second later.
    expect(unsent).toBeGreaterThan(2_000_000);
    expect(ws.bufferedAmount).toBe(unsent);
    expect(wsAcks).toHaveLength(0);

    relay.thaw();
    await pollUntil("every WebSocket event answered", async () => wsAcks.length === wsEvents.length, 120_000);
    const acks = [...wsAcks, ...(await grpcAcks).flat()];
    client.close();
    ws.close();
    sampling = false;
    await sampler;
    expect(acks.filter((a) => a.accepted).length, JSON.stringify(acks.filter((a) => !a.accepted).map((a) => a.toJSON()))).toBe(16);
    expect(maxGauge).toBe(MAX_IN_FLIGHT);
    expect(metricSum((await gw.get("/metrics")).body, "simgate_gateway_events_total", { code: "GW_ERR_THROTTLED" })).toBe(0);
  }, 180_000);
});
