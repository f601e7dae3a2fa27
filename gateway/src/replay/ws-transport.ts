// WebSocket transport of the replayer: one socket, binary ClientFrame out, ServerFrame in. Run messages
// and events share the socket; run acks are matched by run id.
import WebSocket from "ws";
import "../recording/protobuf-numbers.js";
import { simgate } from "../generated/simgate.js";
import { TransportError, runOutcomeOf, type ChannelHandlers, type EventChannel, type ReplayTransport, type RunOutcome } from "./transport.js";

export interface WsTransportOptions {
  /** ws:// or wss:// URL of the gateway's event endpoint. */
  url: string;
  token?: string;
  runAckTimeoutMs?: number;
  connectTimeoutMs?: number;
}

interface Waiter {
  resolve(outcome: RunOutcome): void;
  reject(err: Error): void;
}

export class WsTransport implements ReplayTransport {
  readonly name = "ws" as const;
  readonly target: string;
  private socket: WebSocket | null = null;
  private connecting: Promise<WebSocket> | null = null;
  private handlers: ChannelHandlers | null = null;
  private readonly runWaiters = new Map<string, Waiter[]>();

  constructor(private readonly options: WsTransportOptions) {
    this.target = options.url;
  }

  private connect(): Promise<WebSocket> {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) return Promise.resolve(this.socket);
    if (this.connecting) return this.connecting;
    const headers: Record<string, string> = {};
    if (this.options.token) headers["authorization"] = `Bearer ${this.options.token}`;
    this.connecting = new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(this.options.url, {
        headers,
        maxPayload: 64 * 1024 * 1024,
        handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      });
      ws.binaryType = "nodebuffer";
      ws.once("open", () => {
        this.socket = ws;
        this.connecting = null;
        resolve(ws);
      });
      ws.once("unexpected-response", (_req, res) => {
        this.connecting = null;
        reject(new TransportError(`WebSocket upgrade refused: HTTP ${res.statusCode}`));
        ws.terminate();
      });
      ws.on("error", (err) => {
        if (this.connecting) {
          this.connecting = null;
          reject(new TransportError(`WebSocket: ${err.message}`));
        }
      });
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (isBinary) this.onFrame(data);
      });
      ws.on("close", (code, reason) => {
        if (this.socket === ws) this.socket = null;
        const why = `socket closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`;
        for (const list of this.runWaiters.values()) for (const w of list) w.reject(new TransportError(why));
        this.runWaiters.clear();
        const handlers = this.handlers;
        this.handlers = null;
        handlers?.onClosed(why);
      });
    });
    return this.connecting;
  }

  private onFrame(data: Buffer): void {
    let frame: simgate.v1.ServerFrame;
    try {
      frame = simgate.v1.ServerFrame.decode(data);
    } catch {
      return; // not ours to judge; the ack timeout resends what stays unanswered
    }
    if (frame.ack) this.handlers?.onAck(frame.ack as simgate.v1.Ack);
    else if (frame.runAck) {
      const list = this.runWaiters.get(frame.runAck.runId ?? "");
      const waiter = list?.shift();
      if (list && list.length === 0) this.runWaiters.delete(frame.runAck.runId ?? "");
      waiter?.resolve(runOutcomeOf(frame.runAck));
    } else if (frame.error) {
      // A frame the gateway could not decode at all: no event id to match, so fail the run calls.
      const err = new TransportError(`gateway error ${frame.error.code}: ${frame.error.message}`);
      for (const list of this.runWaiters.values()) for (const w of list) w.reject(err);
      this.runWaiters.clear();
    }
  }

  private async sendRun(frame: simgate.v1.IClientFrame, runId: string): Promise<RunOutcome> {
    const ws = await this.connect();
    return new Promise<RunOutcome>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TransportError(`no run ack within ${this.options.runAckTimeoutMs ?? 30_000} ms`)), this.options.runAckTimeoutMs ?? 30_000);
      const waiter: Waiter = {
        resolve: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const list = this.runWaiters.get(runId) ?? [];
      list.push(waiter);
      this.runWaiters.set(runId, list);
      ws.send(simgate.v1.ClientFrame.encode(frame).finish(), { binary: true }, (err) => {
        if (err) waiter.reject(new TransportError(`send: ${err.message}`));
      });
    });
  }

  startRun(runStart: simgate.v1.IRunStart): Promise<RunOutcome> {
    return this.sendRun({ runStart }, runStart.runId ?? "");
  }

  endRun(runEnd: simgate.v1.IRunEnd): Promise<RunOutcome> {
    return this.sendRun({ runEnd }, runEnd.runId ?? "");
  }

  async openChannel(handlers: ChannelHandlers): Promise<EventChannel> {
    const ws = await this.connect();
    this.handlers = handlers;
    return {
      send: (event) =>
        new Promise<void>((resolve, reject) => {
          if (ws.readyState !== WebSocket.OPEN) {
            reject(new TransportError("socket is not open"));
            return;
          }
          ws.send(simgate.v1.ClientFrame.encode({ event }).finish(), { binary: true }, (err) => (err ? reject(new TransportError(err.message)) : resolve()));
        }),
      close: () => {
        if (this.handlers === handlers) this.handlers = null;
      },
    };
  }

  async close(): Promise<void> {
    const ws = this.socket;
    this.socket = null;
    this.handlers = null;
    if (ws && ws.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000);
        ws.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(1000, "replay done");
      });
    }
  }
}
