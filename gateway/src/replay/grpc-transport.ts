// gRPC transport of the replayer: grpc-js with the generated protobufjs encoders, StartRun/EndRun as
// unary calls and the events over one StreamEvents call at a time.
import * as grpc from "@grpc/grpc-js";
import "../recording/protobuf-numbers.js";
import { simgate } from "../generated/simgate.js";
import { TransportError, runOutcomeOf, type ChannelHandlers, type EventChannel, type ReplayTransport, type RunOutcome } from "./transport.js";

const bytes = <T>(encode: (m: T) => { finish(): Uint8Array }) => (m: T): Buffer => Buffer.from(encode(m).finish());

const INGEST: grpc.ServiceDefinition = {
  StreamEvents: {
    path: "/simgate.v1.Ingest/StreamEvents",
    requestStream: true,
    responseStream: true,
    requestSerialize: bytes((m: simgate.v1.IEvent) => simgate.v1.Event.encode(m)),
    requestDeserialize: (b: Buffer) => simgate.v1.Event.decode(b),
    responseSerialize: bytes((m: simgate.v1.IAck) => simgate.v1.Ack.encode(m)),
    responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b),
  },
  StartRun: {
    path: "/simgate.v1.Ingest/StartRun",
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes((m: simgate.v1.IRunStart) => simgate.v1.RunStart.encode(m)),
    requestDeserialize: (b: Buffer) => simgate.v1.RunStart.decode(b),
    responseSerialize: bytes((m: simgate.v1.IRunAck) => simgate.v1.RunAck.encode(m)),
    responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b),
  },
  EndRun: {
    path: "/simgate.v1.Ingest/EndRun",
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes((m: simgate.v1.IRunEnd) => simgate.v1.RunEnd.encode(m)),
    requestDeserialize: (b: Buffer) => simgate.v1.RunEnd.decode(b),
    responseSerialize: bytes((m: simgate.v1.IRunAck) => simgate.v1.RunAck.encode(m)),
    responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b),
  },
};

const IngestClient = grpc.makeGenericClientConstructor(INGEST, "Ingest");

type Unary<Req> = (req: Req, md: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: simgate.v1.RunAck) => void) => void;
type Duplex = (md: grpc.Metadata) => grpc.ClientDuplexStream<simgate.v1.IEvent, simgate.v1.Ack>;

export interface GrpcTransportOptions {
  /** host:port */
  address: string;
  token?: string;
  tls?: boolean;
  /** Deadline of StartRun / EndRun. */
  unaryTimeoutMs?: number;
}

/** Status codes after which the same call may succeed later. */
const TRANSIENT = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED, grpc.status.CANCELLED]);

export class GrpcTransport implements ReplayTransport {
  readonly name = "grpc" as const;
  readonly target: string;
  private readonly client: grpc.Client;

  constructor(private readonly options: GrpcTransportOptions) {
    this.target = options.address;
    const credentials = options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
    this.client = new IngestClient(options.address, credentials, {
      "grpc.max_send_message_length": 512 * 1024 * 1024,
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
      "grpc.keepalive_time_ms": 30_000,
    });
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.options.token) md.set("authorization", `Bearer ${this.options.token}`);
    return md;
  }

  private unary<Req>(method: "StartRun" | "EndRun", request: Req): Promise<RunOutcome> {
    const fn = (this.client as unknown as Record<string, Unary<Req>>)[method];
    if (!fn) return Promise.reject(new Error(`grpc client has no ${method}`));
    const deadline = Date.now() + (this.options.unaryTimeoutMs ?? 30_000);
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, this.metadata(), { deadline }, (err, res) => {
        if (err) {
          if (TRANSIENT.has(err.code)) reject(new TransportError(`${method}: ${grpc.status[err.code]}: ${err.details}`));
          // The gateway names its code in the trailer; a status without one is not the gateway's answer.
          else resolve({ kind: "rejected", code: String(err.metadata?.get("simgate-error-code")[0] ?? "GW_ERR_INTERNAL"), message: `${grpc.status[err.code]}: ${err.details}` });
          return;
        }
        resolve(runOutcomeOf(res ?? {}));
      });
    });
  }

  startRun(runStart: simgate.v1.IRunStart): Promise<RunOutcome> {
    return this.unary("StartRun", runStart);
  }

  endRun(runEnd: simgate.v1.IRunEnd): Promise<RunOutcome> {
    return this.unary("EndRun", runEnd);
  }

  async openChannel(handlers: ChannelHandlers): Promise<EventChannel> {
    const open = (this.client as unknown as Record<string, Duplex>)["StreamEvents"];
    if (!open) throw new Error("grpc client has no StreamEvents");
    const call = open.call(this.client, this.metadata());
    let closed = false;
    const close = (reason: string): void => {
      if (closed) return;
      closed = true;
      handlers.onClosed(reason);
    };
    call.on("data", (ack: simgate.v1.Ack) => handlers.onAck(ack));
    call.on("error", (err: grpc.ServiceError) => close(`stream failed: ${grpc.status[err.code] ?? err.code}: ${err.details ?? err.message}`));
    call.on("end", () => close("the gateway ended the stream"));
    return {
      send: (event) =>
        new Promise<void>((resolve, reject) => {
          if (closed) {
            reject(new TransportError("stream is closed"));
            return;
          }
          if (call.write(event)) resolve();
          else call.once("drain", () => resolve());
        }),
      close: () => {
        if (!closed) {
          closed = true;
          call.end();
          call.cancel();
        }
      },
    };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
