// The part of OTLP the peer benchmark speaks: LogsService/Export with its messages, field numbers as in
// opentelemetry-proto (opentelemetry/proto/{collector/logs,logs,common,resource}/v1), read with
// protobufjs. A grpc-js client sends pre-encoded requests (the sender encodes each record once, as the
// simgate senders do).
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";

const OTLP_LOGS_PROTO = `
syntax = "proto3";
package opentelemetry.proto.collector.logs.v1;
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ExportLogsServiceResponse { ExportLogsPartialSuccess partial_success = 1; }
message ExportLogsPartialSuccess { int64 rejected_log_records = 1; string error_message = 2; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message LogRecord {
  fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11; int32 severity_number = 2; string severity_text = 3;
  AnyValue body = 5; repeated KeyValue attributes = 6; uint32 dropped_attributes_count = 7; fixed32 flags = 8;
  bytes trace_id = 9; bytes span_id = 10; string event_name = 12;
}
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; bytes bytes_value = 7; } }
message KeyValue { string key = 1; AnyValue value = 2; }
`;

const root = protobuf.parse(OTLP_LOGS_PROTO, { keepCase: false }).root;
const Request = root.lookupType("opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest");
const Response = root.lookupType("opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse");

export interface ExportResponse {
  partialSuccess?: { rejectedLogRecords?: number | Long; errorMessage?: string };
}
type Long = { toNumber(): number };

const SERVICE: grpc.ServiceDefinition = {
  Export: {
    path: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (m: ExportResponse) => Buffer.from(Response.encode(Response.fromObject(m)).finish()),
    responseDeserialize: (b: Buffer) => Response.toObject(Response.decode(b)) as ExportResponse,
  },
};
const LogsClient = grpc.makeGenericClientConstructor(SERVICE, "LogsService");

/** One log record in one ExportLogsServiceRequest, with a string body and the event's ids as attributes.
 *  Encoded with protobufjs' compiled encoder from a plain object (no fromObject), like the simgate senders. */
export function encodeLogRequest(body: string, attributes: Record<string, string>, timeUnixMs: number): Buffer {
  const nanos = timeUnixMs * 1_000_000; // exact enough for a timestamp: a double holds it to ~0.25 µs
  const bytes = Request.encode({
    resourceLogs: [
      {
        resource: { attributes: [{ key: "service.name", value: { stringValue: "simgate-bench" } }] },
        scopeLogs: [
          {
            scope: { name: "simgate.bench" },
            logRecords: [
              {
                timeUnixNano: nanos,
                observedTimeUnixNano: nanos,
                severityNumber: 9,
                severityText: "INFO",
                body: { stringValue: body },
                attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: { stringValue: v } })),
              },
            ],
          },
        ],
      },
    ],
  }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A gRPC client of LogsService/Export on its own HTTP/2 connection (no subchannel sharing). */
export class OtlpLogsClient {
  private readonly client: grpc.Client;

  constructor(address: string) {
    this.client = new LogsClient(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1, "grpc.max_send_message_length": 16 * 1024 * 1024 });
  }

  /** Resolves true when the collector accepted every record of the request. */
  export(request: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      (this.client as unknown as { Export: (r: Buffer, cb: (err: grpc.ServiceError | null, res?: ExportResponse) => void) => void }).Export(request, (err, res) => {
        const rejected = res?.partialSuccess?.rejectedLogRecords;
        resolve(err === null && (rejected === undefined || Number(rejected) === 0));
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
