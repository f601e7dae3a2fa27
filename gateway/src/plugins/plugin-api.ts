// Extension points of the gateway (the plugin API), for components that live beside the pipeline (the job driver, a plugin in jobs/):
// listeners told about produced records and ended runs, and extra HTTP routes on the HTTP port.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import type { PipelineEvents } from "../model/stages.js";

/** An extra HTTP route, matched on the exact path (query string ignored). Auth is the route's job. */
export interface HttpRoute {
  path: string;
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

/** A component started after the exporters and stopped after the receivers (e.g. the job driver). */
export interface GatewayPlugin {
  readonly name: string;
  readonly routes?: readonly HttpRoute[];
  readonly events?: PipelineEvents;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** Adds to /readyz's JSON body; does not change readiness. */
  status?(): unknown;
  /** Called once with the gateway's metric registry (served at /metrics) before start(). */
  registerMetrics?(registry: Registry): void;
}
