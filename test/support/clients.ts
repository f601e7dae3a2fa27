// Minimal clients of the wire contract for tests and the benchmark: gRPC (grpc-js with the generated
// protobufjs code) and WebSocket (ws, ClientFrame/ServerFrame binary frames). Acks are matched to
// events by event id.
import * as grpc from "@grpc/grpc-js";
import WebSocket from "ws";
import { simgate } from "../../gateway/src/generated/simgate.js";

const enc = <T>(fn: (m: T) => { finish(): Uint8Array }) => (m: T): Buffer => Buffer.from(fn(m).finish());

export const INGEST_SERVICE: grpc.ServiceDefinition = {
  StreamEvents: {
    path: "/simgate.v1.Ingest/StreamEvents", requestStream: true, responseStream: true,
    requestSerialize: enc((m: simgate.v1.IEvent) => simgate.v1.Event.encode(m)), requestDeserialize: (b: Buffer) => simgate.v1.Event.decode(b),
    responseSerialize: enc((m: simgate.v1.IAck) => simgate.v1.Ack.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b),
  },
  SendEvent: {
    path: "/simgate.v1.Ingest/SendEvent", requestStream: false, responseStream: false,
    requestSerialize: enc((m: simgate.v1.IEvent) => simgate.v1.Event.encode(m)), requestDeserialize: (b: Buffer) => simgate.v1.Event.decode(b),
    responseSerialize: enc((m: simgate.v1.IAck) => simgate.v1.Ack.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.Ack.decode(b),
  },
  StartRun: {
    path: "/simgate.v1.Ingest/StartRun", requestStream: false, responseStream: false,
    requestSerialize: enc((m: simgate.v1.IRunStart) => simgate.v1.RunStart.encode(m)), requestDeserialize: (b: Buffer) => simgate.v1.RunStart.decode(b),
    responseSerialize: enc((m: simgate.v1.IRunAck) => simgate.v1.RunAck.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b),
  },
  EndRun: {
    path: "/simgate.v1.Ingest/EndRun", requestStream: false, responseStream: false,
    requestSerialize: enc((m: simgate.v1.IRunEnd) => simgate.v1.RunEnd.encode(m)), requestDeserialize: (b: Buffer) => simgate.v1.RunEnd.decode(b),
    responseSerialize: enc((m: simgate.v1.IRunAck) => simgate.v1.RunAck.encode(m)), responseDeserialize: (b: Buffer) => simgate.v1.RunAck.decode(b),
  },
};

/** The same service with raw bytes as requests, to send what is not valid protobuf. */
export const RAW_INGEST_SERVICE: grpc.ServiceDefinition = Object.fromEntries(
  Object.entries(INGEST_SERVICE).map(([name, def]) => [name, { ...def, requestSerialize: (b: Buffer) => b }]),
);

const IngestClient = grpc.makeGenericClientConstructor(INGEST_SERVICE, "Ingest");
const RawIngestClient = grpc.makeGenericClientConstructor(RAW_INGEST_SERVICE, "Ingest");

export interface UnaryError extends Error {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

function metadataFor(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return md;
}

export class GrpcIngest {
  readonly client: grpc.Client;
  private readonly raw: grpc.Client;

  constructor(address: string, private readonly token?: string, tlsCa?: string) {
    const options: grpc.ChannelOptions = { "grpc.max_send_message_length": 256 * 1024 * 1024, "grpc.max_receive_message_length": 64 * 1024 * 1024 };
    if (tlsCa !== undefined) options["grpc.ssl_target_name_override"] = "localhost";
    const credentials = (): grpc.ChannelCredentials => (tlsCa === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(Buffer.from(tlsCa)));
    this.client = new IngestClient(address, credentials(), options);
    this.raw = new RawIngestClient(address, credentials(), options);
  }

  private unary<Req, Res>(client: grpc.Client, method: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (r: Req, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: Res) => void) => void>)[method];
      if (!fn) throw new Error(`no method ${method}`);
      fn.call(client, req, metadataFor(this.token), (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  sendEvent(event: simgate.v1.IEvent): Promise<simgate.v1.Ack> {
    return this.unary(this.client, "SendEvent", event);
  }
  sendRawEvent(bytes: Buffer): Promise<simgate.v1.Ack> {
    return this.unary(this.raw, "SendEvent", bytes);
  }
  startRun(m: simgate.v1.IRunStart): Promise<simgate.v1.RunAck> {
    return this.unary(this.client, "StartRun", m);
  }
  endRun(m: simgate.v1.IRunEnd): Promise<simgate.v1.RunAck> {
    return this.unary(this.client, "EndRun", m);
  }

  /** Opens a StreamEvents call. */
  openStream(raw = false): EventStream {
    const client = raw ? this.raw : this.client;
    const call = (client as unknown as { StreamEvents: (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, simgate.v1.Ack> }).StreamEvents(metadataFor(this.token));
    return new EventStream(call);
  }

  /** Sends the events over one stream (at most `window` unacknowledged) and returns their acks. */
  async streamEvents(events: readonly simgate.v1.IEvent[], window = 16): Promise<simgate.v1.Ack[]> {
    const stream = this.openStream();
    try {
      return await stream.sendAll(events, window);
    } finally {
      stream.end();
    }
  }

  close(): void {
    this.client.close();
    this.raw.close();
  }
}

/** One StreamEvents call: send events, wait for the ack of each by event id. */
export class EventStream {
  private readonly waiting = new Map<string, Array<(ack: simgate.v1.Ack) => void>>();
  readonly unmatched: simgate.v1.Ack[] = [];
  readonly done: Promise<grpc.StatusObject>;
  private failure: Error | undefined;

  constructor(private readonly call: grpc.ClientDuplexStream<unknown, simgate.v1.Ack>) {
    call.on("data", (ack: simgate.v1.Ack) => {
      const list = this.waiting.get(ack.eventId);
      const next = list?.shift();
      if (list && list.length === 0) this.waiting.delete(ack.eventId);
      if (next) next(ack);
      else this.unmatched.push(ack);
    });
    this.done = new Promise((resolve) => {
      call.on("status", (s: grpc.StatusObject) => {
        // The stream is over: events without an ack were never answered and must be resent.
        for (const list of this.waiting.values()) for (const w of list) w(simgate.v1.Ack.create({ retryLater: { code: "STREAM_ENDED", message: s.details } }));
        this.waiting.clear();
        resolve(s);
      });
      call.on("error", (err: Error) => {
        this.failure = err;
        for (const list of this.waiting.values()) for (const w of list) w(simgate.v1.Ack.create({ retryLater: { code: "STREAM_FAILED", message: err.message } }));
        this.waiting.clear();
      });
    });
  }

  get error(): Error | undefined {
    return this.failure;
  }

  send(event: simgate.v1.IEvent): Promise<simgate.v1.Ack> {
    return new Promise((resolve) => {
      const id = event.eventId ?? "";
      const list = this.waiting.get(id) ?? [];
      list.push(resolve);
      this.waiting.set(id, list);
      this.call.write(event);
    });
  }

  /** Writes an already encoded Event (only on a stream opened with raw = true). */
  sendEncoded(eventId: string, bytes: Buffer): Promise<simgate.v1.Ack> {
    return new Promise((resolve) => {
      const list = this.waiting.get(eventId) ?? [];
      list.push(resolve);
      this.waiting.set(eventId, list);
      this.call.write(bytes);
    });
  }

  /** Writes raw bytes (only on a stream opened with raw = true); the ack has an empty event id. */
  sendRaw(bytes: Buffer): Promise<simgate.v1.Ack> {
    return new Promise((resolve) => {
      const list = this.waiting.get("") ?? [];
      list.push(resolve);
      this.waiting.set("", list);
      this.call.write(bytes);
    });
  }

  async sendAll(events: readonly simgate.v1.IEvent[], window: number): Promise<simgate.v1.Ack[]> {
    const acks: simgate.v1.Ack[] = new Array(events.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < events.length) {
        const i = next++;
        acks[i] = await this.send(events[i] as simgate.v1.IEvent);
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, events.length) }, lane));
    return acks;
  }

  end(): void {
    this.call.end();
  }
}

/** A WebSocket connection to the gateway. */
export class WsIngest {
  private readonly waiting = new Map<string, Array<(frame: simgate.v1.ServerFrame) => void>>();
  readonly errors: simgate.v1.ServerFrame[] = [];
  private errorWaiters: Array<(frame: simgate.v1.ServerFrame) => void> = [];

  private constructor(readonly socket: WebSocket) {
    // The connection is over: what has no answer was never answered and must be resent.
    socket.on("close", (code: number) => {
      for (const [id, list] of this.waiting) {
        for (const w of list) {
          const retryLater = { code: "STREAM_ENDED", message: `WebSocket closed (${code})` };
          w(simgate.v1.ServerFrame.create(id.startsWith("run:") ? { runAck: simgate.v1.RunAck.create({ runId: id.slice(4), retryLater }) } : { ack: simgate.v1.Ack.create({ eventId: id, retryLater }) }));
        }
      }
      this.waiting.clear();
    });
    socket.on("message", (data: Buffer) => {
      const frame = simgate.v1.ServerFrame.decode(data);
      const id = frame.ack ? (frame.ack.eventId ?? "") : frame.runAck ? `run:${frame.runAck.runId ?? ""}` : undefined;
      if (id === undefined || (frame.ack && frame.ack.eventId === "" && !this.waiting.has(""))) {
        const w = this.errorWaiters.shift();
        if (w) w(frame);
        else this.errors.push(frame);
        return;
      }
      const list = this.waiting.get(id);
      const next = list?.shift();
      if (list && list.length === 0) this.waiting.delete(id);
      if (next) next(frame);
    });
  }

  static connect(url: string, token?: string, headers: Record<string, string> = {}, tlsCa?: string): Promise<WsIngest> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, {
        ...(tlsCa !== undefined ? { ca: tlsCa, servername: "localhost" } : {}),
        headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...headers },
        maxPayload: 64 * 1024 * 1024,
        perMessageDeflate: false,
      });
      socket.once("open", () => resolve(new WsIngest(socket)));
      socket.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
      socket.once("error", reject);
    });
  }

  private expect(id: string): Promise<simgate.v1.ServerFrame> {
    return new Promise((resolve) => {
      const list = this.waiting.get(id) ?? [];
      list.push(resolve);
      this.waiting.set(id, list);
    });
  }

  async sendEvent(event: simgate.v1.IEvent): Promise<simgate.v1.Ack> {
    const reply = this.expect(event.eventId ?? "");
    this.socket.send(simgate.v1.ClientFrame.encode({ event }).finish());
    const frame = await reply;
    if (!frame.ack) throw new Error("expected an ack");
    return frame.ack as simgate.v1.Ack;
  }

  /** Sends an already encoded ClientFrame holding the event with this id. */
  async sendEncodedFrame(eventId: string, frame: Uint8Array): Promise<simgate.v1.Ack> {
    const reply = this.expect(eventId);
    this.socket.send(frame, { binary: true });
    const answer = await reply;
    if (!answer.ack) throw new Error("expected an ack");
    return answer.ack as simgate.v1.Ack;
  }

  async startRun(runStart: simgate.v1.IRunStart): Promise<simgate.v1.RunAck> {
    const reply = this.expect(`run:${runStart.runId ?? ""}`);
    this.socket.send(simgate.v1.ClientFrame.encode({ runStart }).finish());
    return (await reply).runAck as simgate.v1.RunAck;
  }

  async endRun(runEnd: simgate.v1.IRunEnd): Promise<simgate.v1.RunAck> {
    const reply = this.expect(`run:${runEnd.runId ?? ""}`);
    this.socket.send(simgate.v1.ClientFrame.encode({ runEnd }).finish());
    return (await reply).runAck as simgate.v1.RunAck;
  }

  /** Sends arbitrary bytes as one binary frame and waits for the error frame (or empty-id ack). */
  sendRaw(bytes: Buffer, binary = true): Promise<simgate.v1.ServerFrame> {
    const reply = new Promise<simgate.v1.ServerFrame>((resolve) => this.errorWaiters.push(resolve));
    this.socket.send(bytes, { binary });
    return reply;
  }

  async sendAll(events: readonly simgate.v1.IEvent[], window: number): Promise<simgate.v1.Ack[]> {
    const acks: simgate.v1.Ack[] = new Array(events.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < events.length) {
        const i = next++;
        acks[i] = await this.sendEvent(events[i] as simgate.v1.IEvent);
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, events.length) }, lane));
    return acks;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolve();
      this.socket.once("close", () => resolve());
      this.socket.close();
    });
  }
}
