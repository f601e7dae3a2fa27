// Where the Kubernetes tools of the tests are: kubectl, kube-apiserver and etcd,
// built by deploy/local/k8s-tools (run by bash scripts/setup) into
// $SIMGATE_CACHE/kubernetes-<KUBERNETES_VERSION>/bin, with the release's OpenAPI document beside them.
// A missing tool is an error that says how to get it: no test skips for want of one.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export class KubeToolMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeToolMissingError";
  }
}

/** KUBERNETES_VERSION of deploy/local/versions.env, e.g. "1.33.4". */
export function kubernetesVersion(): string {
  const env = readFileSync(join(REPO_ROOT, "deploy/local/versions.env"), "utf8");
  const version = /^KUBERNETES_VERSION=(\S+)$/m.exec(env)?.[1];
  if (version === undefined) throw new Error("deploy/local/versions.env has no KUBERNETES_VERSION");
  return version;
}

/** $SIMGATE_CACHE/kubernetes-<version>, where deploy/local/k8s-tools builds. */
export function kubeToolsDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env["SIMGATE_CACHE"] || join(homedir(), ".cache", "simgate");
  return join(cache, `kubernetes-${kubernetesVersion()}`);
}

function mustExist(path: string, what: string): string {
  if (!existsSync(path)) {
    throw new KubeToolMissingError(`${what} not found at ${path}: \`bash scripts/setup\` builds it (deploy/local/k8s-tools)`);
  }
  return path;
}

/** A binary of the build: "kubectl", "kube-apiserver" or "etcd". */
export function kubeTool(name: "kubectl" | "kube-apiserver" | "etcd"): string {
  return mustExist(join(kubeToolsDir(), "bin", name), name);
}

/** kubectl: SIMGATE_KUBECTL when set, else the one deploy/local/k8s-tools built. */
export function kubectlPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env["SIMGATE_KUBECTL"];
  if (fromEnv) return mustExist(fromEnv, "kubectl (SIMGATE_KUBECTL)");
  return kubeTool("kubectl");
}

/** The Kubernetes OpenAPI v2 document of the same release (api/openapi-spec/swagger.json of k8s.io/kubernetes). */
export function openApiDocumentPath(): string {
  return mustExist(join(kubeToolsDir(), "swagger.json"), "the Kubernetes OpenAPI document");
}
