// The traffic of one simulated run, before any image is rendered: cars arrive (Poisson), park in a free
// slot, leave after a dwell time; a share of the events carries a deliberate flaw for the lakehouse to
// catch. Everything is drawn from PRNG streams of the seed, so the same options give the same plan.
import { newCar, type Car } from "./cars.js";
import type { Lot, Slot } from "./lot.js";
import { Prng } from "./prng.js";

export const FLAW_KINDS = [
  "missing_car_id",
  "coordinates_outside_lot",
  "duplicate_event_id",
  "exit_without_entry",
  "time_out_of_order",
] as const;
export type FlawKind = (typeof FLAW_KINDS)[number];

export type ParkingEventType = "parking.entry" | "parking.exit";

export interface PlannedEvent {
  sequence: number;
  eventId: string;
  type: ParkingEventType;
  simTimeMs: number;
  car: Car;
  /** The car id as sent: empty for a missing_car_id flaw. */
  carId: string;
  slot: Slot;
  /** Where the event says the car is; outside the lot for a coordinates_outside_lot flaw. */
  coordinates: { slotId: string; x: number; y: number; z: number; yawDeg: number };
  flaw: FlawKind | null;
  attributes: Record<string, string>;
}

export interface ScenarioOptions {
  seed: number;
  runId: string;
  events: number;
  lot: Lot;
  arrivalsPerMinute: number;
  meanDwellSeconds: number;
  flawRate: number;
}

export interface ScenarioPlan {
  events: PlannedEvent[];
  /** Cars that found the lot full and drove on (no event). */
  turnedAway: number;
  flaws: Record<FlawKind, number>;
}

const MIN_DWELL_MS = 30_000;

interface Parked {
  leaveAtMs: number;
  car: Car;
  slot: Slot;
}

export function eventIdFor(runId: string, sequence: number): string {
  return `${runId}-${String(sequence).padStart(6, "0")}`;
}

export function planScenario(options: ScenarioOptions): ScenarioPlan {
  const traffic = new Prng(options.seed, 1);
  const carsPrng = new Prng(options.seed, 2);
  const flawPrng = new Prng(options.seed, 3);
  const plates = new Set<string>();
  const free: Slot[] = [...options.lot.slots];
  const parked: Parked[] = [];
  const meanArrivalMs = 60_000 / options.arrivalsPerMinute;
  let nextArrivalMs = Math.max(1, Math.round(traffic.exponential(meanArrivalMs)));
  let turnedAway = 0;
  const events: PlannedEvent[] = [];
  const flaws = Object.fromEntries(FLAW_KINDS.map((k) => [k, 0])) as Record<FlawKind, number>;
  // Kinds take turns from a seeded start, so a handful of flawed events covers every kind.
  let nextKind = flawPrng.int(FLAW_KINDS.length);
  let pending: FlawKind | null = null;

  const lastTimeMs = (): number => events.at(-1)?.simTimeMs ?? 0;
  const base = (type: ParkingEventType, simTimeMs: number, car: Car, slot: Slot): PlannedEvent => {
    const sequence = events.length + 1;
    return {
      sequence,
      eventId: eventIdFor(options.runId, sequence),
      type,
      simTimeMs,
      car,
      carId: car.plate,
      slot,
      coordinates: { slotId: slot.id, x: slot.x, y: slot.y, z: slot.z, yawDeg: slot.yawDeg },
      flaw: null,
      attributes: { gate: type === "parking.entry" ? "entry" : "exit", "car.color": car.color.name, "car.body": car.body },
    };
  };
  const mark = (event: PlannedEvent, kind: FlawKind): PlannedEvent => {
    event.flaw = kind;
    event.attributes["sim.flaw"] = kind;
    flaws[kind] += 1;
    return event;
  };

  /** The next entry or exit of the traffic, or null when a car was turned away. */
  const nextTraffic = (): PlannedEvent | null => {
    parked.sort((a, b) => a.leaveAtMs - b.leaveAtMs || a.slot.id.localeCompare(b.slot.id));
    const leaving = parked[0];
    if (leaving && leaving.leaveAtMs <= nextArrivalMs) {
      parked.shift();
      free.push(leaving.slot);
      return base("parking.exit", leaving.leaveAtMs, leaving.car, leaving.slot);
    }
    const at = nextArrivalMs;
    nextArrivalMs = at + Math.max(1, Math.round(traffic.exponential(meanArrivalMs)));
    if (free.length === 0) {
      turnedAway += 1;
      return null;
    }
    const slot = free.splice(traffic.int(free.length), 1)[0] as Slot;
    const car = newCar(carsPrng, plates);
    const dwell = Math.max(MIN_DWELL_MS, Math.round(traffic.exponential(options.meanDwellSeconds * 1000)));
    parked.push({ leaveAtMs: at + dwell, car, slot });
    return base("parking.entry", at, car, slot);
  };

  while (events.length < options.events) {
    if (pending === null && events.length > 0 && flawPrng.float() < options.flawRate) {
      pending = FLAW_KINDS[nextKind % FLAW_KINDS.length] as FlawKind;
      nextKind += 1;
    }
    if (pending === "duplicate_event_id") {
      // Copy an unflawed event (the first event never carries a flaw), so the copy has one flaw only.
      const clean = events.filter((e) => e.flaw === null);
      const original = clean[flawPrng.int(clean.length)] as PlannedEvent;
      const copy = base(original.type, lastTimeMs(), original.car, original.slot);
      copy.eventId = original.eventId;
      copy.carId = original.carId;
      copy.coordinates = { ...original.coordinates };
      copy.attributes = { ...original.attributes, "sim.duplicateOf": String(original.sequence) };
      delete copy.attributes["sim.flaw"];
      events.push(mark(copy, pending));
      pending = null;
      continue;
    }
    if (pending === "exit_without_entry") {
      const car = newCar(carsPrng, plates);
      events.push(mark(base("parking.exit", lastTimeMs(), car, options.lot.slots[flawPrng.int(options.lot.slots.length)] as Slot), pending));
      pending = null;
      continue;
    }
    const event = nextTraffic();
    if (event === null) continue;
    // A missing car id goes on exits and an early time on entries, so that the flaw does not make the
    // same car's other event look wrong too (an exit whose entry has no car id, an exit before its entry).
    if (pending === "missing_car_id" && event.type === "parking.exit") {
      event.carId = "";
      mark(event, pending);
      pending = null;
    } else if (pending === "time_out_of_order" && event.type === "parking.entry" && lastTimeMs() > 0) {
      const back = Math.min(lastTimeMs(), Math.round(flawPrng.between(5_000, 60_000)));
      event.simTimeMs = lastTimeMs() - back;
      mark(event, pending);
      pending = null;
    } else if (pending === "coordinates_outside_lot") {
      event.coordinates.x = Math.round((options.lot.bounds.maxX + flawPrng.between(10, 50)) * 1000) / 1000;
      mark(event, pending);
      pending = null;
    }
    events.push(event);
  }
  return { events, turnedAway, flaws };
}
