// The composition root: builds every component with the next stage injected, starts exporters first
// and receivers last, and stops in the reverse order so that what is in flight drains into exporters
// that are still running. stop() is safe to call twice.
import { GatewayError } from "../errors/gateway-error.js";
import type { GatewayConfig } from "../config/schema.js";
import { createKafka } from "../exporters/kafka/kafka-client.js";
import { KafkaExporter } from "../exporters/kafka/kafka-exporter.js";
import { RecordProducer } from "../exporters/kafka/record-producer.js";
import { TopicAdmin } from "../exporters/kafka/topic-admin.js";
import { BlobStore } from "../exporters/s3/blob-store.js";
import { ImageExporter } from "../exporters/s3/image-exporter.js";
import { HttpServer } from "../http/http-server.js";
import { ImageProcessor } from "../processors/images/image-processor.js";
import { EventValidator } from "../processors/validate/validator.js";
import { BearerAuth } from "../receivers/auth.js";
import { GrpcReceiver, readTls } from "../receivers/grpc/grpc-receiver.js";
import { WebSocketReceiver } from "../receivers/websocket/websocket-receiver.js";
import type { Logger } from "../telemetry/logger.js";
import { GatewayMetrics } from "../telemetry/metrics.js";
import { DeadLetterWriter } from "../exporters/dead-letter/dead-letter-writer.js";
import { DependencyHealth } from "./dependency-health.js";
import { fanOut } from "./plugin-events.js";
import { EventPipeline } from "../pipeline/event-pipeline.js";
import { InFlightLimiter } from "../receivers/flow/in-flight.js";
import type { GatewayPlugin } from "../plugins/plugin-api.js";
import { RunRecorder } from "../recording/run-recorder.js";
import { crc32Implementation } from "../checksums/crc32.js";
import { s3RecordingUploader } from "../recording/s3-upload.js";

export interface RunningGateway {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly metrics: GatewayMetrics;
  readonly health: DependencyHealth;
  /** Drains and closes; resolves with how many events were still in flight (not acknowledged) when the
   *  drain timeout ran out (0 = clean drain). */
  stop(): Promise<StopResult>;
}

export interface StopResult {
  abandoned: number;
  /** Steps of the shutdown that failed (each logged); the others ran anyway. */
  errors: string[];
}

export interface GatewayOptions {
  plugins?: readonly GatewayPlugin[];
}

export async function startGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<RunningGateway> {
  const plugins = options.plugins ?? [];
  const metrics = new GatewayMetrics();
  for (const p of plugins) p.registerMetrics?.(metrics.registry);
  const tls = readTls(config.tls.certFile, config.tls.keyFile);
  const topics = [...new Set([...Object.values(config.kafka.topicMap), config.kafka.deadLetterTopic, config.kafka.runsTopic])];

  // Exporters.
  const { brokers, clientId, requestTimeoutMs, connectionTimeoutMs, retryInitialMs, retryMaxMs } = config.kafka;
  const producerKafka = createKafka({ brokers, clientId, retries: config.kafka.clientRetries, retryInitialMs, retryMaxMs, requestTimeoutMs, connectionTimeoutMs }, logger);
  const adminKafka = createKafka({ brokers, clientId: `${clientId}-admin`, retries: config.health.probeRetries, retryInitialMs, retryMaxMs, requestTimeoutMs: config.health.probeTimeoutMs, connectionTimeoutMs }, logger);
  const admin = new TopicAdmin(adminKafka);
  const records = new RecordProducer(
    producerKafka,
    { produceTimeoutMs: config.kafka.produceTimeoutMs, requestTimeoutMs, maxBatchRecords: config.kafka.maxBatchRecords, resendInitialMs: retryInitialMs, resendMaxMs: config.kafka.resendMaxMs },
    logger,
  );
  const blobs = new BlobStore({
    ...config.s3,
    maxSockets: config.s3.maxSockets > 0 ? config.s3.maxSockets : Math.max(64, config.limits.maxInFlight * 2),
  });
  let topicsReady = false;
  const health = new DependencyHealth(
    [
      {
        dependency: "kafka",
        check: async (timeoutMs) => {
          await admin.probe(timeoutMs);
          if (!topicsReady) {
            records.setPartitionCounts(await admin.ensureTopics(topics, config.kafka.partitions, config.kafka.replicationFactor));
            topicsReady = true;
            logger.info({ topics }, "Kafka topics ready");
          }
          await records.connect();
        },
      },
      { dependency: "s3", check: (timeoutMs) => blobs.probe(timeoutMs) },
    ],
    config.health.checkIntervalMs,
    config.health.probeTimeoutMs,
    logger,
    metrics,
  );

  // Processors and the pipeline.
  const validator = new EventValidator({
    knownEventTypes: new Set(Object.keys(config.kafka.topicMap)),
    maxImages: config.images.maxPerEvent,
    maxAttributes: config.limits.maxAttributes,
    maxAttributeChars: config.limits.maxAttributeChars,
    maxCarIdChars: config.limits.maxCarIdChars,
    maxTextChars: config.limits.maxTextChars,
    maxClockSkewMs: config.limits.maxClockSkewMs,
  });
  const images = new ImageProcessor({ verify: config.images.verify, rawFormat: config.images.rawFormat, maxImagePixels: config.limits.maxImagePixels });
  const events = fanOut(plugins.flatMap((p) => (p.events ? [p.events] : [])), logger);
  const imageExporter = new ImageExporter(blobs, { keyPrefix: config.s3.keyPrefix, checkExisting: config.s3.checkExisting, rememberedEventIds: config.dedupe.maxEntries }, health, metrics);
  const kafkaExporter = new KafkaExporter(records, { gatewayId: config.gatewayId, topicMap: config.kafka.topicMap, runsTopic: config.kafka.runsTopic }, health, metrics, events.onRecordProduced);
  const deadLetter = new DeadLetterWriter(config.kafka.deadLetterTopic, config.s3.keyPrefix, blobs, records, health, (topic, location) => {
    metrics.recordsProduced.inc({ topic });
    events.onRecordProduced(topic, location, "dead-letter");
  });
  let recorder: RunRecorder | undefined;
  if (config.recording.mode !== "off") {
    const upload = config.recording.mode === "s3" ? s3RecordingUploader(blobs.s3, blobs.bucket, `${config.s3.keyPrefix}${config.recording.keyPrefix}`) : undefined;
    recorder = new RunRecorder({
      directory: config.recording.directory,
      writer: `simgate-gateway/${config.gatewayId}`,
      ...(upload ? { upload } : {}),
      onError: (err, runId) => logger.error({ err, runId }, "recording failed (events are not affected)"),
    });
    logger.info({ mode: config.recording.mode, directory: config.recording.directory }, "recording accepted runs");
  }
  const pipeline = new EventPipeline(
    { validator, images, blobs: imageExporter, records: kafkaExporter, deadLetter, health, events, ...(recorder ? { recorder } : {}) },
    { maxMessageBytes: config.limits.maxMessageBytes, dedupeEntries: config.dedupe.maxEntries, maxRuns: config.dedupe.maxRuns },
    metrics,
    logger,
  );

  // Start: dependencies first (the first probe creates the topics), then plugins, then receivers. Each
  // started part registers how to stop it; a failed start stops what already started, in reverse.
  const started: Array<{ name: string; stop: () => unknown }> = [
    { name: "blob store", stop: () => blobs.close() },
    { name: "kafka admin", stop: () => admin.close() },
    { name: "kafka producer", stop: () => records.close() },
  ];
  const stopAll = async (): Promise<string[]> => {
    const errors: string[] = [];
    for (const part of started.splice(0).reverse()) {
      try {
        await part.stop();
      } catch (err) {
        errors.push(`${part.name}: ${err instanceof Error ? err.message : String(err)}`);
        logger.error({ err, part: part.name }, "stopping a part failed; stopping the rest");
      }
    }
    return errors;
  };
  const auth = new BearerAuth(config.auth.token);
  const limiter = new InFlightLimiter(config.limits.maxInFlight, config.limits.maxInFlightBytes);
  let grpcPort: number;
  let httpPort: number;
  let http: HttpServer;
  let ws: WebSocketReceiver;
  let grpc: GrpcReceiver;
  try {
    await health.checkNow();
    if (!health.ready) logger.warn({ dependencies: health.status() }, "starting while a dependency is down: /readyz is 503 until it answers");
    health.start();
    started.push({ name: "health checks", stop: () => health.stop() });
    if (recorder) started.push({ name: "recorder", stop: () => recorder?.close() });
    for (const p of plugins) {
      await p.start?.();
      started.push({ name: `plugin ${p.name}`, stop: () => p.stop?.() });
    }

    const receiverLimits = {
      maxMessageBytes: config.limits.maxMessageBytes,
      maxConnections: config.limits.maxConnections,
      maxInFlightPerConnection: config.limits.maxInFlightPerConnection,
      whenFull: config.limits.whenFull,
    };
    http = new HttpServer({ host: config.host, port: config.http.port, keepAliveTimeoutMs: config.http.keepAliveTimeoutMs, tls }, health, metrics, logger);
    for (const p of plugins) {
      for (const r of p.routes ?? []) http.addRoute(r);
      if (p.status) http.addStatus(p.name, () => p.status?.());
    }
    ws = new WebSocketReceiver({ ...receiverLimits, path: config.http.wsPath }, pipeline, limiter, auth, metrics, logger);
    ws.attach(http.server);
    const { streamWindowBytes, connectionWindowBytes, maxConcurrentStreams, keepaliveTimeMs, keepaliveTimeoutMs } = config.grpc;
    grpc = new GrpcReceiver(
      { ...receiverLimits, host: config.host, port: config.grpc.port, streamWindowBytes, connectionWindowBytes, maxConcurrentStreams, keepaliveTimeMs, keepaliveTimeoutMs, tls },
      pipeline,
      limiter,
      health,
      auth,
      metrics,
      logger,
    );
    const grpcReceiver = grpc;
    const wsReceiver = ws;
    const httpServer = http;
    grpcPort = await grpcReceiver.start();
    started.push({ name: "gRPC receiver", stop: () => grpcReceiver.stop(100) });
    httpPort = await httpServer.start();
    started.push({ name: "HTTP server", stop: () => httpServer.stop() });
    started.push({ name: "WebSocket receiver", stop: () => wsReceiver.stop(100) });
  } catch (err) {
    await stopAll();
    throw err;
  }
  logger.info(
    {
      grpc: `${config.host}:${grpcPort}`,
      http: `${config.host}:${httpPort}`,
      websocket: `${tls ? "wss" : "ws"}://${config.host}:${httpPort}${config.http.wsPath}`,
      tls: tls !== undefined,
      auth: auth.enabled,
      topics: config.kafka.topicMap,
      crc32: crc32Implementation,
    },
    "gateway listening",
  );
  if (!auth.enabled) logger.warn({ host: config.host }, "no auth.token configured: listening on loopback only");

  let stopping: Promise<StopResult> | undefined;
  const stop = (): Promise<StopResult> => {
    stopping ??= (async () => {
      const deadline = Date.now() + config.shutdown.drainTimeoutMs;
      logger.info({ inFlight: limiter.count }, "draining");
      health.setDraining();
      pipeline.startDraining();
      grpc.beginDrain();
      ws.beginDrain();
      while (limiter.count > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const abandoned = limiter.count;
      if (abandoned > 0) logger.error({ abandoned }, `drain timeout: closing with ${abandoned} events still in flight (not acknowledged; their senders resend them)`);
      const grace = Math.max(100, deadline - Date.now());
      // Receivers first (they drain into exporters that are still running), then the rest in reverse
      // order of start; a failing step is reported and the others still stop.
      const receiversStopped = await Promise.allSettled([grpc.stop(Math.min(grace, 5000)), ws.stop(Math.min(grace, 2000))]);
      const errors = receiversStopped.flatMap((r, i) => (r.status === "rejected" ? [`${i === 0 ? "gRPC" : "WebSocket"} receiver: ${String(r.reason)}`] : []));
      const receiverParts = new Set(["gRPC receiver", "WebSocket receiver"]);
      for (let i = started.length - 1; i >= 0; i--) if (receiverParts.has(started[i]?.name ?? "")) started.splice(i, 1);
      errors.push(...(await stopAll()));
      if (errors.length > 0) logger.error({ errors }, `stopped with ${errors.length} failing step(s)`);
      logger.info({ abandoned }, "stopped");
      return { abandoned, errors };
    })();
    return stopping;
  };
  return { grpcPort, httpPort, metrics, health, stop };
}

export { GatewayError };
