// Least privilege on the network (issue 11, H3): the rendered NetworkPolicies are evaluated as
// Kubernetes does (a pod selected by no policy of a direction is open in that direction; one selected by
// some policy accepts only what one of them allows; egress and ingress must both allow), for every pair
// of the system's pods and outside parties and every port they serve. The result must be exactly the
// flow table of deploy/README.md ("Network flows") - no more, no less.
//
// Kafka's ingress is the NetworkPolicy Strimzi generates from the Kafka resource, modelled here from it:
// each listener's port open to its networkPolicyPeers (to everyone when it lists none), the control
// plane and replication ports (9090, 9091) to the cluster's own pods.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { isObject, type Json, type JsonObject, type RenderedResource, type Resource } from "./kustomize-lite.js";
import { renderWithKustomize } from "./render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const NS = "simgate";

type Labels = Record<string, string>;
interface Party {
  readonly id: string;
  /** Undefined: outside the cluster (an IP address, matched only by ipBlock). */
  readonly namespace?: string;
  readonly labels: Labels;
  readonly nsLabels?: Labels;
  readonly ports: readonly number[];
}

const pod = (id: string, labels: Labels, ports: number[], namespace = NS, nsLabels: Labels = {}): Party => ({
  id,
  namespace,
  labels,
  nsLabels: { "kubernetes.io/metadata.name": namespace, ...nsLabels },
  ports,
});
const SPARK_PORTS = [7078, 7079];
export const PARTIES: readonly Party[] = [
  pod("gateway", { "app.kubernetes.io/name": "simgate-gateway" }, [50051, 8080]),
  pod("kafka", { "strimzi.io/cluster": "simgate", "strimzi.io/kind": "Kafka", "strimzi.io/name": "simgate-kafka" }, [9090, 9091, 9092, 9093, 9404]),
  pod("kafka-entity-operator", { "strimzi.io/cluster": "simgate", "strimzi.io/kind": "Kafka", "strimzi.io/name": "simgate-entity-operator" }, []),
  pod("wap-driver", { "app.kubernetes.io/name": "simgate-wap", "spark-role": "driver" }, SPARK_PORTS),
  pod("wap-executor", { "app.kubernetes.io/name": "simgate-wap", "spark-role": "executor" }, SPARK_PORTS),
  pod("maintenance-driver", { "app.kubernetes.io/name": "simgate-maintenance", "spark-role": "driver" }, SPARK_PORTS),
  pod("retention", { "app.kubernetes.io/name": "simgate-retention" }, []),
  pod("nessie-gc", { "app.kubernetes.io/name": "simgate-nessie-gc" }, []),
  pod("nessie", { "app.kubernetes.io/name": "nessie" }, [19120, 9000]),
  pod("nessie-postgres", { "app.kubernetes.io/name": "nessie-postgres" }, [5432]),
  pod("nessie-backup", { "app.kubernetes.io/name": "nessie-backup" }, []),
  pod("trino-coordinator", { "app.kubernetes.io/name": "trino", "app.kubernetes.io/component": "coordinator" }, [8443, 8080]),
  pod("trino-worker", { "app.kubernetes.io/name": "trino", "app.kubernetes.io/component": "worker" }, [8080]),
  pod("superset", { "app.kubernetes.io/name": "superset" }, [8088]),
  pod("superset-postgres", { "app.kubernetes.io/name": "superset-postgres" }, [5432]),
  pod("superset-redis", { "app.kubernetes.io/name": "superset-redis" }, [6379]),
  // Any other pod of the namespace (a debugging shell, a compromised image).
  pod("intruder", { app: "intruder" }, [8080]),
  pod("simulator", { "app.kubernetes.io/name": "simgate-simulator" }, [], "omniverse"),
  pod("ingress-controller", { "app.kubernetes.io/name": "ingress-nginx" }, [], "ingress-nginx"),
  pod("prometheus", { "app.kubernetes.io/name": "prometheus" }, [], "monitoring", { "simgate.io/monitoring": "true" }),
  pod("other-namespace", { app: "other" }, [8080], "other"),
  // S3, the Kubernetes API server, the OpenID Connect provider: addresses outside the pod network.
  { id: "outside", labels: {}, ports: [443, 6443, 9000] },
];

/** The flows deploy/README.md lists ("Network flows"); DNS (every pod of the namespace to kube-dns) is
 *  checked on its own. "outside" is S3, the Kubernetes API and the identity provider, by port. */
const EXPECTED = [
  // senders -> gateway; Prometheus -> metrics
  "simulator -> gateway:50051",
  "simulator -> gateway:8080",
  "prometheus -> gateway:8080",
  "prometheus -> nessie:9000",
  "prometheus -> trino-coordinator:8443",
  "prometheus -> kafka:9404",
  // gateway -> Kafka, S3, Kubernetes API
  "gateway -> kafka:9092",
  "gateway -> outside:443",
  "gateway -> outside:6443",
  // Kafka among itself (KRaft, replication), the entity operator -> brokers and Kubernetes API
  "kafka -> kafka:9090",
  "kafka -> kafka:9091",
  "kafka -> kafka:9093",
  "kafka -> outside:443",
  "kafka -> outside:6443",
  "kafka-entity-operator -> kafka:9090",
  "kafka-entity-operator -> kafka:9091",
  "kafka-entity-operator -> kafka:9093",
  "kafka-entity-operator -> outside:443",
  "kafka-entity-operator -> outside:6443",
  // Spark -> Kafka, Nessie, S3 (+ Kubernetes API, identity provider); drivers <-> executors
  ...["wap-driver", "wap-executor", "maintenance-driver"].flatMap((s) => [
    `${s} -> kafka:9092`,
    `${s} -> nessie:19120`,
    `${s} -> outside:443`,
    `${s} -> outside:6443`,
    ...["wap-driver", "wap-executor", "maintenance-driver"].flatMap((d) => [`${s} -> ${d}:7078`, `${s} -> ${d}:7079`]),
  ]),
  // retention and GC -> Nessie (+ identity provider; GC: S3)
  "retention -> nessie:19120",
  "retention -> outside:443",
  "nessie-gc -> nessie:19120",
  "nessie-gc -> outside:443",
  // Nessie -> its PostgreSQL, S3, identity provider; the backup -> PostgreSQL, S3
  "nessie -> nessie-postgres:5432",
  "nessie -> nessie:9000",
  "nessie -> outside:443",
  "nessie-backup -> nessie-postgres:5432",
  "nessie-backup -> outside:443",
  // Trino -> Nessie, S3; its nodes among themselves
  ...["trino-coordinator", "trino-worker"].flatMap((s) => [
    `${s} -> nessie:19120`,
    `${s} -> outside:443`,
    `${s} -> trino-coordinator:8080`,
    `${s} -> trino-worker:8080`,
  ]),
  // Superset -> Trino (HTTPS), its PostgreSQL and Redis; the ingress controller -> Superset
  "superset -> trino-coordinator:8443",
  "superset -> superset-postgres:5432",
  "superset -> superset-redis:6379",
  "ingress-controller -> superset:8088",
  // Kafka's TLS listener (client certificates, KafkaUser) accepts every pod outside the namespace, as
  // Strimzi generates it; inside, the default deny keeps other pods from even trying.
  ...["simulator", "ingress-controller", "prometheus", "other-namespace"].map((s) => `${s} -> kafka:9093`),
].sort();

function obj(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}
function list(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}

/** Label selector semantics: matchLabels and every matchExpression; an empty selector matches all. */
export function selects(selector: JsonObject, labels: Labels): boolean {
  for (const [k, v] of Object.entries(obj(selector["matchLabels"]))) if (labels[k] !== v) return false;
  for (const e of list(selector["matchExpressions"]).filter(isObject)) {
    const key = String(e["key"]);
    const values = list(e["values"]).map(String);
    const has = key in labels;
    switch (e["operator"]) {
      case "In":
        if (!has || !values.includes(labels[key] as string)) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[key] as string)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${String(e["operator"])}`);
    }
  }
  return true;
}

function peerMatches(peer: JsonObject, policyNamespace: string, other: Party): boolean {
  if (isObject(peer["ipBlock"])) return other.namespace === undefined; // outside addresses only (0.0.0.0/0 in deploy/)
  if (other.namespace === undefined) return false;
  const ns = peer["namespaceSelector"];
  const pods = peer["podSelector"];
  if (ns === undefined) return other.namespace === policyNamespace && selects(obj(pods), other.labels);
  return selects(obj(ns), other.nsLabels ?? {}) && (pods === undefined || selects(obj(pods), other.labels));
}

function portMatches(ports: Json | undefined, port: number): boolean {
  const l = list(ports).filter(isObject);
  return l.length === 0 || l.some((p) => Number(p["port"]) === port);
}

/** Whether the policies selecting `subject` (in their namespace) let traffic in `direction` with `other`. */
function allowedBy(policies: readonly Resource[], subject: Party, other: Party, port: number, direction: "Ingress" | "Egress"): boolean {
  const selecting = policies.filter((p) => {
    const spec = obj(p["spec"] as Json);
    return p.metadata["namespace"] === subject.namespace && list(spec["policyTypes"]).includes(direction) && selects(obj(spec["podSelector"]), subject.labels);
  });
  if (selecting.length === 0) return true;
  const key = direction === "Ingress" ? "ingress" : "egress";
  const peersKey = direction === "Ingress" ? "from" : "to";
  return selecting.some((p) =>
    list(obj(p["spec"] as Json)[key])
      .filter(isObject)
      .some((rule) => {
        const peers = list(rule[peersKey]).filter(isObject);
        return (peers.length === 0 || peers.some((peer) => peerMatches(peer, NS, other))) && portMatches(rule["ports"], port);
      }),
  );
}

/** Strimzi's generated ingress policy for the brokers, from the Kafka resource. */
function strimziPolicy(kafka: Resource): Resource {
  const listeners = list(obj(obj(kafka["spec"] as Json)["kafka"])["listeners"]).filter(isObject);
  const cluster = { podSelector: { matchLabels: { "strimzi.io/cluster": String(kafka.metadata["name"]) } } };
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `${String(kafka.metadata["name"])}-network-policy-kafka`, namespace: NS },
    spec: {
      podSelector: { matchLabels: { "strimzi.io/name": `${String(kafka.metadata["name"])}-kafka` } },
      policyTypes: ["Ingress"],
      ingress: [
        { from: [cluster], ports: [{ port: 9090 }, { port: 9091 }] },
        ...listeners.map((l) => ({ ...(Array.isArray(l["networkPolicyPeers"]) ? { from: l["networkPolicyPeers"] } : {}), ports: [{ port: l["port"] as number }] })),
      ],
    },
  } as unknown as Resource;
}

export function allowedFlows(items: readonly RenderedResource[], parties: readonly Party[] = PARTIES): string[] {
  const resources = items.map(({ resource }) => resource);
  const policies = resources.filter((r) => r.kind === "NetworkPolicy");
  const kafka = resources.find((r) => r.kind === "Kafka");
  if (kafka !== undefined) policies.push(strimziPolicy(kafka));
  const flows: string[] = [];
  for (const src of parties) {
    for (const dst of parties) {
      for (const port of dst.ports) {
        const out = src.namespace === undefined || allowedBy(policies, src, dst, port, "Egress");
        const inn = dst.namespace === undefined || allowedBy(policies, dst, src, port, "Ingress");
        // Only flows that start or end in the namespace are the deployment's business; traffic from
        // outside the cluster cannot reach ClusterIP Services.
        const ours = (src.namespace === NS || dst.namespace === NS) && src.namespace !== undefined;
        if (out && inn && ours) flows.push(`${src.id} -> ${dst.id}:${port}`);
      }
    }
  }
  return flows.sort();
}

const render = (rel: string): RenderedResource[] => renderWithKustomize(join(ROOT, rel));

describe("network flows", () => {
  test("overlays/prod: the NetworkPolicies allow exactly the documented flows", () => {
    expect(allowedFlows(render("deploy/k8s/overlays/prod"))).toEqual(EXPECTED);
  });

  test("overlays/dev: the same flows, with MinIO (namespace minio, port 9000) as the object store", () => {
    const minio = pod("minio", { app: "minio" }, [9000], "minio");
    const flows = allowedFlows(render("deploy/k8s/overlays/dev"), [...PARTIES, minio]);
    const s3Clients = ["gateway", "wap-driver", "wap-executor", "maintenance-driver", "nessie-gc", "nessie", "nessie-backup", "trino-coordinator", "trino-worker"];
    for (const c of s3Clients) expect(flows, c).toContain(`${c} -> minio:9000`);
    // Nobody else of the namespace reaches MinIO, and nothing reaches HTTPS outside any more.
    const nsParties = PARTIES.filter((p) => p.namespace === NS).map((p) => p.id);
    expect(flows.filter((f) => f.endsWith("-> minio:9000") && nsParties.some((c) => f.startsWith(`${c} ->`)) && !s3Clients.some((c) => f.startsWith(`${c} ->`)))).toEqual([]);
    expect(flows.filter((f) => ["gateway", "nessie-backup", "trino-coordinator"].some((c) => f.startsWith(`${c} -> outside:443`)))).toEqual(["gateway -> outside:443"]);
  });

  test("every pod of the namespace resolves names (kube-dns, UDP and TCP 53), and is otherwise denied by default", () => {
    const items = render("deploy/k8s/overlays/prod");
    const dns = pod("kube-dns", { "k8s-app": "kube-dns" }, [53], "kube-system");
    const flows = allowedFlows(items, [...PARTIES, dns]);
    for (const p of PARTIES.filter((x) => x.namespace === NS)) expect(flows, p.id).toContain(`${p.id} -> kube-dns:53`);
    const deny = items.map(({ resource }) => resource).find((r) => r.kind === "NetworkPolicy" && r.metadata["name"] === "default-deny");
    expect(deny?.["spec"]).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
  });

  test("the evaluation can fail: a missing default deny, a missing flow, a too-broad rule all change the set", () => {
    const items = render("deploy/k8s/overlays/prod");
    const without = (name: string): RenderedResource[] => items.filter(({ resource }) => !(resource.kind === "NetworkPolicy" && resource.metadata["name"] === name));
    // No default deny: pods no component policy selects accept anyone.
    expect(allowedFlows(without("default-deny"))).toContain("other-namespace -> intruder:8080");
    // No Nessie policy (default deny kept): Spark and Trino lose Nessie.
    const noNessie = allowedFlows(without("nessie"));
    expect(noNessie).not.toContain("wap-driver -> nessie:19120");
    expect(noNessie).not.toContain("trino-coordinator -> nessie:19120");
    // A rule that opens Nessie's port to every namespace: other pods reach the catalog.
    const broad = items.map((rr) => {
      if (!(rr.resource.kind === "NetworkPolicy" && rr.resource.metadata["name"] === "nessie")) return rr;
      const r = structuredClone(rr.resource) as unknown as { spec: { ingress: JsonObject[] } };
      r.spec.ingress.push({ from: [{ namespaceSelector: {} }], ports: [{ protocol: "TCP", port: 19120 }] });
      return { ...rr, resource: r as unknown as Resource };
    });
    const broadFlows = allowedFlows(broad);
    expect(broadFlows).toContain("other-namespace -> nessie:19120");
    expect(broadFlows).not.toEqual(EXPECTED);
  });
});
