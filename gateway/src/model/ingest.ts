// What crosses from the receivers to the event sequencer: a received message with its origin, and the
// one interface the receivers call (IngestConsumer). Receivers depend on this, never on the sequencer.
import type { simgate } from "../generated/simgate.js";
import type { GatewayError } from "../errors/gateway-error.js";
import type { Transport } from "../telemetry/metrics.js";

/** What the dead letter's payload bytes are (docs/records.md). */
export type PayloadType = "simgate.v1.Event" | "simgate.v1.RunStart" | "simgate.v1.RunEnd" | "simgate.v1.ClientFrame" | "text";

/** Where a message came from, with its bytes as received (for the dead-letter topic). */
export interface MessageOrigin {
  transport: Transport;
  connectionId: string;
  raw: Buffer;
}

export interface IncomingEvent extends MessageOrigin {
  event: simgate.v1.IEvent;
}

/** The next stage after a receiver. Every method answers; none throws. */
export interface IngestConsumer {
  handleEvent(input: IncomingEvent): Promise<simgate.v1.IAck>;
  startRun(message: simgate.v1.IRunStart, from: MessageOrigin): Promise<simgate.v1.IRunAck>;
  endRun(message: simgate.v1.IRunEnd, from: MessageOrigin): Promise<simgate.v1.IRunAck>;
  /** Bytes that did not decode: dead-lettered; the error to answer with. */
  handleUndecodable(raw: Buffer, transport: Transport, connectionId: string, detail: string, sentAs?: PayloadType): Promise<GatewayError>;
  /** A WebSocket frame with nothing to process (text, empty, no body). */
  handleEmptyFrame(raw: Buffer, transport: Transport, connectionId: string, detail: string, isText: boolean): Promise<GatewayError>;
}

/** Whether the gateway can take events (its dependencies answer); the gRPC health service shows it. */
export interface Readiness {
  readonly ready: boolean;
}

/** Told about retryable failures of a dependency (the exporters report them; only those touch health). */
export interface FailureReporter {
  reportFailure(dependency: "kafka" | "s3", error: string): void;
}

/** What the sequencer needs of dependency health: readiness, and which dependency is down. */
export interface HealthView extends Readiness {
  status(): Record<string, { up: boolean }>;
}
