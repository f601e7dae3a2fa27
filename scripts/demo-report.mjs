// Part of scripts/demo: what the demo's replay left in the stack, read back from the stack itself.
// Usage: node scripts/demo-report.mjs SUMMARY_JSON RUN_ID
// Prints the replay's counts and throughput (from the replay summary), the run's objects in the blob
// bucket and the run's records per Kafka topic (read from the topics, matched by the run-id header).
import { readFileSync } from "node:fs";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Kafka, logLevel } from "kafkajs";

const [summaryPath, runId] = process.argv.slice(2);
if (!summaryPath || !runId) {
  console.error("usage: demo-report.mjs SUMMARY_JSON RUN_ID");
  process.exit(2);
}
const env = (k, d) => process.env[k] ?? d;
const summary = JSON.parse(readFileSync(summaryPath, "utf8"));

const s3 = new S3Client({
  endpoint: env("S3_ENDPOINT", "http://127.0.0.1:9333"),
  region: env("S3_REGION", "us-east-1"),
  credentials: { accessKeyId: env("S3_ACCESS_KEY", "simgate"), secretAccessKey: env("S3_SECRET_KEY", "simgate-secret") },
  forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
const bucket = env("S3_BLOB_BUCKET", "simgate-blobs");
const prefix = `${env("SIMGATE_BLOB_PREFIX", "")}runs/${runId}/`;
let objects = 0;
let objectBytes = 0;
let token;
do {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
  for (const o of page.Contents ?? []) {
    objects += 1;
    objectBytes += o.Size ?? 0;
  }
  token = page.IsTruncated ? page.NextContinuationToken : undefined;
} while (token);

const kafka = new Kafka({ clientId: `simgate-demo-${process.pid}`, brokers: env("KAFKA_BOOTSTRAP", "127.0.0.1:9092").split(","), logLevel: logLevel.NOTHING });
const topics = Object.keys(summary.recordsByTopic ?? {});
for (const t of [env("SIMGATE_RUNS_TOPIC", "simgate-runs"), env("SIMGATE_DEAD_LETTER_TOPIC", "simgate-dead-letter")]) if (!topics.includes(t)) topics.push(t);
const admin = kafka.admin();
await admin.connect();
const existing = new Set(await admin.listTopics());
const perTopic = {};
const totals = {};
const consumer = kafka.consumer({ groupId: `simgate-demo-${Date.now()}-${process.pid}` });
await consumer.connect();
for (const topic of topics.filter((t) => existing.has(t))) {
  const offsets = await admin.fetchTopicOffsets(topic);
  totals[topic] = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  perTopic[topic] = 0;
  const remaining = new Map(offsets.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high)]));
  if (remaining.size === 0) continue;
  await consumer.stop();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`reading ${topic} timed out`)), 60_000);
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          const high = remaining.get(partition);
          const offset = Number(message.offset);
          if (high === undefined || offset >= high) return;
          if (message.headers?.["run-id"]?.toString() === runId || message.key?.toString() === runId) perTopic[topic] += 1;
          if (offset >= high - 1) remaining.delete(partition);
          if (remaining.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
}
await consumer.disconnect();
await admin.disconnect();

const rejected = Object.entries(summary.rejectedByCode ?? {}).map(([c, n]) => `${c}=${n}`).join(" ");
console.log(`demo run ${runId}`);
console.log(`  events sent ${summary.sent}, accepted ${summary.accepted}, duplicate ${summary.duplicate}, rejected ${summary.rejected}${rejected ? ` (${rejected})` : ""}`);
console.log(`  throughput ${summary.eventsPerSecond.toFixed(1)} events/s, ${(summary.bytesSent / 1e6 / Math.max(summary.elapsedMs / 1000, 0.001)).toFixed(2)} MB/s`);
console.log(`  objects in s3://${bucket}/${prefix}: ${objects} (${(objectBytes / 1e6).toFixed(2)} MB)`);
for (const topic of topics) {
  if (!existing.has(topic)) console.log(`  topic ${topic}: does not exist`);
  else console.log(`  topic ${topic}: ${perTopic[topic]} records of this run (${totals[topic]} in the topic)`);
}
