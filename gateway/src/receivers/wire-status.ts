// The receivers' side of the one mapping from error to wire answer (errors/catalogue.ts, wireAnswer):
// gRPC statuses with the code in `simgate-error-code`, refused WebSocket upgrades with their HTTP
// status, and retry-later answers with the catalogue's delay.
import type { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { wireAnswer, type ErrorCode } from "../errors/catalogue.js";
import { GatewayError } from "../errors/gateway-error.js";
import type { simgate } from "../generated/simgate.js";

/** A gRPC status ending a call: the status the catalogue gives the code, details "CODE: message". */
export function grpcStatus(code: ErrorCode, message: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set("simgate-error-code", code);
  return { code: grpc.status[wireAnswer(code).grpcStatus], details: `${code}: ${message}`, metadata };
}

/** Refuses a WebSocket upgrade with the code's HTTP status and a JSON body naming the code. */
export function refuseUpgrade(socket: Duplex, code: ErrorCode, message: string): void {
  const status = wireAnswer(code).httpStatus;
  const reason = { 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large", 503: "Service Unavailable" }[status] ?? "Error";
  const body = JSON.stringify({ code, message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** A retry-later answer for the code, with the catalogue's delay. */
export function retryLater(code: ErrorCode, message: string): simgate.v1.IRetryLater {
  const err = new GatewayError(code, message);
  return { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs };
}
