// Strict validation of core Kubernetes resources (Deployment, CronJob, Service, Role, NetworkPolicy,
// ValidatingAdmissionPolicy, ...) against the schemas of the Kubernetes release the project builds
// (api/openapi-spec/swagger.json of the k8s.io/kubernetes module, kept by deploy/local/k8s-tools):
// types, required fields, int-or-string and quantities, list-map keys, and unknown fields. Every object
// that lists its properties is closed (additionalProperties: false), as the API server's strict field
// validation is, so a misspelled field (`readinessprobe`, `toleration`, `readOnlyRootFilesytem`) fails.
// What it cannot see (enum values, cross-field rules, defaulting) the API-server tests catch
// (test/deploy/cluster.test.ts applies every object to a real kube-apiserver).
import { readFileSync } from "node:fs";
import type { ErrorObject, ValidateFunction } from "ajv";
import { newAjv } from "../support/crd-schema.js";
import { openApiDocumentPath } from "../support/kube-tools.js";
import { isObject, resourceId, type Json, type JsonObject, type Resource } from "./kustomize-lite.js";

const DEFINITIONS_ID = "https://simgate.invalid/kubernetes-openapi.json";
const INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity";

interface CoreSchemas {
  /** "apps/v1/Deployment" -> compiled validator. */
  readonly byType: Map<string, () => ValidateFunction>;
}

/** Closes every object schema that declares its properties (swagger 2 has no way to say so itself),
 *  walking the schema tree only: properties, items, additionalProperties and the *Of branches. */
function close(node: Json | undefined): void {
  if (!isObject(node)) return;
  const props = node["properties"];
  if (isObject(props)) {
    if (node["additionalProperties"] === undefined) node["additionalProperties"] = false;
    for (const child of Object.values(props)) close(child);
  }
  close(node["items"]);
  if (isObject(node["additionalProperties"])) close(node["additionalProperties"]);
  for (const key of ["allOf", "anyOf", "oneOf"]) {
    const branches = node[key];
    if (Array.isArray(branches)) for (const b of branches) close(b);
  }
}

/** The swagger definitions as JSON schemas: `$ref`s kept (they point into the same document), objects
 *  closed, and the two string-typed definitions that YAML writes as numbers opened to them. */
function definitions(document: JsonObject): JsonObject {
  const defs = structuredClone(document["definitions"]) as JsonObject;
  for (const def of Object.values(defs)) close(def);
  defs[INT_OR_STRING] = { anyOf: [{ type: "string" }, { type: "integer" }] };
  defs[QUANTITY] = { anyOf: [{ type: "string" }, { type: "number" }] };
  return defs;
}

let loaded: CoreSchemas | undefined;

function schemas(): CoreSchemas {
  if (loaded) return loaded;
  const document = JSON.parse(readFileSync(openApiDocumentPath(), "utf8")) as JsonObject;
  const defs = definitions(document);
  const ajv = newAjv();
  ajv.addSchema({ $id: DEFINITIONS_ID, definitions: defs });
  const byType = new Map<string, () => ValidateFunction>();
  for (const [name, def] of Object.entries(document["definitions"] as JsonObject)) {
    if (!isObject(def)) continue;
    const gvks = def["x-kubernetes-group-version-kind"];
    if (!Array.isArray(gvks)) continue;
    let compiled: ValidateFunction | undefined;
    const get = (): ValidateFunction => (compiled ??= ajv.compile({ $ref: `${DEFINITIONS_ID}#/definitions/${name}` }));
    for (const gvk of gvks) {
      if (!isObject(gvk)) continue;
      const apiVersion = gvk["group"] ? `${String(gvk["group"])}/${String(gvk["version"])}` : String(gvk["version"]);
      byType.set(`${apiVersion}/${String(gvk["kind"])}`, get);
    }
  }
  loaded = { byType };
  return loaded;
}

/** True when the release's API serves this apiVersion and kind (a core kind, not a custom resource). */
export function isKubernetesType(apiVersion: string, kind: string): boolean {
  return schemas().byType.has(`${apiVersion}/${kind}`);
}

function describe(error: ErrorObject): string {
  const where = error.instancePath === "" ? "(root)" : error.instancePath;
  const params = error.params as Record<string, unknown>;
  if (error.keyword === "additionalProperties") return `${where}: unknown field "${String(params["additionalProperty"])}"`;
  if (error.keyword.startsWith("x-kubernetes-")) return `${where}: violates ${error.keyword} (${JSON.stringify(error.schema)})`;
  return `${where}: ${error.message ?? error.keyword}`;
}

/** Problems, one line each ("<resource id>: <path>: <message>"), for every resource; a kind the
 *  release does not serve is a problem too. */
export function coreSchemaProblems(resources: readonly Resource[]): string[] {
  const problems: string[] = [];
  for (const r of resources) {
    const get = schemas().byType.get(`${r.apiVersion}/${r.kind}`);
    if (get === undefined) {
      problems.push(`${resourceId(r)}: no Kubernetes schema for ${r.apiVersion} ${r.kind}`);
      continue;
    }
    const validate = get();
    if (validate(r)) continue;
    // anyOf reports each branch; its own "must match a schema in anyOf" line says enough.
    const errors = (validate.errors ?? []).filter((e) => !e.schemaPath.includes("/anyOf/"));
    for (const line of new Set(errors.map(describe))) problems.push(`${resourceId(r)}: ${line}`);
  }
  return problems;
}
