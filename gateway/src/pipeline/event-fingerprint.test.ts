import { describe, expect, it } from "vitest";
import type { simgate } from "../generated/simgate.js";
import { bytesSha256, eventFingerprint } from "./event-fingerprint.js";

const base = (): simgate.v1.IEvent => ({
  eventId: "e-1",
  runId: "r-1",
  sequence: 1,
  eventType: "parking.entry",
  simTimeSeconds: 1.5,
  captureTimeUnixMs: 1_700_000_000_000,
  carId: "CAR1",
  text: "plate",
  coordinates: { slotId: "A-1", x: 1, y: 2, z: 3, yawDeg: 90 },
  attributes: { b: "2", a: "1" },
  images: [{ view: "entry", cameraPrimPath: "/World/Cam", encoding: 1, width: 2, height: 2, data: Buffer.from("abc") }],
});
const fp = (e: simgate.v1.IEvent): string => eventFingerprint(e, (_i, img) => bytesSha256(img));

describe("eventFingerprint", () => {
  it("is equal for the same content, whatever the attribute order", () => {
    expect(fp({ ...base(), attributes: { a: "1", b: "2" } })).toBe(fp(base()));
  });
  it("differs when any field or image differs", () => {
    const changes: Partial<simgate.v1.IEvent>[] = [
      { carId: "CAR2" },
      { eventType: "parking.exit" },
      { eventType: "no such type" },
      { text: "other" },
      { sequence: 2 },
      { simTimeSeconds: 1.25 },
      { coordinates: { slotId: "A-1", x: 1, y: 2, z: 3, yawDeg: 91 } },
      { attributes: { a: "1" } },
      { images: [{ view: "entry", cameraPrimPath: "/World/Cam", encoding: 1, width: 2, height: 2, data: Buffer.from("abd") }] },
      { images: [] },
    ];
    const original = fp(base());
    for (const change of changes) expect(fp({ ...base(), ...change }), JSON.stringify(change)).not.toBe(original);
  });
});
