// The replay checkpoint: which frames of a recording have their final answer (accepted, duplicate or
// rejected), so that a replay killed half-way resumes without resending them. Frames are identified by
// byte offset (exact even after damaged frames were skipped). Written atomically (temp file + rename),
// at most every `intervalMs` and at the end.
import { readFile, rename, writeFile } from "node:fs/promises";

export interface CheckpointIdentity {
  /** sha256 of the recording's header frame: a checkpoint belongs to one recording. */
  recording: string;
  /** The run id the events are sent under (after --as-run). */
  runId: string;
}

interface CheckpointFile extends CheckpointIdentity {
  version: 1;
  runStarted: boolean;
  runEnded: boolean;
  /** Every event frame at an offset below this has its final answer. */
  doneBelow: number;
  /** Event frames at or above doneBelow that have their final answer. */
  done: number[];
  /** Final answers over every session of this replay, so a resumed replay still reports earlier rejects. */
  totals: CheckpointTotals;
  updatedAt: string;
}

export interface CheckpointTotals {
  accepted: number;
  duplicate: number;
  rejectedByCode: Record<string, number>;
}

export class Checkpoint {
  private readonly doneAbove = new Set<number>();
  private doneBelow = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  runStarted = false;
  runEnded = false;
  /** Answers of earlier sessions (loaded) plus this one's (added by the replayer). */
  readonly totals: CheckpointTotals = { accepted: 0, duplicate: 0, rejectedByCode: {} };

  private constructor(
    private readonly path: string | null,
    readonly identity: CheckpointIdentity,
    private readonly intervalMs: number,
  ) {}

  /** A checkpoint that lives in memory only (no --checkpoint). */
  static inMemory(identity: CheckpointIdentity): Checkpoint {
    return new Checkpoint(null, identity, 0);
  }

  /**
   * Loads the checkpoint at `path`, or starts a new one when the file does not exist. A file that
   * belongs to another recording or run is an error: resuming from it would skip the wrong events.
   */
  static async open(path: string, identity: CheckpointIdentity, intervalMs = 250): Promise<{ checkpoint: Checkpoint; resumed: boolean }> {
    const checkpoint = new Checkpoint(path, identity, intervalMs);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { checkpoint, resumed: false };
      throw err;
    }
    let data: CheckpointFile;
    try {
      data = JSON.parse(text) as CheckpointFile;
    } catch {
      throw new Error(`checkpoint ${path} is not valid JSON; remove it to start over`);
    }
    if (data.version !== 1 || data.recording !== identity.recording || data.runId !== identity.runId) {
      throw new Error(
        `checkpoint ${path} belongs to another replay (recording ${String(data.recording).slice(0, 12)}…, run ${data.runId}); ` +
          `this one is recording ${identity.recording.slice(0, 12)}…, run ${identity.runId}. Remove it or choose another --checkpoint`,
      );
    }
    checkpoint.runStarted = data.runStarted === true;
    checkpoint.runEnded = data.runEnded === true;
    checkpoint.doneBelow = Number.isSafeInteger(data.doneBelow) ? data.doneBelow : 0;
    for (const offset of Array.isArray(data.done) ? data.done : []) if (Number.isSafeInteger(offset)) checkpoint.doneAbove.add(offset);
    if (data.totals) {
      checkpoint.totals.accepted = Number(data.totals.accepted) || 0;
      checkpoint.totals.duplicate = Number(data.totals.duplicate) || 0;
      for (const [code, n] of Object.entries(data.totals.rejectedByCode ?? {})) checkpoint.totals.rejectedByCode[code] = Number(n) || 0;
    }
    return { checkpoint, resumed: true };
  }

  isDone(offset: number): boolean {
    return offset < this.doneBelow || this.doneAbove.has(offset);
  }

  /**
   * Records a final answer for the frame at `offset`. `lowestOpen` is the lowest offset of an event frame
   * that is not done yet (in flight, or not read yet).
   */
  markDone(offset: number, lowestOpen: number): void {
    this.doneAbove.add(offset);
    this.advance(lowestOpen);
  }

  /** Moves the low-water mark when every event frame below `lowestOpen` is done. */
  advance(lowestOpen: number): void {
    if (lowestOpen > this.doneBelow) {
      this.doneBelow = lowestOpen;
      for (const o of this.doneAbove) if (o < lowestOpen) this.doneAbove.delete(o);
    }
    this.touch();
  }

  touch(): void {
    this.dirty = true;
    if (this.path && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.save();
      }, this.intervalMs);
    }
  }

  /** Writes now if anything changed (also waits for a write under way). */
  async save(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.path || !this.dirty) return this.writing;
    this.dirty = false;
    const data: CheckpointFile = {
      version: 1,
      ...this.identity,
      runStarted: this.runStarted,
      runEnded: this.runEnded,
      doneBelow: this.doneBelow,
      done: [...this.doneAbove].sort((a, b) => a - b),
      totals: this.totals,
      updatedAt: new Date().toISOString(),
    };
    const path = this.path;
    const text = `${JSON.stringify(data)}\n`;
    this.writing = this.writing.then(async () => {
      const temp = `${path}.tmp-${process.pid}`;
      await writeFile(temp, text);
      await rename(temp, path);
    });
    return this.writing;
  }
}
