// Runs the WAP job in a cluster: creates a SparkApplication for the Spark operator through the
// Kubernetes API (service-account bearer token, the cluster CA), then follows its
// status.applicationState until COMPLETED or FAILED. A completed or stopped run's resource is deleted.
import { MAINTENANCE_JOB, systemClock, type Clock, type JobLauncher, type JobOutcome, type JobRequest } from "./job-types.js";
import { KubernetesClient, type ApiResponse } from "./kubernetes-client.js";
import { wapRunId } from "./local-launcher.js";
import { sparkApplicationFor, type SparkApplicationOptions } from "./spark-application.js";

export interface KubernetesLauncherOptions {
  apiUrl: string;
  namespace: string;
  /** Read before every request: projected service-account tokens rotate. */
  tokenFile: string;
  /** PEM of the API server's CA; undefined only for a plain-HTTP stand-in in tests. */
  caFile?: string | undefined;
  image: string;
  serviceAccount: string;
  executorInstances: number;
  pollMs: number;
}

const API_PATH = "/apis/sparkoperator.k8s.io/v1beta2";
// Terminal failures (FAILING and the like are on the way there: keep polling).
const FAILED_STATES = new Set(["FAILED", "SUBMISSION_FAILED"]);

/** The API server's Status message of a refusal, else the start of the body. */
function statusMessage(response: ApiResponse): string {
  const message = (response.body as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : response.text.slice(0, 300);
}

export class KubernetesLauncher implements JobLauncher {
  readonly kind = "kubernetes";
  private readonly client: KubernetesClient;

  constructor(
    private readonly options: KubernetesLauncherOptions,
    private readonly clock: Clock = systemClock,
  ) {
    this.client = new KubernetesClient(options);
  }

  private collection(): string {
    return `${API_PATH}/namespaces/${encodeURIComponent(this.options.namespace)}/sparkapplications`;
  }

  private call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    return this.client.call(method, path, body);
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        this.clock.clearTimeout(timer);
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  async launch(request: JobRequest, signal: AbortSignal): Promise<JobOutcome> {
    if (request.topic === MAINTENANCE_JOB) {
      return { ok: false, status: "failed", retryable: false, error: "in a cluster, maintenance is the ScheduledSparkApplication simgate-maintenance (deploy/k8s/base/spark-jobs)" };
    }
    const runId = wapRunId(request);
    const resource = sparkApplicationFor({ topic: request.topic, wapRunId: runId, jobId: request.id }, this.resourceOptions());
    const name = (resource["metadata"] as { name: string }).name;
    try {
      const created = await this.call("POST", this.collection(), resource);
      // A full ResourceQuota (deploy/k8s/base/spark-jobs/quota.yaml) clears as finished runs expire.
      if (created.status === 403 && /exceeded quota/.test(created.text)) {
        return { ok: false, status: "failed", retryable: true, error: `SparkApplication quota full, retrying later: ${statusMessage(created)}` };
      }
      if (created.status === 401 || created.status === 403) {
        return { ok: false, status: "failed", retryable: false, error: `Kubernetes API refused the service account (${created.status}): ${statusMessage(created)}` };
      }
      if (created.status === 422 || created.status === 400) {
        return { ok: false, status: "failed", retryable: false, error: `SparkApplication rejected (${created.status}): ${created.text.slice(0, 500)}` };
      }
      if (created.status !== 201 && created.status !== 200 && created.status !== 409) {
        return { ok: false, status: "failed", retryable: true, error: `creating SparkApplication ${name}: HTTP ${created.status} ${created.text.slice(0, 300)}` };
      }
      for (;;) {
        if (signal.aborted) {
          await this.call("DELETE", `${this.collection()}/${name}`).catch(() => undefined);
          return { ok: false, status: "cancelled", retryable: true, error: signal.reason instanceof Error ? signal.reason.message : "stopped", result: { application: name, wapRunId: runId } };
        }
        const got = await this.call("GET", `${this.collection()}/${name}`);
        if (got.status === 404) return { ok: false, status: "failed", retryable: true, error: `SparkApplication ${name} disappeared`, result: { application: name, wapRunId: runId } };
        const app = got.body as { status?: { applicationState?: { state?: string; errorMessage?: string } } } | undefined;
        const state = app?.status?.applicationState?.state ?? "";
        if (state === "COMPLETED") {
          // Deleted at once (its driver pod goes with it), so the namespace's ResourceQuota counts runs in
          // progress rather than an hour of finished ones; the run's record is its Nessie commit. A failed
          // run is kept until the operator's TTL, for its driver's logs. If the delete fails, the TTL still
          // removes it.
          await this.call("DELETE", `${this.collection()}/${name}`).catch(() => undefined);
          return { ok: true, status: "completed", retryable: false, result: { application: name, wapRunId: runId, state } };
        }
        if (FAILED_STATES.has(state)) {
          return {
            ok: false,
            status: "failed",
            retryable: true,
            error: `SparkApplication ${name} ${state}: ${app?.status?.applicationState?.errorMessage ?? "no message"}`,
            result: { application: name, wapRunId: runId, state },
          };
        }
        await this.sleep(this.options.pollMs, signal);
      }
    } catch (err) {
      return { ok: false, status: "failed", retryable: true, error: `Kubernetes API: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  private resourceOptions(): SparkApplicationOptions {
    return {
      namespace: this.options.namespace,
      image: this.options.image,
      serviceAccount: this.options.serviceAccount,
      executorInstances: this.options.executorInstances,
    };
  }
}
