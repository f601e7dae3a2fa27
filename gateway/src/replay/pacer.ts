// Paces events by simulation time: at `speed` times the recorded cadence, measured from the first
// paced event; "max" sends as fast as acknowledgements allow.
export class Pacer {
  private origin: { wallMs: number; simSeconds: number } | null = null;

  constructor(private readonly speed: number | "max") {}

  /** The wall-clock time the event at simSeconds is due, or undefined for "now" (speed max). */
  dueAt(simSeconds: number, nowMs = Date.now()): number | undefined {
    if (this.speed === "max") return undefined;
    this.origin ??= { wallMs: nowMs, simSeconds };
    return this.origin.wallMs + ((simSeconds - this.origin.simSeconds) * 1000) / this.speed;
  }
}
