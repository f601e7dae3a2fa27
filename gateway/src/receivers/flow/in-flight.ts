// Bounded in-flight events: a total limit shared by all connections, in events and in message bytes,
// and a per-connection limit in events. A connection that reaches its limit stops reading (the receiver
// pauses it); when the total is reached, limits.whenFull decides: "block" pauses the connection too,
// "reject" answers retry-later. The byte total admits a message while it is below its limit, so the
// bytes held can pass it by at most one message.

export class InFlightLimiter {
  private active = 0;
  private activeBytes = 0;
  private readonly waiters: Array<{ bytes: number; admit: () => void }> = [];
  private readonly watchers = new Set<() => void>();
  private wasFull = false;

  constructor(
    readonly max: number,
    readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  get count(): number {
    return this.active;
  }

  get bytes(): number {
    return this.activeBytes;
  }

  get full(): boolean {
    return this.active >= this.max || this.activeBytes >= this.maxBytes;
  }

  /** Called whenever the limiter turns full or stops being full (connections pause all together). */
  watch(onChange: () => void): () => void {
    this.watchers.add(onChange);
    return () => this.watchers.delete(onChange);
  }

  private changed(): void {
    const full = this.full;
    if (full === this.wasFull) return;
    this.wasFull = full;
    for (const w of this.watchers) w();
  }

  /** Takes a slot for a message of `bytes` bytes, unless the total is full or others wait (FIFO). */
  tryAcquire(bytes = 0): boolean {
    if (this.full || this.waiters.length > 0) return false;
    this.active++;
    this.activeBytes += bytes;
    this.changed();
    return true;
  }

  /** Waits for a slot (FIFO). */
  acquire(bytes = 0): Promise<void> {
    if (this.tryAcquire(bytes)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ bytes, admit: resolve }));
  }

  /** Gives back the slot of a message of `bytes` bytes; waiters take what is free, in order. */
  release(bytes = 0): void {
    this.active--;
    this.activeBytes -= bytes;
    while (this.waiters.length > 0 && !this.full) {
      const next = this.waiters.shift() as { bytes: number; admit: () => void };
      this.active++;
      this.activeBytes += next.bytes;
      next.admit();
    }
    this.changed();
  }
}

export interface FlowControl {
  pause(): void;
  resume(): void;
}

/** One connection's share: counts its events, pauses and resumes its reading. */
export class ConnectionFlow {
  private inConnection = 0;
  private waitingForTotal = 0;
  private paused = false;
  private readonly unwatch: () => void;

  constructor(
    private readonly total: InFlightLimiter,
    private readonly perConnection: number,
    private readonly whenFull: "block" | "reject",
    private readonly flow: FlowControl,
  ) {
    // With "block", every connection stops reading while the total is full, not only the ones that
    // happen to receive an event: otherwise each connection could still buffer a whole message.
    this.unwatch = whenFull === "block" ? total.watch(() => this.update()) : () => undefined;
  }

  /** The connection is gone: stop following the total. */
  close(): void {
    this.unwatch();
  }

  get inFlight(): number {
    return this.inConnection;
  }

  /** Takes a slot for one event of `bytes` bytes; false means "throttled" (only with whenFull = reject). */
  async admit(bytes = 0): Promise<boolean> {
    this.inConnection++;
    this.update();
    if (this.total.tryAcquire(bytes)) return true;
    if (this.whenFull === "reject") {
      this.inConnection--;
      this.update();
      return false;
    }
    this.waitingForTotal++;
    this.update();
    await this.total.acquire(bytes);
    this.waitingForTotal--;
    this.update();
    return true;
  }

  /** Gives the slot back once the event has been answered (the same `bytes` as admit). */
  done(bytes = 0): void {
    this.total.release(bytes);
    this.inConnection--;
    this.update();
  }

  private update(): void {
    const shouldPause =
      this.inConnection >= this.perConnection || this.waitingForTotal > 0 || (this.whenFull === "block" && this.total.full);
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.flow.pause();
    } else if (!shouldPause && this.paused) {
      this.paused = false;
      this.flow.resume();
    }
  }
}
