// The manifest tests' shared types and file helpers (readManifestFile, reachableFiles, resourceId). The
// manifests themselves are rendered with real kustomize (render.ts), since deploy/ uses configMapGenerator,
// Components and image transformers. renderKustomization below is a small renderer kept for quick checks
// of hand-made fixtures; it understands only this subset and refuses anything else loudly:
//   - `resources`: YAML files (one or more documents) and directories holding a kustomization;
//   - `patches`: inline JSON 6902 patches (`op` add, replace or remove) with a `target` selecting by
//     kind, name, namespace, group and version - applied in order, each target must match something.
// Resource ids (group/kind/namespace/name) must be unique in the result, as kustomize demands.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { load, loadAll } from "js-yaml";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Resource {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: JsonObject;
  readonly [key: string]: Json;
}

export interface RenderedResource {
  readonly resource: Resource;
  /** The file the resource was read from. */
  readonly source: string;
}

export class KustomizeLiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KustomizeLiteError";
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SUPPORTED_KEYS = new Set(["apiVersion", "kind", "resources", "patches"]);
const SUPPORTED_TARGET_KEYS = new Set(["kind", "name", "namespace", "group", "version"]);

export function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => join(dir, f)).find((f) => existsSync(f));
}

export function resourceId(r: Resource): string {
  const group = r.apiVersion.includes("/") ? r.apiVersion.split("/")[0] : "";
  const ns = typeof r.metadata["namespace"] === "string" ? r.metadata["namespace"] : "";
  const name = typeof r.metadata["name"] === "string" ? r.metadata["name"] : `(generateName ${String(r.metadata["generateName"])})`;
  return `${group}/${r.kind}/${ns}/${name}`;
}

/** Reads every YAML document of a manifest file; each must be an object with apiVersion, kind and metadata. */
export function readManifestFile(file: string): RenderedResource[] {
  const out: RenderedResource[] = [];
  for (const doc of loadAll(readFileSync(file, "utf8"))) {
    if (doc === null || doc === undefined) continue;
    if (!isObject(doc)) throw new KustomizeLiteError(`${file}: a document is not a mapping`);
    const { apiVersion, kind, metadata } = doc;
    if (typeof apiVersion !== "string" || apiVersion === "") throw new KustomizeLiteError(`${file}: a document has no apiVersion`);
    if (typeof kind !== "string" || kind === "") throw new KustomizeLiteError(`${file}: a document has no kind`);
    if (!isObject(metadata)) throw new KustomizeLiteError(`${file}: ${kind} has no metadata`);
    out.push({ resource: doc as Resource, source: file });
  }
  return out;
}

function decodePointer(path: string): string[] {
  if (!path.startsWith("/")) throw new KustomizeLiteError(`JSON pointer "${path}" must start with "/"`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** Applies RFC 6902 add/replace/remove to a deep copy of `doc`. */
export function applyJsonPatch(doc: JsonObject, ops: readonly unknown[], where: string): JsonObject {
  const root = structuredClone(doc);
  for (const [i, op] of ops.entries()) {
    const at = `${where} op ${i}`;
    if (!isObject(op) || typeof op["op"] !== "string" || typeof op["path"] !== "string") {
      throw new KustomizeLiteError(`${at}: each operation needs "op" and "path"`);
    }
    const kind = op["op"];
    if (kind !== "add" && kind !== "replace" && kind !== "remove") {
      throw new KustomizeLiteError(`${at}: op "${kind}" is not supported by the test renderer (add, replace, remove)`);
    }
    if (kind !== "remove" && !("value" in op)) throw new KustomizeLiteError(`${at}: "${kind}" needs a value`);
    const tokens = decodePointer(op["path"]);
    const last = tokens.pop();
    if (last === undefined) throw new KustomizeLiteError(`${at}: cannot ${kind} the whole document`);
    let parent: Json = root;
    for (const t of tokens) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(t)] : isObject(parent) ? parent[t] : undefined;
      if (next === undefined) throw new KustomizeLiteError(`${at}: path ${op["path"]} does not exist (at "${t}")`);
      parent = next;
    }
    const value = structuredClone(op["value"] as Json);
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length || (kind !== "add" && index >= parent.length)) {
        throw new KustomizeLiteError(`${at}: index ${last} out of range in ${op["path"]}`);
      }
      if (kind === "add") parent.splice(index, 0, value);
      else if (kind === "replace") parent[index] = value;
      else parent.splice(index, 1);
    } else if (isObject(parent)) {
      if (kind !== "add" && !(last in parent)) throw new KustomizeLiteError(`${at}: path ${op["path"]} does not exist`);
      if (kind === "remove") delete parent[last];
      else parent[last] = value;
    } else {
      throw new KustomizeLiteError(`${at}: the parent of ${op["path"]} is not an object or array`);
    }
  }
  return root;
}

function matchesTarget(r: Resource, target: JsonObject): boolean {
  const [group, version] = r.apiVersion.includes("/") ? (r.apiVersion.split("/") as [string, string]) : ["", r.apiVersion];
  if (target["kind"] !== undefined && target["kind"] !== r.kind) return false;
  if (target["name"] !== undefined && target["name"] !== r.metadata["name"]) return false;
  if (target["namespace"] !== undefined && target["namespace"] !== r.metadata["namespace"]) return false;
  if (target["group"] !== undefined && target["group"] !== group) return false;
  if (target["version"] !== undefined && target["version"] !== version) return false;
  return true;
}

/** Renders the kustomization in `dir` (a directory holding kustomization.yaml). */
export function renderKustomization(dir: string, seen: readonly string[] = []): RenderedResource[] {
  const abs = resolve(dir);
  if (seen.includes(abs)) throw new KustomizeLiteError(`kustomization cycle: ${[...seen, abs].join(" -> ")}`);
  const file = kustomizationFile(abs);
  if (file === undefined) throw new KustomizeLiteError(`${abs}: no kustomization.yaml`);
  const k = load(readFileSync(file, "utf8"));
  if (!isObject(k)) throw new KustomizeLiteError(`${file}: not a mapping`);
  if (k["kind"] !== undefined && k["kind"] !== "Kustomization") {
    throw new KustomizeLiteError(`${file}: kind ${String(k["kind"])} is not supported by the test renderer`);
  }
  const unsupported = Object.keys(k).filter((key) => !SUPPORTED_KEYS.has(key));
  if (unsupported.length > 0) {
    throw new KustomizeLiteError(
      `${file}: ${unsupported.join(", ")} not supported by the test renderer (test/deploy/kustomize-lite.ts); ` +
        "keep deploy/ kustomizations to resources + inline JSON 6902 patches, or teach the renderer",
    );
  }

  const resources = k["resources"] ?? [];
  if (!Array.isArray(resources)) throw new KustomizeLiteError(`${file}: resources must be a list`);
  let out: RenderedResource[] = [];
  for (const entry of resources) {
    if (typeof entry !== "string") throw new KustomizeLiteError(`${file}: a resources entry is not a string`);
    if (/^[a-z]+:\/\//i.test(entry) || entry.includes("?ref=")) {
      throw new KustomizeLiteError(`${file}: remote resource ${entry} is not supported (deploy/ vendors nothing)`);
    }
    const path = resolve(abs, entry);
    if (!existsSync(path)) throw new KustomizeLiteError(`${file}: resource ${entry} does not exist`);
    out.push(...(statSync(path).isDirectory() ? renderKustomization(path, [...seen, abs]) : readManifestFile(path)));
  }

  const patches = k["patches"] ?? [];
  if (!Array.isArray(patches)) throw new KustomizeLiteError(`${file}: patches must be a list`);
  for (const [i, p] of patches.entries()) {
    const where = `${file} patches[${i}]`;
    if (!isObject(p) || !isObject(p["target"]) || typeof p["patch"] !== "string") {
      throw new KustomizeLiteError(`${where}: only inline patches with a target are supported ({target, patch})`);
    }
    const target = p["target"];
    const badKeys = Object.keys(target).filter((t) => !SUPPORTED_TARGET_KEYS.has(t));
    if (badKeys.length > 0) throw new KustomizeLiteError(`${where}: target keys ${badKeys.join(", ")} not supported`);
    const ops = load(p["patch"]);
    if (!Array.isArray(ops)) {
      throw new KustomizeLiteError(`${where}: only JSON 6902 patches (a list of operations) are supported, not strategic merge`);
    }
    let matched = 0;
    out = out.map((rr) => {
      if (!matchesTarget(rr.resource, target)) return rr;
      matched += 1;
      return { ...rr, resource: applyJsonPatch(rr.resource, ops, `${where} on ${resourceId(rr.resource)}`) as Resource };
    });
    if (matched === 0) throw new KustomizeLiteError(`${where}: target ${JSON.stringify(target)} matches no resource`);
  }

  const ids = new Map<string, string>();
  for (const rr of out) {
    if (rr.resource.metadata["name"] === undefined) continue; // generateName: unique by construction
    const id = resourceId(rr.resource);
    const before = ids.get(id);
    if (before !== undefined) throw new KustomizeLiteError(`${file}: ${id} is defined twice (${before} and ${rr.source})`);
    ids.set(id, rr.source);
  }
  return out;
}

/** Files a kustomization reaches (manifests and kustomization files), for finding orphans. */
export function reachableFiles(dir: string, acc: Set<string> = new Set()): Set<string> {
  const file = kustomizationFile(resolve(dir));
  if (file === undefined || acc.has(file)) return acc;
  acc.add(file);
  const k = load(readFileSync(file, "utf8"));
  // resources and components (directories or files), and a component's configurations files.
  const listed = (key: string): unknown[] => (isObject(k) && Array.isArray(k[key]) ? k[key] : []);
  const resources = [...listed("resources"), ...listed("components"), ...listed("configurations")];
  for (const entry of resources) {
    if (typeof entry !== "string") continue;
    const path = resolve(dir, entry);
    if (!existsSync(path)) continue;
    if (statSync(path).isDirectory()) reachableFiles(path, acc);
    else acc.add(path);
  }
  return acc;
}

export function rel(root: string, path: string): string {
  return relative(root, path);
}
