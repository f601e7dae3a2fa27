// The gateway configuration that deploy/k8s ships boots the real (built) gateway: the dev overlay's
// gateway.json, read through SIMGATE_CONFIG as the Deployment does, with a token and listening on every
// interface and its job driver on the Kubernetes launcher (the file's `jobs` section), answers the Deployment's own
// probe paths, and drains and exits 0 on SIGTERM within the
// pod's grace period. Runs against the local stack (the dev overlay's replication factor 1 fits its
// single broker); the topics and ports are unique to this run.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, test } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { isObject, type Json, type JsonObject, type Resource } from "./kustomize-lite.js";
import { renderWithKustomize } from "./render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dir = mkdtempSync(join(tmpdir(), "simgate-deploy-boot-"));
let gateway: TestGateway | undefined;

afterAll(async () => {
  if (gateway) await gateway.kill();
  rmSync(dir, { recursive: true, force: true });
});

function find(items: readonly { resource: Resource }[], kind: string, name: string): Resource {
  // A generated ConfigMap by its name before kustomize's content hash.
  const hit = items.find(({ resource }) => resource.kind === kind && (resource.metadata["name"] === name || (kind === "ConfigMap" && new RegExp(`^${name}-[a-z0-9]{10}$`).test(String(resource.metadata["name"])))));
  if (!hit) throw new Error(`${kind} ${name} not rendered`);
  return hit.resource;
}

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

test("the dev overlay's gateway config boots the gateway, which answers the Deployment's probes and drains on SIGTERM", async () => {
  const items = renderWithKustomize(join(ROOT, "deploy/k8s/overlays/dev"));
  const configFile = join(dir, "gateway.json");
  const data = obj(find(items, "ConfigMap", "simgate-gateway")["data"] as Json);
  writeFileSync(configFile, String(data["gateway.json"]));
  // Stand-ins for the pod's service-account files; the launcher only uses them when a job starts.
  writeFileSync(join(dir, "token"), "stand-in-token");
  writeFileSync(join(dir, "ca.crt"), "");
  const deployment = find(items, "Deployment", "simgate-gateway");
  const podSpec = obj(obj(obj(deployment["spec"] as Json)["template"])["spec"]);
  const container = (podSpec["containers"] as JsonObject[])[0] as JsonObject;
  const readiness = String(obj(obj(container["readinessProbe"])["httpGet"])["path"]);
  const liveness = String(obj(obj(container["livenessProbe"])["httpGet"])["path"]);

  gateway = await startGateway({
    token: "deploy-boot-test-token-0123456789",
    // The file decides the address (0.0.0.0, as in the cluster): an empty variable is ignored by the loader.
    env: {
      SIMGATE_CONFIG: configFile,
      SIMGATE_HOST: "",
      SIMGATE_GATEWAY_ID: "simgate-gateway-5f7d9c-boot",
      SIMGATE_JOBS_K8S_NAMESPACE: "simgate",
      SIMGATE_JOBS_K8S_TOKEN_FILE: join(dir, "token"),
      SIMGATE_JOBS_K8S_CA_FILE: join(dir, "ca.crt"),
    },
  });
  const listening = gateway
    .logs()
    .filter((line) => line.startsWith("{")) // Node prints its own warnings as text
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((entry) => entry["msg"] === "gateway listening");
  expect(listening).toMatchObject({ grpc: `0.0.0.0:${gateway.grpcPort}`, http: `0.0.0.0:${gateway.httpPort}`, auth: true });
  expect(await gateway.get(liveness)).toMatchObject({ status: 200 });
  const ready = await gateway.get(readiness);
  expect(ready.status).toBe(200);
  expect(JSON.parse(ready.body)).toMatchObject({ jobs: { launcher: "kubernetes" } });
  expect((await gateway.get("/metrics")).body).toMatch(/^simgate_/m);

  const grace = Number(podSpec["terminationGracePeriodSeconds"]) * 1000;
  const stopping = Date.now();
  expect(await gateway.stop(grace)).toBe(0);
  console.log(`gateway drained and exited in ${Date.now() - stopping} ms (grace period ${grace} ms)`);
  gateway = undefined;
});
