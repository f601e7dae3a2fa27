// Duplicates per 1,000 events when Kafka fails under load: a private Kafka + S3Proxy (the project's own
// stack script), a gateway, FAULT_EVENTS events (no images) sent by 16 lanes that resend after
// retry-later, and one fault once 30 % are accepted:
//   stop  SIGSTOP of the broker for FAULT_STALL_SECONDS (15), then SIGCONT
//   kill  SIGKILL of the broker, then `stack up kafka`
// Afterwards every event must be in Kafka; records beyond one per event id are duplicates.
//
//   cd gateway && npm run build && FAULT=stop npx tsx ../test/faults/kafka-duplicates.ts
//   FAULT=kill FAULT_EVENTS=1000 FAULT_GATEWAY_ENV="SIMGATE_PRODUCE_TIMEOUT_MS=10000" npx tsx ../test/faults/kafka-duplicates.ts
//   SIMGATE_TEST_GATEWAY_DIST=/path/to/other/dist ...   (measure another build of the gateway)
// Results: test/faults/RESULTS.md.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { pollUntil, startGateway, uniqueId } from "../support/gateway.js";
import { startPrivateStack } from "../support/private-stack.js";
import { readTopic } from "../support/stack.js";

const FAULT = (process.env["FAULT"] ?? "stop") as "stop" | "kill";
const N = Number(process.env["FAULT_EVENTS"] ?? 1000);
const STALL_SECONDS = Number(process.env["FAULT_STALL_SECONDS"] ?? 15);
const LANES = 16;
const extraEnv = Object.fromEntries(
  (process.env["FAULT_GATEWAY_ENV"] ?? "")
    .split(",")
    .filter((kv) => kv.includes("="))
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);

async function main(): Promise<void> {
  const stack = await startPrivateStack(["kafka", "s3"]);
  const gw = await startGateway({ env: { KAFKA_BOOTSTRAP: stack.kafkaBootstrap, S3_ENDPOINT: stack.s3Endpoint, SIMGATE_HEALTH_INTERVAL_MS: "500", ...extraEnv } });
  const client = new GrpcIngest(gw.grpcAddress);
  const runId = uniqueId(`fault-${FAULT}`);
  const events = Array.from({ length: N }, (_, i) => makeEvent(runId, i + 1, []));
  const retryCodes = new Map<string, number>();
  let accepted = 0;
  let next = 0;
  const started = Date.now();
  const lane = async (): Promise<void> => {
    while (next < events.length) {
      const event = events[next++] as simgate.v1.IEvent;
      for (;;) {
        const ack = await client.sendEvent(event).catch((err: Error) => simgate.v1.Ack.create({ retryLater: { code: `TRANSPORT ${err.message.slice(0, 40)}`, retryAfterMs: 500 } }));
        if (ack.accepted || ack.duplicate) {
          accepted++;
          break;
        }
        if (ack.rejected) throw new Error(`rejected: ${JSON.stringify(ack.toJSON())}`);
        const code = ack.retryLater?.code ?? "?";
        retryCodes.set(code, (retryCodes.get(code) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, Math.min(ack.retryLater?.retryAfterMs ?? 500, 1000)));
      }
    }
  };
  const sending = Promise.all(Array.from({ length: LANES }, lane));
  await pollUntil("30 % accepted", async () => accepted >= N * 0.3, 120_000, 20);
  const pid = Number(readFileSync(join(stack.env["SIMGATE_STATE"] as string, "run/kafka.pid"), "utf8").trim());
  const faultAt = Date.now();
  if (FAULT === "stop") {
    process.kill(-pid, "SIGSTOP");
    await new Promise((r) => setTimeout(r, STALL_SECONDS * 1000));
    process.kill(-pid, "SIGCONT");
  } else {
    process.kill(-pid, "SIGKILL");
    await pollUntil("the broker gone", async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 30_000);
    await stack.up("kafka");
  }
  const faultSeconds = (Date.now() - faultAt) / 1000;
  await sending;
  const seconds = (Date.now() - started) / 1000;
  client.close();
  const records = (await Promise.all([gw.topics.entries, gw.topics.exits].map((t) => readTopic(t, stack.kafkaBootstrap)))).flat().filter((r) => r.headers["run-id"] === runId);
  const ids = new Set(records.map((r) => r.headers["event-id"]));
  const result = {
    fault: FAULT,
    events: N,
    faultSeconds: Number(faultSeconds.toFixed(1)),
    seconds: Number(seconds.toFixed(1)),
    missing: N - ids.size,
    records: records.length,
    duplicates: records.length - ids.size,
    duplicatesPer1000: Number((((records.length - ids.size) / N) * 1000).toFixed(1)),
    retryLater: Object.fromEntries(retryCodes),
  };
  console.log(JSON.stringify(result));
  await gw.stop();
  await stack.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
