// Builders of valid events for tests.
import { simgate } from "../../gateway/src/generated/simgate.js";

export interface EventImage {
  view: string;
  encoding: simgate.v1.ImageEncoding;
  width: number;
  height: number;
  data: Uint8Array;
}

export function makeEvent(runId: string, seq: number, images: readonly EventImage[], overrides: Partial<simgate.v1.IEvent> = {}): simgate.v1.IEvent {
  return {
    eventId: `${runId}-${String(seq).padStart(6, "0")}`,
    runId,
    sequence: seq,
    eventType: seq % 2 === 0 ? "parking.exit" : "parking.entry",
    simTimeSeconds: seq * 1.5,
    captureTimeUnixMs: Date.now(),
    carId: `CAR${seq % 7}`,
    text: `plate CAR${seq % 7}`,
    coordinates: { slotId: `B-${seq % 20}`, x: 12.5 + seq, y: 0, z: -4, yawDeg: 90 },
    images: images.map((img) => ({ ...img, cameraPrimPath: `/World/Gates/${img.view}/Camera` })),
    attributes: { gate: "north" },
    ...overrides,
  };
}
