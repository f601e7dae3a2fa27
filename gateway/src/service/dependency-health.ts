// Readiness: Kafka and the object store are probed every health.checkIntervalMs; a failed export marks
// its dependency down at once. While a dependency is down new events get retry-later and /readyz says
// 503; the next successful probe brings it back (and reconnects the producer) without a restart.
import type { Logger } from "../telemetry/logger.js";
import type { GatewayMetrics } from "../telemetry/metrics.js";

export type Dependency = "kafka" | "s3";

export interface Probe {
  readonly dependency: Dependency;
  check(timeoutMs: number): Promise<void>;
}

export class DependencyHealth {
  private readonly up = new Map<Dependency, boolean>();
  private readonly lastError = new Map<Dependency, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  draining = false;

  constructor(
    private readonly probes: readonly Probe[],
    private readonly intervalMs: number,
    private readonly probeTimeoutMs: number,
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {
    for (const p of probes) this.set(p.dependency, false, "not probed yet");
  }

  get ready(): boolean {
    return !this.draining && [...this.up.values()].every(Boolean);
  }

  isUp(dependency: Dependency): boolean {
    return this.up.get(dependency) ?? false;
  }

  status(): Record<string, { up: boolean; error?: string }> {
    const out: Record<string, { up: boolean; error?: string }> = {};
    for (const [dep, up] of this.up) {
      const error = this.lastError.get(dep);
      out[dep] = up || error === undefined ? { up } : { up, error };
    }
    return out;
  }

  /** A failed export: mark down now; the probe loop decides when it is back. */
  reportFailure(dependency: Dependency, error: string): void {
    this.set(dependency, false, error);
  }

  private set(dependency: Dependency, up: boolean, error?: string): void {
    const was = this.up.get(dependency);
    this.up.set(dependency, up);
    if (up) this.lastError.delete(dependency);
    else if (error !== undefined) this.lastError.set(dependency, error);
    this.metrics.dependencyUp.set({ dependency }, up ? 1 : 0);
    this.metrics.ready.set(this.ready ? 1 : 0);
    if (was !== undefined && was !== up) {
      if (up) this.logger.info({ dependency }, "dependency is back");
      else this.logger.warn({ dependency, error }, "dependency is down: answering retry-later");
    }
  }

  /** Probes every dependency once. */
  async checkNow(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const timeout = this.probeTimeoutMs;
      await Promise.all(
        this.probes.map(async (p) => {
          try {
            await p.check(timeout);
            this.set(p.dependency, true);
          } catch (err) {
            this.set(p.dependency, false, err instanceof Error ? err.message : String(err));
          }
        }),
      );
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  start(): void {
    const tick = (): void => {
      void this.checkNow().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, this.intervalMs).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  setDraining(): void {
    this.draining = true;
    this.metrics.ready.set(0);
  }
}
