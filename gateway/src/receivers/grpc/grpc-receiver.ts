// The gRPC receiver: service simgate.v1.Ingest (StreamEvents, SendEvent, StartRun, EndRun) with the
// protobufjs generated code as (de)serialisers, plus grpc.health.v1 and server reflection so that stock
// tools (grpcurl) can list and call it. Reading from a stream pauses when its in-flight limit is
// reached, which lets HTTP/2 flow control push back on the sender.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import { simgate } from "../../generated/simgate.js";
import type { IngestConsumer, MessageOrigin, Readiness } from "../../model/ingest.js";
import { ConnectionFlow, type InFlightLimiter } from "../flow/in-flight.js";
import type { GatewayMetrics } from "../../telemetry/metrics.js";
import type { Logger } from "../../telemetry/logger.js";
import type { BearerAuth } from "../auth.js";
import { decodeWith, type Decoded } from "../decoded.js";
import { grpcStatus, retryLater } from "../wire-status.js";
import { addReflection } from "./reflection.js";
import { raiseReceiveWindows } from "./flow-control.js";

export const PROTO_FILE = fileURLToPath(new URL("../../../../proto/simgate/v1/simgate.proto", import.meta.url));

export interface GrpcReceiverOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
  maxConnections: number;
  maxInFlightPerConnection: number;
  whenFull: "block" | "reject";
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** HTTP/2 receive windows (flow-control.ts). */
  streamWindowBytes: number;
  connectionWindowBytes: number;
  maxConcurrentStreams: number;
  /** Server pings on idle connections (0 = none) and how long to wait for their answer. */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
}

type EventIn = Decoded<simgate.v1.Event>;
const encode = <T>(enc: (m: T) => { finish(): Uint8Array }) => (m: T): Buffer => {
  const bytes = enc(m).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
};

function ingestService(): grpc.ServiceDefinition {
  const base = { requestStream: false, responseStream: false };
  const eventIn = decodeWith((b) => simgate.v1.Event.decode(b));
  const ackOut = encode((m: simgate.v1.IAck) => simgate.v1.Ack.encode(m));
  const runAckOut = encode((m: simgate.v1.IRunAck) => simgate.v1.RunAck.encode(m));
  return {
    StreamEvents: {
      ...base, requestStream: true, responseStream: true, path: "/simgate.v1.Ingest/StreamEvents",
      requestSerialize: encode((m: simgate.v1.IEvent) => simgate.v1.Event.encode(m)), requestDeserialize: eventIn,
      responseSerialize: ackOut, responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b),
    },
    SendEvent: {
      ...base, path: "/simgate.v1.Ingest/SendEvent",
      requestSerialize: encode((m: simgate.v1.IEvent) => simgate.v1.Event.encode(m)), requestDeserialize: eventIn,
      responseSerialize: ackOut, responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b),
    },
    StartRun: {
      ...base, path: "/simgate.v1.Ingest/StartRun",
      requestSerialize: encode((m: simgate.v1.IRunStart) => simgate.v1.RunStart.encode(m)), requestDeserialize: decodeWith((b) => simgate.v1.RunStart.decode(b)),
      responseSerialize: runAckOut, responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b),
    },
    EndRun: {
      ...base, path: "/simgate.v1.Ingest/EndRun",
      requestSerialize: encode((m: simgate.v1.IRunEnd) => simgate.v1.RunEnd.encode(m)), requestDeserialize: decodeWith((b) => simgate.v1.RunEnd.decode(b)),
      responseSerialize: runAckOut, responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b),
    },
  };
}

export class GrpcReceiver {
  private readonly server: grpc.Server;
  private readonly healthService: HealthImplementation;
  private readonly streams = new Set<{ end(): void; idle(): boolean }>();
  private healthTimer: NodeJS.Timeout | undefined;
  private connectionId = 0;
  private draining = false;
  boundPort = 0;

  constructor(
    private readonly options: GrpcReceiverOptions,
    private readonly pipeline: IngestConsumer,
    private readonly limiter: InFlightLimiter,
    private readonly health: Readiness,
    private readonly auth: BearerAuth,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.server = new grpc.Server({
      // The transport's hard limit; between maxMessageBytes and this, messages are rejected with a code
      // and quarantined instead of failing the call.
      "grpc.max_receive_message_length": options.maxMessageBytes * 2,
      "grpc.max_send_message_length": 4 * 1024 * 1024,
      "grpc.max_concurrent_streams": options.maxConcurrentStreams,
      ...(options.keepaliveTimeMs > 0 ? { "grpc.keepalive_time_ms": options.keepaliveTimeMs, "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs } : {}),
      // Channelz (grpc-js' introspection service) is not served here; its per-call bookkeeping is off.
      "grpc.enable_channelz": 0,
    });
    if (!raiseReceiveWindows(this.server, options.streamWindowBytes, options.connectionWindowBytes)) {
      logger.warn(
        { streamWindowBytes: options.streamWindowBytes, connectionWindowBytes: options.connectionWindowBytes },
        "this @grpc/grpc-js has no session hook: HTTP/2 receive windows stay at 64 KiB and large events over gRPC will be slow",
      );
    }
    this.server.addService(ingestService(), {
      StreamEvents: (call: grpc.ServerDuplexStream<EventIn, simgate.v1.IAck>) => this.streamEvents(call),
      SendEvent: (call: grpc.ServerUnaryCall<EventIn, simgate.v1.IAck>, cb: grpc.sendUnaryData<simgate.v1.IAck>) => void this.sendEvent(call, cb),
      StartRun: (call: grpc.ServerUnaryCall<Decoded<simgate.v1.RunStart>, simgate.v1.IRunAck>, cb: grpc.sendUnaryData<simgate.v1.IRunAck>) =>
        void this.run(call, cb, "simgate.v1.RunStart", (m, from) => this.pipeline.startRun(m, from)),
      EndRun: (call: grpc.ServerUnaryCall<Decoded<simgate.v1.RunEnd>, simgate.v1.IRunAck>, cb: grpc.sendUnaryData<simgate.v1.IRunAck>) =>
        void this.run(call, cb, "simgate.v1.RunEnd", (m, from) => this.pipeline.endRun(m, from)),
    });
    this.healthService = new HealthImplementation({ "": "NOT_SERVING", "simgate.v1.Ingest": "NOT_SERVING" });
    this.healthService.addToServer(this.server);
    addReflection(this.server, [PROTO_FILE, healthProtoPath]);
  }

  /** Checks the bearer token; a refusal counts in simgate_gateway_errors_total (streams and unary). */
  private authorized(call: { metadata: grpc.Metadata }): boolean {
    const header = call.metadata.get("authorization")[0];
    const ok = this.auth.check(typeof header === "string" ? header : undefined);
    if (!ok) this.metrics.errors.inc({ code: "GW_ERR_UNAUTHENTICATED", stage: "receive" });
    return ok;
  }

  private streamEvents(call: grpc.ServerDuplexStream<EventIn, simgate.v1.IAck>): void {
    if (!this.authorized(call)) {
      call.emit("error", grpcStatus("GW_ERR_UNAUTHENTICATED", "missing or wrong bearer token"));
      return;
    }
    if (this.streams.size >= this.options.maxConnections) {
      this.metrics.errors.inc({ code: "GW_ERR_TOO_MANY_CONNECTIONS", stage: "receive" });
      call.emit("error", grpcStatus("GW_ERR_TOO_MANY_CONNECTIONS", `more than ${this.options.maxConnections} streams`));
      return;
    }
    const connectionId = `grpc-${++this.connectionId}`;
    this.metrics.connections.inc({ transport: "grpc" });
    const flow = new ConnectionFlow(this.limiter, this.options.maxInFlightPerConnection, this.options.whenFull, {
      pause: () => call.pause(),
      resume: () => call.resume(),
    });
    let clientEnded = false;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      flow.close();
      this.streams.delete(entry);
      this.metrics.connections.dec({ transport: "grpc" });
      call.end();
    };
    const entry = {
      idle: () => flow.inFlight === 0,
      end: () => (flow.inFlight === 0 ? finish() : (clientEnded = true)),
    };
    this.streams.add(entry);
    const write = (ack: simgate.v1.IAck): void => {
      if (!finished && !call.cancelled) call.write(ack);
    };
    call.on("data", (msg: EventIn) => {
      void (async () => {
        if (!(await flow.admit(msg.raw.length))) {
          write({ eventId: msg.message?.eventId ?? "", sequence: Number(msg.message?.sequence ?? 0), retryLater: retryLater("GW_ERR_THROTTLED", "in-flight limit reached") });
          this.metrics.events.inc({ transport: "grpc", outcome: "retry_later", code: "GW_ERR_THROTTLED" });
          return;
        }
        try {
          this.metrics.inFlight.inc();
          if (msg.message === undefined) {
            const err = await this.pipeline.handleUndecodable(msg.raw, "grpc", connectionId, msg.error);
            write(err.permanent ? { eventId: "", rejected: { code: err.code, message: err.message } } : { eventId: "", retryLater: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } });
          } else {
            write(await this.pipeline.handleEvent({ transport: "grpc", connectionId, raw: msg.raw, event: msg.message }));
          }
        } catch (err) {
          this.logger.error({ err, connectionId }, "unexpected error in the stream handler");
        } finally {
          this.metrics.inFlight.dec();
          flow.done(msg.raw.length);
          if (clientEnded && flow.inFlight === 0) finish();
        }
      })();
    });
    call.on("end", () => {
      clientEnded = true;
      if (flow.inFlight === 0) finish();
    });
    call.on("cancelled", () => {
      clientEnded = true;
      if (!finished) {
        finished = true;
        flow.close();
        this.streams.delete(entry);
        this.metrics.connections.dec({ transport: "grpc" });
      }
    });
    call.on("error", (err: Error) => this.logger.debug({ err: err.message, connectionId }, "stream error"));
  }

  private async sendEvent(call: grpc.ServerUnaryCall<EventIn, simgate.v1.IAck>, cb: grpc.sendUnaryData<simgate.v1.IAck>): Promise<void> {
    if (!this.authorized(call)) return cb(grpcStatus("GW_ERR_UNAUTHENTICATED", "missing or wrong bearer token"));
    const msg = call.request;
    if (this.options.whenFull === "reject") {
      if (!this.limiter.tryAcquire(msg.raw.length)) {
        this.metrics.events.inc({ transport: "grpc", outcome: "retry_later", code: "GW_ERR_THROTTLED" });
        return cb(null, { eventId: msg.message?.eventId ?? "", retryLater: retryLater("GW_ERR_THROTTLED", "in-flight limit reached") });
      }
    } else {
      await this.limiter.acquire(msg.raw.length);
    }
    this.metrics.inFlight.inc();
    try {
      if (msg.message === undefined) {
        const err = await this.pipeline.handleUndecodable(msg.raw, "grpc", `grpc-unary-${++this.connectionId}`, msg.error);
        return cb(grpcStatus(err.code, err.message));
      }
      cb(null, await this.pipeline.handleEvent({ transport: "grpc", connectionId: `grpc-unary-${++this.connectionId}`, raw: msg.raw, event: msg.message }));
    } finally {
      this.metrics.inFlight.dec();
      this.limiter.release(msg.raw.length);
    }
  }

  private async run<T>(
    call: grpc.ServerUnaryCall<Decoded<T>, simgate.v1.IRunAck>,
    cb: grpc.sendUnaryData<simgate.v1.IRunAck>,
    sentAs: "simgate.v1.RunStart" | "simgate.v1.RunEnd",
    handle: (m: T, from: MessageOrigin) => Promise<simgate.v1.IRunAck>,
  ): Promise<void> {
    if (!this.authorized(call)) return cb(grpcStatus("GW_ERR_UNAUTHENTICATED", "missing or wrong bearer token"));
    const msg = call.request;
    const connectionId = `grpc-unary-${++this.connectionId}`;
    if (msg.message === undefined) {
      const err = await this.pipeline.handleUndecodable(msg.raw, "grpc", connectionId, msg.error ?? "undecodable", sentAs);
      return cb(grpcStatus(err.code, err.message));
    }
    cb(null, await handle(msg.message, { transport: "grpc", connectionId, raw: msg.raw }));
  }

  async start(): Promise<number> {
    const credentials = this.options.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: this.options.tls.cert, private_key: this.options.tls.key }], false)
      : grpc.ServerCredentials.createInsecure();
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${this.options.host.includes(":") ? `[${this.options.host}]` : this.options.host}:${this.options.port}`, credentials, (err, port) =>
        err
          ? reject(new Error(`cannot listen for gRPC on ${this.options.host}:${this.options.port} (${err.message}); set grpc.port / SIMGATE_GRPC_PORT to a free port, or stop what holds it`, { cause: err }))
          : resolve(port),
      );
    });
    const syncHealth = (): void => {
      const s = this.health.ready && !this.draining ? "SERVING" : "NOT_SERVING";
      this.healthService.setStatus("", s);
      this.healthService.setStatus("simgate.v1.Ingest", s);
    };
    syncHealth();
    this.healthTimer = setInterval(syncHealth, 500).unref();
    return this.boundPort;
  }

  /** Draining: streams end once their in-flight events are answered. */
  beginDrain(): void {
    this.draining = true;
    this.healthService.setStatus("", "NOT_SERVING");
    this.healthService.setStatus("simgate.v1.Ingest", "NOT_SERVING");
  }

  /** Ends every stream (after its in-flight events) and shuts the server down, forcibly after graceMs. */
  async stop(graceMs: number): Promise<void> {
    clearInterval(this.healthTimer);
    for (const s of [...this.streams]) s.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs).unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export function readTls(certFile: string | undefined, keyFile: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (certFile === undefined || keyFile === undefined) return undefined;
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
