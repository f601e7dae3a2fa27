// The fixed set of gateway metrics. Labels are bounded: transport, outcome, catalogue code, stage,
// topic, dependency. Never free text.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type Transport = "grpc" | "ws";
export type Outcome = "accepted" | "duplicate" | "rejected" | "retry_later";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: "simgate_gateway_events_total",
    help: "Events answered, by transport, outcome and error code (\"\" when none)",
    labelNames: ["transport", "outcome", "code"] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: "simgate_gateway_errors_total",
    help: "Errors by catalogue code and pipeline stage",
    labelNames: ["code", "stage"] as const,
    registers: [this.registry],
  });
  readonly receivedBytes = new Counter({
    name: "simgate_gateway_received_bytes_total",
    help: "Bytes of messages received, by transport",
    labelNames: ["transport"] as const,
    registers: [this.registry],
  });
  readonly blobBytes = new Counter({
    name: "simgate_gateway_blob_bytes_total",
    help: "Bytes of images stored (an image found already stored is not counted, even when a refused conditional PUT carried it)",
    registers: [this.registry],
  });
  readonly blobRequests = new Counter({
    name: "simgate_gateway_blob_requests_total",
    help: "Requests sent to the object store for images: put (conditional, carries the bytes) and head",
    labelNames: ["request"] as const,
    registers: [this.registry],
  });
  readonly blobSeconds = new Histogram({
    name: "simgate_gateway_blob_put_seconds",
    help: "Time to store one blob (HEAD + PUT)",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly produceSeconds = new Histogram({
    name: "simgate_gateway_produce_seconds",
    help: "Time until Kafka acknowledged a record",
    labelNames: ["topic"] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly ackSeconds = new Histogram({
    name: "simgate_gateway_ack_seconds",
    help: "Time from receiving an event to answering it",
    labelNames: ["transport", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: "simgate_gateway_in_flight_events",
    help: "Events being processed",
    registers: [this.registry],
  });
  readonly connections = new Gauge({
    name: "simgate_gateway_connections",
    help: "Open connections by transport",
    labelNames: ["transport"] as const,
    registers: [this.registry],
  });
  readonly dependencyUp = new Gauge({
    name: "simgate_gateway_dependency_up",
    help: "1 when the dependency (kafka, s3) answered the last probe",
    labelNames: ["dependency"] as const,
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: "simgate_gateway_ready",
    help: "1 when /readyz answers 200",
    registers: [this.registry],
  });
  readonly recordsProduced = new Counter({
    name: "simgate_gateway_records_total",
    help: "Records acknowledged by Kafka, by topic",
    labelNames: ["topic"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
