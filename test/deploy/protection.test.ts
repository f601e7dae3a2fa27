// Data survives GitOps mistakes (issue 11, H1/H2): every stateful object that deploy/ renders carries
// Argo CD's Prune=false,Delete=false, so neither removing it from Git nor deleting its Application (with
// the resources finalizer) deletes it; StatefulSets keep their claims; Kafka refuses topic deletion;
// prod volumes are on a Retain StorageClass; the operators' Applications never cascade (deleting a CRD
// deletes every resource of that kind). Every kind rendered must be classified here, so a new stateful
// kind cannot slip in unprotected; and removing the protection from any one object fails the check.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { isObject, resourceId, type Json, type JsonObject, type RenderedResource, type Resource } from "./kustomize-lite.js";
import { renderWithKustomize } from "./render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const render = (rel: string): RenderedResource[] => renderWithKustomize(join(ROOT, rel));

/** Kinds that hold data, or whose deletion deletes data. */
export const STATEFUL_KINDS = new Set(["Namespace", "Kafka", "KafkaNodePool", "KafkaTopic", "PersistentVolumeClaim", "StatefulSet", "StorageClass"]);
/** Kinds whose loss Argo CD repairs by re-creating them from Git: nothing in them but configuration. */
export const STATELESS_KINDS = new Set([
  "ConfigMap",
  "Secret",
  "Service",
  "ServiceAccount",
  "Deployment",
  "CronJob",
  "Job",
  "PodDisruptionBudget",
  "Role",
  "RoleBinding",
  "NetworkPolicy",
  "Ingress",
  "ResourceQuota",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
  "Lease",
  "ScheduledSparkApplication",
  "SparkApplication",
  "PodMonitor",
  "ServiceMonitor",
  "Application",
  "AppProject",
]);
const RETAIN_CLASS = "simgate-retain";

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}
function list(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}
function syncOptions(metadata: JsonObject): string[] {
  return String(obj(metadata["annotations"])["argocd.argoproj.io/sync-options"] ?? "")
    .split(",")
    .map((o) => o.trim());
}
function protectedFromArgo(metadata: JsonObject): boolean {
  const options = syncOptions(metadata);
  return options.includes("Prune=false") && options.includes("Delete=false");
}

/** Every way the rendered set could lose data through Argo CD or a deletion; empty when none. */
export function protectionProblems(items: readonly RenderedResource[], env: "dev" | "prod"): string[] {
  const problems: string[] = [];
  for (const { resource: r } of items) {
    const id = resourceId(r);
    if (!STATEFUL_KINDS.has(r.kind) && !STATELESS_KINDS.has(r.kind)) {
      problems.push(`${id}: kind ${r.kind} is not classified as stateful or stateless in test/deploy/protection.test.ts`);
      continue;
    }
    if (!STATEFUL_KINDS.has(r.kind)) continue;
    const spec = obj(r["spec"] as Json);
    if (!protectedFromArgo(r.metadata)) problems.push(`${id}: no argocd.argoproj.io/sync-options Prune=false,Delete=false`);
    if (r.kind === "StatefulSet") {
      const retention = obj(spec["persistentVolumeClaimRetentionPolicy"]);
      if (retention["whenDeleted"] !== "Retain" || retention["whenScaled"] !== "Retain") problems.push(`${id}: persistentVolumeClaimRetentionPolicy must be Retain/Retain`);
      for (const t of list(spec["volumeClaimTemplates"]).filter(isObject)) {
        const meta = obj(t["metadata"]);
        if (!protectedFromArgo(meta)) problems.push(`${id} volumeClaimTemplate ${String(meta["name"])}: no Prune=false,Delete=false`);
        if (env === "prod" && obj(t["spec"])["storageClassName"] !== RETAIN_CLASS) problems.push(`${id} volumeClaimTemplate ${String(meta["name"])}: storageClassName is not ${RETAIN_CLASS}`);
      }
    }
    if (r.kind === "PersistentVolumeClaim" && env === "prod" && spec["storageClassName"] !== RETAIN_CLASS) problems.push(`${id}: storageClassName is not ${RETAIN_CLASS}`);
    if (r.kind === "Kafka" && obj(obj(spec["kafka"])["config"])["delete.topic.enable"] !== false) problems.push(`${id}: delete.topic.enable must be false (the Topic Operator deletes topics whose KafkaTopic goes)`);
    if (r.kind === "KafkaNodePool" && env === "prod") {
      for (const v of list(obj(spec["storage"])["volumes"]).filter(isObject)) {
        if (v["deleteClaim"] !== false) problems.push(`${id} volume ${String(v["id"])}: deleteClaim must be false`);
        if (v["class"] !== RETAIN_CLASS) problems.push(`${id} volume ${String(v["id"])}: class is not ${RETAIN_CLASS}`);
      }
    }
    if (r.kind === "StorageClass" && spec["reclaimPolicy"] !== undefined) problems.push(`${id}: reclaimPolicy belongs at the top level`);
    if (r.kind === "StorageClass" && r["reclaimPolicy"] !== "Retain") problems.push(`${id}: reclaimPolicy must be Retain`);
  }
  if (env === "prod" && !items.some(({ resource: r }) => r.kind === "StorageClass" && r.metadata["name"] === RETAIN_CLASS)) problems.push(`StorageClass ${RETAIN_CLASS} is not rendered`);
  return problems;
}

describe("data protection", () => {
  test.each(["dev", "prod"] as const)("overlays/%s: every stateful object is protected, every kind is classified", (env) => {
    const items = render(`deploy/k8s/overlays/${env}`);
    expect(protectionProblems(items, env)).toEqual([]);
    // The stateful objects are the ones the issue names (a sanity check of the classification itself).
    const stateful = items.filter(({ resource }) => STATEFUL_KINDS.has(resource.kind)).map(({ resource }) => `${resource.kind}/${String(resource.metadata["name"])}`);
    expect(stateful).toEqual(
      expect.arrayContaining([
        "Namespace/simgate",
        "Kafka/simgate",
        "KafkaNodePool/dual-role",
        "KafkaTopic/parking-entries",
        "KafkaTopic/parking-exits",
        "KafkaTopic/simgate-runs",
        "KafkaTopic/simgate-dead-letter",
        "StatefulSet/nessie-postgres",
        "StatefulSet/superset-postgres",
      ]),
    );
    if (env === "prod") expect(stateful).toContain("StorageClass/simgate-retain");
  });

  test.each(["platform", "kafka", "nessie", "gateway", "spark-jobs", "trino", "superset"])("Argo CD Application simgate-%s: what it syncs is protected", (component) => {
    expect(protectionProblems(render(`deploy/k8s/overlays/prod/${component}`), "prod").filter((p) => !p.startsWith("StorageClass simgate-retain is not rendered"))).toEqual([]);
  });

  test("removing the protection from any one stateful object fails the check, naming it", () => {
    const items = render("deploy/k8s/overlays/prod");
    const stateful = items.filter(({ resource }) => STATEFUL_KINDS.has(resource.kind));
    expect(stateful.length).toBeGreaterThanOrEqual(10);
    for (const target of stateful) {
      const mutated = items.map((rr) => {
        if (rr !== target) return rr;
        const r = structuredClone(rr.resource) as unknown as { metadata: { annotations?: Record<string, string> } };
        delete r.metadata.annotations?.["argocd.argoproj.io/sync-options"];
        return { ...rr, resource: r as unknown as Resource };
      });
      expect(protectionProblems(mutated, "prod")).toEqual([`${resourceId(target.resource)}: no argocd.argoproj.io/sync-options Prune=false,Delete=false`]);
    }
  });

  test("the other safeguards fail the check when removed: topic deletion, claim retention, Retain class, deleteClaim, unknown kinds", () => {
    const items = render("deploy/k8s/overlays/prod");
    const edit = (kind: string, change: (r: Record<string, never>) => void): RenderedResource[] =>
      items.map((rr) => {
        if (rr.resource.kind !== kind) return rr;
        const r = structuredClone(rr.resource) as unknown as Record<string, never>;
        change(r);
        return { ...rr, resource: r as unknown as Resource };
      });
    const kafka = edit("Kafka", (r) => {
      ((r["spec"] as JsonObject)["kafka"] as { config: JsonObject }).config["delete.topic.enable"] = true;
    });
    expect(protectionProblems(kafka, "prod")).toEqual(["kafka.strimzi.io/Kafka/simgate/simgate: delete.topic.enable must be false (the Topic Operator deletes topics whose KafkaTopic goes)"]);
    const sts = edit("StatefulSet", (r) => {
      ((r["spec"] as JsonObject)["persistentVolumeClaimRetentionPolicy"] as JsonObject)["whenDeleted"] = "Delete";
    });
    expect(protectionProblems(sts, "prod")).toEqual([
      "apps/StatefulSet/simgate/nessie-postgres: persistentVolumeClaimRetentionPolicy must be Retain/Retain",
      "apps/StatefulSet/simgate/superset-postgres: persistentVolumeClaimRetentionPolicy must be Retain/Retain",
    ]);
    const sc = edit("StorageClass", (r) => {
      (r as JsonObject)["reclaimPolicy"] = "Delete";
    });
    expect(protectionProblems(sc, "prod")).toEqual(["storage.k8s.io/StorageClass//simgate-retain: reclaimPolicy must be Retain"]);
    const pool = edit("KafkaNodePool", (r) => {
      const v = (((r["spec"] as JsonObject)["storage"] as JsonObject)["volumes"] as JsonObject[])[0] as JsonObject;
      v["deleteClaim"] = true;
      delete v["class"];
    });
    expect(protectionProblems(pool, "prod")).toEqual([
      "kafka.strimzi.io/KafkaNodePool/simgate/dual-role volume 0: deleteClaim must be false",
      "kafka.strimzi.io/KafkaNodePool/simgate/dual-role volume 0: class is not simgate-retain",
    ]);
    const unknown = [...items, { resource: { apiVersion: "example.com/v1", kind: "Database", metadata: { name: "x", namespace: "simgate" } } as Resource, source: "test" }];
    expect(protectionProblems(unknown, "prod")).toEqual(["example.com/Database/simgate/x: kind Database is not classified as stateful or stateless in test/deploy/protection.test.ts"]);
  });

  test("the operators' Applications never cascade: no resources finalizer, no automated prune", () => {
    const apps = render("deploy/argocd/apps").map(({ resource }) => resource);
    const operators = apps.filter((a) => obj(a["spec"] as Json)["project"] === "simgate-operators");
    expect(operators.map((a) => a.metadata["name"]).sort()).toEqual(["simgate-spark-operator", "simgate-strimzi"]);
    for (const app of operators) {
      expect(app.metadata["finalizers"], String(app.metadata["name"])).toBeUndefined();
      expect(obj(obj(obj(app["spec"] as Json)["syncPolicy"])["automated"])["prune"]).toBe(false);
    }
  });
});
