// Leader election among the gateway replicas with a coordination.k8s.io/v1 Lease, so that exactly one
// replica drives the Spark jobs. The same protocol as client-go's leaderelection package:
//   - every retryPeriod each candidate reads the Lease;
//   - the holder renews it (renewTime) with the resourceVersion it read, so two writers cannot both win;
//   - another candidate takes it over only when the holder has not renewed for leaseDuration, measured
//     on its own clock from when it last saw the Lease change (no trust in other nodes' clocks);
//   - a holder that cannot renew within renewDeadline stops leading before its Lease can expire
//     (renewDeadline < leaseDuration), so two leaders never overlap;
//   - stop() hands the Lease back (empty holder), so a rolling update does not wait out the duration.
// RBAC: create leases, get/update the one Lease by name (deploy/k8s/base/gateway/rbac.yaml).
import type { Logger } from "../telemetry/logger.js";
import { systemClock, type Clock, type TimerHandle } from "./job-types.js";
import type { KubernetesClient } from "./kubernetes-client.js";

export interface LeaderLeaseOptions {
  namespace: string;
  /** The Lease's name, e.g. "simgate-gateway-jobs". */
  name: string;
  /** This candidate, unique among the replicas (the pod's name). */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface LeaseObject {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

/** RFC 3339 with microseconds, the API's MicroTime. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderLease {
  private leading = false;
  private running = false;
  private timer: TimerHandle | undefined;
  private lastRenewMs = 0;
  /** The Lease as last read, and when (on this clock) it last changed. */
  private observed: { key: string; atMs: number } | undefined;
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: KubernetesClient,
    private readonly options: LeaderLeaseOptions,
    private readonly clock: Clock = systemClock,
    private readonly logger?: Logger,
  ) {
    if (!(options.renewDeadlineMs < options.leaseDurationMs)) throw new Error("leader lease: renewDeadlineMs must be below leaseDurationMs");
    if (!(options.retryPeriodMs < options.renewDeadlineMs)) throw new Error("leader lease: retryPeriodMs must be below renewDeadlineMs");
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops competing. With release (the default), a held Lease is handed back at once; without, it is
   *  simply no longer renewed (what a crashed replica leaves behind). */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.running = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.tick;
    if (this.leading && options.release !== false) await this.release().catch(() => undefined);
    this.setLeading(false);
  }

  private path(name?: string): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.options.namespace)}/leases`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.tick = this.tryAcquireOrRenew()
        .catch((err: unknown) => this.failedAttempt(err instanceof Error ? err.message : String(err)))
        .finally(() => this.schedule(this.options.retryPeriodMs));
    }, ms);
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.logger?.info({ lease: this.options.name, identity: this.options.identity, leading }, leading ? "became the job leader" : "no longer the job leader");
    if (leading) this.options.onStartedLeading?.();
    else this.options.onStoppedLeading?.();
  }

  private failedAttempt(reason: string): void {
    this.logger?.warn({ lease: this.options.name, reason }, "leader lease: attempt failed");
    // Keep leading only while the last renewal is within the renew deadline.
    if (this.leading && this.clock.now() - this.lastRenewMs >= this.options.renewDeadlineMs) this.setLeading(false);
  }

  private desired(previous: LeaseSpec | undefined, now: number): LeaseSpec {
    const held = previous?.holderIdentity === this.options.identity;
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      acquireTime: held && previous?.acquireTime ? previous.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (held || previous === undefined ? 0 : 1),
    };
  }

  private async tryAcquireOrRenew(): Promise<void> {
    if (!this.running) return;
    const now = this.clock.now();
    const got = await this.client.call("GET", this.path(this.options.name));
    if (got.status === 404) {
      const lease: LeaseObject = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: this.options.name, namespace: this.options.namespace },
        spec: this.desired(undefined, now),
      };
      const created = await this.client.call("POST", this.path(), lease);
      if (created.status === 201 || created.status === 200) return this.renewed(now);
      if (created.status === 409) return this.setLeading(false); // another candidate created it first
      return this.failedAttempt(`create Lease: HTTP ${created.status} ${created.text.slice(0, 200)}`);
    }
    if (got.status !== 200) return this.failedAttempt(`get Lease: HTTP ${got.status} ${got.text.slice(0, 200)}`);
    const lease = got.body as LeaseObject;
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}|${lease.metadata.resourceVersion ?? ""}`;
    if (this.observed?.key !== key) this.observed = { key, atMs: now };
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? Math.ceil(this.options.leaseDurationMs / 1000)) * 1000;
    if (holder !== "" && holder !== this.options.identity && now < (this.observed.atMs + durationMs)) {
      return this.setLeading(false); // held by another, and still valid as far as this clock can tell
    }
    const updated = await this.client.call("PUT", this.path(this.options.name), { ...lease, spec: this.desired(spec, now) });
    if (updated.status === 200) return this.renewed(now);
    if (updated.status === 409) return this.setLeading(false); // someone else wrote it first
    return this.failedAttempt(`update Lease: HTTP ${updated.status} ${updated.text.slice(0, 200)}`);
  }

  private renewed(now: number): void {
    this.lastRenewMs = now;
    this.observed = undefined;
    this.setLeading(true);
  }

  /** Hands the Lease back: an empty holder, which any candidate may take at its next attempt. */
  private async release(): Promise<void> {
    const got = await this.client.call("GET", this.path(this.options.name));
    if (got.status !== 200) return;
    const lease = got.body as LeaseObject;
    if (lease.spec?.holderIdentity !== this.options.identity) return;
    await this.client.call("PUT", this.path(this.options.name), {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(this.clock.now()) },
    });
  }
}
