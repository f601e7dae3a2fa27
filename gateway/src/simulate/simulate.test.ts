import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { simgate } from "../generated/simgate.js";
import { RecordingReader } from "../recording/reader.js";
import { layoutLot } from "./lot.js";
import { Prng } from "./prng.js";
import { renderImage } from "./render.js";
import { FLAW_KINDS, planScenario } from "./scenario.js";
import { simulate } from "./simulate.js";

const dir = mkdtempSync(join(tmpdir(), "simulate-"));
const small = { width: 96, height: 54, format: "jpeg" as const };

async function frames(path: string): Promise<simgate.v1.ClientFrame[]> {
  const reader = await RecordingReader.open(path);
  const out: simgate.v1.ClientFrame[] = [];
  for await (const item of reader.frames()) {
    if (item.kind !== "frame") throw new Error(item.error.describe());
    out.push(item.frame);
  }
  await reader.close();
  return out;
}

describe("Prng", () => {
  it("repeats per seed and stream, and differs across them", () => {
    const draw = (seed: number, stream: number): number[] => {
      const p = new Prng(seed, stream);
      return Array.from({ length: 5 }, () => p.nextUint32());
    };
    expect(draw(7, 0)).toEqual(draw(7, 0));
    expect(draw(7, 0)).not.toEqual(draw(8, 0));
    expect(draw(7, 0)).not.toEqual(draw(7, 1));
    expect(draw(2 ** 40, 0)).not.toEqual(draw(0, 0));
    const p = new Prng(1);
    const mean = Array.from({ length: 20_000 }, () => p.exponential(10)).reduce((a, b) => a + b) / 20_000;
    expect(mean).toBeGreaterThan(9.5);
    expect(mean).toBeLessThan(10.5);
  });
});

describe("lot layout", () => {
  it("puts every slot inside the documented bounds", () => {
    const lot = layoutLot(24);
    expect(lot.bounds).toMatchObject({ minX: 0, maxX: 36, minZ: 0, maxZ: 28 });
    expect(lot.slots[0]).toMatchObject({ id: "A-01", x: 4.25, z: 5.5, yawDeg: 90 });
    expect(lot.slots[12]?.id).toBe("B-01");
    for (const s of lot.slots) {
      expect(s.x).toBeGreaterThan(lot.bounds.minX);
      expect(s.x).toBeLessThan(lot.bounds.maxX);
      expect(s.z).toBeGreaterThan(lot.bounds.minZ);
      expect(s.z).toBeLessThan(lot.bounds.maxZ);
    }
  });
});

describe("scenario", () => {
  it("marks every flawed event, and each mark is true of the event", () => {
    const lot = layoutLot(10);
    const plan = planScenario({ seed: 3, runId: "r", events: 300, lot, arrivalsPerMinute: 3, meanDwellSeconds: 300, flawRate: 0.3 });
    expect(plan.events).toHaveLength(300);
    for (const kind of FLAW_KINDS) expect(plan.flaws[kind]).toBeGreaterThan(0);
    const entered = new Set<string>();
    const ids = new Map<string, number>();
    let previousMs = 0;
    plan.events.forEach((e, i) => {
      expect(e.sequence).toBe(i + 1);
      expect(e.attributes["sim.flaw"] ?? null).toBe(e.flaw);
      const outside = e.coordinates.x > lot.bounds.maxX;
      expect(outside).toBe(e.flaw === "coordinates_outside_lot");
      expect(e.carId === "").toBe(e.flaw === "missing_car_id");
      expect(e.simTimeMs < previousMs).toBe(e.flaw === "time_out_of_order");
      expect(ids.has(e.eventId)).toBe(e.flaw === "duplicate_event_id");
      if (e.type === "parking.exit") expect(entered.has(e.car.plate)).toBe(e.flaw !== "exit_without_entry");
      if (e.type === "parking.entry") entered.add(e.car.plate);
      if (e.flaw !== "duplicate_event_id") {
        expect(e.eventId).toBe(`r-${String(e.sequence).padStart(6, "0")}`);
        ids.set(e.eventId, e.sequence);
      }
      previousMs = e.simTimeMs;
    });
  });

  it("has no flaws at flaw rate 0 and never parks two cars in one slot", () => {
    const plan = planScenario({ seed: 9, runId: "r", events: 500, lot: layoutLot(5), arrivalsPerMinute: 6, meanDwellSeconds: 600, flawRate: 0 });
    expect(plan.events.every((e) => e.flaw === null)).toBe(true);
    expect(plan.turnedAway).toBeGreaterThan(0);
    const occupied = new Map<string, string>();
    for (const e of plan.events) {
      if (e.type === "parking.entry") {
        expect(occupied.has(e.slot.id)).toBe(false);
        occupied.set(e.slot.id, e.carId);
      } else {
        expect(occupied.get(e.slot.id)).toBe(e.carId);
        occupied.delete(e.slot.id);
      }
    }
  });
});

describe("simulate", () => {
  it("gives byte-identical recordings for the same seed, and different ones for another seed", async () => {
    const a = join(dir, "a.simrec");
    const b = join(dir, "b.simrec");
    const c = join(dir, "c.simrec");
    await simulate({ seed: 42, events: 30, out: a, flawRate: 0.3, ...small });
    await simulate({ seed: 42, events: 30, out: b, flawRate: 0.3, ...small });
    await simulate({ seed: 43, events: 30, out: c, flawRate: 0.3, ...small });
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
    expect(readFileSync(a).equals(readFileSync(c))).toBe(false);
  });

  it("writes run start, the events with images, and a run end whose counts match", async () => {
    const path = join(dir, "d.simrec");
    const result = await simulate({ seed: 5, events: 25, out: path, flawRate: 0.2, slots: 30, runId: "unit-sim-5", ...small });
    const reader = await RecordingReader.open(path);
    expect(reader.header.run?.runId).toBe("unit-sim-5");
    expect(reader.header.run?.lineage?.extra?.["lot.maxX"]).toBe("36");
    expect(reader.header.run?.lineage?.extra?.["lot.maxZ"]).toBe("39");
    await reader.close();
    const all = await frames(path);
    expect(all[0]?.runStart?.runId).toBe("unit-sim-5");
    const end = all.at(-1)?.runEnd;
    const events = all.slice(1, -1).map((f) => f.event as simgate.v1.Event);
    expect(events).toHaveLength(25);
    expect(end?.eventsSent).toBe(25);
    expect((end?.eventsByType?.["parking.entry"] ?? 0) + (end?.eventsByType?.["parking.exit"] ?? 0)).toBe(25);
    expect(result.byType).toEqual(end?.eventsByType);
    for (const e of events) {
      expect(e.images).toHaveLength(1);
      const meta = await sharp(e.images[0]?.data as Uint8Array).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 96, 54]);
      expect(e.captureTimeUnixMs).toBe(Date.parse("2026-01-01T08:00:00Z") + Math.round(e.simTimeSeconds * 1000));
    }
    expect(events.filter((e) => e.attributes["sim.flaw"]).length).toBe(Object.values(result.flaws).reduce((a, b) => a + b));
  });

  it("renders a 1280x720 PNG of at least 1 MB, identical for the same seed", async () => {
    const request = {
      seed: 1,
      sequence: 1,
      view: "exit" as const,
      cameraPrimPath: "/World/Gates/Exit/Camera",
      car: { plate: "12GA3456", color: { name: "blue", hex: "#1f4e9c" } as const, body: "van" as const },
      plateText: "12GA3456",
      captureIso: "2026-01-01T08:00:00.000Z",
      simTimeSeconds: 0,
      runId: "r",
      width: 1280,
      height: 720,
      format: "png" as const,
      jpegQuality: 85,
    };
    const first = await renderImage(request);
    expect(first.length).toBeGreaterThan(1_000_000);
    expect((await renderImage(request)).equals(first)).toBe(true);
    expect((await renderImage({ ...request, sequence: 2 })).equals(first)).toBe(false);
  });

  it("refuses bad options with the name of the option", async () => {
    await expect(simulate({ seed: -1, events: 1, out: join(dir, "x.simrec") })).rejects.toThrow(/seed/);
    await expect(simulate({ seed: 1, events: 1, out: join(dir, "x.simrec"), flawRate: 2 })).rejects.toThrow(/flawRate/);
  });
});
