// The local Kafka is real: a topic is created explicitly, records are produced with acks=all through an
// idempotent kafkajs producer and consumed back in order.
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { stackEnv } from "./stack-env.js";

const kafka = new Kafka({ clientId: "simgate-stack-test", brokers: [stackEnv.kafkaBootstrap], logLevel: logLevel.NOTHING });
const topic = `stack-test-${randomUUID()}`;
const admin = kafka.admin();

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

describe("local Kafka", () => {
  it("refuses to auto-create a topic, then produces with acks=all and consumes back", async () => {
    await admin.connect();
    const probe = kafka.producer({ allowAutoTopicCreation: true, retry: { retries: 1 } });
    await probe.connect();
    await expect(
      probe.send({ topic: `${topic}-never-created`, acks: -1, messages: [{ value: "x" }], timeout: 3000 }),
    ).rejects.toThrow();
    await probe.disconnect();

    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })).toBe(true);

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const sent = Array.from({ length: 20 }, (_, i) => ({ key: `car-${i % 3}`, value: JSON.stringify({ i }) }));
    const results = await producer.send({ topic, acks: -1, messages: sent });
    await producer.disconnect();
    expect(results.every((r) => r.errorCode === 0)).toBe(true);

    const consumer = kafka.consumer({ groupId: `stack-test-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: { key: string; i: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of 20 records consumed`)), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          received.push({ key: message.key?.toString() ?? "", i: (JSON.parse(message.value?.toString() ?? "{}") as { i: number }).i });
          if (received.length === sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();

    expect(received.map((r) => r.i).sort((a, b) => a - b)).toEqual(sent.map((_, i) => i));
    // Order holds per key (one key lives in one partition).
    for (const key of ["car-0", "car-1", "car-2"]) {
      const ofKey = received.filter((r) => r.key === key).map((r) => r.i);
      expect(ofKey).toEqual([...ofKey].sort((a, b) => a - b));
    }
  });
});
