// Records what a gateway accepted, one recording per run (`<directory>/<runId>.simrec`), so that a live
// Omniverse run can be replayed later. Run start creates the file, every accepted event is appended,
// run end closes it and (optionally) hands it to an uploader, e.g. to the object store. Appends of one
// run are serialised; files of idle runs are closed and reopened for append when the run goes on.
//
// The gateway calls runStarted / eventAccepted / runEnded after the corresponding record is durable;
// a recording failure is reported to `onError` and never fails the event (the recording is a copy).
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { simgate } from "../generated/simgate.js";
import { RecordingWriter } from "./writer.js";

export interface RunRecorderOptions {
  directory: string;
  /** Program name in the header, e.g. "simgate-gateway/0.1.0". */
  writer: string;
  /** Called with the finished file after run end (e.g. upload to the object store). */
  upload?: (runId: string, path: string) => Promise<void>;
  /** At most this many files open at once; the least recently used is closed (default 64). */
  maxOpenFiles?: number;
  onError?: (err: unknown, runId: string) => void;
  now?: () => number;
}

const RUN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function recordingPathFor(directory: string, runId: string): string {
  if (!RUN_ID.test(runId) || runId === "." || runId === ".." || runId.startsWith(".")) {
    throw new Error(`run id ${JSON.stringify(runId)} cannot name a recording file`);
  }
  return join(directory, `${runId}.simrec`);
}

interface OpenRun {
  writer: RecordingWriter;
  lastUsed: number;
}

export class RunRecorder {
  private readonly open = new Map<string, OpenRun>();
  private readonly queues = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly options: RunRecorderOptions) {}

  runStarted(runStart: simgate.v1.IRunStart): Promise<void> {
    const runId = runStart.runId ?? "";
    return this.enqueue(runId, async () => {
      const writer = await this.writerFor(runId, runStart);
      await writer.append({ runStart });
    });
  }

  eventAccepted(event: simgate.v1.IEvent): Promise<void> {
    const runId = event.runId ?? "";
    return this.enqueue(runId, async () => {
      const writer = await this.writerFor(runId, { runId });
      await writer.append({ event });
    });
  }

  runEnded(runEnd: simgate.v1.IRunEnd): Promise<void> {
    const runId = runEnd.runId ?? "";
    return this.enqueue(runId, async () => {
      const writer = await this.writerFor(runId, { runId });
      await writer.append({ runEnd });
      await writer.close();
      this.open.delete(runId);
      if (this.options.upload) await this.options.upload(runId, recordingPathFor(this.options.directory, runId));
    });
  }

  /** Waits for pending appends and closes every file (runs not ended stay appendable). Safe twice. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.queues.values()]);
    await Promise.all([...this.open.values()].map((o) => o.writer.close()));
    this.open.clear();
  }

  get openFiles(): number {
    return this.open.size;
  }

  private enqueue(runId: string, task: () => Promise<void>, force = false): Promise<void> {
    if (this.closed && !force) return Promise.resolve();
    const previous = this.queues.get(runId) ?? Promise.resolve();
    const next = previous.then(task).catch((err: unknown) => this.options.onError?.(err, runId));
    this.queues.set(runId, next);
    void next.then(() => {
      if (this.queues.get(runId) === next) this.queues.delete(runId);
    });
    return next;
  }

  private async writerFor(runId: string, run: simgate.v1.IRunStart): Promise<RecordingWriter> {
    const open = this.open.get(runId);
    const now = (this.options.now ?? Date.now)();
    if (open) {
      open.lastUsed = now;
      return open.writer;
    }
    const path = recordingPathFor(this.options.directory, runId);
    await mkdir(this.options.directory, { recursive: true });
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    const writer = exists
      ? (await RecordingWriter.openForAppend(path, { repairTail: true })).writer
      : await RecordingWriter.create(path, { createdUnixMs: now, writer: this.options.writer, run });
    this.open.set(runId, { writer, lastUsed: now });
    this.closeIdle(runId);
    return writer;
  }

  /**
   * Closes the least recently used files beyond the limit. The close goes through the owning run's
   * queue, so it never cuts into an append of that run that is under way.
   */
  private closeIdle(current: string): void {
    const max = this.options.maxOpenFiles ?? 64;
    while (this.open.size > max) {
      let oldest: [string, OpenRun] | null = null;
      for (const entry of this.open) if (entry[0] !== current && (!oldest || entry[1].lastUsed < oldest[1].lastUsed)) oldest = entry;
      if (!oldest) return;
      const [runId, run] = oldest;
      this.open.delete(runId);
      void this.enqueue(runId, () => run.writer.close(), true);
    }
  }
}
