// Keeps one event channel to the gateway open: opens it on demand, backs off after a lost one (a
// gateway that accepts connections and then fails every stream must not be hammered), and stops the
// replay when the gateway has not answered anything for giveUpAfterMs.
import type { simgate } from "../generated/simgate.js";
import { backoffMs, type ReplayControl } from "./control.js";
import { TransportError, type EventChannel, type ReplayTransport } from "./transport.js";

export interface ChannelEvents {
  onAck(ack: simgate.v1.Ack): void;
  /** The channel closed (the events sent on it need resending). */
  onClosed(channel: EventChannel, reason: string): void;
}

export class ChannelSupervisor {
  private channel: EventChannel | null = null;
  private connecting: Promise<EventChannel> | null = null;
  private unreachableSince: number | null = null;
  private failures = 0;
  private reconnectNotBefore = 0;
  private lastProblem = "";

  constructor(
    private readonly transport: ReplayTransport,
    private readonly giveUpAfterMs: number,
    private readonly control: ReplayControl,
    private readonly events: ChannelEvents,
    private readonly note: (message: string) => void,
  ) {}

  /** The open channel, or a new one once the back-off after the last lost one has passed. */
  get(): Promise<EventChannel> {
    if (this.channel) return Promise.resolve(this.channel);
    this.connecting ??= (async () => {
      for (let attempt = 1; ; attempt++) {
        await this.control.sleepUntil(this.reconnectNotBefore);
        this.control.checkStopped();
        this.checkReachable();
        try {
          const ref: { channel: EventChannel | null } = { channel: null };
          ref.channel = await this.transport.openChannel({
            onAck: (ack) => this.events.onAck(ack),
            onClosed: (reason) => {
              if (ref.channel !== null) this.events.onClosed(ref.channel, reason);
            },
          });
          this.channel = ref.channel;
          return ref.channel;
        } catch (err) {
          if (!(err instanceof TransportError)) throw err;
          this.unreachableSince ??= Date.now();
          this.checkReachable(err.message);
          this.note(`${err.message}; reconnecting`);
          await this.control.sleep(backoffMs(attempt));
        }
      }
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Any answer shows the gateway is there. */
  answered(): void {
    this.unreachableSince = null;
    this.failures = 0;
  }

  /** Stops the replay when the gateway has not answered anything for giveUpAfterMs. */
  checkReachable(detail = this.lastProblem): void {
    if (this.unreachableSince !== null && Date.now() - this.unreachableSince > this.giveUpAfterMs) {
      this.control.stop(`the gateway at ${this.transport.target} was not reachable for ${this.giveUpAfterMs} ms: ${detail}`);
    }
  }

  /** The channel is gone (null: it never opened): back off before the next one. `open` events were
   *  sent and not answered; they are resent on the next channel. */
  lost(channel: EventChannel | null, reason: string, open: number): void {
    if (channel !== null && this.channel !== channel) return; // an older channel, already replaced
    this.channel = null;
    this.lastProblem = reason;
    this.failures += 1;
    this.reconnectNotBefore = Date.now() + backoffMs(this.failures);
    if (open === 0) return;
    this.unreachableSince ??= Date.now();
    this.note(`${reason}; resending ${open} unacknowledged events`);
  }

  close(): void {
    this.channel?.close();
  }
}
