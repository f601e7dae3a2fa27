// LeaderLease against an in-memory Lease API with the API server's optimistic concurrency (409 on a
// stale resourceVersion or an existing name). The real API server is in test/deploy/cluster.test.ts;
// here the cases it cannot stage: a create race, and an API that stops answering the holder.
import { afterEach, describe, expect, it } from "vitest";
import type { ApiResponse, KubernetesClient } from "./kubernetes-client.js";
import { LeaderLease } from "./leader-lease.js";

class FakeLeaseApi {
  lease: { metadata: Record<string, unknown>; spec: Record<string, unknown> } | undefined;
  version = 0;
  failFor = new Set<string>();
  calls = 0;

  client(identity: string): KubernetesClient {
    return { call: (method: string, _path: string, body?: unknown) => Promise.resolve(this.handle(identity, method, body)) } as unknown as KubernetesClient;
  }

  private handle(identity: string, method: string, body: unknown): ApiResponse {
    this.calls++;
    if (this.failFor.has(identity)) return { status: 503, body: undefined, text: "unavailable" };
    const reply = (status: number, b?: unknown): ApiResponse => ({ status, body: b, text: JSON.stringify(b ?? {}) });
    if (method === "GET") return this.lease ? reply(200, structuredClone(this.lease)) : reply(404);
    const sent = structuredClone(body) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    if (method === "POST") {
      if (this.lease) return reply(409);
      this.lease = { ...sent, metadata: { ...sent.metadata, resourceVersion: String(++this.version) } };
      return reply(201, this.lease);
    }
    if (method === "PUT") {
      if (!this.lease || sent.metadata["resourceVersion"] !== this.lease.metadata["resourceVersion"]) return reply(409);
      this.lease = { ...sent, metadata: { ...sent.metadata, resourceVersion: String(++this.version) } };
      return reply(200, this.lease);
    }
    return reply(405);
  }
}

const timing = { leaseDurationMs: 600, renewDeadlineMs: 400, retryPeriodMs: 50 };
const running: LeaderLease[] = [];

function candidate(api: FakeLeaseApi, identity: string, events: string[] = []): LeaderLease {
  const lease = new LeaderLease(api.client(identity), {
    namespace: "simgate",
    name: "simgate-gateway-jobs",
    identity,
    ...timing,
    onStartedLeading: () => events.push(`${identity}+`),
    onStoppedLeading: () => events.push(`${identity}-`),
  });
  running.push(lease);
  return lease;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

afterEach(async () => {
  for (const l of running.splice(0)) await l.stop();
});

describe("LeaderLease", () => {
  it("of candidates started together, exactly one leads, and keeps leading", async () => {
    const api = new FakeLeaseApi();
    const all = ["a", "b", "c"].map((id) => candidate(api, id));
    for (const l of all) l.start();
    await until("a leader", () => all.some((l) => l.isLeader()));
    for (let i = 0; i < 20; i++) {
      expect(all.filter((l) => l.isLeader())).toHaveLength(1);
      await sleep(25);
    }
    expect(api.lease?.spec["leaseTransitions"]).toBe(0);
  });

  it("a holder that cannot renew stops leading within the renew deadline, before another takes over", async () => {
    const api = new FakeLeaseApi();
    const events: string[] = [];
    const a = candidate(api, "a", events);
    a.start();
    await until("a to lead", () => a.isLeader());
    const b = candidate(api, "b", events);
    b.start();
    await sleep(3 * timing.retryPeriodMs);
    api.failFor.add("a"); // a's requests fail from now on; b still reaches the API
    const cut = Date.now();
    await until("a to step down", () => !a.isLeader());
    expect(Date.now() - cut).toBeLessThan(timing.renewDeadlineMs + 2 * timing.retryPeriodMs);
    await until("b to take over", () => b.isLeader());
    expect(Date.now() - cut).toBeGreaterThanOrEqual(timing.leaseDurationMs - timing.retryPeriodMs);
    // Never two leaders: a stepped down before b started.
    expect(events).toEqual(["a+", "a-", "b+"]);
    expect(api.lease?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
  });

  it("stop() hands the Lease back, so the next candidate does not wait out the duration", async () => {
    const api = new FakeLeaseApi();
    const a = candidate(api, "a");
    const b = candidate(api, "b");
    a.start();
    await until("a to lead", () => a.isLeader());
    b.start();
    await sleep(2 * timing.retryPeriodMs);
    const stopped = Date.now();
    await a.stop();
    expect(api.lease?.spec["holderIdentity"]).toBe("");
    await until("b to lead", () => b.isLeader());
    expect(Date.now() - stopped).toBeLessThan(timing.leaseDurationMs);
  });

  it("refuses timings where a holder could outlive its Lease", () => {
    const api = new FakeLeaseApi();
    expect(() => new LeaderLease(api.client("a"), { namespace: "n", name: "l", identity: "a", leaseDurationMs: 1000, renewDeadlineMs: 1000, retryPeriodMs: 100 })).toThrow(/renewDeadlineMs must be below leaseDurationMs/);
  });
});
