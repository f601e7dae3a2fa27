// Bounded in-flight events: a total limit shared by all connections and a per-connection limit.
// A connection that reaches its limit stops reading (the receiver pauses it); when the total is
// reached, limits.whenFull decides: "block" pauses the connection too, "reject" answers retry-later.

export class InFlightLimiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  private readonly watchers = new Set<() => void>();
  private wasFull = false;

  constructor(readonly max: number) {}

  get count(): number {
    return this.active;
  }

  get full(): boolean {
    return this.active >= this.max;
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

  tryAcquire(): boolean {
    if (this.active >= this.max) return false;
    this.active++;
    this.changed();
    return true;
  }

  /** Waits for a slot (FIFO). */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else {
      this.active--;
      this.changed();
    }
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

  /** Takes a slot for one event; false means "throttled" (only with whenFull = reject). */
  async admit(): Promise<boolean> {
    this.inConnection++;
    this.update();
    if (this.total.tryAcquire()) return true;
    if (this.whenFull === "reject") {
      this.inConnection--;
      this.update();
      return false;
    }
    this.waitingForTotal++;
    this.update();
    await this.total.acquire();
    this.waitingForTotal--;
    this.update();
    return true;
  }

  /** Gives the slot back once the event has been answered. */
  done(): void {
    this.total.release();
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
