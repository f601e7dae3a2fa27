// The WebSocket receiver: on the HTTP port at http.wsPath. Every binary frame from the client is one
// ClientFrame, every frame back one ServerFrame. The bearer token is checked on the upgrade request
// (header `authorization: Bearer <token>`; tokens in the URL are not accepted). When the connection's
// in-flight limit is reached the socket is paused, so TCP pushes back on the sender.
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { simgate } from "../../generated/simgate.js";
import type { IngestConsumer } from "../../model/ingest.js";
import { ConnectionFlow, type InFlightLimiter } from "../flow/in-flight.js";
import type { GatewayMetrics } from "../../telemetry/metrics.js";
import type { Logger } from "../../telemetry/logger.js";
import type { BearerAuth } from "../auth.js";
import { refuseUpgrade, retryLater as throttledAnswer } from "../wire-status.js";

export interface WebSocketReceiverOptions {
  path: string;
  maxMessageBytes: number;
  maxConnections: number;
  maxInFlightPerConnection: number;
  whenFull: "block" | "reject";
}

/** Close codes used by the gateway. */
export const WS_CLOSE = { normal: 1000, goingAway: 1001, tooBig: 1009 } as const;

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The retry-later answer when the total in-flight limit is reached (limits.whenFull = reject). */
function throttled(raw: Buffer): simgate.v1.IServerFrame {
  const retryLater = throttledAnswer("GW_ERR_THROTTLED", "in-flight limit reached; resend later");
  try {
    const frame = simgate.v1.ClientFrame.decode(raw);
    if (frame.event) return { ack: { eventId: frame.event.eventId, sequence: frame.event.sequence, retryLater } };
    const runId = frame.runStart?.runId ?? frame.runEnd?.runId;
    if (runId !== undefined) return { runAck: { runId, retryLater } };
  } catch {
    // answered below
  }
  return { error: { code: retryLater.code, message: retryLater.message } };
}

export class WebSocketReceiver {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Map<WebSocket, ConnectionFlow>();
  private connectionId = 0;
  private draining = false;

  constructor(
    private readonly options: WebSocketReceiverOptions,
    private readonly pipeline: IngestConsumer,
    private readonly limiter: InFlightLimiter,
    private readonly auth: BearerAuth,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    // Frames between maxMessageBytes and twice that are rejected with a code and quarantined; above it
    // ws closes the connection with 1009 (message too big).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes * 2, perMessageDeflate: false });
  }

  /** Handles the HTTP server's upgrade requests for the WebSocket path. */
  attach(server: HttpServer): void {
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? "").split("?")[0];
      if (path !== this.options.path) return refuseUpgrade(socket, "GW_ERR_NOT_FOUND", `no WebSocket endpoint at ${path}`);
      if (!this.auth.check(req.headers.authorization)) {
        this.metrics.errors.inc({ code: "GW_ERR_UNAUTHENTICATED", stage: "receive" });
        return refuseUpgrade(socket, "GW_ERR_UNAUTHENTICATED", "missing or wrong bearer token");
      }
      if (this.draining) return refuseUpgrade(socket, "GW_ERR_DRAINING", "the gateway is shutting down");
      if (this.sockets.size >= this.options.maxConnections) {
        this.metrics.errors.inc({ code: "GW_ERR_TOO_MANY_CONNECTIONS", stage: "receive" });
        return refuseUpgrade(socket, "GW_ERR_TOO_MANY_CONNECTIONS", `more than ${this.options.maxConnections} connections`);
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    });
  }

  private onConnection(ws: WebSocket): void {
    const connectionId = `ws-${++this.connectionId}`;
    const flow = new ConnectionFlow(this.limiter, this.options.maxInFlightPerConnection, this.options.whenFull, {
      pause: () => ws.pause(),
      resume: () => ws.resume(),
    });
    this.sockets.set(ws, flow);
    this.metrics.connections.inc({ transport: "ws" });
    const send = (frame: simgate.v1.IServerFrame): void => {
      if (ws.readyState === ws.OPEN) ws.send(simgate.v1.ServerFrame.encode(frame).finish(), { binary: true });
    };
    ws.on("message", (data: RawData, isBinary: boolean) => {
      void (async () => {
        const raw = toBuffer(data);
        if (!(await flow.admit(raw.length))) {
          send(throttled(raw));
          this.metrics.events.inc({ transport: "ws", outcome: "retry_later", code: "GW_ERR_THROTTLED" });
          return;
        }
        this.metrics.inFlight.inc();
        try {
          send(await this.handleFrame(raw, isBinary, connectionId));
        } catch (err) {
          this.logger.error({ err, connectionId }, "unexpected error in the WebSocket handler");
        } finally {
          this.metrics.inFlight.dec();
          flow.done(raw.length);
          if (this.draining && flow.inFlight === 0) ws.close(WS_CLOSE.goingAway, "draining");
        }
      })();
    });
    ws.on("close", () => {
      flow.close();
      this.sockets.delete(ws);
      this.metrics.connections.dec({ transport: "ws" });
    });
    ws.on("error", (err) => {
      const tooBig = (err as { code?: string }).code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH";
      if (tooBig) this.metrics.errors.inc({ code: "GW_ERR_MESSAGE_TOO_LARGE", stage: "receive" });
      this.logger.info({ err: err.message, connectionId }, "WebSocket error");
    });
  }

  private async handleFrame(raw: Buffer, isBinary: boolean, connectionId: string): Promise<simgate.v1.IServerFrame> {
    if (!isBinary) {
      const err = await this.pipeline.handleEmptyFrame(raw, "ws", connectionId, "a text frame; send binary frames, each a protobuf ClientFrame", true);
      return { error: { code: err.code, message: err.message } };
    }
    let frame: simgate.v1.ClientFrame;
    try {
      frame = simgate.v1.ClientFrame.decode(raw);
    } catch (e) {
      const err = await this.pipeline.handleUndecodable(raw, "ws", connectionId, e instanceof Error ? e.message : String(e));
      return { error: { code: err.code, message: err.message } };
    }
    if (frame.event) return { ack: await this.pipeline.handleEvent({ transport: "ws", connectionId, raw, event: frame.event }) };
    if (frame.runStart) return { runAck: await this.pipeline.startRun(frame.runStart, { transport: "ws", connectionId, raw }) };
    if (frame.runEnd) return { runAck: await this.pipeline.endRun(frame.runEnd, { transport: "ws", connectionId, raw }) };
    const what = raw.length === 0 ? "an empty binary frame" : "a ClientFrame with no event, run_start or run_end";
    const err = await this.pipeline.handleEmptyFrame(raw, "ws", connectionId, `${what}: nothing to process`, false);
    return { error: { code: err.code, message: err.message } };
  }

  beginDrain(): void {
    this.draining = true;
    for (const [ws, flow] of this.sockets) if (flow.inFlight === 0) ws.close(WS_CLOSE.goingAway, "draining");
  }

  /** Closes what is left after the grace time. */
  async stop(graceMs: number): Promise<void> {
    this.beginDrain();
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const ws of this.sockets.keys()) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
