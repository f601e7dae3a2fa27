// The simulated parking lot in stage coordinates (metres, Y up, ground at y = 0). The numbers are part
// of the documented contract with the lakehouse (docs/recording-format.md, "The lot").

export const SLOT_WIDTH_M = 2.5;
export const SLOT_DEPTH_M = 5.0;
export const AISLE_M = 6.0;
export const MARGIN_M = 3.0;
export const MAX_SLOTS_PER_ROW = 12;

export interface Slot {
  id: string;
  x: number;
  y: number;
  z: number;
  yawDeg: number;
}

export interface LotBounds {
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
  minZ: number;
  maxZ: number;
}

export interface Lot {
  slots: Slot[];
  slotsPerRow: number;
  rows: number;
  bounds: LotBounds;
  entryGate: { x: number; z: number };
  exitGate: { x: number; z: number };
}

function rowName(row: number): string {
  // A..Z, then AA, AB, ...
  let name = "";
  let n = row;
  do {
    name = String.fromCharCode(65 + (n % 26)) + name;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return name;
}

export function layoutLot(slotCount: number): Lot {
  if (!Number.isInteger(slotCount) || slotCount < 1) throw new RangeError(`slot count must be a positive integer, got ${slotCount}`);
  const slotsPerRow = Math.min(MAX_SLOTS_PER_ROW, slotCount);
  const rows = Math.ceil(slotCount / slotsPerRow);
  const slots: Slot[] = [];
  for (let i = 0; i < slotCount; i++) {
    const row = Math.floor(i / slotsPerRow);
    const col = i % slotsPerRow;
    slots.push({
      id: `${rowName(row)}-${String(col + 1).padStart(2, "0")}`,
      x: MARGIN_M + SLOT_WIDTH_M * (col + 0.5),
      y: 0,
      z: MARGIN_M + row * (SLOT_DEPTH_M + AISLE_M) + SLOT_DEPTH_M / 2,
      yawDeg: row % 2 === 0 ? 90 : 270,
    });
  }
  const bounds: LotBounds = {
    minX: 0,
    maxX: 2 * MARGIN_M + SLOT_WIDTH_M * slotsPerRow,
    minY: 0,
    maxY: 0,
    minZ: 0,
    maxZ: 2 * MARGIN_M + rows * (SLOT_DEPTH_M + AISLE_M),
  };
  return {
    slots,
    slotsPerRow,
    rows,
    bounds,
    entryGate: { x: bounds.minX, z: bounds.maxZ - MARGIN_M },
    exitGate: { x: bounds.maxX, z: bounds.maxZ - MARGIN_M },
  };
}

/** The lot as the string map that goes into the run lineage's `extra`. */
export function lotLineage(lot: Lot): Record<string, string> {
  const b = lot.bounds;
  return {
    "lot.minX": String(b.minX),
    "lot.maxX": String(b.maxX),
    "lot.minY": String(b.minY),
    "lot.maxY": String(b.maxY),
    "lot.minZ": String(b.minZ),
    "lot.maxZ": String(b.maxZ),
    "lot.slots": String(lot.slots.length),
    "lot.slotsPerRow": String(lot.slotsPerRow),
    "lot.upAxis": "Y",
    "lot.units": "m",
    "gate.entry.x": String(lot.entryGate.x),
    "gate.entry.z": String(lot.entryGate.z),
    "gate.exit.x": String(lot.exitGate.x),
    "gate.exit.z": String(lot.exitGate.z),
  };
}
