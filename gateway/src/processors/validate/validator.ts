// The validate stage: a decoded protobuf message in, a typed valid message out, or a GatewayError with
// the catalogue code of the first failing field.
import type { z } from "zod";
import { simgate } from "../../generated/simgate.js";
import { GatewayError } from "../../errors/gateway-error.js";
import type { MessageChecks } from "../../model/stages.js";
import {
  buildEventSchema,
  codeForPath,
  runEndSchema,
  runStartSchema,
  type ValidationLimits,
  type ValidEvent,
  type ValidRunEnd,
  type ValidRunStart,
} from "./event-schema.js";

function describe(error: z.ZodError): { path: readonly PropertyKey[]; text: string } {
  const issue = error.issues[0];
  const path = issue?.path ?? [];
  return { path, text: `${path.length ? path.join(".") : "message"}: ${issue?.message ?? "invalid"}` };
}

/** Plain object view of a decoded message with defaults filled in (protobufjs keeps them on prototypes). */
function plainEvent(event: simgate.v1.IEvent): Record<string, unknown> {
  const e = event as simgate.v1.Event;
  return {
    eventId: e.eventId ?? "",
    runId: e.runId ?? "",
    sequence: Number(e.sequence ?? 0),
    eventType: e.eventType ?? "",
    simTimeSeconds: e.simTimeSeconds ?? 0,
    captureTimeUnixMs: Number(e.captureTimeUnixMs ?? 0),
    carId: e.carId ?? "",
    text: e.text ?? "",
    coordinates: e.coordinates
      ? {
          slotId: e.coordinates.slotId ?? "",
          x: e.coordinates.x ?? 0,
          y: e.coordinates.y ?? 0,
          z: e.coordinates.z ?? 0,
          yawDeg: e.coordinates.yawDeg ?? 0,
        }
      : null,
    images: (e.images ?? []).map((i) => ({
      view: i.view ?? "",
      cameraPrimPath: i.cameraPrimPath ?? "",
      encoding: i.encoding ?? 0,
      width: i.width ?? 0,
      height: i.height ?? 0,
      data: i.data ?? new Uint8Array(0),
    })),
    attributes: Object.assign(Object.create(null) as Record<string, string>, e.attributes ?? {}),
    attempt: e.attempt ?? 0,
  };
}

export class EventValidator implements MessageChecks {
  private readonly schema: ReturnType<typeof buildEventSchema>;

  constructor(limits: ValidationLimits) {
    this.schema = buildEventSchema(limits);
  }

  validateEvent(event: simgate.v1.IEvent): ValidEvent {
    const plain = plainEvent(event);
    const result = this.schema.safeParse(plain);
    if (result.success) {
      // zod builds the record by assignment, which drops a "__proto__" key; the validated keys and
      // values are the received ones, kept in a null-prototype object where every key is data.
      result.data.attributes = Object.assign(Object.create(null) as Record<string, string>, plain["attributes"] as Record<string, string>);
      return result.data;
    }
    const { path, text } = describe(result.error);
    throw new GatewayError(codeForPath(path), text);
  }

  validateRunStart(message: simgate.v1.IRunStart): ValidRunStart {
    const m = message as simgate.v1.RunStart;
    const l = m.lineage;
    const result = runStartSchema.safeParse({
      runId: m.runId ?? "",
      startedUnixMs: Number(m.startedUnixMs ?? 0),
      lineage: l
        ? {
            source: l.source ?? "",
            scenario: l.scenario ?? "",
            stageIdentity: l.stageIdentity ?? "",
            seed: Number(l.seed ?? 0),
            producerVersion: l.producerVersion ?? "",
            cameras: (l.cameras ?? []).map((c) => ({
              cameraPrimPath: c.cameraPrimPath ?? "",
              width: c.width ?? 0,
              height: c.height ?? 0,
              focalLengthMm: c.focalLengthMm ?? 0,
              horizontalApertureMm: c.horizontalApertureMm ?? 0,
              verticalApertureMm: c.verticalApertureMm ?? 0,
            })),
            extra: { ...(l.extra ?? {}) },
          }
        : null,
    });
    if (result.success) return result.data;
    const { path, text } = describe(result.error);
    throw new GatewayError(path[0] === "runId" ? "GW_ERR_INVALID_ID" : "GW_ERR_INVALID_FIELD", text);
  }

  validateRunEnd(message: simgate.v1.IRunEnd): ValidRunEnd {
    const m = message as simgate.v1.RunEnd;
    const byType: Record<string, number> = {};
    for (const [k, v] of Object.entries(m.eventsByType ?? {})) byType[k] = Number(v);
    const result = runEndSchema.safeParse({
      runId: m.runId ?? "",
      endedUnixMs: Number(m.endedUnixMs ?? 0),
      eventsSent: Number(m.eventsSent ?? 0),
      eventsByType: byType,
      reason: m.reason ?? "",
    });
    if (result.success) return result.data;
    const { path, text } = describe(result.error);
    throw new GatewayError(path[0] === "runId" ? "GW_ERR_INVALID_ID" : "GW_ERR_INVALID_FIELD", text);
  }
}
