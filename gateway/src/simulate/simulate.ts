// `simgate simulate`: plans a synthetic parking-lot run, renders its images and writes the recording.
import { simgate } from "../generated/simgate.js";
import { RecordingWriter } from "../recording/writer.js";
import { layoutLot, lotLineage } from "./lot.js";
import { resolveSimulateOptions, type SimulateInput } from "./options.js";
import { renderImage } from "./render.js";
import { planScenario, type FlawKind, type PlannedEvent } from "./scenario.js";

export const SIMULATOR_VERSION = "simgate-simulate/0.1.0";

const CAMERAS = {
  entry: "/World/Gates/Entry/Camera",
  exit: "/World/Gates/Exit/Camera",
} as const;

export interface SimulateResult {
  path: string;
  runId: string;
  bytes: number;
  events: number;
  byType: Record<string, number>;
  flaws: Record<FlawKind, number>;
  turnedAway: number;
  simSeconds: number;
  imageBytes: number;
}

export interface SimulateProgress {
  (written: number, total: number): void;
}

export async function simulate(input: SimulateInput, onProgress?: SimulateProgress): Promise<SimulateResult> {
  const o = resolveSimulateOptions(input);
  const lot = layoutLot(o.slots);
  const plan = planScenario({
    seed: o.seed,
    runId: o.runId,
    events: o.events,
    lot,
    arrivalsPerMinute: o.arrivalsPerMinute,
    meanDwellSeconds: o.meanDwellSeconds,
    flawRate: o.flawRate,
  });
  const encoding = o.format === "png" ? simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG : simgate.v1.ImageEncoding.IMAGE_ENCODING_JPEG;
  const verticalAperture = (36 * o.height) / o.width;
  const runStart: simgate.v1.IRunStart = {
    runId: o.runId,
    startedUnixMs: o.startUnixMs,
    lineage: {
      source: "simulator",
      scenario: "parking-lot",
      stageIdentity: `simgate-simulate:lot-${o.slots}`,
      seed: o.seed,
      producerVersion: SIMULATOR_VERSION,
      cameras: Object.values(CAMERAS).map((path) => ({
        cameraPrimPath: path,
        width: o.width,
        height: o.height,
        focalLengthMm: 24,
        horizontalApertureMm: 36,
        verticalApertureMm: verticalAperture,
      })),
      extra: {
        ...lotLineage(lot),
        "sim.events": String(o.events),
        "sim.flawRate": String(o.flawRate),
        "sim.arrivalsPerMinute": String(o.arrivalsPerMinute),
        "sim.meanDwellSeconds": String(o.meanDwellSeconds),
        "image.format": o.format,
        "image.width": String(o.width),
        "image.height": String(o.height),
      },
    },
  };

  const toEvent = async (p: PlannedEvent): Promise<simgate.v1.IEvent> => {
    const view = p.type === "parking.entry" ? "entry" : "exit";
    const captureUnixMs = o.startUnixMs + p.simTimeMs;
    const data = await renderImage({
      seed: o.seed,
      sequence: p.sequence,
      view,
      cameraPrimPath: CAMERAS[view],
      car: p.car,
      plateText: p.carId,
      captureIso: new Date(captureUnixMs).toISOString(),
      simTimeSeconds: p.simTimeMs / 1000,
      runId: o.runId,
      width: o.width,
      height: o.height,
      format: o.format,
      jpegQuality: o.jpegQuality,
    });
    const plate = p.carId === "" ? "plate unreadable" : `plate ${p.carId}`;
    return {
      eventId: p.eventId,
      runId: o.runId,
      sequence: p.sequence,
      eventType: p.type,
      simTimeSeconds: p.simTimeMs / 1000,
      captureTimeUnixMs: captureUnixMs,
      carId: p.carId,
      text: `${view} camera: ${plate}, ${p.car.color.name} ${p.car.body}`,
      coordinates: p.coordinates,
      images: [{ view, cameraPrimPath: CAMERAS[view], encoding, width: o.width, height: o.height, data }],
      attributes: p.attributes,
    };
  };

  const writer = await RecordingWriter.create(
    o.out,
    { createdUnixMs: o.startUnixMs, writer: SIMULATOR_VERSION, run: runStart },
    { overwrite: o.overwrite },
  ).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`simulate: ${o.out} exists; --overwrite replaces it`);
    throw err;
  });
  const byType: Record<string, number> = {};
  let imageBytes = 0;
  try {
    await writer.append({ runStart });
    // Render a few images ahead while writing strictly in order.
    const ahead: Promise<simgate.v1.IEvent>[] = [];
    let next = 0;
    const fill = (): void => {
      while (ahead.length < o.renderConcurrency && next < plan.events.length) ahead.push(toEvent(plan.events[next++] as PlannedEvent));
    };
    fill();
    for (let written = 0; written < plan.events.length; written++) {
      const event = await (ahead.shift() as Promise<simgate.v1.IEvent>);
      fill();
      await writer.append({ event });
      const type = event.eventType ?? "";
      byType[type] = (byType[type] ?? 0) + 1;
      imageBytes += event.images?.reduce((n, i) => n + (i.data?.length ?? 0), 0) ?? 0;
      onProgress?.(written + 1, plan.events.length);
    }
    const lastMs = plan.events.reduce((m, e) => Math.max(m, e.simTimeMs), 0);
    await writer.append({
      runEnd: {
        runId: o.runId,
        endedUnixMs: o.startUnixMs + lastMs,
        eventsSent: plan.events.length,
        eventsByType: byType,
        reason: "completed",
      },
    });
    await writer.close();
    return {
      path: o.out,
      runId: o.runId,
      bytes: writer.bytesWritten,
      events: plan.events.length,
      byType,
      flaws: plan.flaws,
      turnedAway: plan.turnedAway,
      simSeconds: lastMs / 1000,
      imageBytes,
    };
  } catch (err) {
    await writer.close();
    throw err;
  }
}
