// Options of `simgate simulate`, validated once (zod) into a fully resolved form with units normalised.
import { z } from "zod";

const ID = /^[A-Za-z0-9._:-]{1,100}$/;

export const simulateOptionsSchema = z.object({
  /** Seed of every random choice: same seed and options, same bytes. */
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Number of events (entries + exits, flawed ones included). */
  events: z.number().int().min(1).max(1_000_000),
  /** Output file (.simrec). */
  out: z.string().min(1),
  /** Run id; default `sim-<seed>`. Event ids are `<runId>-<sequence, 6 digits>`. */
  runId: z.string().regex(ID, "run id: 1..100 characters of [A-Za-z0-9._:-]").optional(),
  width: z.number().int().min(16).max(7680).default(1280),
  height: z.number().int().min(16).max(4320).default(720),
  format: z.enum(["png", "jpeg"]).default("png"),
  jpegQuality: z.number().int().min(1).max(100).default(85),
  /** Share of events that carry a flaw, 0..1. */
  flawRate: z.number().min(0).max(1).default(0),
  slots: z.number().int().min(1).max(10_000).default(24),
  arrivalsPerMinute: z.number().positive().max(10_000).default(2),
  meanDwellSeconds: z.number().positive().max(7 * 86_400).default(600),
  /** Wall-clock time of sim time 0 (ISO-8601); also the recording's creation time. */
  startTime: z.iso.datetime({ offset: true }).default("2026-01-01T08:00:00.000Z"),
  /** Replace an existing output file. */
  overwrite: z.boolean().default(false),
  /** Images rendered at once. */
  renderConcurrency: z.number().int().min(1).max(64).default(2),
});

export type SimulateInput = z.input<typeof simulateOptionsSchema>;
export type SimulateOptions = z.output<typeof simulateOptionsSchema> & { runId: string; startUnixMs: number };

export function resolveSimulateOptions(input: SimulateInput): SimulateOptions {
  const parsed = simulateOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join(".") || "options";
    throw new Error(`simulate: invalid ${key}: ${issue?.message ?? "invalid"}`);
  }
  const o = parsed.data;
  return { ...o, runId: o.runId ?? `sim-${o.seed}`, startUnixMs: Date.parse(o.startTime) };
}
