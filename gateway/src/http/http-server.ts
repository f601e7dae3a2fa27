// The HTTP port: /healthz (alive), /readyz (Kafka and the object store reachable, not draining),
// /metrics (Prometheus), extra routes from plugins, and the WebSocket endpoint (attached separately).
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { DependencyHealth } from "../service/dependency-health.js";
import type { HttpRoute } from "../plugins/plugin-api.js";
import type { GatewayMetrics } from "../telemetry/metrics.js";
import type { Logger } from "../telemetry/logger.js";

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  tls?: { cert: Buffer; key: Buffer } | undefined;
}

export class HttpServer {
  readonly server: Server;
  private readonly routes = new Map<string, HttpRoute>();
  private readonly statusSources: Array<{ name: string; status: () => unknown }> = [];
  boundPort = 0;

  constructor(
    private readonly options: HttpServerOptions,
    private readonly health: DependencyHealth,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    this.server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs;
  }

  addRoute(route: HttpRoute): void {
    if (["/healthz", "/readyz", "/metrics"].includes(route.path) || this.routes.has(route.path)) throw new Error(`HTTP route ${route.path} is taken`);
    this.routes.set(route.path, route);
  }

  addStatus(name: string, status: () => unknown): void {
    this.statusSources.push({ name, status });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    try {
      if (path === "/healthz") return json(res, 200, { status: "alive" });
      if (path === "/readyz") {
        const ready = this.health.ready;
        const extra: Record<string, unknown> = {};
        for (const s of this.statusSources) extra[s.name] = s.status();
        return json(res, ready ? 200 : 503, { ready, draining: this.health.draining, dependencies: this.health.status(), ...extra });
      }
      if (path === "/metrics") {
        const text = await this.metrics.registry.metrics();
        res.writeHead(200, { "content-type": this.metrics.registry.contentType });
        res.end(text);
        return;
      }
      const route = this.routes.get(path);
      if (route) return await route.handle(req, res);
      json(res, 404, { error: "not found", path });
    } catch (err) {
      this.logger.error({ err, path }, "HTTP handler failed");
      if (!res.headersSent) json(res, 500, { error: "internal error" });
      else res.destroy();
    }
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void =>
        reject(new Error(`cannot listen for HTTP on ${this.options.host}:${this.options.port} (${err.message}); set http.port / SIMGATE_HTTP_PORT to a free port, or stop what holds it`, { cause: err }));
      this.server.once("error", fail);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off("error", fail);
        resolve();
      });
    });
    const address = this.server.address();
    this.boundPort = typeof address === "object" && address !== null ? address.port : this.options.port;
    return this.boundPort;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}
