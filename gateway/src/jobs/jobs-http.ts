// GET /jobs: the driver's state as JSON: per topic its state, pending trigger, current and last run,
// and the recent runs with their results (counts, offsets, tag, problems).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { HttpRoute } from "../plugins/plugin-api.js";
import type { JobDriverSnapshot } from "./job-driver.js";

export function jobsRoute(snapshot: () => JobDriverSnapshot, path = "/jobs"): HttpRoute {
  return {
    path,
    handle(req: IncomingMessage, res: ServerResponse): void {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
        res.end(JSON.stringify({ error: "method not allowed" }));
        return;
      }
      const text = JSON.stringify(snapshot());
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : text);
    },
  };
}
