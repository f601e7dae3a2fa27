// The SparkApplication (Kubeflow Spark operator, sparkoperator.k8s.io/v1beta2) of one WAP run: the
// shape of deploy/k8s/base/spark-jobs/templates/wap-sparkapplication.yaml with the run's name, labels
// and arguments filled in. The driver owns retries, so the operator's restart policy is Never.

export interface SparkApplicationOptions {
  namespace: string;
  image: string;
  serviceAccount: string;
  executorInstances: number;
}

export interface SparkApplicationRequest {
  topic: string;
  wapRunId: string;
  jobId: string;
}

/** A label value: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric. */
export function labelValue(raw: string): string {
  const cleaned = raw.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 63);
  return cleaned.replace(/^[^A-Za-z0-9]+/, "").replace(/[^A-Za-z0-9]+$/, "");
}

/** A DNS-1123 name the operator accepts (its driver pod name adds "-driver": keep it short). */
export function applicationName(topic: string, wapRunId: string): string {
  const slug = topic.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 24).replace(/-+$/, "");
  const suffix = wapRunId.toLowerCase().replace(/[^a-z0-9]/g, "").slice(-14);
  return `simgate-wap-${slug || "topic"}-${suffix}`;
}

export function sparkApplicationFor(request: SparkApplicationRequest, options: SparkApplicationOptions): Record<string, unknown> {
  const labels = {
    "app.kubernetes.io/name": "simgate-wap",
    "app.kubernetes.io/part-of": "simgate",
    "app.kubernetes.io/component": "spark-jobs",
    "simgate.io/topic": labelValue(request.topic),
    "simgate.io/wap-run-id": labelValue(request.wapRunId),
  };
  // Addresses; the Spark jobs' own S3 key (warehouse read/write); their Nessie client credentials.
  const envFrom = [{ configMapRef: { name: "simgate-stack" } }, { secretRef: { name: "simgate-s3-spark" } }, { secretRef: { name: "simgate-nessie-client" } }];
  return {
    apiVersion: "sparkoperator.k8s.io/v1beta2",
    kind: "SparkApplication",
    metadata: {
      name: applicationName(request.topic, request.wapRunId),
      namespace: options.namespace,
      labels,
      annotations: { "simgate.io/job-id": request.jobId, "simgate.io/topic": request.topic },
    },
    spec: {
      type: "Python",
      pythonVersion: "3",
      mode: "cluster",
      sparkVersion: "3.5.7",
      image: options.image,
      imagePullPolicy: "IfNotPresent",
      mainApplicationFile: "local:///opt/simgate/lakehouse-jobs/entrypoints/wap.py",
      arguments: ["--topic", request.topic, "--wap-run-id", request.wapRunId],
      restartPolicy: { type: "Never" },
      // The operator deletes a failed run (and its driver pod) an hour after it ends; the launcher deletes a
      // completed one at once.
      timeToLiveSeconds: 3600,
      sparkConf: {
        "spark.driver.extraClassPath": "/opt/simgate/jars/*",
        "spark.executor.extraClassPath": "/opt/simgate/jars/*",
        "spark.sql.session.timeZone": "UTC",
      },
      driver: {
        cores: 1,
        memory: "2g",
        serviceAccount: options.serviceAccount,
        labels,
        env: [
          { name: "SPARK_JARS_DIR", value: "/opt/simgate/jars" },
          { name: "SIMGATE_SPARK_MASTER", value: "k8s://https://kubernetes.default.svc:443" },
        ],
        envFrom,
      },
      executor: {
        instances: options.executorInstances,
        cores: 1,
        memory: "2g",
        deleteOnTermination: true,
        labels,
        envFrom,
      },
    },
  };
}
