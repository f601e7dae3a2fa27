// What every part of a replay shares: why it stopped (a fatal problem, or the caller's abort), and a
// way to wait that wakes early when something changes (an ack, a lost channel, an abort).
export class Stopped extends Error {}

/** Back-off before attempt n+1 of anything the replayer retries: 200 ms doubling, at most 5 s. */
export function backoffMs(attempt: number): number {
  return Math.min(5_000, 100 * 2 ** Math.min(attempt, 6));
}

export function count(map: Record<string, number>): number {
  return Object.values(map).reduce((a, b) => a + b, 0);
}

export function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

export class ReplayControl {
  /** Why the replay stopped before the end, when it did. */
  fatal: string | null = null;
  private readonly wakers = new Set<() => void>();

  constructor(private readonly signal?: AbortSignal) {}

  get aborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  /** Throws Stopped once the replay has failed or was aborted. */
  checkStopped(): void {
    if (this.fatal || this.aborted) throw new Stopped();
  }

  /** Stops the replay for `reason` (it replaces an earlier one). */
  stop(reason: string): never {
    this.fatal = reason;
    this.wake();
    throw new Stopped();
  }

  /** Records the first unexpected error and wakes every waiter. */
  fail(err: unknown): void {
    this.fatal ??= err instanceof Error ? err.message : String(err);
    this.wake();
  }

  wake(): void {
    for (const w of [...this.wakers]) w();
  }

  waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, timeoutMs));
      this.wakers.add(done);
    });
  }

  async sleep(ms: number): Promise<void> {
    await this.sleepUntil(Date.now() + ms);
  }

  /** Waits until the wall-clock time, or throws Stopped when the replay stops meanwhile. */
  async sleepUntil(wallMs: number): Promise<void> {
    while (Date.now() < wallMs) {
      this.checkStopped();
      await this.waitForChange(Math.min(1_000, wallMs - Date.now()));
    }
  }
}
