// Day-2 operations, least privilege and Argo CD (issue 11), checked on the rendered manifests: config
// hashes roll pods; Spark applications are cleaned within the hour; Nessie GC and the Nessie backup run
// what they should and the restore undoes the backup; Kafka is pinned and spread; every monitor scrapes
// something that exists; Nessie and Trino authenticate; each role has its own S3 key; the Argo CD
// projects allow exactly what the apps deploy, the operators come first with server-side apply, and
// prod follows the release branch.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import { sparkApplicationFor } from "../../gateway/src/jobs/spark-application.js";
import { isObject, type Json, type JsonObject, type RenderedResource, type Resource } from "./kustomize-lite.js";
import { renderWithKustomize } from "./render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const render = (rel: string): RenderedResource[] => renderWithKustomize(join(ROOT, rel));
const resources = (rel: string): Resource[] => render(rel).map(({ resource }) => resource);
const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}
function list(value: Json | undefined): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}
function get(items: readonly Resource[], kind: string, name: string): Resource {
  const hit = items.find((r) => r.kind === kind && (r.metadata["name"] === name || (kind === "ConfigMap" && new RegExp(`^${name}-[a-z0-9]{10}$`).test(String(r.metadata["name"])))));
  if (hit === undefined) throw new Error(`${kind} ${name} not rendered`);
  return hit;
}
/** The pod spec of a workload, a CronJob or a Job. */
function podSpecOf(r: Resource): JsonObject {
  const spec = obj(r["spec"] as Json);
  if (r.kind === "CronJob") return obj(obj(obj(obj(spec["jobTemplate"])["spec"])["template"])["spec"]);
  return obj(obj(spec["template"])["spec"]);
}
function containers(r: Resource): JsonObject[] {
  const p = podSpecOf(r);
  return [...list(p["initContainers"]), ...list(p["containers"])];
}
function secretRefs(c: JsonObject): string[] {
  return [
    ...list(c["envFrom"]).map((e) => String(obj(e["secretRef"])["name"] ?? "")),
    ...list(c["env"]).map((e) => String(obj(obj(e["valueFrom"])["secretKeyRef"])["name"] ?? "")),
  ].filter((n) => n !== "");
}
function properties(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}
const PROD = "deploy/k8s/overlays/prod";

describe("config hashes roll pods", () => {
  test("every generated ConfigMap is referenced by its hashed name, never by the bare one", () => {
    const items = resources(PROD);
    const generated = items.filter((r) => r.kind === "ConfigMap" && /-[a-z0-9]{10}$/.test(String(r.metadata["name"])));
    expect(generated.map((r) => String(r.metadata["name"]).replace(/-[a-z0-9]{10}$/, "")).sort()).toEqual(
      ["nessie-config", "simgate-gateway", "superset-config", "trino-catalog", "trino-coordinator", "trino-worker"].sort(),
    );
    // Every ConfigMap a pod refers to (volumes, projected sources, envFrom, env), by name.
    const refs = new Set<string>();
    const walk = (v: Json, key = ""): void => {
      if (Array.isArray(v)) v.forEach((x) => walk(x, key));
      else if (isObject(v)) {
        for (const [k, x] of Object.entries(v)) {
          if (["configMap", "configMapRef", "configMapKeyRef"].includes(k) && isObject(x) && typeof x["name"] === "string") refs.add(x["name"]);
          walk(x, k);
        }
      }
    };
    for (const r of items.filter((x) => x.kind !== "ConfigMap")) walk(r as unknown as Json);
    for (const cm of generated) {
      const name = String(cm.metadata["name"]);
      expect(refs, name).toContain(name);
      expect(refs, name).not.toContain(name.replace(/-[a-z0-9]{10}$/, ""));
    }
    const names = new Set(items.filter((r) => r.kind === "ConfigMap").map((r) => String(r.metadata["name"])));
    expect([...refs].filter((r) => !names.has(r))).toEqual([]);
  });

  test.each([
    ["deploy/k8s/base/gateway/gateway.json", "simgate-gateway", "Deployment", "simgate-gateway", (t: string) => t.replace('"level": "info"', '"level": "warn"')],
    ["deploy/k8s/base/nessie/application.properties", "nessie-config", "Deployment", "nessie", (t: string) => t.replace("quarkus.otel.sdk.disabled=true", "quarkus.otel.sdk.disabled=false")],
    ["deploy/k8s/base/trino/catalog/iceberg.properties", "trino-catalog", "Deployment", "trino-worker", (t: string) => `${t}iceberg.max-partitions-per-writer=200\n`],
    ["deploy/k8s/base/superset/superset_config.py", "superset-config", "Deployment", "superset", (t: string) => t.replace("ROW_LIMIT = 50000", "ROW_LIMIT = 10000")],
  ] as const)("a change to %s renames the ConfigMap and changes the pod template of the workload using it", (file, cm, kind, workload, change) => {
    const dir = mkdtempSync(join(tmpdir(), "simgate-hash-"));
    tmpDirs.push(dir);
    cpSync(join(ROOT, "deploy"), join(dir, "deploy"), { recursive: true });
    const before = renderWithKustomize(join(dir, PROD), { cache: false }).map(({ resource }) => resource);
    const original = readFileSync(join(dir, file), "utf8");
    const changed = change(original);
    expect(changed).not.toBe(original);
    writeFileSync(join(dir, file), changed);
    const after = renderWithKustomize(join(dir, PROD), { cache: false }).map(({ resource }) => resource);
    const nameBefore = String(get(before, "ConfigMap", cm).metadata["name"]);
    const nameAfter = String(get(after, "ConfigMap", cm).metadata["name"]);
    expect(nameAfter).not.toBe(nameBefore);
    const templateOf = (items: Resource[]): string => JSON.stringify(obj(get(items, kind, workload)["spec"] as Json)["template"]);
    expect(templateOf(before)).toContain(nameBefore);
    expect(templateOf(after)).toContain(nameAfter);
    expect(templateOf(after)).not.toBe(templateOf(before)); // a new ReplicaSet: the pods roll
  });
});

describe("Spark applications", () => {
  test("finished runs are removed within an hour: the WAP template, the maintenance schedule and what the gateway's launcher creates", () => {
    const template = get(resources("deploy/k8s/base/spark-jobs/templates"), "SparkApplication", "simgate-wap-parking-entries-manual");
    const maintenance = obj(get(resources(PROD), "ScheduledSparkApplication", "simgate-maintenance")["spec"] as Json)["template"];
    const launched = sparkApplicationFor({ topic: "parking-entries", wapRunId: "wap-1", jobId: "j-1" }, { namespace: "simgate", image: "x", serviceAccount: "simgate-spark", executorInstances: 2 }) as unknown as Resource;
    for (const [what, spec] of [
      ["template", obj(template["spec"] as Json)],
      ["maintenance", obj(maintenance)],
      ["launcher", obj(launched["spec"] as Json)],
    ] as const) {
      const ttl = Number(spec["timeToLiveSeconds"]);
      expect(ttl, what).toBeGreaterThan(0);
      expect(ttl, what).toBeLessThanOrEqual(3600);
    }
    // The launcher and the template hand the driver and executors the same addresses and credentials.
    const envFrom = (spec: JsonObject): string => JSON.stringify([obj(spec["driver"])["envFrom"], obj(spec["executor"])["envFrom"]]);
    expect(envFrom(obj(launched["spec"] as Json))).toBe(envFrom(obj(template["spec"] as Json)));
  });
});

describe("Nessie GC and backup", () => {
  test("GC: a nightly CronJob running the lakehouse maintenance `gc` (spark-submit, local) from the lakehouse image, after the retention, with the Spark jobs' warehouse key and the writer's Nessie credentials", () => {
    const items = resources(PROD);
    const gc = get(items, "CronJob", "simgate-nessie-gc");
    const retention = get(items, "CronJob", "simgate-retention");
    const c = containers(gc)[0] as JsonObject;
    // The maintenance job's spark-submit entry point (as the ScheduledSparkApplication), in local mode.
    expect(c["command"]).toEqual(["/opt/spark/bin/spark-submit", "--master", "local[2]", "--driver-class-path", "/opt/simgate/jars/*", "local:///opt/simgate/lakehouse-jobs/entrypoints/maintenance.py", "gc"]);
    expect(readFileSync(join(ROOT, "deploy/k8s/images/lakehouse-jobs/entrypoints/maintenance.py"), "utf8")).toMatch(/^from simgate\.lakehouse\.maintenance import main$/m);
    expect(String(c["image"])).toBe(String(obj(obj(get(items, "ScheduledSparkApplication", "simgate-maintenance")["spec"] as Json)["template"])["image"]));
    expect(secretRefs(c).sort()).toEqual(["simgate-nessie-client", "simgate-s3-spark"]);
    const hour = (cron: Resource): number => Number(String(obj(cron["spec"] as Json)["schedule"]).split(" ")[1]);
    expect(hour(gc)).toBeGreaterThan(hour(retention)); // references dropped first, then their files go
    expect(obj(gc["spec"] as Json)["concurrencyPolicy"]).toBe("Forbid");
    // The options exist in the installed lakehouse-jobs (the maintenance command's own --help).
    const help = spawnSync(join(ROOT, ".venv", "bin", "python"), ["-m", "simgate.lakehouse.maintenance", "--help"], { encoding: "utf8", timeout: 60_000 });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/\bgc\b/);
    for (const option of (c["args"] as string[]).filter((a) => a.startsWith("--"))) expect(help.stdout, option).toContain(option);
  });

  test("backup: pg_dump of the database Nessie uses, with the server's own PostgreSQL image, to the backup bucket with the write-only key; the restore reads it with the read key into the same database", () => {
    const items = resources(PROD);
    const nessieProps = properties(String(obj(get(items, "ConfigMap", "nessie-config")["data"] as Json)["application.properties"]));
    const backup = get(items, "CronJob", "nessie-backup");
    const restore = get(resources("deploy/k8s/base/nessie/templates"), "Job", "nessie-restore");
    const [dump, upload] = containers(backup) as [JsonObject, JsonObject];
    const [download, restorer] = containers(restore) as [JsonObject, JsonObject];
    expect([dump["args"], upload["args"], download["args"], restorer["args"]]).toEqual([
      ["dump", "/backup/nessie.dump"],
      ["upload", "/backup/nessie.dump"],
      ["download", "/backup/nessie.dump"],
      ["restore", "/backup/nessie.dump"],
    ]);
    // Same database as the server (application.properties' JDBC URL and the nessie-postgres Secret).
    const postgresImage = String(containers(get(items, "StatefulSet", "nessie-postgres"))[0]?.["image"]);
    for (const tool of [dump, restorer]) {
      const env = Object.fromEntries(list(tool["env"]).map((e) => [String(e["name"]), e["value"] ?? obj(obj(e["valueFrom"])["secretKeyRef"])]));
      expect(nessieProps["nessie.version.store.type"]).toBe("JDBC2");
      expect(`jdbc:postgresql://${String(env["PGHOST"])}:${String(env["PGPORT"])}/${String(env["PGDATABASE"])}`).toBe(nessieProps["quarkus.datasource.postgresql.jdbc.url"]);
      expect(env["PGUSER"]).toEqual({ name: "nessie-postgres", key: "NESSIE_DB_USER" });
      expect(env["PGPASSWORD"]).toEqual({ name: "nessie-postgres", key: "NESSIE_DB_PASSWORD" });
      // pg_dump and pg_restore of the server's own version (pg_dump refuses a newer server).
      expect(String(tool["image"])).toBe(postgresImage);
    }
    for (const transfer of [upload, download]) {
      expect(String(transfer["image"])).toMatch(/^curlimages\/curl:/);
      expect(list(transfer["envFrom"]).map((e) => String(obj(e["configMapRef"])["name"] ?? "")).filter((n) => n !== "")).toEqual(["simgate-stack"]);
    }
    expect(secretRefs(upload)).toEqual(["simgate-s3-backup"]);
    expect(secretRefs(download)).toEqual(["simgate-s3-restore"]);
    expect(secretRefs(dump)).toEqual(["nessie-postgres", "nessie-postgres"]);
    expect(obj(get(items, "ConfigMap", "simgate-stack")["data"] as Json)["S3_BACKUP_BUCKET"]).toBe("simgate-backups");
    // The script itself (nessie-backup.sh) is exercised end to end by test/deploy/nessie-backup.test.ts.
    expect(String(obj(get(items, "ConfigMap", "nessie-backup-scripts")["data"] as Json)["nessie-backup.sh"])).toContain("pg_restore");
  });
});

describe("Kafka", () => {
  test("the Kafka version is pinned to one Strimzi 1.2.0 supports; nodes spread one per host", () => {
    const items = resources(PROD);
    const kafka = obj(obj(get(items, "Kafka", "simgate")["spec"] as Json)["kafka"]);
    expect(["4.2.0", "4.2.1", "4.3.0", "4.3.1"]).toContain(kafka["version"]);
    const pool = get(items, "KafkaNodePool", "dual-role");
    const anti = obj(obj(obj(obj(obj(pool["spec"] as Json)["template"])["pod"])["affinity"])["podAntiAffinity"]);
    const terms = list(anti["requiredDuringSchedulingIgnoredDuringExecution"]);
    expect(terms).toEqual([{ topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "strimzi.io/cluster": "simgate", "strimzi.io/pool-name": "dual-role" } } }]);
  });
});

describe("monitoring", () => {
  test("PodMonitor and ServiceMonitors scrape ports that exist: Kafka, gateway, Nessie, Trino", () => {
    const items = resources(PROD);
    const monitors = items.filter((r) => r.kind === "ServiceMonitor" || r.kind === "PodMonitor");
    expect(monitors.map((m) => `${m.kind}/${String(m.metadata["name"])}`).sort()).toEqual(["PodMonitor/simgate-kafka", "ServiceMonitor/nessie", "ServiceMonitor/simgate-gateway", "ServiceMonitor/trino"]);
    for (const m of monitors.filter((x) => x.kind === "ServiceMonitor")) {
      const selector = obj(obj(m["spec"] as Json)["selector"])["matchLabels"] as JsonObject;
      const services = items.filter((r) => r.kind === "Service" && Object.entries(selector).every(([k, v]) => obj(r.metadata["labels"])[k] === v));
      expect(services.length, String(m.metadata["name"])).toBeGreaterThan(0);
      for (const e of list(obj(m["spec"] as Json)["endpoints"])) {
        for (const s of services) {
          const ports = list(obj(s["spec"] as Json)["ports"]).map((p) => p["name"]);
          // A selected Service without the port is fine only if another selected one has it.
          if (!ports.includes(e["port"])) expect(services.some((o) => list(obj(o["spec"] as Json)["ports"]).some((p) => p["name"] === e["port"]))).toBe(true);
        }
      }
    }
    expect(list(obj(get(items, "PodMonitor", "simgate-kafka")["spec"] as Json)["podMetricsEndpoints"])[0]?.["port"]).toBe("tcp-prometheus");
    expect(obj(obj(obj(get(items, "Kafka", "simgate")["spec"] as Json)["kafka"])["metricsConfig"])["type"]).toBe("strimziMetricsReporter");
  });
});

describe("authentication and credentials", () => {
  test("Nessie: OIDC bearer authentication and reader/writer authorization on; every ${VAR} its configuration uses is in its environment", () => {
    const items = resources(PROD);
    const text = String(obj(get(items, "ConfigMap", "nessie-config")["data"] as Json)["application.properties"]);
    const props = properties(text);
    expect(props).toMatchObject({ "nessie.server.authentication.enabled": "true", "nessie.server.authorization.enabled": "true", "quarkus.oidc.auth-server-url": "${NESSIE_OIDC_ISSUER}" });
    // Two replicas keep their caches coherent through the headless Service of the management port.
    expect(Number(obj(get(items, "Deployment", "nessie")["spec"] as Json)["replicas"])).toBeGreaterThan(1);
    expect(props["nessie.version.store.persist.cache-invalidations.service-names"]).toBe("nessie-mgmt.simgate.svc");
    expect(obj(get(items, "Service", "nessie-mgmt")["spec"] as Json)).toMatchObject({ clusterIP: "None", ports: [{ name: "management", port: 9000, targetPort: "management" }] });
    expect(props["nessie.server.authorization.rules.reader"]).toMatch(/^role=='\$\{NESSIE_READER_PRINCIPAL\}' && op in \[/);
    expect(props["nessie.server.authorization.rules.reader"]).not.toMatch(/'(COMMIT_CHANGE_AGAINST_REFERENCE|(DELETE|CREATE|ASSIGN|UPDATE)_[A-Z_]+)'/);
    const nessie = containers(get(items, "Deployment", "nessie"))[0] as JsonObject;
    const stack = Object.keys(obj(get(items, "ConfigMap", "simgate-stack")["data"] as Json));
    const secretKeys: Record<string, string[]> = {
      "simgate-s3-nessie": ["S3_ACCESS_KEY", "S3_SECRET_KEY"],
      "nessie-postgres": ["NESSIE_DB_USER", "NESSIE_DB_PASSWORD"],
      "nessie-oidc": ["NESSIE_OIDC_ISSUER", "NESSIE_OIDC_CLIENT_ID", "NESSIE_WRITER_PRINCIPAL", "NESSIE_READER_PRINCIPAL"],
      "nessie-internal": ["NESSIE_CACHE_INVALIDATION_TOKEN"],
    };
    const available = new Set([...stack, ...list(nessie["env"]).map((e) => String(e["name"])), ...list(nessie["envFrom"]).flatMap((e) => secretKeys[String(obj(e["secretRef"])["name"])] ?? [])]);
    const used = Object.values(props).flatMap((v) => [...v.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1] as string));
    expect(used.length).toBeGreaterThan(8);
    for (const v of used) expect(available, v).toContain(v);
    // The dev secrets hold exactly those keys.
    const dev = resources("deploy/k8s/overlays/dev");
    for (const [name, keys] of Object.entries(secretKeys)) expect(Object.keys(obj(get(dev, "Secret", name)["stringData"] as Json)).sort()).toEqual([...keys].sort());
  });

  test("Trino: clients on HTTPS with a password file, internal traffic with a shared secret; files where the volumes put them", () => {
    const items = resources(PROD);
    const coordinator = get(items, "Deployment", "trino-coordinator");
    const cfg = properties(String(obj(get(items, "ConfigMap", "trino-coordinator")["data"] as Json)["config.properties"]));
    const auth = properties(String(obj(get(items, "ConfigMap", "trino-coordinator")["data"] as Json)["password-authenticator.properties"]));
    expect(cfg).toMatchObject({ "http-server.https.enabled": "true", "http-server.https.port": "8443", "http-server.authentication.type": "PASSWORD", "internal-communication.shared-secret": "${ENV:TRINO_SHARED_SECRET}" });
    expect(auth).toMatchObject({ "password-authenticator.name": "file" });
    const mounts = list((containers(coordinator)[0] as JsonObject)["volumeMounts"]);
    const volumes = list(podSpecOf(coordinator)["volumes"]);
    const secretAt = (path: string): string => {
      const m = mounts.find((x) => path.startsWith(`${String(x["mountPath"])}/`));
      const v = volumes.find((x) => x["name"] === m?.["name"]);
      return `${String(obj(v?.["secret"])["secretName"])}/${path.slice(String(m?.["mountPath"]).length + 1)}`;
    };
    expect(secretAt(String(cfg["http-server.https.keystore.path"]))).toBe("trino-tls/tls-combined.pem");
    expect(secretAt(String(auth["file.password-file"]))).toBe("trino-users/password.db");
    for (const name of ["trino-coordinator", "trino-worker"]) {
      const env = list((containers(get(items, "Deployment", name))[0] as JsonObject)["env"]);
      expect(env.find((e) => e["name"] === "TRINO_SHARED_SECRET")).toBeDefined();
    }
    const worker = properties(String(obj(get(items, "ConfigMap", "trino-worker")["data"] as Json)["config.properties"]));
    expect(worker["internal-communication.shared-secret"]).toBe("${ENV:TRINO_SHARED_SECRET}");
    // The catalog authenticates to Nessie as the reader.
    const catalog = properties(String(obj(get(items, "ConfigMap", "trino-catalog")["data"] as Json)["iceberg.properties"]));
    expect(catalog).toMatchObject({ "iceberg.nessie-catalog.authentication.type": "BEARER", "iceberg.security": "READ_ONLY" });
  });

  test("one S3 key per role: gateway (blobs), Spark jobs (warehouse), Trino (read-only), Nessie, backup; no workload holds two, no key serves two roles", () => {
    const items = [...resources(PROD), ...resources("deploy/k8s/base/spark-jobs/templates")];
    const byWorkload: Record<string, string[]> = {};
    for (const r of items) {
      const s3 = (r.kind === "SparkApplication" || r.kind === "ScheduledSparkApplication"
        ? ["driver", "executor"].flatMap((role) => secretRefs(obj((r.kind === "SparkApplication" ? obj(r["spec"] as Json) : obj(obj(r["spec"] as Json)["template"]))[role])))
        : containers(r).flatMap(secretRefs)
      ).filter((n) => n.startsWith("simgate-s3"));
      if (s3.length > 0) byWorkload[`${r.kind}/${String(r.metadata["name"])}`] = [...new Set(s3)].sort();
    }
    expect(byWorkload).toEqual({
      "Deployment/simgate-gateway": ["simgate-s3-gateway"],
      "ScheduledSparkApplication/simgate-maintenance": ["simgate-s3-spark"],
      "SparkApplication/simgate-wap-parking-entries-manual": ["simgate-s3-spark"],
      "CronJob/simgate-nessie-gc": ["simgate-s3-spark"],
      "Deployment/nessie": ["simgate-s3-nessie"],
      "Deployment/trino-coordinator": ["simgate-s3-trino"],
      "Deployment/trino-worker": ["simgate-s3-trino"],
      "CronJob/nessie-backup": ["simgate-s3-backup"],
    });
  });

  test("Superset: metadata in PostgreSQL, caches in Redis, reached through an Ingress; no volume of its own", () => {
    const items = resources(PROD);
    const config = String(obj(get(items, "ConfigMap", "superset-config")["data"] as Json)["superset_config.py"]);
    expect(config).toContain('SQLALCHEMY_DATABASE_URI = os.environ["SUPERSET_DATABASE_URI"]');
    expect(config).toContain('"CACHE_TYPE": "RedisCache"');
    expect(config).toContain("redis://superset-redis.simgate.svc:6379");
    // It is valid Python, and with the database URI set it defines what Superset reads.
    const run = spawnSync(join(ROOT, ".venv", "bin", "python"), ["-c", "import runpy, sys; c = runpy.run_path(sys.argv[1]); print(c['CACHE_CONFIG']['CACHE_TYPE'], c['SQLALCHEMY_DATABASE_URI'])", join(ROOT, "deploy/k8s/base/superset/superset_config.py")], {
      encoding: "utf8",
      env: { ...process.env, SUPERSET_DATABASE_URI: "postgresql+psycopg2://u:p@superset-postgres.simgate.svc:5432/superset" },
    });
    expect(run.stderr).toBe("");
    expect(run.stdout.trim()).toBe("RedisCache postgresql+psycopg2://u:p@superset-postgres.simgate.svc:5432/superset");
    expect(get(items, "Service", "superset-redis")).toBeDefined();
    expect(get(items, "StatefulSet", "superset-postgres")).toBeDefined();
    const devUri = String(obj(get(resources("deploy/k8s/overlays/dev"), "Secret", "simgate-superset")["stringData"] as Json)["database-uri"]);
    expect(devUri).toMatch(/^postgresql\+psycopg2:\/\/[^@]+@superset-postgres\.simgate\.svc:5432\/superset$/);
    const ingress = get(items, "Ingress", "superset");
    const rule = list(obj(ingress["spec"] as Json)["rules"])[0] as JsonObject;
    const path = list(obj(rule["http"])["paths"])[0] as JsonObject;
    const backend = obj(obj(path["backend"])["service"]);
    expect(backend).toEqual({ name: "superset", port: { name: "http" } });
    expect(list(obj(get(items, "Service", "superset")["spec"] as Json)["ports"]).map((p) => p["name"])).toContain("http");
    expect(list(podSpecOf(get(items, "Deployment", "superset"))["volumes"]).filter((v) => v["persistentVolumeClaim"] !== undefined)).toEqual([]);
  });

  test("Superset reaches Trino over HTTPS as a user of Trino's password file, through the port its NetworkPolicy opens", () => {
    const items = resources(PROD);
    const dev = resources("deploy/k8s/overlays/dev");
    const init = list(podSpecOf(get(items, "Deployment", "superset"))["initContainers"])[0] as JsonObject;
    const env = list(init["env"]).find((e) => e["name"] === "SIMGATE_TRINO_SQLALCHEMY_URI");
    expect(obj(obj(env?.["valueFrom"])["secretKeyRef"])).toEqual({ name: "simgate-superset", key: "trino-uri" });
    const uri = new URL(String(obj(get(dev, "Secret", "simgate-superset")["stringData"] as Json)["trino-uri"]).replace(/^trino:/, "https:"));
    // Port 443: the Trino Python client switches to HTTPS by itself only there (trino.dbapi).
    expect(uri.hostname).toBe("trino.simgate.svc");
    expect(uri.port).toBe(""); // URL drops the scheme's default port: 443
    expect(JSON.parse(decodeURIComponent(uri.searchParams.get("verify") ?? "null"))).toBe("/etc/superset-trino-ca/ca.crt");
    const service = list(obj(get(items, "Service", "trino")["spec"] as Json)["ports"]).find((p) => p["port"] === 443);
    expect(service).toMatchObject({ name: "https", targetPort: "https" });
    const coordinatorPort = list((containers(get(items, "Deployment", "trino-coordinator"))[0] as JsonObject)["ports"]).find((p) => p["name"] === "https");
    expect(coordinatorPort?.["containerPort"]).toBe(8443);
    const users = String(obj(get(dev, "Secret", "trino-users")["stringData"] as Json)["password.db"]);
    expect(users.split("\n").map((l) => l.split(":")[0])).toContain(decodeURIComponent(uri.username));
    expect(users).toMatch(/^superset:\$2y\$10\$/m);
  });
});

describe("Argo CD", () => {
  const bootstrap = resources("deploy/argocd");
  const apps = resources("deploy/argocd/apps");
  const project = (name: string): JsonObject => obj(get(bootstrap, "AppProject", name)["spec"] as Json);
  const allowed = (p: JsonObject, r: Resource, clusterScoped: boolean): boolean => {
    const group = r.apiVersion.includes("/") ? r.apiVersion.split("/")[0] : "";
    return list(p[clusterScoped ? "clusterResourceWhitelist" : "namespaceResourceWhitelist"]).some((w) => w["group"] === group && w["kind"] === r.kind);
  };

  test("every platform Application is in project simgate, and the project allows every kind it renders, its repository and its destination", () => {
    const p = project("simgate");
    const platform = apps.filter((a) => obj(a["spec"] as Json)["project"] === "simgate");
    expect(platform).toHaveLength(7);
    for (const app of platform) {
      const spec = obj(app["spec"] as Json);
      const source = obj(spec["source"]);
      expect((p["sourceRepos"] as string[]).includes(String(source["repoURL"]))).toBe(true);
      expect(list(p["destinations"]).some((d) => d["namespace"] === obj(spec["destination"])["namespace"] && d["server"] === obj(spec["destination"])["server"])).toBe(true);
      for (const r of resources(String(source["path"]))) {
        const clusterScoped = r.metadata["namespace"] === undefined;
        expect(allowed(p, r, clusterScoped), `${String(app.metadata["name"])}: ${r.kind} ${String(r.metadata["name"])}`).toBe(true);
        if (!clusterScoped) expect(r.metadata["namespace"]).toBe("simgate");
      }
    }
    // Nothing else cluster-wide than what is listed (no CRDs, no ClusterRoles).
    expect(list(p["clusterResourceWhitelist"]).map((w) => w["kind"])).not.toContain("CustomResourceDefinition");
    expect(list(p["clusterResourceWhitelist"]).map((w) => w["kind"])).not.toContain("ClusterRole");
    // The root app only creates Applications in argocd.
    expect(obj(get(bootstrap, "Application", "simgate")["spec"] as Json)["project"]).toBe("simgate-bootstrap");
    expect(list(project("simgate-bootstrap")["namespaceResourceWhitelist"])).toEqual([{ group: "argoproj.io", kind: "Application" }]);
  });

  test("the operators are Applications of the first wave, from pinned charts, server-side applied", () => {
    const wave = (a: Resource): number => Number(obj(a.metadata["annotations"])["argocd.argoproj.io/sync-wave"] ?? 0);
    const operators = apps.filter((a) => obj(a["spec"] as Json)["project"] === "simgate-operators");
    const others = apps.filter((a) => obj(a["spec"] as Json)["project"] !== "simgate-operators");
    expect(operators.map((a) => obj(obj(a["spec"] as Json)["source"])["chart"]).sort()).toEqual(["spark-operator", "strimzi-kafka-operator"]);
    for (const op of operators) {
      const spec = obj(op["spec"] as Json);
      expect(wave(op)).toBeLessThan(Math.min(...others.map(wave)));
      expect(String(obj(spec["source"])["targetRevision"])).toMatch(/^\d+\.\d+\.\d+$/);
      expect(obj(spec["syncPolicy"])["syncOptions"]).toContain("ServerSideApply=true");
      expect((project("simgate-operators")["sourceRepos"] as string[]).includes(String(obj(spec["source"])["repoURL"]))).toBe(true);
    }
    for (const app of others) expect(obj(obj(app["spec"] as Json)["syncPolicy"])["syncOptions"], String(app.metadata["name"])).toContain("ServerSideApply=true");
  });

  test("prod follows the release branch, never main; the README says how a release is promoted", () => {
    const revisions = [get(bootstrap, "Application", "simgate"), ...apps.filter((a) => obj(a["spec"] as Json)["project"] === "simgate")].map((a) => obj(obj(a["spec"] as Json)["source"])["targetRevision"]);
    expect(new Set(revisions)).toEqual(new Set(["release/prod"]));
    const readme = readFileSync(join(ROOT, "deploy", "README.md"), "utf8");
    expect(readme).toMatch(/### Promotion/);
    expect(readme).toContain("release/prod");
  });
});
