// The records exporter: an idempotent kafkajs producer (acks=all) behind a small batcher. Records queue
// up while one produce request is in flight and go out together in the next one; each caller gets its
// own record's topic, partition and offset once Kafka has acknowledged it.
//
// An unanswered request is resent by kafkajs with the same producer id and sequence numbers until
// produceTimeoutMs, so a broker that stalls and then writes the first copy deduplicates the resend.
// Past produceTimeoutMs (or after any other failure) the producer is replaced by a new one (new
// producer id), so that a request whose fate is unknown can never make the broker treat a later record
// as a duplicate; the sender's resend may then add a second record (at least once).
import { Partitioners, type Kafka, type Producer, type RecordMetadata } from "kafkajs";
import { GatewayError } from "../../errors/gateway-error.js";
import type { Logger } from "../../telemetry/logger.js";
import type { RecordLocation } from "../../model/outcome.js";
import { isPermanentKafkaError } from "./kafka-errors.js";
import { PartitionChooser } from "./partition-chooser.js";

export interface OutgoingRecord {
  topic: string;
  key: string;
  value: Buffer | string;
  headers: Record<string, string>;
}

interface Pending {
  record: OutgoingRecord;
  partition: number;
  resolve: (location: RecordLocation) => void;
  reject: (err: GatewayError) => void;
}

export interface RecordProducerOptions {
  produceTimeoutMs: number;
  /** One request's timeout (the client's requestTimeout, and the broker's wait for acks). */
  requestTimeoutMs: number;
  maxBatchRecords: number;
  /** First and longest wait between resends of an unanswered request. */
  resendInitialMs: number;
  resendMaxMs: number;
}

export class RecordProducer {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private readonly queue: Pending[] = [];
  private sending = false;
  private readonly partitions = new PartitionChooser();
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: RecordProducerOptions,
    private readonly logger: Logger,
  ) {}

  setPartitionCounts(counts: Map<string, number>): void {
    this.partitions.setCounts(counts);
  }

  get connected(): boolean {
    return this.producer !== undefined;
  }

  /** Connects a producer (a new one after a failure). Safe to call repeatedly. */
  async connect(): Promise<Producer> {
    if (this.producer) return this.producer;
    if (this.connecting) return this.connecting;
    const attempt = (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // Enough resends (each after at most requestTimeoutMs + 1 s) to last until produceTimeoutMs.
        retry: { retries: Math.ceil(this.options.produceTimeoutMs / this.options.requestTimeoutMs) + 1, initialRetryTime: this.options.resendInitialMs, maxRetryTime: this.options.resendMaxMs },
      });
      try {
        await producer.connect();
      } catch (err) {
        await producer.disconnect().catch(() => undefined);
        throw err;
      }
      this.producer = producer;
      return producer;
    })();
    this.connecting = attempt;
    try {
      return await attempt;
    } finally {
      this.connecting = undefined;
    }
  }

  /** Resolves once Kafka has acknowledged the record (acks=all); rejects with GW_ERR_KAFKA_UNAVAILABLE
   *  (retryable) or GW_ERR_RECORD_REJECTED (permanent: too large, not authorised, invalid topic). */
  send(record: OutgoingRecord): Promise<RecordLocation> {
    if (this.closed) return Promise.reject(new GatewayError("GW_ERR_DRAINING", "the producer is closed"));
    return new Promise<RecordLocation>((resolve, reject) => {
      this.queue.push({ record, partition: this.partitions.partitionFor(record.topic, record.key), resolve, reject });
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatchRecords);
        await this.sendBatch(batch);
      }
    } finally {
      this.sending = false;
    }
  }

  private async sendBatch(batch: Pending[]): Promise<void> {
    // Group per topic and partition, keeping arrival order: Kafka assigns consecutive offsets within a
    // partition's record batch, starting at the base offset it returns.
    const byTopic = new Map<string, Map<number, Pending[]>>();
    for (const p of batch) {
      const partitions = byTopic.get(p.record.topic) ?? new Map<number, Pending[]>();
      byTopic.set(p.record.topic, partitions);
      const list = partitions.get(p.partition) ?? [];
      partitions.set(p.partition, list);
      list.push(p);
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const producer = await this.connect();
      const topicMessages = [...byTopic].map(([topic, partitions]) => ({
        topic,
        messages: [...partitions].flatMap(([partition, list]) =>
          list.map((p) => ({ key: p.record.key, value: p.record.value, headers: p.record.headers, partition })),
        ),
      }));
      const metadata: RecordMetadata[] = await Promise.race([
        producer.sendBatch({ topicMessages, acks: -1, timeout: this.options.requestTimeoutMs }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`Kafka did not acknowledge within ${this.options.produceTimeoutMs} ms`)), this.options.produceTimeoutMs);
        }),
      ]);
      for (const m of metadata) {
        const list = byTopic.get(m.topicName)?.get(m.partition);
        if (!list) continue;
        const base = Number(m.baseOffset ?? m.offset);
        list.forEach((p, i) => p.resolve({ topic: m.topicName, partition: m.partition, offset: base + i }));
        byTopic.get(m.topicName)?.delete(m.partition);
      }
      for (const partitions of byTopic.values()) {
        for (const list of partitions.values()) {
          for (const p of list) p.reject(new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "Kafka returned no metadata for the record's partition"));
        }
      }
    } catch (err) {
      clearTimeout(timer);
      const text = err instanceof Error ? err.message : String(err);
      const permanent = isPermanentKafkaError(err);
      if (permanent && batch.length === 1) {
        // The broker refused the record for good and wrote nothing: the producer stays as it is.
        this.logger.warn({ err: text, topic: batch[0]?.record.topic }, "Kafka refused a record permanently");
        for (const p of batch) p.reject(new GatewayError("GW_ERR_RECORD_REJECTED", `Kafka refused the record: ${text}`, { cause: err }));
        return;
      }
      // The request's fate is unknown (or, for a permanent error, other partitions of it may have been
      // written): a new producer id, so that no later record is mistaken for a duplicate.
      this.logger.warn({ err: text, records: batch.length, permanent }, "kafka produce failed; replacing the producer");
      const failed = this.producer;
      this.producer = undefined;
      void failed?.disconnect().catch(() => undefined);
      if (permanent) {
        // One record of the batch is refused for good: send each alone so that only that one fails.
        for (const p of batch) await this.sendBatch([p]);
        return;
      }
      for (const p of batch) p.reject(new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", `Kafka: ${text}`, { cause: err }));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for queued records, then disconnects. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.sending || this.queue.length > 0) await new Promise((r) => setTimeout(r, 10));
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }
}
