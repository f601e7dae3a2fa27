// One place that builds kafkajs clients, with kafkajs' own logs routed into ours at debug level.
import { Kafka, logLevel, type LogEntry } from "kafkajs";
import type { Logger } from "../../telemetry/logger.js";

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  retries: number;
  retryInitialMs: number;
  retryMaxMs: number;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
}

export function createKafka(options: KafkaClientOptions, logger: Logger): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    retry: { retries: options.retries, initialRetryTime: options.retryInitialMs, maxRetryTime: options.retryMaxMs },
    logLevel: logLevel.INFO,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...rest } = entry.log;
      logger.debug({ kafkajs: entry.namespace, ...rest }, message);
    },
  });
}
