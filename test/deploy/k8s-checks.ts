// Sanity checks for core Kubernetes resources, which have no CRD to validate against: each returns a
// list of problems ("<resource id>: what is wrong"), empty when all is well, so a failing test names
// every mistake at once.
import { isObject, resourceId, type Json, type JsonObject, type RenderedResource, type Resource } from "./kustomize-lite.js";

const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume", "StorageClass", "IngressClass", "PriorityClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME_KINDS = new Set(["Namespace", "Service"]);

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}
function list(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}
function str(value: Json | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** apiVersion, kind, a valid metadata.name and, for namespaced kinds, an explicit namespace. */
export function checkBasics(items: readonly RenderedResource[], expectedNamespace?: string): string[] {
  const problems: string[] = [];
  for (const { resource: r, source } of items) {
    const id = `${resourceId(r)} (${source})`;
    if (typeof r.apiVersion !== "string" || r.apiVersion === "") problems.push(`${id}: no apiVersion`);
    if (typeof r.kind !== "string" || r.kind === "") problems.push(`${id}: no kind`);
    const name = str(r.metadata["name"]);
    if (name === undefined) {
      problems.push(`${id}: no metadata.name`);
      continue;
    }
    const pattern = LABEL_NAME_KINDS.has(r.kind) ? DNS_LABEL : DNS_SUBDOMAIN;
    const max = LABEL_NAME_KINDS.has(r.kind) ? 63 : 253;
    if (!pattern.test(name) || name.length > max) problems.push(`${id}: metadata.name "${name}" is not a valid ${r.kind} name`);
    const ns = str(r.metadata["namespace"]);
    if (CLUSTER_SCOPED.has(r.kind)) {
      if (ns !== undefined) problems.push(`${id}: ${r.kind} is cluster-scoped but has a namespace`);
    } else if (ns === undefined) {
      problems.push(`${id}: no metadata.namespace`);
    } else if (expectedNamespace !== undefined && ns !== expectedNamespace) {
      problems.push(`${id}: namespace ${ns}, expected ${expectedNamespace}`);
    }
  }
  return problems;
}

interface PodTemplate {
  readonly owner: Resource;
  readonly labels: JsonObject;
  readonly spec: JsonObject;
}

function podTemplates(items: readonly RenderedResource[]): PodTemplate[] {
  return items
    .filter(({ resource }) => WORKLOAD_KINDS.has(resource.kind))
    .map(({ resource }) => {
      const template = obj(obj(resource["spec"] as Json)["template"]);
      return { owner: resource, labels: obj(obj(template["metadata"])["labels"]), spec: obj(template["spec"]) };
    });
}

function allContainers(spec: JsonObject): JsonObject[] {
  return [...list(spec["initContainers"]), ...list(spec["containers"])].filter(isObject);
}

function selects(selector: JsonObject, labels: JsonObject): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function containerPorts(spec: JsonObject): { name?: string; port: number }[] {
  return list(spec["containers"])
    .filter(isObject)
    .flatMap((c) => list(c["ports"]))
    .filter(isObject)
    .map((p) => ({ ...(str(p["name"]) !== undefined ? { name: str(p["name"]) as string } : {}), port: Number(p["containerPort"]) }));
}

function portDeclared(ports: { name?: string; port: number }[], ref: Json | undefined): boolean {
  if (typeof ref === "number") return ports.some((p) => p.port === ref);
  if (typeof ref === "string") return ports.some((p) => p.name === ref) || (/^\d+$/.test(ref) && ports.some((p) => p.port === Number(ref)));
  return false;
}

/** Workloads: selector inside the template's labels, images pinned, resources set, probes on declared
 *  ports, Prometheus annotations on a declared port. */
export function checkWorkloads(items: readonly RenderedResource[]): string[] {
  const problems: string[] = [];
  for (const pod of podTemplates(items)) {
    const id = resourceId(pod.owner);
    const matchLabels = obj(obj(obj(pod.owner["spec"] as Json)["selector"])["matchLabels"]);
    if (!selects(matchLabels, pod.labels)) problems.push(`${id}: spec.selector.matchLabels ${JSON.stringify(matchLabels)} do not select the template labels`);
    const ports = containerPorts(pod.spec);
    for (const c of allContainers(pod.spec)) {
      const cname = str(c["name"]) ?? "(unnamed)";
      const image = str(c["image"]);
      if (image === undefined) problems.push(`${id} container ${cname}: no image`);
      else if (!/:[A-Za-z0-9._-]+$/.test(image) && !image.includes("@sha256:")) problems.push(`${id} container ${cname}: image ${image} has no tag`);
      else if (image.endsWith(":latest")) problems.push(`${id} container ${cname}: image ${image} uses :latest`);
      const resources = obj(c["resources"]);
      const requests = obj(resources["requests"]);
      if (requests["cpu"] === undefined || requests["memory"] === undefined) problems.push(`${id} container ${cname}: no cpu/memory requests`);
      if (obj(resources["limits"])["memory"] === undefined) problems.push(`${id} container ${cname}: no memory limit`);
      for (const probeName of ["readinessProbe", "livenessProbe", "startupProbe"]) {
        const probe = c[probeName];
        if (!isObject(probe)) continue;
        const action = obj(probe["httpGet"] ?? probe["tcpSocket"] ?? probe["grpc"]);
        if (Object.keys(action).length === 0) continue; // exec probes have no port
        if (!portDeclared(ports, action["port"])) problems.push(`${id} container ${cname}: ${probeName} port ${JSON.stringify(action["port"])} is not a declared container port`);
      }
    }
    if (list(pod.spec["containers"]).length === 0) problems.push(`${id}: no containers`);
    const annotations = obj(obj(obj(obj(pod.owner["spec"] as Json)["template"])["metadata"])["annotations"]);
    if (annotations["prometheus.io/scrape"] === "true") {
      const port = str(annotations["prometheus.io/port"]);
      if (port === undefined || !ports.some((p) => p.port === Number(port))) problems.push(`${id}: prometheus.io/port ${String(port)} is not a declared container port`);
    }
  }
  return problems;
}

/** Services select pods of some workload, and every targetPort exists in each selected pod. The same
 *  for PodDisruptionBudgets (they must select something). */
export function checkServices(items: readonly RenderedResource[]): string[] {
  const problems: string[] = [];
  const pods = podTemplates(items);
  for (const { resource: r } of items) {
    if (r.kind === "Service") {
      const spec = obj(r["spec"] as Json);
      const selector = obj(spec["selector"]);
      const id = resourceId(r);
      if (Object.keys(selector).length === 0) {
        problems.push(`${id}: no selector`);
        continue;
      }
      const selected = pods.filter((p) => p.owner.metadata["namespace"] === r.metadata["namespace"] && selects(selector, p.labels));
      if (selected.length === 0) problems.push(`${id}: selector ${JSON.stringify(selector)} matches no workload's pod labels`);
      for (const port of list(spec["ports"]).filter(isObject)) {
        const target = port["targetPort"] ?? port["port"];
        for (const p of selected) {
          if (!portDeclared(containerPorts(p.spec), target)) {
            problems.push(`${id}: port ${String(port["name"] ?? port["port"])} targetPort ${JSON.stringify(target)} is not a container port of ${resourceId(p.owner)}`);
          }
        }
      }
    }
    if (r.kind === "PodDisruptionBudget") {
      const selector = obj(obj(obj(r["spec"] as Json)["selector"])["matchLabels"]);
      if (!pods.some((p) => p.owner.metadata["namespace"] === r.metadata["namespace"] && selects(selector, p.labels))) {
        problems.push(`${resourceId(r)}: selector ${JSON.stringify(selector)} matches no workload`);
      }
    }
  }
  return problems;
}

function has(items: readonly RenderedResource[], kind: string, name: string, namespace: Json | undefined): boolean {
  return items.some(({ resource: r }) => r.kind === kind && r.metadata["name"] === name && r.metadata["namespace"] === namespace);
}

/** Every ConfigMap, Secret, PersistentVolumeClaim and ServiceAccount a pod or SparkApplication refers
 *  to is in the rendered set. Secrets listed in `externalSecrets` are expected to be created out of
 *  band (production credentials are never committed) and are reported as used instead. */
export function checkReferences(items: readonly RenderedResource[], externalSecrets: readonly string[]): { problems: string[]; externalSecretsUsed: Set<string> } {
  const problems: string[] = [];
  const externalSecretsUsed = new Set<string>();
  const need = (owner: Resource, kind: string, name: string | undefined, optional = false): void => {
    if (name === undefined || optional) return;
    const ns = owner.metadata["namespace"];
    if (has(items, kind, name, ns)) return;
    if (kind === "Secret" && externalSecrets.includes(name)) {
      externalSecretsUsed.add(name);
      return;
    }
    problems.push(`${resourceId(owner)}: refers to ${kind} ${name}, which is not defined`);
  };
  const fromContainerLike = (owner: Resource, c: JsonObject): void => {
    for (const e of list(c["env"]).filter(isObject)) {
      const from = obj(e["valueFrom"]);
      const cm = obj(from["configMapKeyRef"]);
      const sec = obj(from["secretKeyRef"]);
      need(owner, "ConfigMap", str(cm["name"]), cm["optional"] === true);
      need(owner, "Secret", str(sec["name"]), sec["optional"] === true);
    }
    for (const e of list(c["envFrom"]).filter(isObject)) {
      const cm = obj(e["configMapRef"]);
      const sec = obj(e["secretRef"]);
      need(owner, "ConfigMap", str(cm["name"]), cm["optional"] === true);
      need(owner, "Secret", str(sec["name"]), sec["optional"] === true);
    }
  };
  for (const { resource: r } of items) {
    if (WORKLOAD_KINDS.has(r.kind)) {
      const spec = obj(obj(obj(r["spec"] as Json)["template"])["spec"]);
      const sa = str(spec["serviceAccountName"]);
      if (sa !== undefined && sa !== "default") need(r, "ServiceAccount", sa);
      for (const c of allContainers(spec)) fromContainerLike(r, c);
      for (const v of list(spec["volumes"]).filter(isObject)) {
        need(r, "ConfigMap", str(obj(v["configMap"])["name"]), obj(v["configMap"])["optional"] === true);
        need(r, "Secret", str(obj(v["secret"])["secretName"]), obj(v["secret"])["optional"] === true);
        need(r, "PersistentVolumeClaim", str(obj(v["persistentVolumeClaim"])["claimName"]));
        for (const s of list(obj(v["projected"])["sources"]).filter(isObject)) {
          need(r, "ConfigMap", str(obj(s["configMap"])["name"]), obj(s["configMap"])["optional"] === true);
          need(r, "Secret", str(obj(s["secret"])["name"]), obj(s["secret"])["optional"] === true);
        }
      }
    }
    if (r.kind === "CronJob" || r.kind === "Job") {
      const job = r.kind === "CronJob" ? obj(obj(obj(r["spec"] as Json)["jobTemplate"])["spec"]) : obj(r["spec"] as Json);
      const spec = obj(obj(job["template"])["spec"]);
      const sa = str(spec["serviceAccountName"]);
      if (sa !== undefined && sa !== "default") need(r, "ServiceAccount", sa);
      for (const c of allContainers(spec)) fromContainerLike(r, c);
      for (const v of list(spec["volumes"]).filter(isObject)) {
        need(r, "ConfigMap", str(obj(v["configMap"])["name"]), obj(v["configMap"])["optional"] === true);
        need(r, "Secret", str(obj(v["secret"])["secretName"]), obj(v["secret"])["optional"] === true);
        need(r, "PersistentVolumeClaim", str(obj(v["persistentVolumeClaim"])["claimName"]));
      }
    }
    if (r.kind === "SparkApplication" || r.kind === "ScheduledSparkApplication") {
      const spec = r.kind === "SparkApplication" ? obj(r["spec"] as Json) : obj(obj(r["spec"] as Json)["template"]);
      for (const role of ["driver", "executor"]) {
        const pod = obj(spec[role]);
        fromContainerLike(r, pod);
        const sa = str(pod["serviceAccount"]);
        if (sa !== undefined) need(r, "ServiceAccount", sa);
      }
    }
    if (r.kind === "RoleBinding") {
      const ref = obj(r["roleRef"] as Json);
      if (ref["kind"] === "Role") need(r, "Role", str(ref["name"]));
      for (const s of list(r["subjects"] as Json).filter(isObject)) {
        if (s["kind"] === "ServiceAccount" && (s["namespace"] ?? r.metadata["namespace"]) === r.metadata["namespace"]) need(r, "ServiceAccount", str(s["name"]));
      }
    }
  }
  return { problems, externalSecretsUsed };
}
