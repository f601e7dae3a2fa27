// The Kubernetes launcher against a stand-in API server (HTTPS with its own CA, like a cluster's): it
// checks the method, path, bearer token and body of every request, validates the SparkApplication
// against the Spark operator's real CRD schema, and plays the operator's status transitions.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesLauncher } from "../../gateway/src/jobs/kubernetes-launcher.js";
import { sparkApplicationFor } from "../../gateway/src/jobs/spark-application.js";
import { loadCrdValidator } from "../support/crd-schema.js";

const NAMESPACE = "simgate-test";
const COLLECTION = `/apis/sparkoperator.k8s.io/v1beta2/namespaces/${NAMESPACE}/sparkapplications`;
const validator = loadCrdValidator("SparkApplication", "sparkoperator.k8s.io/v1beta2");

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/** Plays the API server: `states` are the applicationState values returned by successive GETs. */
class StandInApiServer {
  readonly seen: Seen[] = [];
  readonly validations: Array<{ valid: boolean; errors: string[] }> = [];
  states: string[] = [];
  token = "";
  createStatus = 201;
  private readonly apps = new Map<string, Record<string, unknown>>();
  server!: Server;
  url = "";

  constructor(private readonly cert: Buffer, private readonly key: Buffer) {}

  async start(): Promise<void> {
    this.server = createServer({ cert: this.cert, key: this.key }, (req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private reply(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const body: unknown = text ? JSON.parse(text) : undefined;
    const path = req.url ?? "";
    this.seen.push({ method: req.method ?? "", path, authorization: req.headers.authorization, contentType: req.headers["content-type"], body });
    if (req.headers.authorization !== `Bearer ${this.token}`) return this.reply(res, 401, { kind: "Status", reason: "Unauthorized" });
    if (req.method === "POST" && path === COLLECTION) {
      if (this.createStatus !== 201) return this.reply(res, this.createStatus, { kind: "Status", reason: "Forbidden" });
      const result = validator.validate(body);
      this.validations.push(result);
      if (!result.valid) return this.reply(res, 422, { kind: "Status", reason: "Invalid", message: result.errors.join("; ") });
      const app = body as { metadata: { name: string } };
      this.apps.set(app.metadata.name, body as Record<string, unknown>);
      return this.reply(res, 201, body);
    }
    const name = path.startsWith(`${COLLECTION}/`) ? path.slice(COLLECTION.length + 1) : undefined;
    if (name !== undefined && this.apps.has(name)) {
      if (req.method === "GET") {
        const state = this.states.length > 1 ? (this.states.shift() as string) : (this.states[0] ?? "SUBMITTED");
        return this.reply(res, 200, { ...this.apps.get(name), status: { applicationState: { state, errorMessage: state === "FAILED" ? "driver exited 2" : "" } } });
      }
      if (req.method === "DELETE") {
        this.apps.delete(name);
        return this.reply(res, 200, { kind: "Status", status: "Success" });
      }
    }
    return this.reply(res, 404, { kind: "Status", reason: "NotFound" });
  }
}

const dir = mkdtempSync(join(tmpdir(), "k8s-launcher-"));
const keyFile = join(dir, "tls.key");
const caFile = join(dir, "ca.crt");
const tokenFile = join(dir, "token");
let api: StandInApiServer;

beforeAll(async () => {
  // A self-signed certificate for 127.0.0.1, which is also the CA the launcher trusts.
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", caFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  api = new StandInApiServer(readFileSync(caFile), readFileSync(keyFile));
  await api.start();
});

afterAll(async () => {
  await new Promise((r) => api.server.close(r));
});

function launcher(): KubernetesLauncher {
  return new KubernetesLauncher({ apiUrl: api.url, namespace: NAMESPACE, tokenFile, caFile, image: "registry.example.com/simgate/lakehouse-jobs:0.1.0", serviceAccount: "simgate-spark", executorInstances: 2, pollMs: 20 });
}

function setToken(token: string): void {
  api.token = token;
  writeFileSync(tokenFile, `${token}\n`);
}

describe("KubernetesLauncher", () => {
  it("creates a SparkApplication that the operator's CRD schema accepts, with the service-account token, and follows it to COMPLETED", async () => {
    setToken(`sa-token-${Date.now()}`);
    api.seen.length = 0;
    api.states = ["SUBMITTED", "RUNNING", "RUNNING", "COMPLETED"];
    const outcome = await launcher().launch({ id: "job-parking-entries-1", topic: "parking-entries", attempt: 1, reason: "run-end" }, new AbortController().signal);
    expect(outcome).toMatchObject({ ok: true, status: "completed" });

    const [create, ...polls] = api.seen;
    expect(create?.method).toBe("POST");
    expect(create?.path).toBe(COLLECTION);
    expect(create?.authorization).toBe(`Bearer ${api.token}`);
    expect(create?.contentType).toBe("application/json");
    expect(api.validations.at(-1)).toEqual({ valid: true, errors: [] });
    const app = create?.body as { metadata: { name: string; namespace: string; labels: Record<string, string> }; spec: { arguments: string[]; restartPolicy: { type: string }; driver: { serviceAccount: string } } };
    expect(app.metadata.namespace).toBe(NAMESPACE);
    expect(app.metadata.labels["simgate.io/topic"]).toBe("parking-entries");
    expect(app.spec.arguments.slice(0, 2)).toEqual(["--topic", "parking-entries"]);
    expect(app.spec.arguments[2]).toBe("--wap-run-id");
    expect(app.spec.restartPolicy.type).toBe("Never");
    expect(app.spec.driver.serviceAccount).toBe("simgate-spark");
    // Four polls, then the finished run's resource is deleted at once: the namespace's ResourceQuota
    // then counts runs in progress (and failed ones, kept for inspection), not an hour of finished ones.
    const deleted = polls.pop();
    expect(deleted).toMatchObject({ method: "DELETE", path: `${COLLECTION}/${app.metadata.name}`, authorization: `Bearer ${api.token}` });
    expect(polls.length).toBe(4);
    for (const p of polls) {
      expect(p.method).toBe("GET");
      expect(p.path).toBe(`${COLLECTION}/${app.metadata.name}`);
      expect(p.authorization).toBe(`Bearer ${api.token}`);
    }
  });

  it("keeps a failed run's SparkApplication (and its driver pod) for inspection until the operator's TTL", async () => {
    setToken(`sa-token-${Date.now()}`);
    api.seen.length = 0;
    api.states = ["RUNNING", "FAILED"];
    const outcome = await launcher().launch({ id: "job-parking-entries-f", topic: "parking-entries", attempt: 1, reason: "run-end" }, new AbortController().signal);
    expect(outcome).toMatchObject({ ok: false, status: "failed", retryable: true });
    expect(api.seen.map((r) => r.method)).not.toContain("DELETE");
  });

  it("reads the token file on every request (tokens rotate)", async () => {
    setToken("first-token");
    api.seen.length = 0;
    api.states = ["RUNNING", "RUNNING", "RUNNING", "RUNNING", "COMPLETED"];
    const run = launcher().launch({ id: "job-x-1", topic: "parking-exits", attempt: 1, reason: "manual" }, new AbortController().signal);
    while (api.seen.length < 2) await new Promise((r) => setTimeout(r, 5));
    setToken("rotated-token");
    expect(await run).toMatchObject({ ok: true });
    expect(api.seen[0]?.authorization).toBe("Bearer first-token");
    expect(api.seen.at(-1)?.authorization).toBe("Bearer rotated-token");
  });

  it("reports a FAILED application as a retryable failure with the operator's message", async () => {
    setToken("t-failed");
    api.states = ["RUNNING", "FAILED"];
    const outcome = await launcher().launch({ id: "job-e-2", topic: "parking-entries", attempt: 2, reason: "run-end" }, new AbortController().signal);
    expect(outcome).toMatchObject({ ok: false, status: "failed", retryable: true });
    expect(outcome.error).toContain("driver exited 2");
  });

  it("deletes the application when the run is stopped", async () => {
    setToken("t-abort");
    api.seen.length = 0;
    api.states = ["RUNNING"];
    const abort = new AbortController();
    const run = launcher().launch({ id: "job-e-3", topic: "parking-entries", attempt: 1, reason: "manual" }, abort.signal);
    while (api.seen.length < 3) await new Promise((r) => setTimeout(r, 5));
    abort.abort(new Error("the gateway is stopping"));
    expect(await run).toMatchObject({ ok: false, status: "cancelled" });
    const last = api.seen.at(-1);
    expect(last?.method).toBe("DELETE");
    expect(last?.path).toMatch(new RegExp(`^${COLLECTION}/simgate-wap-parking-entries-`));
  });

  it("does not retry when the API refuses the service account", async () => {
    setToken("t-forbidden");
    api.createStatus = 403;
    try {
      const outcome = await launcher().launch({ id: "job-e-4", topic: "parking-entries", attempt: 1, reason: "manual" }, new AbortController().signal);
      expect(outcome).toMatchObject({ ok: false, retryable: false });
      expect(outcome.error).toContain("403");
    } finally {
      api.createStatus = 201;
    }
  });

  it("the CRD validator used here rejects a malformed SparkApplication (it can fail)", () => {
    const good = sparkApplicationFor({ topic: "parking-entries", wapRunId: "20261127T120000Z-abcd1234", jobId: "j" }, { namespace: NAMESPACE, image: "img:1", serviceAccount: "sa", executorInstances: 1 });
    expect(validator.validate(good)).toEqual({ valid: true, errors: [] });
    const bad = structuredClone(good) as { spec: Record<string, unknown> };
    bad.spec["type"] = "Ruby";
    bad.spec["restartPolicy"] = { type: "Sometimes" };
    const result = validator.validate(bad);
    expect(result.valid).toBe(false);
    expect(result.errors.join("\n")).toMatch(/\/spec\/type/);
  });
});
