// Renders deploy/ kustomizations with real kustomize (`kubectl kustomize`), for the offline manifest
// tests: configMapGenerator hashes, the images Component, patches - exactly what Argo CD and
// `kubectl apply -k` produce. kubectl comes from the project's setup (deploy/local/k8s-tools); without it
// the tests fail, naming what to run (they never skip).
import { spawnSync } from "node:child_process";
import { loadAll } from "js-yaml";
import { kubectlPath } from "../support/kube-tools.js";
import { isObject, KustomizeLiteError, type RenderedResource, type Resource } from "./kustomize-lite.js";

const cache = new Map<string, RenderedResource[]>();

/** Every object `kubectl kustomize <dir>` renders (source: the directory). Cached per directory. */
export function renderWithKustomize(dir: string, options: { cache?: boolean } = {}): RenderedResource[] {
  const hit = options.cache === false ? undefined : cache.get(dir);
  if (hit !== undefined) return structuredClone(hit);
  const kubectl = kubectlPath(); // throws, naming what to run, when setup has not built it
  const run = spawnSync(kubectl, ["kustomize", dir], { encoding: "utf8", timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (run.error !== undefined) {
    throw new KustomizeLiteError(`cannot run ${kubectl} (${run.error.message}): run bash scripts/setup, which builds kubectl, or set SIMGATE_KUBECTL`);
  }
  if (run.status !== 0) throw new KustomizeLiteError(`kubectl kustomize ${dir} failed: ${run.stderr.trim()}`);
  const out: RenderedResource[] = [];
  for (const doc of loadAll(run.stdout)) {
    if (doc === null || doc === undefined) continue;
    if (!isObject(doc) || typeof doc["kind"] !== "string" || !isObject(doc["metadata"])) throw new KustomizeLiteError(`kubectl kustomize ${dir}: an object without kind or metadata`);
    out.push({ resource: doc as Resource, source: dir });
  }
  cache.set(dir, out);
  return structuredClone(out);
}
