// Canonical protobuf bytes, so that the TypeScript and the Python writers produce the same file from
// the same messages. Python's SerializeToString(deterministic=True) omits proto3 scalars that hold
// their default value and writes map entries sorted by key; protobufjs writes every field that is set
// on the object (also zeros) and map entries in object key order. We bring the message to Python's form
// before encoding. Readers accept map entries in any order.
import "./protobuf-numbers.js";
import { simgate } from "../generated/simgate.js";

type Dict = Record<string, unknown>;

function isMessage(value: unknown): value is Dict {
  if (value === null || typeof value !== "object") return false;
  if (ArrayBuffer.isView(value) || Array.isArray(value)) return false;
  // Messages built by fromObject/decode are instances of the generated classes; maps are plain objects.
  return Object.getPrototypeOf(value) !== Object.prototype;
}

function isDefaultScalar(value: unknown): boolean {
  if (value === "" || value === false) return true;
  if (typeof value === "number") return Object.is(value, 0);
  if (value instanceof Uint8Array) return value.length === 0;
  return false;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Rewrites a generated message instance in place into canonical form and returns it. */
export function canonicalize<T extends object>(message: T): T {
  const record = message as Dict;
  for (const key of Object.keys(record)) {
    const value = record[key];
    if (value === null || value === undefined) {
      delete record[key];
    } else if (Array.isArray(value)) {
      if (value.length === 0) delete record[key];
      else for (const item of value) if (isMessage(item)) canonicalize(item);
    } else if (isMessage(value)) {
      canonicalize(value); // a set sub-message is written even when empty, as in Python
    } else if (typeof value === "object" && !(value instanceof Uint8Array)) {
      const map = value as Dict;
      const keys = Object.keys(map).sort(compareUtf8);
      if (keys.length === 0) {
        delete record[key];
        continue;
      }
      const sorted: Dict = {};
      for (const k of keys) {
        const v = map[k];
        sorted[k] = isMessage(v) ? canonicalize(v) : v;
      }
      // A plain object would list integer-like keys ("9", "10") first whatever the insertion order;
      // the encoder walks Object.keys(), which a proxy can answer in byte order.
      record[key] = new Proxy(sorted, { ownKeys: () => keys });
    } else if (isDefaultScalar(value)) {
      delete record[key];
    }
  }
  return message;
}

/**
 * Canonical bytes of one ClientFrame (an Event, a RunStart or a RunEnd). The message is encoded once as
 * given, decoded into a private copy, brought to canonical form and encoded again, so the caller's
 * objects are never modified; plain objects (enums by name, bytes as base64) are accepted too.
 */
export function encodeClientFrame(frame: simgate.v1.IClientFrame): Uint8Array {
  const Type = simgate.v1.ClientFrame;
  const copy = Type.decode(Type.encode(Type.fromObject(frame as Dict)).finish());
  return Type.encode(canonicalize(copy)).finish();
}

export function encodeRecordingHeader(header: simgate.v1.IRecordingHeader): Uint8Array {
  const Type = simgate.v1.RecordingHeader;
  const copy = Type.decode(Type.encode(Type.fromObject(header as Dict)).finish());
  return Type.encode(canonicalize(copy)).finish();
}
