// The events sent and not yet finally answered: each is resent with the same event id after
// retry-later (with the gateway's delay), after an ack timeout, or when its channel went away, until
// maxAttempts sends have used up; a late answer to an earlier send is ignored.
import type { simgate } from "../generated/simgate.js";
import type { ChannelSupervisor } from "./channel-supervisor.js";
import { Stopped, backoffMs, bump, type ReplayControl } from "./control.js";
import { TransportError, type EventChannel } from "./transport.js";

export interface Pending {
  offset: number;
  event: simgate.v1.IEvent;
  bytes: number;
  /** Sends that count against maxAttempts. */
  attempts: number;
  /** Every send, lost channels included. */
  sends: number;
  /** The channel of the last send. */
  channel: EventChannel | null;
  /** Waiting for a channel or for the transport to take it. */
  sending: boolean;
  sentAt: number;
  retryTimer: NodeJS.Timeout | null;
  lastCode: string;
}

export type FinalOutcome = "accepted" | "duplicate" | "rejected" | "failed";

/** The counters the window keeps up to date (the replay's summary). */
export interface WindowStats {
  resends: number;
  bytesSent: number;
  retryLaterAnswers: number;
  recordsByTopic: Record<string, number>;
}

export interface WindowOptions {
  /** Resend an event that got no answer within this time. */
  ackTimeoutMs: number;
  /** Give an event up (failed) after this many counted sends. */
  maxAttempts: number;
}

export class PendingWindow {
  private readonly inflight = new Map<string, Pending>();
  private channels!: ChannelSupervisor;

  constructor(
    private readonly options: WindowOptions,
    private readonly control: ReplayControl,
    private readonly stats: WindowStats,
    /** Told once per event, after it left the window. */
    private readonly settled: (p: Pending, outcome: FinalOutcome, code: string) => void,
  ) {}

  /** The channel supervisor the window sends through (built after the window: it reports to it). */
  sendThrough(channels: ChannelSupervisor): void {
    this.channels = channels;
  }

  get size(): number {
    return this.inflight.size;
  }

  has(eventId: string): boolean {
    return this.inflight.has(eventId);
  }

  /** Opens a slot for the event (sent by sendFirst). */
  open(offset: number, event: simgate.v1.IEvent, bytes: number): Pending {
    const pending: Pending = { offset, event, bytes, attempts: 0, sends: 0, channel: null, sending: false, sentAt: 0, retryTimer: null, lastCode: "" };
    this.inflight.set(event.eventId ?? "", pending);
    return pending;
  }

  sendFirst(p: Pending): Promise<void> {
    return this.transmit(p, true);
  }

  /** The lowest offset still open, or `frontier` when nothing below it is. */
  lowestOffset(frontier: number): number {
    let lowest = frontier;
    for (const p of this.inflight.values()) lowest = Math.min(lowest, p.offset);
    return lowest;
  }

  /** Ends the window (the replay is over): every event still open, with its last code. */
  abandon(): string[] {
    const codes: string[] = [];
    for (const p of this.inflight.values()) {
      if (p.retryTimer) clearTimeout(p.retryTimer);
      codes.push(p.lastCode || "REPLAY_NO_ACK");
    }
    this.inflight.clear();
    return codes;
  }

  /**
   * Sends (again). `counted` sends use up one of the event's maxAttempts: the first, after retry-later,
   * after an ack timeout. Resends because the channel was lost do not: that is the gateway being away,
   * bounded by giveUpAfterMs instead.
   */
  private async transmit(p: Pending, counted: boolean): Promise<void> {
    if (counted) {
      if (p.attempts >= this.options.maxAttempts) {
        this.finish(p, "failed", p.lastCode || "REPLAY_NO_ACK");
        return;
      }
      p.attempts += 1;
    }
    if (p.sends > 0) this.stats.resends += 1;
    p.sends += 1;
    p.sentAt = Date.now();
    let channel: EventChannel | null = null;
    p.sending = true; // the sweeper leaves it alone while it waits for a channel
    try {
      channel = await this.channels.get();
      p.channel = channel;
      // A resend says so (Event.attempt), so the gateway looks for images it may already have stored
      // instead of uploading them again.
      await channel.send(p.sends > 1 ? { ...p.event, attempt: p.sends - 1 } : p.event);
      p.sentAt = Date.now(); // the ack timeout runs from here
      this.stats.bytesSent += p.bytes;
    } catch (err) {
      if (err instanceof Stopped) return;
      if (!(err instanceof TransportError)) throw err;
      this.channelLost(channel, err.message);
      p.lastCode = "REPLAY_TRANSPORT";
      p.sentAt = 0; // resent by the sweeper once a channel is back
    } finally {
      p.sending = false;
    }
  }

  /** The channel is gone: what was sent on it is resent (without using up an attempt). */
  private channelLost(channel: EventChannel | null, reason: string): void {
    for (const p of this.inflight.values()) if (!p.retryTimer && (p.channel === channel || channel === null)) p.sentAt = 0;
    this.channels.lost(channel, reason, this.inflight.size);
  }

  onClosed(channel: EventChannel, reason: string): void {
    this.channelLost(channel, reason);
    this.resendOverdue();
  }

  /** Resends events whose ack is overdue (or whose channel went away). */
  resendOverdue(): void {
    if (this.control.fatal) return;
    const now = Date.now();
    for (const p of this.inflight.values()) {
      if (p.retryTimer || p.sending) continue;
      const lost = p.sentAt === 0;
      if (!lost && now - p.sentAt <= this.options.ackTimeoutMs) continue;
      if (!lost) p.lastCode = "REPLAY_ACK_TIMEOUT";
      p.sentAt = now; // claimed: the next sweep does not send it twice
      void this.transmit(p, !lost).catch((err: unknown) => this.control.fail(err));
    }
  }

  onAck(ack: simgate.v1.Ack): void {
    this.channels.answered();
    const p = this.inflight.get(ack.eventId);
    // A late answer to an earlier send of an event that is already settled, or not ours: ignore.
    if (!p) return;
    if (ack.sequence && p.event.sequence && ack.sequence !== p.event.sequence) return;
    if (ack.accepted) {
      if (ack.accepted.record?.topic) bump(this.stats.recordsByTopic, ack.accepted.record.topic);
      this.finish(p, "accepted");
    } else if (ack.duplicate) this.finish(p, "duplicate");
    else if (ack.rejected) this.finish(p, "rejected", ack.rejected.code || "GW_ERR_INTERNAL");
    else if (ack.retryLater) {
      this.stats.retryLaterAnswers += 1;
      p.lastCode = ack.retryLater.code || "GW_ERR_INTERNAL";
      if (p.retryTimer) return;
      const delay = Math.max(ack.retryLater.retryAfterMs ?? 0, backoffMs(p.attempts));
      p.retryTimer = setTimeout(() => {
        p.retryTimer = null;
        if (this.inflight.get(p.event.eventId ?? "") !== p) return;
        void this.transmit(p, true).catch((err: unknown) => this.control.fail(err));
      }, delay);
    }
  }

  private finish(p: Pending, outcome: FinalOutcome, code = ""): void {
    if (p.retryTimer) clearTimeout(p.retryTimer);
    this.inflight.delete(p.event.eventId ?? "");
    this.settled(p, outcome, code);
  }
}
