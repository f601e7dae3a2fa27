// Validates custom resources against the real CustomResourceDefinitions of the operators that deploy/
// targets (Strimzi, the Spark operator, Argo CD), offline. The CRD files live in <repo>/../shared/crds
// (CI copies shared/ beside the clone) or wherever SIMGATE_CRDS_DIR points.
//
//   const spark = loadCrdValidator("SparkApplication");
//   const result = spark.validate(resource);   // { valid, errors: ["/spec/type: must be equal to ..."] }
//
// What the API server would check and this does too: the openAPIV3Schema (types, enums, required,
// patterns, bounds), unknown fields where the schema does not preserve them (as `kubectl apply` with
// strict field validation does), int-or-string, int32/int64/date-time formats, and the uniqueness that
// x-kubernetes-list-type "set" and "map" demand. What it cannot: the CEL rules of x-kubernetes-validations
// (listed in `celRules` so a caller can see what went unchecked) and admission webhooks.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { loadAll } from "js-yaml";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export class CrdsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CrdsUnavailableError";
  }
}

/** The directory holding the CRD YAML files: SIMGATE_CRDS_DIR, else <repo>/../shared/crds. Throws a
 *  CrdsUnavailableError naming both when it does not exist or holds no CRD. */
export function locateCrdsDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env["SIMGATE_CRDS_DIR"];
  const dir = fromEnv !== undefined && fromEnv !== "" ? resolve(fromEnv) : resolve(REPO_ROOT, "..", "shared", "crds");
  const how = fromEnv ? "SIMGATE_CRDS_DIR" : "the default <repo>/../shared/crds (set SIMGATE_CRDS_DIR to override)";
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CrdsUnavailableError(
      `CRD schemas not found: ${dir} does not exist (from ${how}). The deploy/ manifests cannot be validated ` +
        "without the operators' CustomResourceDefinitions (Strimzi 1.2.0, Spark operator v2.5.2, Argo CD v3.5.1).",
    );
  }
  if (!readdirSync(dir).some((f) => /\.ya?ml$/.test(f))) {
    throw new CrdsUnavailableError(`CRD schemas not found: ${dir} (from ${how}) holds no .yaml file.`);
  }
  return dir;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface CrdVersion {
  readonly group: string;
  readonly kind: string;
  readonly version: string;
  readonly apiVersion: string;
  readonly storage: boolean;
  readonly file: string;
  readonly schema: JsonObject;
}

/** Where deploy/local/crds (run by scripts/setup) puts the CRDs that ../shared/crds does not hold
 *  (Prometheus operator PodMonitor/ServiceMonitor, Argo CD AppProject): $SIMGATE_CACHE/crds. */
export function extraCrdsDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env["SIMGATE_CACHE"] !== undefined && env["SIMGATE_CACHE"] !== "" ? env["SIMGATE_CACHE"] : join(homedir(), ".cache", "simgate");
  return join(cache, "crds");
}

/** Every served version of every CRD in the directory (and in extraCrdsDir(), when it exists), keyed by
 *  `apiVersion/kind`. */
export function readCrds(dir: string = locateCrdsDir()): Map<string, CrdVersion> {
  const out = new Map<string, CrdVersion>();
  const extra = extraCrdsDir();
  const files = [dir, ...(existsSync(extra) ? [extra] : [])].flatMap((d) =>
    readdirSync(d)
      .sort()
      .map((name) => join(d, name)),
  );
  for (const file of files) {
    if (!/\.ya?ml$/.test(file)) continue;
    for (const doc of loadAll(readFileSync(file, "utf8"))) {
      if (!isObject(doc) || doc["kind"] !== "CustomResourceDefinition") continue;
      const spec = doc["spec"];
      if (!isObject(spec) || !isObject(spec["names"]) || !Array.isArray(spec["versions"])) continue;
      const group = String(spec["group"]);
      const kind = String(spec["names"]["kind"]);
      for (const v of spec["versions"]) {
        if (!isObject(v) || v["served"] !== true) continue;
        const schema = isObject(v["schema"]) ? v["schema"]["openAPIV3Schema"] : undefined;
        if (!isObject(schema)) continue;
        const version = String(v["name"]);
        const apiVersion = `${group}/${version}`;
        out.set(`${apiVersion}/${kind}`, { group, kind, version, apiVersion, storage: v["storage"] === true, file, schema });
      }
    }
  }
  return out;
}

/** Kubernetes prunes (or, with strict field validation, rejects) fields a structural schema does not
 *  declare. JSON Schema allows them unless told otherwise, so close every object that lists its
 *  properties and does not preserve unknown fields. Only the structural tree is walked (properties,
 *  items, additionalProperties): value validations in anyOf/oneOf/allOf/not must stay open. */
function closeStructuralObjects(node: JsonObject): void {
  const props = node["properties"];
  if (
    node["type"] === "object" &&
    isObject(props) &&
    node["x-kubernetes-preserve-unknown-fields"] !== true &&
    node["additionalProperties"] === undefined
  ) {
    node["additionalProperties"] = false;
  }
  if (isObject(props)) for (const child of Object.values(props)) if (isObject(child)) closeStructuralObjects(child);
  const items = node["items"];
  if (isObject(items)) closeStructuralObjects(items);
  const additional = node["additionalProperties"];
  if (isObject(additional)) closeStructuralObjects(additional);
}

function keyTuple(item: unknown, keys: readonly string[]): string {
  return JSON.stringify(keys.map((k) => (isObject(item) ? (item[k] ?? null) : null)));
}

export function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);
  // Kubernetes formats with no check here; declared so that compiling never fails on them.
  for (const f of ["byte", "int-or-string", "quantity", "duration", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "password", "date", "binary", "double", "float"]) {
    ajv.addFormat(f, true);
  }
  ajv.addKeyword({
    keyword: "x-kubernetes-int-or-string",
    schemaType: "boolean",
    errors: true,
    validate: function intOrString(enabled: boolean, data: unknown): boolean {
      if (!enabled) return true;
      return typeof data === "string" || (typeof data === "number" && Number.isInteger(data));
    },
  });
  ajv.addKeyword({
    keyword: "x-kubernetes-list-type",
    schemaType: "string",
    validate: function listType(type: string, data: unknown): boolean {
      if (type !== "set" || !Array.isArray(data)) return true;
      return new Set(data.map((d) => JSON.stringify(d))).size === data.length;
    },
  });
  ajv.addKeyword({
    keyword: "x-kubernetes-list-map-keys",
    schemaType: "array",
    validate: function listMapKeys(keys: string[], data: unknown): boolean {
      if (!Array.isArray(data)) return true;
      return new Set(data.map((d) => keyTuple(d, keys))).size === data.length;
    },
  });
  // Annotations the API server acts on but that constrain nothing a JSON-schema validator can check.
  for (const keyword of ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-map-type", "x-kubernetes-embedded-resource", "x-kubernetes-validations"]) {
    ajv.addKeyword({ keyword });
  }
  return ajv;
}

function collectCelRules(node: Json, path: string, out: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => collectCelRules(n, `${path}/${i}`, out));
    return;
  }
  if (!isObject(node)) return;
  const rules = node["x-kubernetes-validations"];
  if (Array.isArray(rules)) for (const r of rules) if (isObject(r)) out.push(`${path}: ${String(r["rule"])}`);
  for (const [k, v] of Object.entries(node)) if (k !== "x-kubernetes-validations") collectCelRules(v, `${path}/${k}`, out);
}

export interface CrdValidationResult {
  readonly valid: boolean;
  /** One line per problem: "<instance path>: <message>". */
  readonly errors: string[];
}

export interface CrdValidator {
  readonly kind: string;
  readonly apiVersion: string;
  readonly file: string;
  /** CEL rules (x-kubernetes-validations) in the schema that this validator does not evaluate. */
  readonly celRules: readonly string[];
  validate(resource: unknown): CrdValidationResult;
}

function describe(error: ErrorObject): string {
  const where = error.instancePath === "" ? "(root)" : error.instancePath;
  const params = error.params as Record<string, unknown>;
  if (error.keyword === "additionalProperties") return `${where}: unknown field "${String(params["additionalProperty"])}"`;
  if (error.keyword === "enum") return `${where}: ${error.message ?? "invalid"} ${JSON.stringify(params["allowedValues"])}`;
  if (error.keyword.startsWith("x-kubernetes-")) return `${where}: violates ${error.keyword} (${JSON.stringify(error.schema)})`;
  return `${where}: ${error.message ?? error.keyword}`;
}

const cache = new Map<string, CrdValidator>();

/**
 * A validator for one custom resource kind ("Kafka", "SparkApplication", ...). With `apiVersion`
 * ("sparkoperator.k8s.io/v1beta2") that served version is used; without it, the storage version.
 * The resource's own apiVersion and kind are checked too. Compiled once per process and cached.
 */
export function loadCrdValidator(kind: string, apiVersion?: string, crdsDir?: string): CrdValidator {
  const dir = crdsDir ?? locateCrdsDir();
  const cacheKey = `${dir}|${apiVersion ?? ""}|${kind}`;
  const cached = cache.get(cacheKey);
  if (cached) return cached;

  const candidates = [...readCrdsCached(dir).values()].filter((c) => c.kind === kind && (apiVersion === undefined || c.apiVersion === apiVersion));
  const crd = candidates.find((c) => apiVersion !== undefined || c.storage) ?? candidates[0];
  if (crd === undefined) {
    throw new CrdsUnavailableError(`no CRD for kind ${kind}${apiVersion ? ` (${apiVersion})` : ""} in ${dir}`);
  }
  const schema = structuredClone(crd.schema);
  closeStructuralObjects(schema);
  const celRules: string[] = [];
  collectCelRules(crd.schema, "", celRules);
  const compiled: ValidateFunction = newAjv().compile(schema);

  const validator: CrdValidator = {
    kind: crd.kind,
    apiVersion: crd.apiVersion,
    file: crd.file,
    celRules,
    validate(resource: unknown): CrdValidationResult {
      const errors: string[] = [];
      if (!isObject(resource)) return { valid: false, errors: ["(root): not an object"] };
      if (resource["apiVersion"] !== crd.apiVersion) errors.push(`/apiVersion: expected ${crd.apiVersion}, got ${JSON.stringify(resource["apiVersion"])}`);
      if (resource["kind"] !== crd.kind) errors.push(`/kind: expected ${crd.kind}, got ${JSON.stringify(resource["kind"])}`);
      if (!compiled(resource)) for (const e of compiled.errors ?? []) errors.push(describe(e));
      return { valid: errors.length === 0, errors };
    },
  };
  cache.set(cacheKey, validator);
  return validator;
}

/** Validates any resource whose apiVersion/kind has a CRD in the directory; `undefined` when none does
 *  (a core kind, or an operator we hold no CRD for). */
export function validateCustomResource(resource: unknown, crdsDir?: string): CrdValidationResult | undefined {
  if (!isObject(resource)) return undefined;
  const apiVersion = resource["apiVersion"];
  const kind = resource["kind"];
  if (typeof apiVersion !== "string" || typeof kind !== "string") return undefined;
  const dir = crdsDir ?? locateCrdsDir();
  if (!readCrdsCached(dir).has(`${apiVersion}/${kind}`)) return undefined;
  return loadCrdValidator(kind, apiVersion, dir).validate(resource);
}

const crdIndexCache = new Map<string, Map<string, CrdVersion>>();
function readCrdsCached(dir: string): Map<string, CrdVersion> {
  let index = crdIndexCache.get(dir);
  if (!index) {
    index = readCrds(dir);
    crdIndexCache.set(dir, index);
  }
  return index;
}

/** apiVersion/kind pairs for which the directory holds a schema, e.g. "kafka.strimzi.io/v1/Kafka". */
export function knownCustomResourceTypes(crdsDir?: string): string[] {
  return [...readCrdsCached(crdsDir ?? locateCrdsDir()).keys()].sort();
}
