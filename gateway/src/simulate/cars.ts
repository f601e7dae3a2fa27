// The cars of the simulated lot: plate, colour and body, drawn from a seeded generator.
import type { Prng } from "./prng.js";

export const CAR_COLORS = [
  { name: "red", hex: "#b3261e" },
  { name: "blue", hex: "#1f4e9c" },
  { name: "white", hex: "#e6e6e2" },
  { name: "black", hex: "#1c1c1e" },
  { name: "silver", hex: "#a7adb3" },
  { name: "green", hex: "#2e6b3a" },
  { name: "yellow", hex: "#d9b310" },
  { name: "orange", hex: "#d9631a" },
  { name: "grey", hex: "#5f6368" },
  { name: "brown", hex: "#6b4a2f" },
] as const;

export const CAR_BODIES = ["sedan", "hatchback", "suv", "van", "pickup"] as const;
export type CarBody = (typeof CAR_BODIES)[number];

export interface Car {
  plate: string;
  color: (typeof CAR_COLORS)[number];
  body: CarBody;
}

const LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"; // no I, O, Q: they read as digits on plates

/** Plates look like "12GA3456"; `taken` keeps them unique within a run. */
export function newCar(prng: Prng, taken: Set<string>): Car {
  let plate: string;
  do {
    const digits = (n: number): string => Array.from({ length: n }, () => String(prng.int(10))).join("");
    plate = `${digits(2)}${prng.pick([...LETTERS])}${prng.pick([...LETTERS])}${digits(4)}`;
  } while (taken.has(plate));
  taken.add(plate);
  return { plate, color: prng.pick(CAR_COLORS), body: prng.pick(CAR_BODIES) };
}
