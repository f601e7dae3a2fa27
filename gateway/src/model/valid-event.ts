// The validated messages that cross stages (validate → images → exporters). Plain data, no logic; the
// validate stage's schemas (processors/validate/event-schema.ts) are checked against these at compile
// time.
export interface ValidImage {
  view: string;
  cameraPrimPath: string;
  /** 1 PNG, 2 JPEG, 3 RAW_RGBA8, 4 WEBP */
  encoding: 1 | 2 | 3 | 4;
  width: number;
  height: number;
  data: Uint8Array;
}

export interface ValidCoordinates {
  slotId: string;
  x: number;
  y: number;
  z: number;
  yawDeg: number;
}

export interface ValidEvent {
  eventId: string;
  runId: string;
  sequence: number;
  eventType: string;
  simTimeSeconds: number;
  captureTimeUnixMs: number;
  carId: string;
  text: string;
  coordinates: ValidCoordinates | null;
  images: ValidImage[];
  /** A null-prototype map: every key is data, "__proto__" included. */
  attributes: Record<string, string>;
  /** Sends of this event before this one (a resend hint, not content). */
  attempt: number;
}

export interface ValidCamera {
  cameraPrimPath: string;
  width: number;
  height: number;
  focalLengthMm: number;
  horizontalApertureMm: number;
  verticalApertureMm: number;
}

export interface ValidRunStart {
  runId: string;
  startedUnixMs: number;
  lineage: {
    source: string;
    scenario: string;
    stageIdentity: string;
    seed: number;
    producerVersion: string;
    cameras: ValidCamera[];
    extra: Record<string, string>;
  } | null;
}

export interface ValidRunEnd {
  runId: string;
  endedUnixMs: number;
  eventsSent: number;
  eventsByType: Record<string, number>;
  reason: string;
}
