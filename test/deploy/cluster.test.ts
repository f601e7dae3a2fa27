// deploy/ against a real Kubernetes API server (test/support/kube-apiserver.ts: etcd and kube-apiserver
// built by deploy/local/k8s-tools; no controllers and no kubelet, so pods stay Pending):
//   - the operators' CRDs (SIMGATE_CRDS_DIR, else ../shared/crds) install with server-side apply;
//   - every rendered overlay applies with server-side apply and strict field validation, in Argo CD's
//     sync order (Application sync waves, then each object's wave, then kind, then name);
//   - each service account can do what its Role grants and nothing else (`kubectl auth can-i`);
//   - the ValidatingAdmissionPolicy refuses, on its own, SparkApplications with another image, service
//     account or entry point, and the ResourceQuota caps how many exist;
//   - the operators' own Applications (Helm charts) are not rendered: their CRDs stand in for them;
//   - the gateway's Kubernetes launcher creates a SparkApplication as the gateway's service account and
//     follows the status the test writes as the Spark operator would;
//   - the gateway's leader Lease: of two candidates exactly one leads, and the other takes over when
//     the holder stops renewing;
//   - the kubectl steps of deploy/README.md's "Restore Nessie" run as written (the restore itself:
//     test/deploy/nessie-backup.test.ts).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { dump, loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { KubernetesClient } from "../../gateway/src/jobs/kubernetes-client.js";
import { KubernetesLauncher } from "../../gateway/src/jobs/kubernetes-launcher.js";
import { LeaderLease } from "../../gateway/src/jobs/leader-lease.js";
import { sparkApplicationFor } from "../../gateway/src/jobs/spark-application.js";
import { locateCrdsDir } from "../support/crd-schema.js";
import { startKubeCluster, type KubeCluster } from "../support/kube-apiserver.js";
import { kubectlPath } from "../support/kube-tools.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const NAMESPACE = "simgate";
type Obj = { apiVersion: string; kind: string; metadata: { name?: string; namespace?: string; annotations?: Record<string, string> }; [key: string]: unknown };

function kustomize(dir: string): Obj[] {
  const run = spawnSync(kubectlPath(), ["kustomize", join(ROOT, dir)], { encoding: "utf8", timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${run.stderr}`);
  return loadAll(run.stdout).filter((d): d is Obj => typeof d === "object" && d !== null);
}

// Argo CD's order inside one sync wave (gitops-engine's kind order; other kinds after, by kind name).
const KIND_ORDER = [
  "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret",
  "SecretList", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
  "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
  "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
  "IngressClass", "Ingress", "APIService",
];

function wave(o: Obj): number {
  return Number(o.metadata.annotations?.["argocd.argoproj.io/sync-wave"] ?? 0);
}

function kindRank(kind: string): [number, string] {
  const i = KIND_ORDER.indexOf(kind);
  return i >= 0 ? [i, ""] : [KIND_ORDER.length, kind];
}

/** The objects of one Application in sync order, grouped by wave. */
export function syncWaves(objects: readonly Obj[]): Obj[][] {
  const sorted = [...objects].sort((a, b) => {
    const [ka, na] = kindRank(a.kind);
    const [kb, nb] = kindRank(b.kind);
    return wave(a) - wave(b) || ka - kb || na.localeCompare(nb) || String(a.metadata.name).localeCompare(String(b.metadata.name));
  });
  const waves: Obj[][] = [];
  for (const o of sorted) {
    const last = waves[waves.length - 1];
    if (last && wave(last[0] as Obj) === wave(o)) last.push(o);
    else waves.push([o]);
  }
  return waves;
}

function apply(cluster: KubeCluster, objects: readonly Obj[], fieldManager: string): void {
  const input = objects.map((o) => dump(o, { noRefs: true, lineWidth: -1 })).join("---\n");
  // --validate=strict: the API server refuses unknown or duplicated fields instead of dropping them.
  cluster.kubectl(["apply", "--server-side", "--validate=strict", `--field-manager=${fieldManager}`, "-f", "-"], { input });
}

function ensureNamespace(cluster: KubeCluster, name: string): void {
  if (cluster.kubectl(["get", "namespace", name], { allowFailure: true }).status !== 0) cluster.kubectl(["create", "namespace", name]);
}

/** The operators' CRDs: ../shared/crds, and $SIMGATE_CACHE/crds (what setup adds beside them) when present. */
function installCrds(cluster: KubeCluster): void {
  const extra = join(process.env["SIMGATE_CACHE"] || join(homedir(), ".cache", "simgate"), "crds");
  for (const dir of [locateCrdsDir(), ...(existsSync(extra) ? [extra] : [])]) {
    cluster.kubectl(["apply", "--server-side", "--validate=strict", "--field-manager=operators", "-f", dir]);
  }
}

/** Every CRD served (condition Established), polled: `kubectl wait` gives up on a CRD whose status has no
 *  conditions yet. */
async function crdsEstablished(cluster: KubeCluster): Promise<void> {
  await until("the CRDs to be established", () => {
    const crds = JSON.parse(cluster.kubectl(["get", "crd", "-o", "json"]).stdout) as { items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }> };
    return crds.items.length > 0 && crds.items.every((c) => c.status?.conditions?.some((k) => k.type === "Established" && k.status === "True")) ? true : undefined;
  }, 60_000);
}

/** Every object exists on the server afterwards, by kind, namespace and name. */
function missing(cluster: KubeCluster, objects: readonly Obj[]): string[] {
  const input = objects.map((o) => dump({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) } })).join("---\n");
  const run = cluster.kubectl(["get", "-f", "-", "-o", "name", "--ignore-not-found"], { input, allowFailure: true });
  const found = run.stdout.trim().split("\n").filter(Boolean).length;
  return found === objects.length ? [] : [`${objects.length - found} of ${objects.length} objects missing: ${run.stderr}`];
}

const SA = (name: string): string => `system:serviceaccount:${NAMESPACE}:${name}`;

/** `resource` is TYPE or TYPE/NAME, as kubectl takes it; TYPE#SUB asks about a subresource (pods#exec). */
function canI(cluster: KubeCluster, as: string, verb: string, resource: string, namespace = NAMESPACE): boolean {
  const [type, sub] = resource.split("#") as [string, string | undefined];
  const run = cluster.kubectl(["auth", "can-i", verb, type, ...(sub ? [`--subresource=${sub}`] : []), "-n", namespace, `--as=${as}`], { allowFailure: true });
  if (run.status !== 0 && run.status !== 1) throw new Error(`kubectl auth can-i failed: ${run.stderr}`);
  return run.stdout.trim() === "yes";
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("overlays/dev on a real API server", { timeout: 300_000 }, () => {
  let cluster: KubeCluster;
  beforeAll(async () => {
    cluster = await startKubeCluster();
    installCrds(cluster);
    await crdsEstablished(cluster);
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  test("applies with server-side apply, strict field validation, in sync-wave order", () => {
    const objects = kustomize("deploy/k8s/overlays/dev");
    for (const w of syncWaves(objects)) apply(cluster, w, "simgate-dev");
    expect(missing(cluster, objects)).toEqual([]);
  });

  test("the API server refuses a misspelled field in a Deployment and a CronJob (strict field validation)", () => {
    const objects = kustomize("deploy/k8s/overlays/dev");
    const deployment = structuredClone(objects.find((o) => o.kind === "Deployment" && o.metadata.name === "simgate-gateway")) as Obj & { spec: { template: { spec: Record<string, unknown> } } };
    deployment.spec.template.spec["toleration"] = [];
    const cronJob = structuredClone(objects.find((o) => o.kind === "CronJob")) as Obj & { spec: { jobTemplate: { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } } } };
    (cronJob.spec.jobTemplate.spec.template.spec.containers[0] as Record<string, unknown>)["readinessprobe"] = { exec: { command: ["true"] } };
    for (const [o, field] of [[deployment, "toleration"], [cronJob, "readinessprobe"]] as const) {
      const run = cluster.kubectl(["apply", "--server-side", "--validate=strict", "--dry-run=server", "--field-manager=simgate-dev", "-f", "-"], { input: dump(o), allowFailure: true });
      expect(run.status, `${o.kind} with ${field}`).not.toBe(0);
      expect(run.stderr).toMatch(new RegExp(`\\.${field}: field not declared in schema`));
    }
  });
});

describe("overlays/prod on a real API server, as Argo CD syncs it", { timeout: 300_000 }, () => {
  let cluster: KubeCluster;
  let applied: Obj[] = [];
  const policy = { image: "", serviceAccount: "", entryPoints: [] as string[] };

  beforeAll(async () => {
    cluster = await startKubeCluster();
    console.log(`kube-apiserver ready in ${cluster.startSeconds.toFixed(1)} s`);
    installCrds(cluster);
    await crdsEstablished(cluster);
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  test("the Argo CD Applications and each one's objects apply in sync-wave order", () => {
    ensureNamespace(cluster, "argocd");
    // The bootstrap (projects and the root app, `kubectl apply -k deploy/argocd`, or root.yaml alone),
    // then the child Applications the root app syncs.
    const bootstrap = existsSync(join(ROOT, "deploy/argocd/kustomization.yaml"))
      ? kustomize("deploy/argocd")
      : (loadAll(readFileSync(join(ROOT, "deploy/argocd/root.yaml"), "utf8")) as Obj[]);
    for (const w of syncWaves(bootstrap)) apply(cluster, w, "argocd");
    const apps = kustomize("deploy/argocd/apps");
    for (const w of syncWaves(apps)) apply(cluster, w, "argocd");
    expect(missing(cluster, [...bootstrap, ...apps])).toEqual([]);
    const ours = apps.filter((a) => {
      const path = (a["spec"] as { source?: { path?: string } }).source?.path;
      return path !== undefined && existsSync(join(ROOT, path));
    });
    expect(ours.length).toBeGreaterThan(0);
    for (const app of [...ours].sort((a, b) => wave(a) - wave(b))) {
      const spec = app["spec"] as { source: { path: string }; destination: { namespace: string }; syncPolicy?: { syncOptions?: string[] } };
      if (spec.syncPolicy?.syncOptions?.includes("CreateNamespace=true")) ensureNamespace(cluster, spec.destination.namespace);
      const objects = kustomize(spec.source.path);
      for (const w of syncWaves(objects)) apply(cluster, w, "argocd-controller");
      expect(missing(cluster, objects), spec.source.path).toEqual([]);
      applied.push(...objects);
    }
    syncQuotas();
    const params = applied.find((o) => o.kind === "ConfigMap" && o.metadata.name === "simgate-spark-jobs-policy");
    expect(params, "ConfigMap simgate-spark-jobs-policy").toBeDefined();
    const data = params?.["data"] as Record<string, string>;
    policy.image = data["image"] as string;
    policy.serviceAccount = data["serviceAccount"] as string;
    policy.entryPoints = (data["entryPoints"] as string).split(" ");
  });

  test("kubectl auth can-i: each service account has exactly the rights it needs", () => {
    expect(applied.length).toBeGreaterThan(0);
    const table: Array<[string, string, string, boolean]> = [
      // The gateway: SparkApplications (create, get, delete), its Lease, nothing else.
      ["simgate-gateway", "create", "sparkapplications.sparkoperator.k8s.io", true],
      ["simgate-gateway", "get", "sparkapplications.sparkoperator.k8s.io", true],
      ["simgate-gateway", "delete", "sparkapplications.sparkoperator.k8s.io", true],
      ["simgate-gateway", "list", "sparkapplications.sparkoperator.k8s.io", false],
      ["simgate-gateway", "update", "sparkapplications.sparkoperator.k8s.io", false],
      ["simgate-gateway", "patch", "sparkapplications.sparkoperator.k8s.io", false],
      ["simgate-gateway", "update", "sparkapplications.sparkoperator.k8s.io#status", false],
      ["simgate-gateway", "get", "pods#log", false],
      ["simgate-gateway", "create", "scheduledsparkapplications.sparkoperator.k8s.io", false],
      ["simgate-gateway", "create", "leases.coordination.k8s.io", true],
      ["simgate-gateway", "get", "leases.coordination.k8s.io/simgate-gateway-jobs", true],
      ["simgate-gateway", "update", "leases.coordination.k8s.io/simgate-gateway-jobs", true],
      ["simgate-gateway", "get", "leases.coordination.k8s.io/another-lease", false],
      ["simgate-gateway", "update", "leases.coordination.k8s.io/another-lease", false],
      ["simgate-gateway", "delete", "leases.coordination.k8s.io/simgate-gateway-jobs", false],
      ["simgate-gateway", "create", "pods", false],
      ["simgate-gateway", "get", "secrets", false],
      ["simgate-gateway", "list", "configmaps", false],
      ["simgate-gateway", "create", "deployments.apps", false],
      ["simgate-gateway", "create", "rolebindings.rbac.authorization.k8s.io", false],
      // The Spark driver: its executor pods, their services and config maps; no secrets, no jobs.
      ["simgate-spark", "create", "pods", true],
      ["simgate-spark", "delete", "pods", true],
      ["simgate-spark", "watch", "pods", true],
      ["simgate-spark", "create", "services", true],
      ["simgate-spark", "create", "configmaps", true],
      ["simgate-spark", "get", "secrets", false],
      ["simgate-spark", "create", "sparkapplications.sparkoperator.k8s.io", false],
      ["simgate-spark", "create", "deployments.apps", false],
      ["simgate-spark", "update", "leases.coordination.k8s.io/simgate-gateway-jobs", false],
      ["simgate-spark", "create", "pods#exec", false],
      ["simgate-spark", "get", "pods#log", false],
    ];
    const wrong: string[] = [];
    for (const [sa, verb, resource, expected] of table) {
      if (canI(cluster, SA(sa), verb, resource) !== expected) wrong.push(`${sa} ${verb} ${resource}: expected ${expected ? "yes" : "no"}`);
    }
    // Nothing in another namespace, for either.
    for (const sa of ["simgate-gateway", "simgate-spark"]) {
      for (const [verb, resource] of [["create", "sparkapplications.sparkoperator.k8s.io"], ["create", "pods"], ["get", "secrets"]] as const) {
        if (canI(cluster, SA(sa), verb, resource, "default")) wrong.push(`${sa} ${verb} ${resource} in namespace default: expected no`);
      }
    }
    // Every other service account of the render: no API rights at all in the namespace.
    const others = applied.filter((o) => o.kind === "ServiceAccount" && !["simgate-gateway", "simgate-spark"].includes(String(o.metadata.name)));
    for (const o of [...others, { metadata: { name: "default" } } as Obj]) {
      for (const [verb, resource] of [["get", "secrets"], ["list", "configmaps"], ["create", "pods"], ["create", "sparkapplications.sparkoperator.k8s.io"], ["get", "leases.coordination.k8s.io"]] as const) {
        if (canI(cluster, SA(String(o.metadata.name)), verb, resource)) wrong.push(`${String(o.metadata.name)} ${verb} ${resource}: expected no`);
      }
    }
    expect(wrong).toEqual([]);
  });

  /** What kube-controller-manager's quota controller does (there is none here): write each
   *  ResourceQuota's limits and current usage into its status. Until then the API server refuses what a
   *  quota covers ("status unknown for quota"); after, its admission counts every create itself. */
  function syncQuotas(): number {
    const quotas = JSON.parse(cluster.kubectl(["get", "resourcequotas", "-n", NAMESPACE, "-o", "json"]).stdout) as { items: Array<{ metadata: { name: string }; spec: { hard: Record<string, string> } }> };
    for (const q of quotas.items) {
      const used: Record<string, string> = {};
      for (const key of Object.keys(q.spec.hard)) {
        const resource = /^count\/(.+)$/.exec(key)?.[1];
        if (resource === undefined) throw new Error(`ResourceQuota ${q.metadata.name}: the test counts only count/<resource> quotas, not ${key}`);
        used[key] = String(cluster.kubectl(["get", resource, "-n", NAMESPACE, "-o", "name"]).stdout.trim().split("\n").filter(Boolean).length);
      }
      cluster.kubectl(["patch", "resourcequota", q.metadata.name, "-n", NAMESPACE, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { hard: q.spec.hard, used } })]);
    }
    return quotas.items.length;
  }

  function wapApplication(overrides: (spec: Record<string, any>) => void = () => undefined): Record<string, any> {
    const app = sparkApplicationFor(
      { topic: "parking-entries", wapRunId: `wap-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, jobId: "test" },
      { namespace: NAMESPACE, image: policy.image, serviceAccount: policy.serviceAccount, executorInstances: 1 },
    ) as Record<string, any>;
    overrides(app["spec"]);
    return app;
  }

  function createAs(sa: string, app: Record<string, unknown>, dryRun = true): { ok: boolean; stderr: string } {
    const args = ["create", "-f", "-", `--as=${SA(sa)}`, ...(dryRun ? ["--dry-run=server"] : [])];
    const run = cluster.kubectl(args, { input: JSON.stringify(app), allowFailure: true });
    return { ok: run.status === 0, stderr: run.stderr.trim() };
  }

  function expectCreated(sa: string, app: Record<string, unknown>, dryRun = true): void {
    const result = createAs(sa, app, dryRun);
    expect(result.ok, result.stderr).toBe(true);
  }

  test("the ValidatingAdmissionPolicy admits the gateway's own SparkApplication and refuses any other image, service account or entry point", () => {
    expect(policy.image).not.toBe("");
    expectCreated("simgate-gateway", wapApplication());
    const refusals: Array<[string, (spec: Record<string, any>) => void, RegExp]> = [
      ["another image", (s) => (s["image"] = "docker.io/library/busybox:1.36"), /only the image .* may run here/],
      ["another driver image", (s) => (s["driver"]["image"] = "docker.io/library/busybox:1.36"), /only the image/],
      ["another executor image", (s) => (s["executor"]["image"] = "docker.io/library/busybox:1.36"), /only the image/],
      ["another service account", (s) => (s["driver"]["serviceAccount"] = "simgate-gateway"), /must run as service account simgate-spark/],
      ["another executor service account", (s) => (s["executor"]["serviceAccount"] = "default"), /must run as service account/],
      ["another entry point", (s) => (s["mainApplicationFile"] = "local:///tmp/evil.py"), /main application file must be one of/],
      ["a Scala main class", (s) => ((s["type"] = "Scala"), (s["mainClass"] = "org.example.Main")), /main application file must be one of/],
      ["extra jars", (s) => (s["deps"] = { jars: ["https://example.com/evil.jar"] }), /deps, volumes/],
      ["a sidecar", (s) => (s["driver"]["sidecars"] = [{ name: "x", image: "docker.io/library/busybox:1.36" }]), /may not be reshaped/],
      ["host network", (s) => (s["executor"]["hostNetwork"] = true), /may not be reshaped/],
      ["another Secret", (s) => s["driver"]["envFrom"].push({ secretRef: { name: "simgate-gateway-auth" } }), /only these Secrets may be read/],
      ["a pod template in sparkConf", (s) => (s["sparkConf"]["spark.kubernetes.driver.podTemplateFile"] = "/tmp/pod.yaml"), /sparkConf may hold/],
    ];
    const wrong: string[] = [];
    for (const [what, change, message] of refusals) {
      const result = createAs("simgate-gateway", wapApplication(change));
      if (result.ok) wrong.push(`${what}: admitted`);
      else if (!/ValidatingAdmissionPolicy 'simgate-spark-jobs'/.test(result.stderr) || !message.test(result.stderr)) wrong.push(`${what}: refused with ${result.stderr.trim()}`);
    }
    expect(wrong).toEqual([]);
    // What the deployment itself starts passes: the nightly maintenance, as the operator creates it from
    // the ScheduledSparkApplication's template, and the gateway's launcher with its deployed `jobs` section.
    const scheduled = applied.find((o) => o.kind === "ScheduledSparkApplication");
    expect(scheduled, "a ScheduledSparkApplication").toBeDefined();
    const fromSchedule = { apiVersion: "sparkoperator.k8s.io/v1beta2", kind: "SparkApplication", metadata: { name: "maintenance-run", namespace: NAMESPACE }, spec: (scheduled?.["spec"] as { template: unknown }).template };
    const operatorRun = cluster.kubectl(["create", "--dry-run=server", "-f", "-"], { input: JSON.stringify(fromSchedule), allowFailure: true });
    expect(operatorRun.status, operatorRun.stderr).toBe(0);
    const gatewayConfig = applied.find((o) => o.kind === "ConfigMap" && typeof (o["data"] as Record<string, string> | undefined)?.["gateway.json"] === "string");
    const jobs = (JSON.parse((gatewayConfig?.["data"] as Record<string, string>)["gateway.json"] as string) as { jobs?: { kubernetes?: { image?: string; serviceAccount?: string } } }).jobs ?? {};
    expect(jobs, "the gateway's jobs section").toHaveProperty("kubernetes");
    // The launcher's image: SIMGATE_JOBS_K8S_IMAGE of the gateway's Deployment (set by components/images), else the jobs section.
    const gatewayDeployment = applied.find((o) => o.kind === "Deployment" && (o["metadata"] as { name?: string }).name === "simgate-gateway") as { spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } } } | undefined;
    const envImage = gatewayDeployment?.spec.template.spec.containers[0]?.env?.find((e) => e.name === "SIMGATE_JOBS_K8S_IMAGE")?.value;
    expect(envImage ?? jobs.kubernetes?.image, "the launcher's image is the policy's image").toBe(policy.image);
    expect(jobs.kubernetes?.serviceAccount ?? "simgate-spark").toBe(policy.serviceAccount);
    // The policy binds everyone, an administrator included.
    const admin = cluster.kubectl(["create", "--dry-run=server", "-f", "-"], { input: JSON.stringify(wapApplication((s) => (s["image"] = "docker.io/library/busybox:1.36"))), allowFailure: true });
    expect(admin.status).not.toBe(0);
    expect(admin.stderr).toMatch(/only the image/);
  });

  test("the gateway's Kubernetes launcher creates a SparkApplication as the gateway and follows the status the operator writes", async () => {
    const tokenFile = cluster.serviceAccountTokenFile(NAMESPACE, "simgate-gateway");
    const launcher = new KubernetesLauncher({ apiUrl: cluster.server, namespace: NAMESPACE, tokenFile, caFile: cluster.caFile, image: policy.image, serviceAccount: policy.serviceAccount, executorInstances: 2, pollMs: 100 });
    const outcome = launcher.launch({ id: "job-1", topic: "parking-entries", attempt: 1, reason: "manual" }, new AbortController().signal);
    const name = await until("the SparkApplication", () => {
      const run = cluster.kubectl(["get", "sparkapplications", "-n", NAMESPACE, "-l", "simgate.io/topic=parking-entries", "-o", "jsonpath={.items[*].metadata.name}"]);
      return run.stdout.trim() || undefined;
    });
    const got = JSON.parse(cluster.kubectl(["get", "sparkapplication", name, "-n", NAMESPACE, "-o", "json"]).stdout) as { spec: Record<string, any>; metadata: { managedFields: Array<{ manager: string }> } };
    expect(got.spec["image"]).toBe(policy.image);
    expect(got.spec["driver"]["serviceAccount"]).toBe("simgate-spark");
    // What the operator does: the status subresource, SUBMITTED -> RUNNING -> COMPLETED.
    for (const state of ["SUBMITTED", "RUNNING", "COMPLETED"]) {
      const status = { applicationState: { state }, driverInfo: { podName: `${name}-driver` }, submissionAttempts: 1 };
      cluster.kubectl(["patch", "sparkapplication", name, "-n", NAMESPACE, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);
      await new Promise((r) => setTimeout(r, 300));
    }
    await expect(outcome).resolves.toMatchObject({ ok: true, status: "completed", result: { application: name, state: "COMPLETED" } });
    // A completed run's SparkApplication is deleted by the launcher as the gateway, so the ResourceQuota
    // counts runs in progress, not an hour of finished ones.
    expect(cluster.kubectl(["get", "sparkapplication", name, "-n", NAMESPACE, "--ignore-not-found", "-o", "name"]).stdout.trim()).toBe("");

    // A run stopped by the driver deletes its SparkApplication.
    const controller = new AbortController();
    const stopped = launcher.launch({ id: "job-2", topic: "parking-exits", attempt: 1, reason: "manual" }, controller.signal);
    const second = await until("the second SparkApplication", () => cluster.kubectl(["get", "sparkapplications", "-n", NAMESPACE, "-l", "simgate.io/topic=parking-exits", "-o", "jsonpath={.items[*].metadata.name}"]).stdout.trim() || undefined);
    controller.abort(new Error("gateway stopping"));
    await expect(stopped).resolves.toMatchObject({ ok: false, status: "cancelled" });
    expect(cluster.kubectl(["get", "sparkapplication", second, "-n", NAMESPACE, "--ignore-not-found", "-o", "name"]).stdout.trim()).toBe("");

    // Configured with another image, the launcher is refused by the API server, and does not retry.
    const rogue = new KubernetesLauncher({ apiUrl: cluster.server, namespace: NAMESPACE, tokenFile, caFile: cluster.caFile, image: "docker.io/library/busybox:1.36", serviceAccount: policy.serviceAccount, executorInstances: 1, pollMs: 100 });
    const refused = await rogue.launch({ id: "job-3", topic: "parking-entries", attempt: 1, reason: "manual" }, new AbortController().signal);
    expect(refused).toMatchObject({ ok: false, status: "failed", retryable: false });
    expect(refused.error).toMatch(/only the image/);
    cluster.kubectl(["delete", "sparkapplications", "--all", "-n", NAMESPACE, "--wait=true"]);
  });

  test("the ResourceQuota caps the SparkApplications that exist at once, and the launcher retries when it is full", async () => {
    const quota = applied.find((o) => o.kind === "ResourceQuota" && JSON.stringify(o["spec"]).includes("count/sparkapplications.sparkoperator.k8s.io"));
    expect(quota, "a ResourceQuota on count/sparkapplications.sparkoperator.k8s.io").toBeDefined();
    const name = String(quota?.metadata.name);
    const limit = Number((quota?.["spec"] as { hard: Record<string, string> }).hard["count/sparkapplications.sparkoperator.k8s.io"]);
    expect(limit).toBeGreaterThanOrEqual(2);
    cluster.kubectl(["delete", "sparkapplications", "--all", "-n", NAMESPACE, "--wait=true"]);
    expect(syncQuotas()).toBeGreaterThan(0);
    for (let i = 0; i < limit; i++) expectCreated("simgate-gateway", wapApplication(), false);
    const over = createAs("simgate-gateway", wapApplication(), false);
    expect(over.ok).toBe(false);
    expect(over.stderr).toMatch(/exceeded quota: simgate-spark-jobs/);

    const tokenFile = cluster.serviceAccountTokenFile(NAMESPACE, "simgate-gateway");
    const launcher = new KubernetesLauncher({ apiUrl: cluster.server, namespace: NAMESPACE, tokenFile, caFile: cluster.caFile, image: policy.image, serviceAccount: policy.serviceAccount, executorInstances: 1, pollMs: 100 });
    const outcome = await launcher.launch({ id: "job-q", topic: "parking-entries", attempt: 1, reason: "manual" }, new AbortController().signal);
    expect(outcome).toMatchObject({ ok: false, status: "failed", retryable: true });
    expect(outcome.error).toMatch(/exceeded quota/);
    cluster.kubectl(["delete", "sparkapplications", "--all", "-n", NAMESPACE, "--wait=true"]);
  });

  test("leader Lease: of two gateway candidates exactly one leads; the other takes over when the holder stops renewing", async () => {
    const tokenFile = cluster.serviceAccountTokenFile(NAMESPACE, "simgate-gateway");
    const client = new KubernetesClient({ apiUrl: cluster.server, tokenFile, caFile: cluster.caFile, timeoutMs: 5_000 });
    // Shorter than the gateway's 15 s / 10 s / 2 s, long enough for a loaded 2-core machine.
    const timing = { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 500 };
    const transitions: string[] = [];
    const candidate = (identity: string): LeaderLease =>
      new LeaderLease(client, {
        namespace: NAMESPACE,
        name: "simgate-gateway-jobs",
        identity,
        ...timing,
        onStartedLeading: () => transitions.push(`${identity} leads`),
        onStoppedLeading: () => transitions.push(`${identity} stops`),
      });
    const a = candidate("gateway-a");
    const b = candidate("gateway-b");
    a.start();
    await until("gateway-a to lead", () => (a.isLeader() ? true : undefined), 10_000);
    b.start();
    // For two lease durations, at every look exactly one leads, and it is a.
    const end = Date.now() + 2 * timing.leaseDurationMs;
    while (Date.now() < end) {
      expect([a.isLeader(), b.isLeader()]).toEqual([true, false]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const holder = () => cluster.kubectl(["get", "lease", "simgate-gateway-jobs", "-n", NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}"]).stdout.trim();
    expect(holder()).toBe("gateway-a");

    // a stops renewing (as a crashed replica would): b waits out the lease, then takes over.
    const stoppedAt = Date.now();
    await a.stop({ release: false });
    await until("gateway-b to take over", () => (b.isLeader() ? true : undefined), 10_000);
    const waitedMs = Date.now() - stoppedAt;
    expect(waitedMs).toBeGreaterThanOrEqual(timing.leaseDurationMs - timing.retryPeriodMs);
    expect(a.isLeader()).toBe(false);
    expect(holder()).toBe("gateway-b");

    // A graceful stop hands the Lease back: a new candidate leads well within a lease duration.
    const c = candidate("gateway-c");
    c.start();
    await new Promise((r) => setTimeout(r, 3 * timing.retryPeriodMs));
    expect(c.isLeader()).toBe(false);
    const releasedAt = Date.now();
    await b.stop();
    await until("gateway-c to lead after the release", () => (c.isLeader() ? true : undefined), 10_000);
    expect(Date.now() - releasedAt).toBeLessThan(timing.leaseDurationMs);
    await c.stop();
    expect(transitions).toEqual(["gateway-a leads", "gateway-a stops", "gateway-b leads", "gateway-b stops", "gateway-c leads", "gateway-c stops"]);
    const lease = JSON.parse(cluster.kubectl(["get", "lease", "simgate-gateway-jobs", "-n", NAMESPACE, "-o", "json"]).stdout) as { spec: { leaseTransitions: number } };
    expect(lease.spec.leaseTransitions).toBe(2);

    // The Spark service account cannot take part (RBAC): it never leads.
    const sparkClient = new KubernetesClient({ apiUrl: cluster.server, tokenFile: cluster.serviceAccountTokenFile(NAMESPACE, "simgate-spark"), caFile: cluster.caFile });
    const intruder = new LeaderLease(sparkClient, { namespace: NAMESPACE, name: "simgate-gateway-jobs", identity: "intruder", ...timing });
    intruder.start();
    await new Promise((r) => setTimeout(r, 2 * timing.leaseDurationMs));
    expect(intruder.isLeader()).toBe(false);
    await intruder.stop();
  });

  test("\"Restore Nessie\" of deploy/README.md runs as written: Argo CD paused, the CronJobs suspended, Nessie at 0, the restore Job created (the newest backup, or a named one), Argo CD given back", () => {
    const readme = readFileSync(join(ROOT, "deploy/README.md"), "utf8");
    const section = readme.slice(readme.indexOf("- **Restore Nessie**"), readme.indexOf("- **Kafka upgrades**"));
    const commands = [...section.matchAll(/`((?:for |kubectl )[^`]+)`/g)].map((m) => (m[1] as string).replace(/\s+/g, " "));
    // What needs a controller or a pod (waits, logs, rollouts) cannot finish here; everything else runs.
    const runnable = commands.filter((c) => !/^kubectl -n simgate (wait|logs|rollout) /.test(c));
    expect(runnable.map((c) => c.slice(0, 40))).toHaveLength(6);
    const run = (command: string): void => {
      const out = spawnSync("bash", ["-c", command], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 120_000,
        env: { ...process.env, KUBECONFIG: cluster.kubeconfig, PATH: `${dirname(kubectlPath())}:${process.env["PATH"] ?? ""}` },
      });
      expect(out.status, `${command}\n${out.stderr}`).toBe(0);
    };
    const get = (args: string[]): string => cluster.kubectl(["get", ...args, "-o", "json"]).stdout;
    const automated = (app: string): unknown => (JSON.parse(get(["application", app, "-n", "argocd"])) as { spec: { syncPolicy?: { automated?: unknown } } }).spec.syncPolicy?.automated;
    const [pause, suspend, scale, newest, named, giveBack] = runnable as [string, string, string, string, string, string];
    run(pause);
    for (const app of ["simgate", "simgate-nessie", "simgate-spark-jobs"]) expect(automated(app), app).toBeUndefined();
    run(suspend);
    for (const c of ["simgate-nessie-gc", "simgate-retention", "nessie-backup"]) expect((JSON.parse(get(["cronjob", c, "-n", NAMESPACE])) as { spec: { suspend?: boolean } }).spec.suspend, c).toBe(true);
    run(scale);
    expect((JSON.parse(get(["deployment", "nessie", "-n", NAMESPACE])) as { spec: { replicas: number } }).spec.replicas).toBe(0);
    type Job = { spec: { template: { spec: { initContainers: { name: string; env?: { name: string; value?: string }[] }[]; volumes: { name: string; configMap?: { name: string } }[] } } } };
    const backupKey = (): string | undefined => {
      const job = JSON.parse(get(["job", "nessie-restore", "-n", NAMESPACE])) as Job;
      const download = job.spec.template.spec.initContainers.find((c) => c.name === "download");
      return download?.env?.find((e) => e.name === "BACKUP_KEY")?.value;
    };
    run(newest);
    expect(backupKey() ?? "").toBe("");
    // The Job's script comes from the ConfigMap the nessie Application deployed.
    const scripts = (JSON.parse(get(["job", "nessie-restore", "-n", NAMESPACE])) as Job).spec.template.spec.volumes.find((v) => v.name === "scripts")?.configMap?.name;
    expect(cluster.kubectl(["get", "configmap", String(scripts), "-n", NAMESPACE, "-o", "name"]).stdout.trim()).toBe("configmap/nessie-backup-scripts");
    cluster.kubectl(["delete", "job", "nessie-restore", "-n", NAMESPACE]);
    run(named);
    expect(backupKey()).toMatch(/^nessie\/\d{8}T\d{6}Z\.dump$/);
    run(giveBack);
    expect(automated("simgate")).toEqual({ prune: true, selfHeal: true });
    cluster.kubectl(["delete", "job", "nessie-restore", "-n", NAMESPACE]);
  });
});
