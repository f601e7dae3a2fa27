import { describe, expect, it } from "vitest";
import { simgate } from "../../generated/simgate.js";
import { GatewayError } from "../../errors/gateway-error.js";
import { EventValidator } from "./validator.js";

const validator = new EventValidator({
  knownEventTypes: new Set(["parking.entry", "parking.exit"]),
  maxImages: 4,
  maxAttributes: 3,
  maxAttributeChars: 32,
  maxCarIdChars: 16,
  maxTextChars: 64,
  maxClockSkewMs: 60_000,
});

function event(overrides: Partial<simgate.v1.IEvent> = {}): simgate.v1.Event {
  return simgate.v1.Event.create({
    eventId: "run-1-000001",
    runId: "run-1",
    sequence: 1,
    eventType: "parking.entry",
    simTimeSeconds: 1.5,
    captureTimeUnixMs: Date.now(),
    carId: "12GA3456",
    coordinates: { slotId: "B-07", x: 1, y: 2, z: 3, yawDeg: 90 },
    images: [{ view: "entry", cameraPrimPath: "/World/Cam", encoding: 1, width: 4, height: 4, data: new Uint8Array([1]) }],
    ...overrides,
  });
}

function codeOf(e: simgate.v1.Event): string {
  try {
    validator.validateEvent(simgate.v1.Event.decode(simgate.v1.Event.encode(e).finish()));
    return "ok";
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

describe("EventValidator", () => {
  it("accepts a well-formed event, and decodes defaults", () => {
    expect(codeOf(event())).toBe("ok");
    const v = validator.validateEvent(event({ text: "", carId: "" }));
    expect(v.carId).toBe("");
    expect(v.coordinates).toEqual({ slotId: "B-07", x: 1, y: 2, z: 3, yawDeg: 90 });
  });

  it("accepts an empty car id and coordinates far outside any lot (meaning is checked later)", () => {
    expect(codeOf(event({ carId: "", coordinates: { slotId: "", x: 1e9, y: -1e9, z: 0, yawDeg: 720 } }))).toBe("ok");
    expect(codeOf(event({ coordinates: null }))).toBe("ok");
  });

  it.each([
    ["missing event id", { eventId: "" }, "GW_ERR_INVALID_ID"],
    ["over-long event id", { eventId: "x".repeat(129) }, "GW_ERR_INVALID_ID"],
    ["path traversal in event id", { eventId: "../../etc/passwd" }, "GW_ERR_INVALID_ID"],
    ["dot-dot event id", { eventId: ".." }, "GW_ERR_INVALID_ID"],
    ["hidden-file run id", { runId: ".hidden" }, "GW_ERR_INVALID_ID"],
    ["run id with a slash", { runId: "a/b" }, "GW_ERR_INVALID_ID"],
    ["unknown event type", { eventType: "parking.teleport" }, "GW_ERR_UNKNOWN_EVENT_TYPE"],
    ["malformed event type", { eventType: "Parking Entry" }, "GW_ERR_UNKNOWN_EVENT_TYPE"],
    ["NaN coordinate", { coordinates: { slotId: "A", x: Number.NaN, y: 0, z: 0, yawDeg: 0 } }, "GW_ERR_INVALID_COORDINATES"],
    ["infinite coordinate", { coordinates: { slotId: "A", x: 0, y: Number.POSITIVE_INFINITY, z: 0, yawDeg: 0 } }, "GW_ERR_INVALID_COORDINATES"],
    ["bad slot id", { coordinates: { slotId: "A/../B", x: 0, y: 0, z: 0, yawDeg: 0 } }, "GW_ERR_INVALID_COORDINATES"],
    ["negative sim time", { simTimeSeconds: -1 }, "GW_ERR_INVALID_TIME"],
    ["NaN sim time", { simTimeSeconds: Number.NaN }, "GW_ERR_INVALID_TIME"],
    ["capture time 0", { captureTimeUnixMs: 0 }, "GW_ERR_INVALID_TIME"],
    ["capture time in seconds", { captureTimeUnixMs: 1_700_000_000 }, "GW_ERR_INVALID_TIME"],
    ["capture time far in the future", { captureTimeUnixMs: Date.now() + 3_600_000 }, "GW_ERR_INVALID_TIME"],
    ["car id too long", { carId: "X".repeat(17) }, "GW_ERR_INVALID_FIELD"],
    ["car id with control chars", { carId: "AB\u0000C" }, "GW_ERR_INVALID_FIELD"],
    ["too many attributes", { attributes: { a: "1", b: "2", c: "3", d: "4" } }, "GW_ERR_INVALID_FIELD"],
    ["image view with a slash", { images: [{ view: "../x", encoding: 1, width: 1, height: 1, data: new Uint8Array([1]) }] }, "GW_ERR_INVALID_IMAGE_METADATA"],
    ["image without encoding", { images: [{ view: "a", encoding: 0, width: 1, height: 1, data: new Uint8Array([1]) }] }, "GW_ERR_INVALID_IMAGE_METADATA"],
    ["image without declared size", { images: [{ view: "a", encoding: 1, width: 0, height: 1, data: new Uint8Array([1]) }] }, "GW_ERR_INVALID_IMAGE_METADATA"],
    ["image without bytes", { images: [{ view: "a", encoding: 1, width: 1, height: 1 }] }, "GW_ERR_IMAGE_NOT_AN_IMAGE"],
    ["duplicate views", { images: [1, 2].map(() => ({ view: "a", encoding: 1, width: 1, height: 1, data: new Uint8Array([1]) })) }, "GW_ERR_INVALID_IMAGE_METADATA"],
    ["too many images", { images: [1, 2, 3, 4, 5].map((i) => ({ view: `v${i}`, encoding: 1, width: 1, height: 1, data: new Uint8Array([1]) })) }, "GW_ERR_INVALID_IMAGE_METADATA"],
  ] as const)("rejects %s", (_name, overrides, code) => {
    expect(codeOf(event(overrides as Partial<simgate.v1.IEvent>))).toBe(code);
  });

  it("checks run start and end", () => {
    expect(validator.validateRunStart(simgate.v1.RunStart.create({ runId: "run-1", lineage: { source: "sim", seed: 3 } })).lineage?.seed).toBe(3);
    expect(() => validator.validateRunStart(simgate.v1.RunStart.create({ runId: "" }))).toThrow(GatewayError);
    expect(validator.validateRunEnd(simgate.v1.RunEnd.create({ runId: "run-1", eventsSent: 4, eventsByType: { "parking.entry": 4 } })).eventsByType).toEqual({ "parking.entry": 4 });
  });
});

describe("attribute keys that are Object.prototype names", () => {
  it("keeps __proto__, constructor and toString as plain keys, through decoding, validation and the record", async () => {
    const { eventRecord } = await import("../../exporters/kafka/records.js");
    const attributes = JSON.parse('{"__proto__":"a","constructor":"b","toString":"c"}') as Record<string, string>;
    const decoded = simgate.v1.Event.decode(simgate.v1.Event.encode(event({ attributes })).finish());
    const valid = validator.validateEvent(decoded);
    expect(Object.keys(valid.attributes).sort()).toEqual(["__proto__", "constructor", "toString"]);
    const record = eventRecord("t", valid, [], Date.now(), "gw");
    const value = JSON.parse(String(record.value)) as { attributes: Record<string, string> };
    expect(Object.entries(value.attributes).sort()).toEqual([
      ["__proto__", "a"],
      ["constructor", "b"],
      ["toString", "c"],
    ]);
  });
});

describe("text limits count UTF-16 code units, as the docs say", () => {
  it("a text of astral characters counts two units each", () => {
    // maxTextChars is 64 here: 32 emoji are 64 units (accepted), 33 are 66 (refused).
    expect(codeOf(event({ text: "😀".repeat(32) }))).toBe("ok");
    expect(codeOf(event({ text: "😀".repeat(33) }))).toBe("GW_ERR_INVALID_FIELD");
    expect(codeOf(event({ carId: "ü".repeat(16) }))).toBe("ok");
    expect(codeOf(event({ attributes: { k: "😀".repeat(17) } }))).toBe("GW_ERR_INVALID_FIELD");
  });
});

describe("empty image data", () => {
  it("is GW_ERR_IMAGE_NOT_AN_IMAGE, as the docs say", () => {
    expect(codeOf(event({ images: [{ view: "entry", cameraPrimPath: "/World/Cam", encoding: 1, width: 4, height: 4, data: new Uint8Array(0) }] }))).toBe("GW_ERR_IMAGE_NOT_AN_IMAGE");
  });
});
