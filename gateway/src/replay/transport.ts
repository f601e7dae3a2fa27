// What the replayer needs from a transport; gRPC and WebSocket implement it, unit tests fake it.
import type { simgate } from "../generated/simgate.js";

export type RunOutcome =
  | { kind: "accepted" }
  | { kind: "rejected"; code: string; message: string }
  | { kind: "retryLater"; code: string; message: string; retryAfterMs: number };

export interface ChannelHandlers {
  onAck(ack: simgate.v1.Ack): void;
  /** The channel is gone (error, server end, close); unacknowledged events must be resent on a new one. */
  onClosed(reason: string): void;
}

export interface EventChannel {
  /** Writes one event; resolves when the transport took it (its buffer had room). */
  send(event: simgate.v1.IEvent): Promise<void>;
  close(): void;
}

export interface ReplayTransport {
  readonly name: "grpc" | "ws";
  /** Where it sends, for messages. */
  readonly target: string;
  startRun(runStart: simgate.v1.IRunStart): Promise<RunOutcome>;
  endRun(runEnd: simgate.v1.IRunEnd): Promise<RunOutcome>;
  openChannel(handlers: ChannelHandlers): Promise<EventChannel>;
  close(): Promise<void>;
}

/** A transport-level failure (connection refused, stream broken): retry the same thing later. */
export class TransportError extends Error {
  override readonly name = "TransportError";
}

export function runOutcomeOf(ack: simgate.v1.IRunAck): RunOutcome {
  if (ack.accepted) return { kind: "accepted" };
  if (ack.rejected) return { kind: "rejected", code: ack.rejected.code ?? "", message: ack.rejected.message ?? "" };
  if (ack.retryLater) {
    return { kind: "retryLater", code: ack.retryLater.code ?? "", message: ack.retryLater.message ?? "", retryAfterMs: ack.retryLater.retryAfterMs ?? 0 };
  }
  return { kind: "rejected", code: "REPLAY_EMPTY_RUN_ACK", message: "the gateway answered a run message with an empty RunAck" };
}
