// Direct access to the local stack for assertions: read a topic from the beginning, read objects back.
import { createHash } from "node:crypto";
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Kafka, logLevel } from "kafkajs";
import { STACK, uniqueId } from "./gateway.js";

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  /** The record's timestamp (the producer's create time), ms. */
  timestamp: number;
}

export function kafkaClient(bootstrap = STACK.kafkaBootstrap): Kafka {
  return new Kafka({ clientId: uniqueId("test"), brokers: bootstrap.split(","), logLevel: logLevel.NOTHING, retry: { retries: 3 } });
}

/** Every record in the topic right now (reads up to the high-water marks sampled at the start). */
export async function readTopic(topic: string, bootstrap = STACK.kafkaBootstrap, timeoutMs = 30_000): Promise<ConsumedRecord[]> {
  const kafka = kafkaClient(bootstrap);
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(offsets.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high)]));
  const records: ConsumedRecord[] = [];
  if (remaining.size === 0) return records;
  const consumer = kafka.consumer({ groupId: uniqueId("test-reader") });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} timed out; missing partitions ${[...remaining.keys()].join(",")}`)), timeoutMs);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          const offset = Number(message.offset);
          const high = remaining.get(partition);
          if (high === undefined || offset >= high) return;
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
          records.push({ topic, partition, offset, key: message.key?.toString("utf8") ?? null, value: message.value?.toString("utf8") ?? null, headers, timestamp: Number(message.timestamp) });
          if (offset >= high - 1) remaining.delete(partition);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

export function s3Client(endpoint = STACK.s3Endpoint): S3Client {
  return new S3Client({
    endpoint,
    region: STACK.s3Region,
    credentials: { accessKeyId: STACK.s3AccessKey, secretAccessKey: STACK.s3SecretKey },
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m || m[1] === undefined || m[2] === undefined) throw new Error(`not an s3 URI: ${uri}`);
  return { bucket: m[1], key: m[2] };
}

export async function readObject(s3: S3Client, uri: string): Promise<{ bytes: Buffer; sha256: string; contentType: string | undefined; metadata: Record<string, string> }> {
  const { bucket, key } = parseS3Uri(uri);
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex"), contentType: res.ContentType, metadata: res.Metadata ?? {} };
}

export async function objectExists(s3: S3Client, uri: string): Promise<boolean> {
  const { bucket, key } = parseS3Uri(uri);
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}
