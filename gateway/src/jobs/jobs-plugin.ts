// Wires the job driver into the gateway as a GatewayPlugin: records produced and run ends feed the
// driver, GET /jobs shows it, its metrics join /metrics, and stopping the gateway stops running jobs.
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { Registry } from "prom-client";
import type { GatewayConfig, JobsConfig } from "../config/schema.js";
import type { GatewayPlugin } from "../plugins/plugin-api.js";
import type { Logger } from "../telemetry/logger.js";
import { JobDriver, type JobDriverObserver } from "./job-driver.js";
import { jobsRoute } from "./jobs-http.js";
import { JobsMetrics } from "./jobs-metrics.js";
import type { Clock, JobLauncher, JobOutcome } from "./job-types.js";
import { KubernetesClient } from "./kubernetes-client.js";
import { KubernetesLauncher } from "./kubernetes-launcher.js";
import { LeaderLease } from "./leader-lease.js";
import { LocalLauncher } from "./local-launcher.js";

export interface JobsPlugin extends GatewayPlugin {
  readonly driver: JobDriver;
  registerMetrics(registry: Registry): void;
}

export interface JobsPluginOptions {
  config: JobsConfig;
  /** The gateway's event topics (its topic map's values): the default job topics. */
  eventTopics: readonly string[];
  launcher?: JobLauncher;
  clock?: Clock;
  logger?: Logger;
  /** This replica's name in leader election (default SIMGATE_GATEWAY_ID, else the host name). */
  identity?: string;
}

const disabledLauncher: JobLauncher = {
  kind: "none",
  launch: (): Promise<JobOutcome> => Promise.resolve({ ok: false, status: "disabled", retryable: false, error: "no launcher configured (SIMGATE_JOBS_LAUNCHER)" }),
};

const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export function launcherFor(config: JobsConfig): JobLauncher {
  switch (config.launcher) {
    case "none":
      return disabledLauncher;
    case "local":
      return new LocalLauncher({ python: config.local.python, wapConfigFile: config.local.wapConfigFile, env: config.local.env, warm: config.local.warm, warmIdleMs: config.local.warmIdleMs });
    case "kubernetes": {
      const k = config.kubernetes;
      const namespace = k.namespace ?? (existsSync(SA_NAMESPACE_FILE) ? readFileSync(SA_NAMESPACE_FILE, "utf8").trim() : "simgate");
      return new KubernetesLauncher({ ...k, namespace, caFile: existsSync(k.caFile) ? k.caFile : undefined });
    }
  }
}

/** With the Kubernetes launcher and a lease name: the replicas elect one leader, and only it starts
 *  jobs. A follower refuses each start (status not_leader, not retried); its triggers are not lost
 *  work, since every WAP run publishes all records not yet published, whichever replica saw them. */
function leaderElection(config: JobsConfig, identity: string, logger?: Logger): LeaderLease | undefined {
  const k = config.kubernetes;
  if (config.launcher !== "kubernetes" || k.leaseName === "") return undefined;
  const namespace = k.namespace ?? (existsSync(SA_NAMESPACE_FILE) ? readFileSync(SA_NAMESPACE_FILE, "utf8").trim() : "simgate");
  const client = new KubernetesClient({ apiUrl: k.apiUrl, tokenFile: k.tokenFile, caFile: existsSync(k.caFile) ? k.caFile : undefined, timeoutMs: 5_000 });
  const duration = k.leaseDurationMs;
  return new LeaderLease(
    client,
    { namespace, name: k.leaseName, identity, leaseDurationMs: duration, renewDeadlineMs: Math.round((duration * 2) / 3), retryPeriodMs: Math.round(duration / 7.5) },
    undefined,
    logger,
  );
}

function leaderOnly(launcher: JobLauncher, lease: LeaderLease, leaseName: string): JobLauncher {
  return {
    kind: launcher.kind,
    ...(launcher.close ? { close: () => (launcher.close as () => Promise<void>)() } : {}),
    launch: (request, signal) =>
      lease.isLeader()
        ? launcher.launch(request, signal)
        : Promise.resolve({ ok: false, status: "not_leader", retryable: false, error: `another gateway replica holds Lease ${leaseName} and drives the jobs` }),
  };
}

export function createJobsPlugin(options: JobsPluginOptions): JobsPlugin {
  const { config } = options;
  const topics = config.topics.length > 0 ? config.topics : [...new Set(options.eventTopics)];
  const enabled = config.launcher !== "none" || options.launcher !== undefined;
  const lease = leaderElection(config, options.identity ?? process.env["SIMGATE_GATEWAY_ID"] ?? hostname(), options.logger);
  const baseLauncher = options.launcher ?? launcherFor(config);
  const launcher = lease ? leaderOnly(baseLauncher, lease, config.kubernetes.leaseName) : baseLauncher;
  let metrics: JobsMetrics | undefined;
  const observer: JobDriverObserver = {
    triggered: (topic, reason, action) => metrics?.triggered(topic, reason, action),
    started: (run) => metrics?.started(run),
    finished: (run, outcome) => metrics?.finished(run, outcome),
    retryScheduled: (topic) => metrics?.retryScheduled(topic),
  };
  const driver = new JobDriver(
    {
      topics,
      // Without a launcher the driver only counts records (visible at /jobs) and starts nothing.
      onRunEnd: enabled && config.onRunEnd,
      everyRecords: enabled ? config.everyRecords : 0,
      everyMs: enabled ? config.everyMs : 0,
      maxConcurrent: config.maxConcurrent,
      maxAttempts: config.maxAttempts,
      backoffMs: config.backoffMs,
      backoffMaxMs: config.backoffMaxMs,
      timeoutMs: config.timeoutMs,
      historySize: config.historySize,
      maintenanceEveryMs: enabled && config.launcher !== "kubernetes" ? config.maintenanceEveryMs : 0,
    },
    launcher,
    options.clock,
    observer,
    options.logger,
  );
  return {
    name: "jobs",
    driver,
    routes: [jobsRoute(() => driver.snapshot())],
    events: {
      onRecordProduced: (topic, _location, kind) => {
        if (kind === "event") driver.recordProduced(topic);
      },
      onRunEnded: (runId) => driver.runEnded(runId),
    },
    registerMetrics(registry: Registry): void {
      metrics ??= new JobsMetrics(registry);
    },
    async start(): Promise<void> {
      lease?.start();
      driver.startSchedules();
      if (enabled && config.launcher === "local" && config.local.prewarm && options.launcher === undefined) {
        const pid = baseLauncher.prewarm?.(config.maxConcurrent);
        if (pid !== undefined) options.logger?.info({ pid }, "warm WAP worker started ahead of the first run");
      }
      options.logger?.info({ launcher: launcher.kind, topics, onRunEnd: config.onRunEnd, everyRecords: config.everyRecords, everyMs: config.everyMs, maintenanceEveryMs: config.maintenanceEveryMs }, "job driver ready");
    },
    stop: async () => {
      await driver.stop();
      await lease?.stop();
    },
    status: () => {
      const s = driver.snapshot();
      return { launcher: s.launcher, running: s.running, queued: s.queued };
    },
  };
}

/** The factory the `simgate gateway` command registers: options from the configuration's `jobs`
 *  section (config/schema.ts; SIMGATE_JOBS_* in the environment). */
export function jobsPluginFactory(context: { config: GatewayConfig; logger: Logger }): JobsPlugin {
  return createJobsPlugin({
    config: context.config.jobs,
    eventTopics: Object.values(context.config.kafka.topicMap),
    logger: context.logger.child({ component: "jobs" }),
  });
}
