// Validates core Kubernetes resources (Deployment, Service, ConfigMap, Role, PodDisruptionBudget, ...)
// against the Kubernetes API's OpenAPI schemas as packaged by kubernetes-models: types, enums and
// required fields. It does not reject unknown fields; k8s-checks.ts covers the cross-resource sense.
import { resourceId, type Resource } from "./kustomize-lite.js";

type Model = { validate(): void };
type ModelClass = new (data: unknown) => Model;

/** The kubernetes-models module of an apiVersion and kind: "apps/v1" Deployment -> kubernetes-models/apps/v1/Deployment. */
function modulePath(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Problems, one per line, for every resource; a kind kubernetes-models does not know is a problem too. */
export async function coreSchemaProblems(resources: readonly Resource[]): Promise<string[]> {
  const problems: string[] = [];
  for (const r of resources) {
    let Model: ModelClass | undefined;
    try {
      const mod = (await import(modulePath(r.apiVersion, r.kind))) as Record<string, unknown>;
      Model = mod[r.kind] as ModelClass | undefined;
    } catch {
      Model = undefined;
    }
    if (Model === undefined) {
      problems.push(`${resourceId(r)}: no Kubernetes schema for ${r.apiVersion} ${r.kind}`);
      continue;
    }
    try {
      new Model(r).validate();
    } catch (err) {
      problems.push(`${resourceId(r)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}
