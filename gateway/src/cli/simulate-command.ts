// `simgate simulate`: writes a deterministic synthetic parking-lot recording.
import type { Command } from "commander";
import { simulate } from "../simulate/simulate.js";

function int(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new Error(`--${name} must be an integer, got "${value}"`);
    return n;
  };
}

function num(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${value}"`);
    return n;
  };
}

interface SimulateFlags {
  seed: number;
  events: number;
  out: string;
  runId?: string;
  width: number;
  height: number;
  format: string;
  jpegQuality: number;
  flawRate: number;
  slots: number;
  arrivalsPerMinute: number;
  meanDwell: number;
  startTime: string;
  overwrite?: boolean;
  quiet?: boolean;
}

export function registerSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description("write a synthetic parking-lot run as a recording (.simrec); same seed, same bytes")
    .requiredOption("--seed <n>", "random seed", int("seed"))
    .requiredOption("--events <n>", "number of events (entries + exits)", int("events"))
    .requiredOption("--out <file>", "output recording")
    .option("--run-id <id>", "run id (default sim-<seed>)")
    .option("--width <px>", "image width", int("width"), 1280)
    .option("--height <px>", "image height", int("height"), 720)
    .option("--format <png|jpeg>", "image encoding", "png")
    .option("--jpeg-quality <q>", "JPEG quality 1..100", int("jpeg-quality"), 85)
    .option("--flaw-rate <x>", "share of events with a deliberate flaw, 0..1", num("flaw-rate"), 0)
    .option("--slots <n>", "parking slots", int("slots"), 24)
    .option("--arrivals-per-minute <x>", "mean car arrivals per minute (Poisson)", num("arrivals-per-minute"), 2)
    .option("--mean-dwell <seconds>", "mean parking time", num("mean-dwell"), 600)
    .option("--start-time <iso>", "wall-clock time of sim time 0", "2026-01-01T08:00:00.000Z")
    .option("--overwrite", "replace the output file if it exists")
    .option("--quiet", "print nothing but errors")
    .action(async (flags: SimulateFlags) => {
      const started = performance.now();
      const result = await simulate({
        seed: flags.seed,
        events: flags.events,
        out: flags.out,
        runId: flags.runId,
        width: flags.width,
        height: flags.height,
        format: flags.format as "png" | "jpeg",
        jpegQuality: flags.jpegQuality,
        flawRate: flags.flawRate,
        slots: flags.slots,
        arrivalsPerMinute: flags.arrivalsPerMinute,
        meanDwellSeconds: flags.meanDwell,
        startTime: flags.startTime,
        overwrite: flags.overwrite ?? false,
      });
      if (flags.quiet) return;
      const seconds = (performance.now() - started) / 1000;
      const flaws = Object.entries(result.flaws)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k}=${n}`)
        .join(" ");
      console.log(`wrote ${result.path}: run ${result.runId}, ${result.events} events (${Object.entries(result.byType).map(([t, n]) => `${t}=${n}`).join(" ")})`);
      console.log(`  ${(result.bytes / 1e6).toFixed(2)} MB (images ${(result.imageBytes / 1e6).toFixed(2)} MB), sim time ${result.simSeconds.toFixed(1)} s, cars turned away ${result.turnedAway}`);
      console.log(`  flaws: ${flaws || "none"}`);
      console.log(`  ${seconds.toFixed(2)} s, ${(result.events / seconds).toFixed(1)} events/s`);
    });
}
