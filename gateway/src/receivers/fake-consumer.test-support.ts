// A fake IngestConsumer for the receivers' unit tests: answers from a script, records every call,
// and can hold events at a gate to have them in flight.
import { GatewayError } from "../errors/gateway-error.js";
import type { simgate } from "../generated/simgate.js";
import type { IncomingEvent, IngestConsumer, MessageOrigin, PayloadType } from "../model/ingest.js";
import type { Transport } from "../telemetry/metrics.js";

export interface Call {
  kind: "event" | "runStart" | "runEnd" | "undecodable" | "empty";
  connectionId: string;
  raw: Buffer;
  eventId?: string;
  detail?: string;
  sentAs?: PayloadType | "text" | "binary";
}

export class FakeConsumer implements IngestConsumer {
  readonly calls: Call[] = [];
  /** Events being handled right now, and the most at once. */
  active = 0;
  maxActive = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private readonly arrivals = new Set<() => void>();

  /** Events wait until release() from now on. */
  hold(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  /** Resolves once `n` events are being handled at once. */
  inFlight(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.active >= n) {
          this.arrivals.delete(check);
          resolve();
        }
      };
      this.arrivals.add(check);
      check();
    });
  }

  async handleEvent(input: IncomingEvent): Promise<simgate.v1.IAck> {
    this.calls.push({ kind: "event", connectionId: input.connectionId, raw: input.raw, eventId: input.event.eventId ?? "" });
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (const a of [...this.arrivals]) a();
    try {
      if (this.gate) await this.gate;
      const eventId = input.event.eventId ?? "";
      if (eventId.startsWith("bad")) return { eventId, sequence: input.event.sequence, rejected: { code: "GW_ERR_INVALID_ID", message: "bad id" } };
      return { eventId, sequence: input.event.sequence, accepted: { blobs: [], record: { topic: "t", partition: 0, offset: this.calls.length } } };
    } finally {
      this.active -= 1;
    }
  }

  async startRun(message: simgate.v1.IRunStart, from: MessageOrigin): Promise<simgate.v1.IRunAck> {
    this.calls.push({ kind: "runStart", connectionId: from.connectionId, raw: from.raw });
    return { runId: message.runId ?? "", accepted: { topic: "runs", partition: 0, offset: 0 } };
  }

  async endRun(message: simgate.v1.IRunEnd, from: MessageOrigin): Promise<simgate.v1.IRunAck> {
    this.calls.push({ kind: "runEnd", connectionId: from.connectionId, raw: from.raw });
    return { runId: message.runId ?? "", accepted: { topic: "runs", partition: 0, offset: 1 } };
  }

  async handleUndecodable(raw: Buffer, _transport: Transport, connectionId: string, detail: string, sentAs?: PayloadType): Promise<GatewayError> {
    this.calls.push({ kind: "undecodable", connectionId, raw, detail, ...(sentAs ? { sentAs } : {}) });
    return new GatewayError("GW_ERR_DECODE", `not a valid protobuf message: ${detail}`);
  }

  async handleEmptyFrame(raw: Buffer, _transport: Transport, connectionId: string, detail: string, isText: boolean): Promise<GatewayError> {
    this.calls.push({ kind: "empty", connectionId, raw, detail, sentAs: isText ? "text" : "binary" });
    return new GatewayError("GW_ERR_EMPTY_FRAME", detail);
  }
}
