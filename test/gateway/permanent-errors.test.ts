// Permanent Kafka and object-store errors: the event is refused with its code and dead-lettered, the
// gateway stays ready (only retryable errors touch health), and nothing is retried forever. A dead
// letter that cannot be written turns the refusal into retry-later, never "rejected".
import { CreateBucketCommand, DeleteBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest } from "../support/clients.js";
import { makeEvent, type EventImage } from "../support/events.js";
import { startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makePng } from "../support/images.js";
import { metricSum } from "../support/metrics.js";
import { kafkaClient, readTopic, s3Client } from "../support/stack.js";

const PNG = simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG;
let png: Buffer;
beforeAll(async () => {
  png = await makePng(160, 120, 5);
});
const image = (): EventImage => ({ view: "entry", encoding: PNG, width: 160, height: 120, data: png });

/** Creates topics before the gateway does, with a small max.message.bytes. */
async function createSmallTopics(topics: string[], maxMessageBytes: number): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: "max.message.bytes", value: String(maxMessageBytes) }] })), waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** Samples /readyz every 100 ms while fn runs; returns fn's result and whether it was ever not ready. */
async function watchReadiness<T>(gw: TestGateway, fn: () => Promise<T>): Promise<{ result: T; everNotReady: boolean }> {
  let everNotReady = false;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      if (!(await gw.isReady())) everNotReady = true;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const result = await fn();
    await new Promise((r) => setTimeout(r, 1500)); // a health interval or three after the answer
    return { result, everNotReady };
  } finally {
    watching = false;
    await watcher;
  }
}

describe("a record too large for its topic (max.message.bytes = 3000)", () => {
  let gw: TestGateway;
  const suffix = uniqueId("small");
  beforeAll(async () => {
    await createSmallTopics([`parking-entries-${suffix}`], 3000);
    gw = await startGateway({ topicSuffix: suffix, env: { SIMGATE_HEALTH_INTERVAL_MS: "300" } });
  }, 120_000);
  afterAll(async () => {
    expect(await gw.stop()).toBe(0);
  });

  it("is GW_ERR_RECORD_REJECTED and dead-lettered, answered at once; the events beside it are accepted; the gateway stays ready", async () => {
    const runId = uniqueId("too-large");
    const client = new GrpcIngest(gw.grpcAddress);
    const big = makeEvent(runId, 1, [image()], { eventType: "parking.entry", text: "x".repeat(4000) });
    const small = [3, 5, 7].map((n) => makeEvent(runId, n, [image()], { eventType: "parking.entry" }));
    const before = (await gw.get("/metrics")).body;
    const started = Date.now();
    const { result: acks, everNotReady } = await watchReadiness(gw, () => client.streamEvents([big, ...small], 4));
    client.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(acks[0]?.rejected?.code, JSON.stringify(acks[0]?.toJSON())).toBe("GW_ERR_RECORD_REJECTED");
    for (const ack of acks.slice(1)) expect(ack.accepted, JSON.stringify(ack.toJSON())).toBeTruthy();
    expect(everNotReady).toBe(false);
    const after = (await gw.get("/metrics")).body;
    expect(metricSum(after, "simgate_gateway_dependency_up", { dependency: "kafka" })).toBe(1);
    expect(metricSum(after, "simgate_gateway_errors_total", { code: "GW_ERR_KAFKA_UNAVAILABLE" })).toBe(metricSum(before, "simgate_gateway_errors_total", { code: "GW_ERR_KAFKA_UNAVAILABLE" }));
    const dead = (await readTopic(gw.topics.deadLetter)).map((r) => JSON.parse(r.value ?? "{}") as { code: string; eventId: string; payloadBase64: string | null });
    const kept = dead.filter((d) => d.eventId === big.eventId);
    expect(kept.map((d) => d.code)).toEqual(["GW_ERR_RECORD_REJECTED"]);
    expect(simgate.v1.Event.decode(Buffer.from(kept[0]?.payloadBase64 ?? "", "base64")).text).toBe(big.text);
    const records = (await readTopic(gw.topics.entries)).filter((r) => r.headers["run-id"] === runId);
    expect(records.map((r) => r.headers["event-id"]).sort()).toEqual(small.map((e) => e.eventId).sort());
  }, 60_000);
});

describe("a dead-letter topic that cannot take the dead letter", () => {
  let gw: TestGateway;
  const suffix = uniqueId("dlq");
  beforeAll(async () => {
    await createSmallTopics([`simgate-dead-letter-${suffix}`], 200);
    gw = await startGateway({ topicSuffix: suffix, env: { SIMGATE_HEALTH_INTERVAL_MS: "300" } });
  }, 120_000);
  afterAll(async () => {
    expect(await gw.stop()).toBe(0);
  });

  it("turns the refusal into retry-later (GW_ERR_DEAD_LETTER_UNAVAILABLE), never rejected; good events still go through", async () => {
    const runId = uniqueId("dlq-fails");
    const client = new GrpcIngest(gw.grpcAddress);
    const bad = makeEvent(runId, 1, [{ ...image(), data: png.subarray(0, png.length - 50) }]);
    const { result: ack, everNotReady } = await watchReadiness(gw, () => client.sendEvent(bad));
    expect(ack.rejected, JSON.stringify(ack.toJSON())).toBeFalsy();
    expect(ack.retryLater?.code).toBe("GW_ERR_DEAD_LETTER_UNAVAILABLE");
    expect(ack.retryLater?.message).toContain("GW_ERR_IMAGE_TRUNCATED");
    expect(everNotReady).toBe(false);
    expect((await client.sendEvent(makeEvent(runId, 2, [image()]))).accepted).toBeTruthy();
    client.close();
  }, 60_000);
});

describe("an object store that refuses the write (the bucket is gone)", () => {
  let gw: TestGateway;
  const bucket = uniqueId("gone").toLowerCase();
  const s3 = s3Client();
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    gw = await startGateway({ env: { S3_BLOB_BUCKET: bucket, SIMGATE_HEALTH_INTERVAL_MS: "60000" } });
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  }, 120_000);
  afterAll(async () => {
    expect(await gw.stop()).toBe(0);
    s3.destroy();
  });

  it("is GW_ERR_STORAGE_REJECTED and dead-lettered, not retried, and does not mark the store down", async () => {
    const runId = uniqueId("no-bucket");
    const client = new GrpcIngest(gw.grpcAddress);
    const event = makeEvent(runId, 1, [image()]);
    const ack = await client.sendEvent(event);
    client.close();
    expect(ack.rejected?.code, JSON.stringify(ack.toJSON())).toBe("GW_ERR_STORAGE_REJECTED");
    expect(await gw.isReady()).toBe(true);
    const dead = (await readTopic(gw.topics.deadLetter)).map((r) => JSON.parse(r.value ?? "{}") as { code: string; eventId: string });
    expect(dead.filter((d) => d.eventId === event.eventId).map((d) => d.code)).toEqual(["GW_ERR_STORAGE_REJECTED"]);
  }, 60_000);
});
