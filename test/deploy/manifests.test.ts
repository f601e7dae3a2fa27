// Offline validation of deploy/k8s and deploy/argocd: every kustomization is rendered with real
// kustomize (render.ts: `kubectl kustomize`), every custom resource is validated against the operators' real CRD schemas
// (test/support/crd-schema.ts; Strimzi 1.2.0, Spark operator v2.5.2, Argo CD v3.5.1), core resources
// get sanity checks (k8s-checks.ts), and the pieces are checked to be wired to each other: the gateway's
// config loads through the gateway's own loader, topics exist for its topic map, addresses point at
// Services that exist, Argo CD Applications point at paths that exist.
// No cluster, no network. Without the CRD directory the tests fail (they do not skip).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { load, loadAll } from "js-yaml";
import { afterAll, describe, expect, test } from "vitest";
import { loadConfig } from "../../gateway/src/config/load-config.js";
import { knownCustomResourceTypes, loadCrdValidator, locateCrdsDir, validateCustomResource } from "../support/crd-schema.js";
import { coreSchemaProblems, isKubernetesType } from "./core-schema.js";
import { renderWithKustomize } from "./render.js";
import { checkBasics, checkReferences, checkServices, checkWorkloads } from "./k8s-checks.js";
import {
  isObject,
  kustomizationFile,
  KustomizeLiteError,
  reachableFiles,
  readManifestFile,
  renderKustomization,
  resourceId,
  type Json,
  type JsonObject,
  type RenderedResource,
  type Resource,
} from "./kustomize-lite.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const K8S = join(ROOT, "deploy", "k8s");
const ARGOCD = join(ROOT, "deploy", "argocd");
const NAMESPACE = "simgate";
/** Created out of band in production (deploy/README.md, "Secrets"); committed only in overlays/dev. */
const SECRET_KEYS: Record<string, string[]> = {
  "simgate-s3-gateway": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
  "simgate-s3-spark": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
  "simgate-s3-trino": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
  "simgate-s3-nessie": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
  "simgate-s3-backup": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
  "simgate-s3-restore": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
  "simgate-gateway-auth": ["token"],
  "simgate-superset": ["secret-key", "admin-password", "database-uri", "trino-uri"],
  "superset-postgres": ["username", "password"],
  "nessie-postgres": ["NESSIE_DB_USER", "NESSIE_DB_PASSWORD"],
  "nessie-oidc": ["NESSIE_OIDC_ISSUER", "NESSIE_OIDC_CLIENT_ID", "NESSIE_WRITER_PRINCIPAL", "NESSIE_READER_PRINCIPAL"],
  "nessie-internal": ["NESSIE_CACHE_INVALIDATION_TOKEN"],
  "simgate-nessie-client": ["NESSIE_AUTH_TYPE"],
  "simgate-nessie-reader": ["NESSIE_AUTH_TOKEN"],
  "trino-internal": ["shared-secret"],
  "trino-users": ["password.db"],
  "trino-tls": ["tls-combined.pem", "ca.crt"],
};
const EXTERNAL_SECRETS = Object.keys(SECRET_KEYS);
/** Kustomizations that no overlay or Argo CD Application includes: run by hand (deploy/README.md). */
const TEMPLATES = ["deploy/k8s/base/spark-jobs/templates", "deploy/k8s/base/nessie/templates"];
const WAP_TEMPLATE = "deploy/k8s/base/spark-jobs/templates/wap-sparkapplication.yaml";
const EXPECTED_CRD_TYPES = [
  "kafka.strimzi.io/v1/Kafka",
  "kafka.strimzi.io/v1/KafkaNodePool",
  "kafka.strimzi.io/v1/KafkaTopic",
  "sparkoperator.k8s.io/v1beta2/SparkApplication",
  "sparkoperator.k8s.io/v1beta2/ScheduledSparkApplication",
  "argoproj.io/v1alpha1/Application",
];

function kustomizationDirs(dir: string): string[] {
  const out: string[] = [];
  if (kustomizationFile(dir)) out.push(dir);
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...kustomizationDirs(path));
  }
  return out;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(entry) ? [path] : [];
    });
}

/** Kustomization directories, Components excepted (they only render inside a kustomization). */
const KUSTOMIZATIONS = [...kustomizationDirs(K8S), ...kustomizationDirs(ARGOCD)]
  .filter((d) => obj(load(readFileSync(kustomizationFile(d) as string, "utf8")) as Json)["kind"] !== "Component")
  .map((d) => relative(ROOT, d));

function render(relDir: string): RenderedResource[] {
  return renderWithKustomize(join(ROOT, relDir));
}

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

/** The object of that kind and name; a generated ConfigMap (configMapGenerator) by its name before the
 *  content hash kustomize appends. */
function find(items: readonly RenderedResource[], kind: string, name: string): Resource {
  const named = (r: Resource): boolean => r.metadata["name"] === name || (kind === "ConfigMap" && new RegExp(`^${name}-[a-z0-9]{10}$`).test(String(r.metadata["name"])));
  const hit = items.find(({ resource }) => resource.kind === kind && named(resource));
  if (!hit) throw new Error(`${kind} ${name} not rendered`);
  return hit.resource;
}

function ofKind(items: readonly RenderedResource[], kind: string): Resource[] {
  return items.filter(({ resource }) => resource.kind === kind).map(({ resource }) => resource);
}

function customResourceProblems(items: readonly RenderedResource[]): string[] {
  const problems: string[] = [];
  for (const { resource, source } of items) {
    if (isKubernetesType(resource.apiVersion, resource.kind)) continue;
    const result = validateCustomResource(resource);
    if (result === undefined) problems.push(`${resourceId(resource)} (${source}): no CRD schema for ${resource.apiVersion} ${resource.kind}`);
    else for (const e of result.errors) problems.push(`${resourceId(resource)} (${relative(ROOT, source)}): ${e}`);
  }
  return problems;
}

function containerOf(deployment: Resource, name: string): JsonObject {
  const containers = obj(obj(obj(deployment["spec"] as Json)["template"])["spec"])["containers"];
  const c = (Array.isArray(containers) ? containers : []).filter(isObject).find((x) => x["name"] === name);
  if (!c) throw new Error(`${resourceId(deployment)} has no container ${name}`);
  return c;
}

function podSpec(deployment: Resource): JsonObject {
  return obj(obj(obj(deployment["spec"] as Json)["template"])["spec"]);
}

/** The environment a container would see, from its env and envFrom, with ConfigMap values from the
 *  rendered set; Secret values come from the rendered Secret or, for out-of-band ones, a stand-in. */
function containerEnv(items: readonly RenderedResource[], c: JsonObject): Record<string, string> {
  const env: Record<string, string> = {};
  const configMap = (name: string): JsonObject => obj(find(items, "ConfigMap", name)["data"] as Json);
  const secret = (name: string): JsonObject => {
    const hit = items.find(({ resource }) => resource.kind === "Secret" && resource.metadata["name"] === name);
    if (hit) return obj(hit.resource["stringData"] as Json);
    return new Proxy({}, { get: (_t, key) => (typeof key === "string" ? `stand-in-${name}-${key}-0123456789` : undefined), has: () => true }) as JsonObject;
  };
  for (const from of (Array.isArray(c["envFrom"]) ? c["envFrom"] : []).filter(isObject)) {
    const cm = obj(from["configMapRef"]);
    const sec = obj(from["secretRef"]);
    if (typeof cm["name"] === "string") for (const [k, v] of Object.entries(configMap(cm["name"]))) env[k] = String(v);
    if (typeof sec["name"] === "string") {
      const data = secret(sec["name"]);
      const keys = Object.keys(data).length > 0 ? Object.keys(data) : (SECRET_KEYS[sec["name"]] ?? []);
      for (const k of keys) env[k] = String(data[k]);
    }
  }
  for (const e of (Array.isArray(c["env"]) ? c["env"] : []).filter(isObject)) {
    const name = String(e["name"]);
    if (typeof e["value"] === "string") env[name] = e["value"];
    const from = obj(e["valueFrom"]);
    if (isObject(from["fieldRef"])) env[name] = from["fieldRef"]["fieldPath"] === "metadata.name" ? "simgate-gateway-7d9f8c6b5-x2k4q" : NAMESPACE;
    const sk = obj(from["secretKeyRef"]);
    if (typeof sk["name"] === "string" && typeof sk["key"] === "string") env[name] = String(secret(sk["name"])[sk["key"]]);
  }
  return env;
}

const tmpDirs: string[] = [];
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), "simgate-deploy-test-"));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe("the operators' CRD schemas", () => {
  test("are available (SIMGATE_CRDS_DIR, else <repo>/../shared/crds) and hold every kind deploy/ uses", () => {
    const dir = locateCrdsDir(); // throws, naming the directory, when it is missing
    expect(knownCustomResourceTypes(dir)).toEqual(expect.arrayContaining(EXPECTED_CRD_TYPES));
  });

  test("a missing CRD directory is an error that says where it looked", () => {
    expect(() => locateCrdsDir({ SIMGATE_CRDS_DIR: "/nonexistent/simgate-crds" })).toThrow(/CRD schemas not found: \/nonexistent\/simgate-crds does not exist/);
  });
});

describe.each(KUSTOMIZATIONS)("kustomization %s", (dir) => {
  test("renders, and its custom resources match the operators' CRDs", () => {
    const items = render(dir);
    expect(items.length).toBeGreaterThan(0);
    expect(customResourceProblems(items)).toEqual([]);
  });

  test("its core resources match the Kubernetes API schemas and are sane (names, selectors, ports, probes, resources)", async () => {
    const items = render(dir);
    const ns = dir.startsWith("deploy/argocd") ? "argocd" : NAMESPACE;
    const core = items.map(({ resource }) => resource).filter((r) => isKubernetesType(r.apiVersion, r.kind));
    expect(await coreSchemaProblems(core)).toEqual([]);
    expect([...checkBasics(items, ns), ...checkWorkloads(items), ...checkServices(items)]).toEqual([]);
  });
});

describe("deploy/ as a whole", () => {
  test("every manifest is rendered by some kustomization or is a known standalone file", () => {
    const reached = new Set<string>();
    for (const dir of KUSTOMIZATIONS) for (const f of reachableFiles(join(ROOT, dir))) reached.add(f);
    const orphans = [...yamlFiles(K8S), ...yamlFiles(ARGOCD)]
      .filter((f) => !reached.has(f))
      .map((f) => relative(ROOT, f))
      // Files a generator reads (configMapGenerator `files`) are not resources.
      .filter((f) => /\.ya?ml$/.test(f));
    expect(orphans).toEqual([]);
  });

  test("the templates run by hand (a WAP run, a Nessie restore) render with pinned images and match their schemas", () => {
    const items = TEMPLATES.flatMap((d) => render(d));
    expect(items.map(({ resource }) => resource.kind).sort()).toEqual(["Job", "SparkApplication"]);
    expect(customResourceProblems(items)).toEqual([]);
    const wap = find(items, "SparkApplication", "simgate-wap-parking-entries-manual");
    expect(String(obj(wap["spec"] as Json)["image"])).toBe(String(obj(obj(find(render("deploy/k8s/overlays/prod"), "ScheduledSparkApplication", "simgate-maintenance")["spec"] as Json)["template"])["image"]));
  });

  test.each(["dev", "prod"])("overlays/%s: every ConfigMap, Secret, volume and service account referred to exists", (env) => {
    const items = render(`deploy/k8s/overlays/${env}`);
    const template = TEMPLATES.flatMap((d) => render(d));
    const { problems, externalSecretsUsed } = checkReferences([...items, ...template], env === "prod" ? EXTERNAL_SECRETS : []);
    expect(problems).toEqual([]);
    if (env === "prod") {
      // Production credentials are never committed: no Secret in the prod render, and each one the
      // pods need is documented in deploy/README.md.
      expect(ofKind(items, "Secret")).toEqual([]);
      expect([...externalSecretsUsed].sort()).toEqual([...EXTERNAL_SECRETS].sort());
      const readme = readFileSync(join(ROOT, "deploy", "README.md"), "utf8");
      for (const s of EXTERNAL_SECRETS) expect(readme, `deploy/README.md documents Secret ${s}`).toContain(s);
    }
  });

  test.each(["dev", "prod"])("overlays/%s: Kafka topics are the gateway's, replicated within the cluster's size", (env) => {
    const items = render(`deploy/k8s/overlays/${env}`);
    const kafka = find(items, "Kafka", "simgate");
    const pools = ofKind(items, "KafkaNodePool");
    const brokers = pools
      .filter((p) => JSON.stringify(obj(p["spec"] as Json)["roles"]).includes("broker"))
      .reduce((n, p) => n + Number(obj(p["spec"] as Json)["replicas"]), 0);
    const problems: string[] = [];
    for (const p of pools) if (obj(p.metadata["labels"])["strimzi.io/cluster"] !== "simgate") problems.push(`${resourceId(p)}: strimzi.io/cluster label is not the Kafka's name`);
    const config = obj(obj(obj(kafka["spec"] as Json)["kafka"])["config"]);
    for (const key of ["default.replication.factor", "offsets.topic.replication.factor", "transaction.state.log.replication.factor"]) {
      if (Number(config[key]) > brokers) problems.push(`Kafka ${key}=${String(config[key])} exceeds ${brokers} broker(s)`);
    }
    if (config["auto.create.topics.enable"] !== false) problems.push("Kafka auto.create.topics.enable must be false");
    const topics = ofKind(items, "KafkaTopic");
    for (const t of topics) {
      const spec = obj(t["spec"] as Json);
      const replicas = Number(spec["replicas"]);
      const minIsr = Number(obj(spec["config"])["min.insync.replicas"]);
      if (obj(t.metadata["labels"])["strimzi.io/cluster"] !== "simgate") problems.push(`${resourceId(t)}: strimzi.io/cluster label is not the Kafka's name`);
      if (replicas > brokers) problems.push(`${resourceId(t)}: replicas ${replicas} > ${brokers} broker(s)`);
      // acks=all needs min.insync.replicas in-sync copies: equal to replicas (>1) would stop ingest
      // whenever one broker restarts.
      if (!(minIsr >= 1 && (replicas === 1 ? minIsr === 1 : minIsr < replicas))) problems.push(`${resourceId(t)}: min.insync.replicas ${minIsr} with replicas ${replicas}`);
      if (!(Number(obj(spec["config"])["retention.ms"]) >= 7 * 24 * 3600 * 1000)) problems.push(`${resourceId(t)}: retention under 7 days`);
    }
    expect(problems).toEqual([]);
    // The gateway publishes to exactly these topics (its config, as deployed).
    const gatewayConfig = JSON.parse(String(obj(find(items, "ConfigMap", "simgate-gateway")["data"] as Json)["gateway.json"])) as {
      kafka: { topicMap: Record<string, string>; deadLetterTopic: string; runsTopic: string };
    };
    const wanted = [...Object.values(gatewayConfig.kafka.topicMap), gatewayConfig.kafka.deadLetterTopic, gatewayConfig.kafka.runsTopic].sort();
    expect(topics.map((t) => String(obj(t["spec"] as Json)["topicName"] ?? t.metadata["name"])).sort()).toEqual(wanted);
    expect(wanted).toEqual(["parking-entries", "parking-exits", "simgate-dead-letter", "simgate-runs"]);
  });

  test.each(["dev", "prod"])("overlays/%s: the gateway's configuration loads through the gateway's own loader", (env) => {
    const items = render(`deploy/k8s/overlays/${env}`);
    const deployment = find(items, "Deployment", "simgate-gateway");
    const container = containerOf(deployment, "gateway");
    const environment = containerEnv(items, container);
    const configPath = environment["SIMGATE_CONFIG"];
    expect(configPath).toBe("/etc/simgate/gateway.json");
    // Put the ConfigMap's file where the loader is told to look, as the volume mount would.
    const mount = (Array.isArray(container["volumeMounts"]) ? container["volumeMounts"] : []).filter(isObject).find((m) => m["mountPath"] === "/etc/simgate");
    expect(mount?.["name"]).toBe("config");
    const dir = tmp();
    const files = obj(find(items, "ConfigMap", "simgate-gateway")["data"] as Json);
    writeFileSync(join(dir, "gateway.json"), String(files["gateway.json"]));
    const config = loadConfig({ configFile: join(dir, "gateway.json"), env: environment });

    expect(config.host).toBe("0.0.0.0");
    expect(config.auth.token).toBeDefined();
    expect(config.kafka.brokers).toEqual(["simgate-kafka-bootstrap.simgate.svc:9092"]);
    expect(config.s3.bucket).toBe("simgate-blobs");
    expect(config.s3.accessKeyId).not.toBe("simgate-secret");
    const ports = (Array.isArray(container["ports"]) ? container["ports"] : []).filter(isObject);
    expect(ports.map((p) => [p["name"], p["containerPort"]])).toEqual([
      ["grpc", config.grpc.port],
      ["http", config.http.port],
    ]);
    expect(config.grpc.port).toBe(50051);
    expect(config.http.port).toBe(8080);
    // The pod must outlive the gateway's drain on SIGTERM.
    expect(Number(podSpec(deployment)["terminationGracePeriodSeconds"]) * 1000).toBeGreaterThan(config.shutdown.drainTimeoutMs);
    if (env === "prod") {
      // The replication factor the gateway would create a missing topic with fits the cluster.
      expect(config.kafka.replicationFactor).toBe(3);
    } else {
      expect(config.kafka.replicationFactor).toBe(1);
    }
  });

  test.each(["dev", "prod"])("overlays/%s: the gateway's job driver starts WAP runs as SparkApplications the cluster can run", (env) => {
    const items = render(`deploy/k8s/overlays/${env}`);
    const container = containerOf(find(items, "Deployment", "simgate-gateway"), "gateway");
    const environment = containerEnv(items, container);
    // One file: the job driver is the `jobs` section of gateway.json, not a second file.
    expect(environment["SIMGATE_JOBS_CONFIG"]).toBeUndefined();
    const dir = tmp();
    const data = obj(find(items, "ConfigMap", "simgate-gateway")["data"] as Json);
    expect(Object.keys(data)).toEqual(["gateway.json"]);
    writeFileSync(join(dir, "gateway.json"), String(data["gateway.json"]));
    // The job driver's section of the gateway's one configuration, as the gateway loads it.
    const jobs = loadConfig({ configFile: join(dir, "gateway.json"), env: environment }).jobs;
    expect(jobs.launcher).toBe("kubernetes");
    // What it creates runs as the drivers' service account, from the same image as the maintenance.
    expect(find(items, "ServiceAccount", jobs.kubernetes.serviceAccount)).toBeDefined();
    const maintenance = obj(obj(find(items, "ScheduledSparkApplication", "simgate-maintenance")["spec"] as Json)["template"]);
    expect(jobs.kubernetes.image).toBe(maintenance["image"]);
    const topics = ofKind(items, "KafkaTopic").map((t) => t.metadata["name"]);
    for (const t of jobs.topics) expect(topics).toContain(t);
    expect(jobs.onRunEnd).toBe(true);
  });

  test("the gateway: probes, metrics, GPU node placement, its Service, RBAC and disruption budget", () => {
    const items = render("deploy/k8s/overlays/prod");
    const deployment = find(items, "Deployment", "simgate-gateway");
    const spec = podSpec(deployment);
    const container = containerOf(deployment, "gateway");
    expect(obj(container["readinessProbe"])["httpGet"]).toMatchObject({ path: "/readyz", port: "http" });
    expect(obj(container["livenessProbe"])["httpGet"]).toMatchObject({ path: "/healthz", port: "http" });
    // Scraped through the Prometheus operator: /metrics on the Service's http port.
    const monitor = find(items, "ServiceMonitor", "simgate-gateway");
    expect(obj(monitor["spec"] as Json)["endpoints"]).toEqual([{ port: "http", path: "/metrics", interval: "15s" }]);
    expect(obj(spec["nodeSelector"])).toEqual({ "nvidia.com/gpu.present": "true" });
    expect(spec["tolerations"]).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(spec["serviceAccountName"]).toBe("simgate-gateway");

    const service = find(items, "Service", "simgate-gateway");
    const servicePorts = (obj(service["spec"] as Json)["ports"] as JsonObject[]).map((p) => [p["name"], p["port"]]);
    expect(servicePorts).toEqual([
      ["grpc", 50051],
      ["http", 8080],
    ]);

    const role = find(items, "Role", "simgate-gateway-spark-jobs");
    // What these rights allow and refuse is checked on a real API server (cluster.test.ts, can-i).
    expect(role["rules"]).toEqual([
      { apiGroups: ["sparkoperator.k8s.io"], resources: ["sparkapplications"], verbs: ["create", "get", "delete"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["simgate-gateway-jobs"], verbs: ["get", "update"] },
    ]);
    const binding = find(items, "RoleBinding", "simgate-gateway-spark-jobs");
    expect(binding["subjects"]).toEqual([{ kind: "ServiceAccount", name: "simgate-gateway", namespace: NAMESPACE }]);
    expect(find(items, "PodDisruptionBudget", "simgate-gateway")["spec"]).toMatchObject({ maxUnavailable: 1 });

    // dev drops the GPU placement (dev clusters seldom have a GPU node) and keeps everything else.
    const devSpec = podSpec(find(render("deploy/k8s/overlays/dev"), "Deployment", "simgate-gateway"));
    expect(devSpec["nodeSelector"]).toBeUndefined();
    expect(devSpec["serviceAccountName"]).toBe("simgate-gateway");
  });

  test("addresses are wired: Kafka bootstrap, Nessie, Trino's catalog and Superset's database point at what is deployed", () => {
    const items = render("deploy/k8s/overlays/prod");
    const stack = obj(find(items, "ConfigMap", "simgate-stack")["data"] as Json);
    const services = ofKind(items, "Service");
    const serviceAt = (host: string, port: number): boolean =>
      services.some((s) => host === `${String(s.metadata["name"])}.${NAMESPACE}.svc` && (obj(s["spec"] as Json)["ports"] as JsonObject[]).some((p) => p["port"] === port));

    // Strimzi names the bootstrap Service <cluster>-kafka-bootstrap; the port is a listener's.
    const [kafkaHost, kafkaPort] = String(stack["KAFKA_BOOTSTRAP"]).split(":");
    const kafka = find(items, "Kafka", "simgate");
    expect(kafkaHost).toBe(`${String(kafka.metadata["name"])}-kafka-bootstrap.${NAMESPACE}.svc`);
    const listeners = obj(obj(kafka["spec"] as Json)["kafka"])["listeners"] as JsonObject[];
    expect(listeners.find((l) => l["port"] === Number(kafkaPort))).toMatchObject({ tls: false });

    const nessie = new URL(String(stack["NESSIE_URI"]));
    expect(serviceAt(nessie.hostname, Number(nessie.port))).toBe(true);
    expect(nessie.pathname).toBe("/api/v2");

    const catalog = String(obj(find(items, "ConfigMap", "trino-catalog")["data"] as Json)["iceberg.properties"]);
    const props = Object.fromEntries(
      catalog
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    expect(props).toMatchObject({ "connector.name": "iceberg", "iceberg.catalog.type": "nessie", "iceberg.nessie-catalog.ref": "main" });
    // Every ${ENV:X} in the catalog is set in the Trino pods' environment.
    const trinoEnv = containerEnv(items, containerOf(find(items, "Deployment", "trino-coordinator"), "trino"));
    for (const m of catalog.matchAll(/\$\{ENV:([A-Z0-9_]+)\}/g)) expect(trinoEnv, `Trino env ${m[1]}`).toHaveProperty(m[1] as string);

    const provisioning = obj(find(items, "ConfigMap", "superset-provisioning")["data"] as Json);
    const database = load(String(provisioning["database-trino.yaml"])) as JsonObject;
    // The bundle carries no address; provision.py takes it from the init container's environment.
    const provision = (obj(obj(obj(find(items, "Deployment", "superset")["spec"] as Json)["template"])["spec"])["initContainers"] as JsonObject[])[0] as JsonObject;
    // The address comes from a Secret (Trino needs a password over HTTPS): prod expects it from outside,
    // so read the dev overlay's example Secret that the init container names.
    const uriEnv = (provision["env"] as JsonObject[]).find((e) => e["name"] === "SIMGATE_TRINO_SQLALCHEMY_URI");
    expect(uriEnv, "the init container sets SIMGATE_TRINO_SQLALCHEMY_URI").toBeDefined();
    let uriText = uriEnv?.["value"] as string | undefined;
    if (uriText === undefined) {
      const ref = obj(obj(uriEnv?.["valueFrom"] as Json)["secretKeyRef"] as Json);
      const secret = find(render("deploy/k8s/overlays/dev"), "Secret", String(ref["name"]));
      const stringData = secret["stringData"] as JsonObject | undefined;
      const data = secret["data"] as JsonObject | undefined;
      uriText = stringData?.[String(ref["key"])] !== undefined
        ? String(stringData[String(ref["key"])])
        : Buffer.from(String(data?.[String(ref["key"])] ?? ""), "base64").toString("utf8");
    }
    const uri = new URL(String(uriText).replace(/^trino:/, "http:"));
    expect(serviceAt(uri.hostname, Number(uri.port))).toBe(true);
    expect(uri.pathname).toBe("/iceberg"); // the catalog file is iceberg.properties
    const dataset = load(String(provisioning["dataset-entries-per-hour.yaml"])) as JsonObject;
    // The same query text as the lakehouse's own (the demo runs it on Spark), on Trino's catalog.
    const shared = readFileSync(join(ROOT, "lakehouse-jobs/simgate/lakehouse/sql/entries_per_hour.sql"), "utf8")
      .split("\n")
      .filter((l) => !l.trimStart().startsWith("--"))
      .join("\n")
      .replace("{table}", "iceberg.production.parking_entries");
    expect(String(dataset["sql"]).trim()).toBe(shared.trim());
    expect(dataset["database_uuid"]).toBe(database["uuid"]);
    const chart = load(String(provisioning["chart-entries-per-hour.yaml"])) as JsonObject;
    expect(chart["dataset_uuid"]).toBe(dataset["uuid"]);
    const dashboard = load(String(provisioning["dashboard-parking.yaml"])) as JsonObject;
    expect(JSON.stringify(dashboard["position"])).toContain(String(chart["uuid"]));
    // provision.py lays out the bundle's keys by prefix: every key is one it knows.
    for (const key of Object.keys(provisioning)) expect(key).toMatch(/^(provision\.py|metadata\.yaml|(database|dataset|chart|dashboard)-[a-z-]+\.yaml)$/);
  });

  test("Spark jobs: the WAP template and the maintenance schedule run lakehouse-jobs from the image", () => {
    const items = render("deploy/k8s/overlays/prod");
    const scheduled = find(items, "ScheduledSparkApplication", "simgate-maintenance");
    const wap = readManifestFile(join(ROOT, WAP_TEMPLATE))[0]?.resource as Resource;
    for (const [name, spec] of [
      ["maintenance", obj(obj(scheduled["spec"] as Json)["template"])],
      ["wap", obj(wap["spec"] as Json)],
    ] as const) {
      // The image copies deploy/k8s/images/lakehouse-jobs/entrypoints/ to .../lakehouse-jobs/entrypoints/.
      const main = String(spec["mainApplicationFile"]);
      expect(main, name).toMatch(/^local:\/\/\/opt\/simgate\/lakehouse-jobs\/entrypoints\/[a-z_]+\.py$/);
      const entry = readFileSync(join(ROOT, "deploy/k8s/images/lakehouse-jobs/entrypoints", main.split("/").pop() as string), "utf8");
      const module = /^from (simgate\.lakehouse\.[a-z_]+) import main$/m.exec(entry)?.[1];
      expect(module, `${name}: the entry point imports a job module`).toBeDefined();
      expect(spec["type"]).toBe("Python");
      expect(obj(spec["driver"])["serviceAccount"]).toBe("simgate-spark");
      expect(obj(spec["sparkConf"])["spark.driver.extraClassPath"]).toBe("/opt/simgate/jars/*");
      // The session factory (lakehouse-jobs/simgate/lakehouse/spark.py) must keep the operator's master.
      const driverEnv = Object.fromEntries((obj(spec["driver"])["env"] as JsonObject[]).map((e) => [e["name"], e["value"]]));
      expect(driverEnv).toMatchObject({ SPARK_JARS_DIR: "/opt/simgate/jars", SIMGATE_SPARK_MASTER: "k8s://https://kubernetes.default.svc:443" });
    }
    expect(obj(scheduled["spec"] as Json)["concurrencyPolicy"]).toBe("Forbid");
    // Both jobs name topics the gateway publishes events to.
    const eventTopics = Object.values(
      (JSON.parse(String(obj(find(items, "ConfigMap", "simgate-gateway")["data"] as Json)["gateway.json"])) as { kafka: { topicMap: Record<string, string> } }).kafka.topicMap,
    ).sort();
    const topicArgs = (args: Json | undefined): string[] => (Array.isArray(args) ? args.map(String) : []).filter((_a, i, all) => all[i - 1] === "--topic");
    expect(topicArgs(obj(obj(scheduled["spec"] as Json)["template"])["arguments"]).sort()).toEqual(eventTopics);
    expect(eventTopics).toContain(topicArgs(obj(wap["spec"] as Json)["arguments"])[0]);
    // Retries of WAP runs belong to the gateway's job driver alone.
    expect(obj(obj(wap["spec"] as Json)["restartPolicy"])["type"]).toBe("Never");
  });

  test.each(["wap", "maintenance"])("Spark entry point %s.py runs against the installed lakehouse-jobs package", (job) => {
    // What spark-submit does with mainApplicationFile: run the file as a script. --help stops after
    // argument parsing, so the job's imports and its command line are exercised without Spark.
    const python = join(ROOT, ".venv", "bin", "python");
    expect(existsSync(python), `${python} (bash scripts/setup makes it)`).toBe(true);
    const run = spawnSync(python, [join(ROOT, "deploy/k8s/images/lakehouse-jobs/entrypoints", `${job}.py`), "--help"], { encoding: "utf8", timeout: 60_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^usage: /);
  });

  test("retention CronJob: runs the retention module of the image with options it has, on the stack's config", () => {
    const items = render("deploy/k8s/overlays/prod");
    const job = find(items, "CronJob", "simgate-retention");
    const pod = obj(obj(obj(obj(obj(job["spec"] as Json)["jobTemplate"])["spec"])["template"])["spec"]);
    const container = (pod["containers"] as JsonObject[])[0] as JsonObject;
    expect(container["command"]).toEqual(["python3", "-m", "simgate.lakehouse.retention"]);
    expect(String(container["image"])).toBe(String(obj(obj(find(items, "ScheduledSparkApplication", "simgate-maintenance")["spec"] as Json)["template"])["image"]));
    expect((container["envFrom"] as JsonObject[]).map((e) => obj(e["configMapRef"])["name"])).toContain("simgate-stack");
    expect(obj(find(items, "ConfigMap", "simgate-stack")["data"] as Json)["NESSIE_URI"]).toBeTruthy();
    const python = join(ROOT, ".venv", "bin", "python");
    const help = spawnSync(python, ["-m", "simgate.lakehouse.retention", "--help"], { encoding: "utf8", timeout: 60_000 });
    expect(help.status, help.stderr).toBe(0);
    for (const option of (container["args"] as string[]).filter((a) => a.startsWith("--"))) expect(help.stdout).toContain(option);
  });

  test("the lakehouse-jobs image installs the package's dependencies with the pyproject pins (pyspark comes with the image)", () => {
    const pyproject = readFileSync(join(ROOT, "lakehouse-jobs/pyproject.toml"), "utf8");
    const deps = [.../dependencies = \[([^\]]*)\]/.exec(pyproject)?.[1]?.matchAll(/"([^"]+)"/g) ?? []].map((m) => m[1] as string).filter((d) => !d.startsWith("pyspark"));
    expect(deps.length).toBeGreaterThan(0);
    const dockerfile = readFileSync(join(ROOT, "deploy/k8s/images/lakehouse-jobs/Dockerfile"), "utf8");
    const installed = [...dockerfile.matchAll(/pip install --no-cache-dir ((?:"[^"]+" ?)+)/g)].flatMap((m) => [...(m[1] as string).matchAll(/"([^"]+)"/g)].map((d) => d[1] as string));
    expect(installed.sort()).toEqual(deps.sort());
  });

  test("Argo CD: one automated Application per prod component, all at paths that exist", () => {
    const root = readManifestFile(join(ROOT, "deploy/argocd/root.yaml"))[0]?.resource as Resource;
    const rootSource = obj(obj(root["spec"] as Json)["source"]);
    expect(rootSource["path"]).toBe("deploy/argocd/apps");
    // The platform's Applications (project simgate); the operators' come from Helm charts (test/deploy/argocd.test.ts).
    const apps = render("deploy/argocd/apps")
      .map(({ resource }) => resource)
      .filter((a) => obj(a["spec"] as Json)["project"] === "simgate");
    const components = readdirSync(join(K8S, "overlays", "prod"))
      .filter((d) => statSync(join(K8S, "overlays", "prod", d)).isDirectory())
      .sort();
    expect(apps.map((a) => String(obj(obj(a["spec"] as Json)["source"])["path"])).sort()).toEqual(components.map((c) => `deploy/k8s/overlays/prod/${c}`));
    for (const app of [root, ...apps]) {
      const spec = obj(app["spec"] as Json);
      const source = obj(spec["source"]);
      expect(source["repoURL"]).toBe(rootSource["repoURL"]);
      // Production follows the release branch, moved only by promotion (deploy/README.md, "Promotion").
      expect(source["targetRevision"]).toBe("release/prod");
      expect(kustomizationFile(join(ROOT, String(source["path"])))).toBeDefined();
      expect(obj(obj(spec["syncPolicy"])["automated"])).toMatchObject({ prune: true, selfHeal: true });
      expect(obj(spec["destination"])["server"]).toBe("https://kubernetes.default.svc");
    }
    expect(readFileSync(join(ROOT, "deploy", "README.md"), "utf8")).toContain(String(rootSource["repoURL"]));
  });
});

describe("the checks can fail", () => {
  test("an invalid Kafka is rejected by the Strimzi schema", () => {
    const kafka = loadCrdValidator("Kafka");
    const good = readManifestFile(join(K8S, "base/kafka/kafka.yaml"))[0]?.resource as Resource;
    expect(kafka.validate(good)).toEqual({ valid: true, errors: [] });

    const bad = structuredClone(good) as unknown as { spec: { kafka: Record<string, unknown> & { listeners: Record<string, unknown>[] } } };
    bad.spec.kafka["replicas"] = 3; // removed in kafka.strimzi.io/v1: node pools hold replicas
    delete bad.spec.kafka.listeners[0]?.["tls"];
    (bad.spec.kafka.listeners[1] as Record<string, unknown>)["name"] = "TLS_Listener"; // ^[a-z0-9]{1,11}$
    const result = kafka.validate(bad);
    expect(result.valid).toBe(false);
    expect(result.errors).toEqual(
      expect.arrayContaining([
        '/spec/kafka: unknown field "replicas"',
        "/spec/kafka/listeners/0: must have required property 'tls'",
        expect.stringMatching(/^\/spec\/kafka\/listeners\/1\/name: must match pattern/),
      ]),
    );
  });

  test("an invalid topic, Spark application and Argo CD Application are rejected", () => {
    const topic = readManifestFile(join(K8S, "base/kafka/topics.yaml"))[0]?.resource as Resource;
    const badTopic = { ...topic, spec: { ...obj(topic["spec"] as Json), partitions: 0 } };
    expect(loadCrdValidator("KafkaTopic").validate(badTopic).errors).toEqual(["/spec/partitions: must be >= 1"]);

    const wap = readManifestFile(join(ROOT, WAP_TEMPLATE))[0]?.resource as Resource;
    const badWap = structuredClone(wap) as unknown as { apiVersion: string; spec: Record<string, unknown> };
    badWap.spec["type"] = "Go";
    delete badWap.spec["sparkVersion"];
    const sparkErrors = loadCrdValidator("SparkApplication").validate(badWap).errors;
    expect(sparkErrors).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\/spec\/type: must be equal to one of the allowed values/), "/spec: must have required property 'sparkVersion'"]),
    );
    badWap.apiVersion = "sparkoperator.k8s.io/v1beta1";
    expect(loadCrdValidator("SparkApplication").validate(badWap).errors[0]).toMatch(/^\/apiVersion: expected sparkoperator.k8s.io\/v1beta2/);

    const app = readManifestFile(join(ARGOCD, "apps/gateway.yaml"))[0]?.resource as Resource;
    const badApp = structuredClone(app) as unknown as { spec: Record<string, unknown> };
    delete badApp.spec["destination"];
    (badApp.spec["syncPolicy"] as { automated: Record<string, unknown> }).automated["selfHeal"] = "yes";
    expect(loadCrdValidator("Application").validate(badApp).errors.sort()).toEqual(
      ["/spec/syncPolicy/automated/selfHeal: must be boolean", "/spec: must have required property 'destination'"].sort(),
    );
  });

  test("the renderer refuses what it cannot render, and patches that miss", () => {
    const dir = tmp();
    writeFileSync(join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a, namespace: simgate }\ndata: { k: v }\n");
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [cm.yaml]\nnamePrefix: x-\n");
    expect(() => renderKustomization(dir)).toThrow(/namePrefix not supported by the test renderer/);
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [cm.yaml]\npatches:\n  - target: { kind: ConfigMap, name: b }\n    patch: '[{op: replace, path: /data/k, value: w}]'\n");
    expect(() => renderKustomization(dir)).toThrow(KustomizeLiteError);
    expect(() => renderKustomization(dir)).toThrow(/matches no resource/);
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [cm.yaml]\npatches:\n  - target: { kind: ConfigMap, name: a }\n    patch: '[{op: replace, path: /data/missing, value: w}]'\n");
    expect(() => renderKustomization(dir)).toThrow(/does not exist/);
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [cm.yaml]\npatches:\n  - target: { kind: ConfigMap, name: a }\n    patch: '[{op: replace, path: /data/k, value: w}]'\n");
    expect(obj(renderKustomization(dir)[0]?.resource["data"] as Json)).toEqual({ k: "w" });
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [cm.yaml, cm.yaml]\n");
    expect(() => renderKustomization(dir)).toThrow(/defined twice/);
  });

  test("a core resource of the wrong shape is rejected by the Kubernetes schema", () => {
    const deployment = readManifestFile(join(K8S, "base/gateway/deployment.yaml"))[0]?.resource as Resource;
    expect(coreSchemaProblems([deployment])).toEqual([]);
    const bad = structuredClone(deployment) as unknown as { spec: { replicas: unknown; template: { spec: { containers: Record<string, unknown>[] } } } };
    bad.spec.replicas = "two";
    delete (bad.spec.template.spec.containers[0] as Record<string, unknown>)["name"];
    expect(coreSchemaProblems([bad as unknown as Resource])).toEqual([
      "apps/Deployment/simgate/simgate-gateway: /spec/replicas: must be integer",
      "apps/Deployment/simgate/simgate-gateway: /spec/template/spec/containers/0: must have required property 'name'",
    ]);
    expect(coreSchemaProblems([{ apiVersion: "v1", kind: "Widget", metadata: { name: "w" } }])).toEqual(["/Widget//w: no Kubernetes schema for v1 Widget"]);
    expect(isKubernetesType("batch/v1", "CronJob")).toBe(true);
    expect(isKubernetesType("sparkoperator.k8s.io/v1beta2", "SparkApplication")).toBe(false);
  });

  test("a misspelled field fails strict validation, in a Deployment and in a CronJob", () => {
    const deployment = readManifestFile(join(K8S, "base/gateway/deployment.yaml"))[0]?.resource as Resource;
    const cronJob = readManifestFile(join(K8S, "base/spark-jobs/retention.yaml"))[0]?.resource as Resource;
    expect(coreSchemaProblems([deployment, cronJob])).toEqual([]);
    type Pod = { spec: Record<string, unknown> & { containers: Array<Record<string, unknown> & { securityContext: Record<string, unknown> }> } };
    const misspell = (pod: Pod): void => {
      const c = pod.spec.containers[0] as Pod["spec"]["containers"][number];
      c["readinessprobe"] = { httpGet: { path: "/readyz", port: 8080 } };
      pod.spec["toleration"] = [{ key: "nvidia.com/gpu", operator: "Exists" }];
      c.securityContext["readOnlyRootFilesytem"] = true;
    };
    const badDeployment = structuredClone(deployment) as unknown as { spec: { template: Pod } };
    misspell(badDeployment.spec.template);
    const badCronJob = structuredClone(cronJob) as unknown as { spec: { jobTemplate: { spec: { template: Pod } } } };
    misspell(badCronJob.spec.jobTemplate.spec.template);
    expect(coreSchemaProblems([badDeployment, badCronJob] as unknown as Resource[])).toEqual([
      'apps/Deployment/simgate/simgate-gateway: /spec/template/spec: unknown field "toleration"',
      'apps/Deployment/simgate/simgate-gateway: /spec/template/spec/containers/0: unknown field "readinessprobe"',
      'apps/Deployment/simgate/simgate-gateway: /spec/template/spec/containers/0/securityContext: unknown field "readOnlyRootFilesytem"',
      'batch/CronJob/simgate/simgate-retention: /spec/jobTemplate/spec/template/spec: unknown field "toleration"',
      'batch/CronJob/simgate/simgate-retention: /spec/jobTemplate/spec/template/spec/containers/0: unknown field "readinessprobe"',
      'batch/CronJob/simgate/simgate-retention: /spec/jobTemplate/spec/template/spec/containers/0/securityContext: unknown field "readOnlyRootFilesytem"',
    ]);
  });

  test("the sanity checks flag a Service that selects nothing, a wrong targetPort and a probe on no port", () => {
    const dir = tmp();
    mkdirSync(join(dir, "app"));
    writeFileSync(
      join(dir, "app", "all.yaml"),
      [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, namespace: simgate }\nspec:\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      containers:\n        - name: web\n          image: example/web:1.0\n          ports: [{ name: http, containerPort: 8080 }]\n          readinessProbe: { httpGet: { path: /readyz, port: metrics } }\n          resources: { requests: { cpu: 100m, memory: 64Mi }, limits: { memory: 64Mi } }\n",
        "apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: simgate }\nspec:\n  selector: { app: web }\n  ports: [{ name: grpc, port: 50051, targetPort: grpc }]\n",
        "apiVersion: v1\nkind: Service\nmetadata: { name: other, namespace: simgate }\nspec:\n  selector: { app: nothing }\n  ports: [{ port: 80 }]\n",
      ].join("---\n"),
    );
    writeFileSync(join(dir, "app", "kustomization.yaml"), "resources: [all.yaml]\n");
    const items = renderKustomization(join(dir, "app"));
    expect([...checkWorkloads(items), ...checkServices(items)]).toEqual([
      'apps/Deployment/simgate/web container web: readinessProbe port "metrics" is not a declared container port',
      '/Service/simgate/web: port grpc targetPort "grpc" is not a container port of apps/Deployment/simgate/web',
      '/Service/simgate/other: selector {"app":"nothing"} matches no workload\'s pod labels',
    ]);
    expect(checkReferences(items, []).problems).toEqual([]);
    expect(checkBasics([{ resource: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "Bad_Name" } }, source: "x" }])).toEqual([
      "/ConfigMap//Bad_Name (x): metadata.name \"Bad_Name\" is not a valid ConfigMap name",
      "/ConfigMap//Bad_Name (x): no metadata.namespace",
    ]);
  });
});
