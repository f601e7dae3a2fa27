// The dead-letter exporter alone, with a fake producer and blob writer: small payloads travel inline,
// large ones are quarantined and referenced; a failure is returned (never thrown), and only a
// retryable one marks its dependency down.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../errors/gateway-error.js";
import type { DeadLetterInput, RecordLocation } from "../../model/outcome.js";
import type { OutgoingRecord } from "../kafka/record-producer.js";
import type { PutBlobInput, PutBlobResult } from "../s3/blob-store.js";
import { DeadLetterWriter, INLINE_PAYLOAD_LIMIT } from "./dead-letter-writer.js";

interface Faults {
  put?: GatewayError;
  send?: GatewayError;
}

function writer(faults: Faults = {}) {
  const puts: PutBlobInput[] = [];
  const sent: OutgoingRecord[] = [];
  const failures: string[] = [];
  const produced: string[] = [];
  const blobs = {
    put: async (input: PutBlobInput): Promise<PutBlobResult> => {
      if (faults.put) throw faults.put;
      puts.push(input);
      return { uri: `s3://blobs/${input.key}`, uploaded: true, requests: { put: 1, head: 0 } };
    },
  };
  const records = {
    send: async (r: OutgoingRecord): Promise<RecordLocation> => {
      if (faults.send) throw faults.send;
      sent.push(r);
      return { topic: r.topic, partition: 0, offset: sent.length - 1 };
    },
  };
  const w = new DeadLetterWriter("dead", "pre/", blobs, records, { reportFailure: (d, e) => void failures.push(`${d}: ${e}`) }, (t, l) => void produced.push(`${t}@${l.offset}`));
  return { w, puts, sent, failures, produced };
}

const input = (raw: Buffer, over: Partial<DeadLetterInput> = {}): DeadLetterInput => ({
  err: new GatewayError("GW_ERR_IMAGE_TRUNCATED", "images[0]: cut"),
  raw,
  transport: "ws",
  payloadType: "simgate.v1.ClientFrame",
  connectionId: "conn-1",
  eventId: "run-1-3",
  runId: "run-1",
  receivedAtMs: Date.UTC(2026, 4, 6, 7, 8, 9),
  ...over,
});

describe("DeadLetterWriter", () => {
  it("writes a small payload inline, byte for byte, with the reason and the headers", async () => {
    const { w, sent, puts, produced } = writer();
    const raw = Buffer.from([0, 1, 2, 250, 255]);
    expect(await w.write(input(raw))).toBe(true);
    expect(puts).toEqual([]);
    const record = sent[0] as OutgoingRecord;
    expect(record.topic).toBe("dead");
    expect(record.key).toBe("run-1-3");
    expect(record.headers).toEqual({ "schema-version": "1", "content-type": "application/json", "error-code": "GW_ERR_IMAGE_TRUNCATED", "run-id": "run-1", "event-id": "run-1-3" });
    const value = JSON.parse(String(record.value)) as Record<string, unknown>;
    expect(value).toEqual({ schemaVersion: 1, code: "GW_ERR_IMAGE_TRUNCATED", message: "images[0]: cut", stage: "image", receivedAt: "2026-05-06T07:08:09.000Z", eventId: "run-1-3", runId: "run-1", transport: "ws", payloadType: "simgate.v1.ClientFrame", payloadBase64: raw.toString("base64"), quarantineUri: null });
    expect(Buffer.from(value["payloadBase64"] as string, "base64").equals(raw)).toBe(true);
    expect(produced).toEqual(["dead@0"]);
  });

  it("keys a message without an event id by its connection and leaves the id headers out", async () => {
    const { w, sent } = writer();
    expect(await w.write(input(Buffer.from("x"), { eventId: null, runId: null, payloadType: "text" }))).toBe(true);
    expect(sent[0]?.key).toBe("conn-1");
    expect(Object.keys(sent[0]?.headers ?? {}).sort()).toEqual(["content-type", "error-code", "schema-version"]);
  });

  it("quarantines a payload over 64 KiB in the blob bucket under its sha256 and references it", async () => {
    const { w, sent, puts } = writer();
    const raw = Buffer.alloc(INLINE_PAYLOAD_LIMIT + 1, 7);
    expect(await w.write(input(raw))).toBe(true);
    const sha = createHash("sha256").update(raw).digest("hex");
    expect(puts).toHaveLength(1);
    expect(puts[0]?.key).toBe(`pre/quarantine/2026-05-06/${sha}.bin`);
    expect(puts[0]?.bytes.equals(raw)).toBe(true);
    const value = JSON.parse(String(sent[0]?.value)) as Record<string, unknown>;
    expect(value["payloadBase64"]).toBeNull();
    expect(value["quarantineUri"]).toBe(`s3://blobs/pre/quarantine/2026-05-06/${sha}.bin`);
  });

  it("returns the error when Kafka cannot take it; only a retryable one marks Kafka down", async () => {
    const down = writer({ send: new GatewayError("GW_ERR_KAFKA_UNAVAILABLE", "timeout") });
    expect(await down.w.write(input(Buffer.from("x")))).toMatchObject({ code: "GW_ERR_KAFKA_UNAVAILABLE" });
    expect(down.failures).toEqual(["kafka: timeout"]);
    expect(down.produced).toEqual([]);
    const refused = writer({ send: new GatewayError("GW_ERR_RECORD_REJECTED", "not authorised") });
    expect(await refused.w.write(input(Buffer.from("x")))).toMatchObject({ code: "GW_ERR_RECORD_REJECTED" });
    expect(refused.failures).toEqual([]);
  });

  it("returns the error when the quarantine cannot be written, and sends no record; only a retryable one marks the store down", async () => {
    const big = Buffer.alloc(INLINE_PAYLOAD_LIMIT + 1);
    const down = writer({ put: new GatewayError("GW_ERR_STORAGE_UNAVAILABLE", "reset") });
    expect(await down.w.write(input(big))).toMatchObject({ code: "GW_ERR_STORAGE_UNAVAILABLE" });
    expect(down.failures).toEqual(["s3: reset"]);
    expect(down.sent).toEqual([]);
    const refused = writer({ put: new GatewayError("GW_ERR_STORAGE_REJECTED", "no such bucket") });
    expect(await refused.w.write(input(big))).toMatchObject({ code: "GW_ERR_STORAGE_REJECTED" });
    expect(refused.failures).toEqual([]);
  });
});
