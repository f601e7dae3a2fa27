// The record producer alone, with a fake kafkajs client: records queued while a request is in flight
// go out together, grouped per topic and partition, and each caller gets its own record's offset
// (the partition's base offset + its place in the partition's batch). A permanent refusal fails only
// its record; a retryable failure fails the batch and replaces the producer (a new producer id).
import type { Kafka, RecordMetadata } from "kafkajs";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { RecordLocation } from "../../model/outcome.js";
import { RecordProducer, type OutgoingRecord } from "./record-producer.js";

interface SentMessage {
  key: string;
  value: string;
  partition: number;
}

interface FakeBroker {
  /** What each partition holds, in offset order. */
  log: Map<string, string[]>;
  requests: Array<Array<{ topic: string; messages: SentMessage[] }>>;
  producersCreated: number;
  /** Fails the next requests with this error (one per request). */
  failures: Error[];
  /** A value the broker refuses for good (MESSAGE_TOO_LARGE) wherever it appears. */
  refuse?: string;
  /** Holds the first request until released. */
  hold?: { released: Promise<void>; reached: () => void };
}

function fakeKafka(broker: FakeBroker): Kafka {
  const producer = () => {
    broker.producersCreated += 1;
    return {
      connect: async () => undefined,
      disconnect: async () => undefined,
      sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string; messages: SentMessage[] }> }): Promise<RecordMetadata[]> => {
        broker.requests.push(topicMessages);
        if (broker.hold) {
          const hold = broker.hold;
          broker.hold = undefined;
          hold.reached();
          await hold.released;
        }
        const failure = broker.failures.shift();
        if (failure) throw failure;
        if (topicMessages.some((t) => t.messages.some((m) => m.value === broker.refuse))) {
          throw Object.assign(new Error("The request included a message larger than the max message size the server will accept"), { type: "MESSAGE_TOO_LARGE" });
        }
        const out: RecordMetadata[] = [];
        for (const t of topicMessages) {
          const byPartition = new Map<number, SentMessage[]>();
          for (const m of t.messages) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
          for (const [partition, messages] of byPartition) {
            const name = `${t.topic}/${partition}`;
            const log = broker.log.get(name) ?? [];
            broker.log.set(name, log);
            out.push({ topicName: t.topic, partition, errorCode: 0, baseOffset: String(log.length) });
            log.push(...messages.map((m) => m.value));
          }
        }
        return out;
      },
    };
  };
  return { producer } as unknown as Kafka;
}

function setUp(broker: Partial<FakeBroker> = {}) {
  const b: FakeBroker = { log: new Map(), requests: [], producersCreated: 0, failures: [], ...broker };
  const producer = new RecordProducer(fakeKafka(b), { produceTimeoutMs: 10_000, requestTimeoutMs: 1_000, maxBatchRecords: 100, resendInitialMs: 200, resendMaxMs: 1_000 }, pino({ level: "silent" }));
  producer.setPartitionCounts(new Map([["t", 3], ["u", 2]]));
  return { b, producer };
}

const rec = (topic: string, key: string, value: string): OutgoingRecord => ({ topic, key, value, headers: {} });

function gateOf(): { hold: FakeBroker["hold"]; release: () => void; reached: Promise<void> } {
  let release = (): void => undefined;
  let reach = (): void => undefined;
  const reached = new Promise<void>((r) => (reach = r));
  const released = new Promise<void>((r) => (release = r));
  return { hold: { released, reached: reach }, release, reached };
}

describe("RecordProducer", () => {
  it("batches what queues behind a request and gives each record its own partition and offset", async () => {
    const gate = gateOf();
    const { b, producer } = setUp({ hold: gate.hold });
    const first = producer.send(rec("t", "k-0", "v-0"));
    await gate.reached;
    // These queue while the first request is held: they go out in one request, over both topics.
    const records = Array.from({ length: 30 }, (_, i) => rec(i % 3 === 0 ? "u" : "t", `k-${i % 7}`, `v-${i + 1}`));
    const rest = records.map((r) => producer.send(r));
    gate.release();
    const locations: RecordLocation[] = [await first, ...(await Promise.all(rest))];
    expect(b.requests).toHaveLength(2);
    // Every caller's location holds its own record, and the same key always lands in the same partition.
    const all = [rec("t", "k-0", "v-0"), ...records];
    const partitionOfKey = new Map<string, number>();
    all.forEach((r, i) => {
      const at = locations[i] as RecordLocation;
      expect(at.topic).toBe(r.topic);
      expect(b.log.get(`${at.topic}/${at.partition}`)?.[at.offset]).toBe(r.value);
      const known = partitionOfKey.get(`${r.topic}/${r.key}`);
      if (known !== undefined) expect(at.partition).toBe(known);
      partitionOfKey.set(`${r.topic}/${r.key}`, at.partition);
    });
    // Offsets within a partition are consecutive, in the order the records were sent.
    for (const [name, log] of b.log) {
      const mine = all.map((r, i) => [r, locations[i] as RecordLocation] as const).filter(([, l]) => `${l.topic}/${l.partition}` === name);
      expect(mine.map(([, l]) => l.offset)).toEqual(log.map((_, i) => i));
    }
    expect(new Set(locations.map((l) => `${l.topic}/${l.partition}`)).size).toBeGreaterThan(2);
  });

  it("a record refused for good fails alone (GW_ERR_RECORD_REJECTED); the others of its batch are written once", async () => {
    const gate = gateOf();
    const { b, producer } = setUp({ hold: gate.hold, refuse: "too-big" });
    const first = producer.send(rec("t", "a", "v-a"));
    await gate.reached;
    const batch = [producer.send(rec("t", "b", "v-b")), producer.send(rec("t", "c", "too-big")), producer.send(rec("u", "d", "v-d"))];
    gate.release();
    await first;
    const settled = await Promise.allSettled(batch);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: "GW_ERR_RECORD_REJECTED" });
    const written = [...b.log.values()].flat();
    expect(written.sort()).toEqual(["v-a", "v-b", "v-d"]);
  });

  it("a retryable failure fails the whole batch with GW_ERR_KAFKA_UNAVAILABLE and replaces the producer", async () => {
    const { b, producer } = setUp({ failures: [Object.assign(new Error("Request timed out"), { type: "REQUEST_TIMED_OUT" })] });
    await expect(producer.send(rec("t", "a", "v"))).rejects.toMatchObject({ code: "GW_ERR_KAFKA_UNAVAILABLE" });
    expect(producer.connected).toBe(false);
    expect(await producer.send(rec("t", "a", "v"))).toMatchObject({ topic: "t", offset: 0 });
    expect(b.producersCreated).toBe(2);
  });

  it("refuses new records once closed, after the queued ones went out", async () => {
    const { producer } = setUp();
    const queued = producer.send(rec("t", "a", "v"));
    await producer.close();
    await expect(queued).resolves.toMatchObject({ topic: "t" });
    await expect(producer.send(rec("t", "a", "w"))).rejects.toMatchObject({ code: "GW_ERR_DRAINING" });
  });
});
