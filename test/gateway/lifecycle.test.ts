// Start and stop never leak: a start that fails (the gRPC port is taken) stops everything it had
// started, so the process is left with no timers, sockets or servers of the gateway's; a started
// gateway stops cleanly and reports no failing step. In-process (service/gateway.ts), against the stack.
import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { configSchema } from "../../gateway/src/config/schema.js";
import { startGateway } from "../../gateway/src/service/gateway.js";
import { createLogger } from "../../gateway/src/telemetry/logger.js";
import { pollUntil, STACK, uniqueId } from "../support/gateway.js";

const handles = (): string[] => process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").sort();
/** The kinds of handle (sockets, servers, timers) of which there are more now than in `before`. */
const leaked = (before: string[]): string[] => {
  const count = (list: string[], kind: string): number => list.filter((k) => k === kind).length;
  const now = handles();
  return [...new Set(now)].filter((kind) => count(now, kind) > count(before, kind)).map((kind) => `${kind} ${count(before, kind)} -> ${count(now, kind)}`);
};

function config(grpcPort: number): ReturnType<typeof configSchema.parse> {
  const suffix = uniqueId("life");
  return configSchema.parse({
    grpc: { port: grpcPort },
    http: { port: 0 },
    kafka: { brokers: [STACK.kafkaBootstrap], topicMap: { "parking.entry": `parking-entries-${suffix}` }, deadLetterTopic: `simgate-dead-letter-${suffix}`, runsTopic: `simgate-runs-${suffix}` },
    s3: { endpoint: STACK.s3Endpoint, bucket: STACK.blobBucket },
    health: { checkIntervalMs: 200 },
    log: { level: "silent" },
  });
}

describe("gateway start and stop", () => {
  it("a start that fails on a taken gRPC port stops what it had started: no handle is left", async () => {
    const before = handles();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as { port: number }).port;
    const withBlocker = handles();
    await expect(startGateway(config(port), createLogger("silent", "gw-test"))).rejects.toThrow(/cannot listen for gRPC/);
    // Sockets closing and kafkajs' disconnects settle within a moment; then nothing of the gateway's is left.
    await pollUntil("the gateway's handles gone", async () => leaked(withBlocker).length === 0 || undefined, 10_000).catch(() => undefined);
    expect(leaked(withBlocker)).toEqual([]);
    await new Promise<void>((r) => blocker.close(() => r()));
    await pollUntil("back to the start", async () => leaked(before).length === 0 || undefined, 5_000).catch(() => undefined);
    expect(leaked(before)).toEqual([]);
  }, 60_000);

  it("a started gateway stops with no failing step and leaves no handle; stop twice is safe", async () => {
    const before = handles();
    const gw = await startGateway(config(0), createLogger("silent", "gw-test"));
    const first = await gw.stop();
    expect(await gw.stop()).toBe(first);
    expect(first).toEqual({ abandoned: 0, errors: [] });
    await pollUntil("the gateway's handles gone", async () => leaked(before).length === 0 || undefined, 10_000).catch(() => undefined);
    expect(leaked(before)).toEqual([]);
  }, 60_000);
});
