// The few Kubernetes API calls the job driver makes (the launcher's SparkApplications, the leader
// Lease), over HTTPS with the service account's bearer token and the cluster CA. The token file is read
// before every request: projected service-account tokens rotate.
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

export interface KubernetesClientOptions {
  /** API server; in a pod, https://kubernetes.default.svc. */
  apiUrl: string;
  tokenFile: string;
  /** PEM of the API server's CA; undefined only for a plain-HTTP stand-in in tests. */
  caFile?: string | undefined;
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

export class KubernetesClient {
  private readonly ca: Buffer | undefined;

  constructor(private readonly options: KubernetesClientOptions) {
    this.ca = options.caFile !== undefined ? readFileSync(options.caFile) : undefined;
  }

  /** One request; resolves with any HTTP status (callers decide), rejects on transport errors. */
  call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const url = new URL(path, this.options.apiUrl);
    const token = readFileSync(this.options.tokenFile, "utf8").trim();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const timeout = this.options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, ...(url.protocol === "https:" && this.ca ? { ca: this.ca } : {}), timeout }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }
}
