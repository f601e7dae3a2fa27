// Progress of a replay: a cli-progress bar with rate and ETA on a terminal, plain periodic lines
// otherwise (logs, CI), nothing with --quiet.
import cliProgress from "cli-progress";
import type { ProgressSink, ProgressState } from "./replayer.js";

type Write = (line: string) => void;

export function progressFor(options: { tty: boolean; quiet: boolean; intervalMs?: number; write?: Write }): ProgressSink {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (options.quiet) return { start() {}, update() {}, note() {}, stop() {} };
  return options.tty ? new BarProgress() : new LineProgress(write, options.intervalMs ?? 2_000);
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

class BarProgress implements ProgressSink {
  private readonly bar = new cliProgress.SingleBar(
    {
      format: "replay |{bar}| {percentage}% {mbRead}/{mbTotal} MB | {sent} sent {accepted} ok {duplicate} dup {rejected} rej {inFlight} open | {rate} ev/s | ETA {eta_formatted}",
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  private startedAt = 0;

  private payload(s: ProgressState): Record<string, string | number> {
    const seconds = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    return {
      mbRead: mb(s.bytesRead),
      mbTotal: mb(s.totalBytes),
      sent: s.eventsSent,
      accepted: s.accepted,
      duplicate: s.duplicate,
      rejected: s.rejected,
      inFlight: s.inFlight,
      rate: ((s.accepted + s.duplicate + s.rejected) / seconds).toFixed(1),
    };
  }

  start(s: ProgressState): void {
    this.startedAt = Date.now();
    this.bar.start(Math.max(1, s.totalBytes), s.bytesRead, this.payload(s));
  }
  update(s: ProgressState): void {
    this.bar.update(s.bytesRead, this.payload(s));
  }
  note(message: string): void {
    this.bar.stop();
    process.stderr.write(`${message}\n`);
    this.bar.start(this.bar.getTotal(), 0);
  }
  stop(s: ProgressState): void {
    this.bar.update(s.bytesRead, this.payload(s));
    this.bar.stop();
  }
}

class LineProgress implements ProgressSink {
  private startedAt = 0;
  private lastAt = 0;

  constructor(
    private readonly write: Write,
    private readonly intervalMs: number,
  ) {}

  private line(s: ProgressState): string {
    const seconds = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const answered = s.accepted + s.duplicate + s.rejected;
    const rate = answered / seconds;
    const fraction = s.totalBytes > 0 ? s.bytesRead / s.totalBytes : 0;
    const eta = fraction > 0 && fraction < 1 ? `${Math.round((seconds / fraction) * (1 - fraction))} s` : "-";
    return (
      `replay: ${(fraction * 100).toFixed(0)}% (${mb(s.bytesRead)}/${mb(s.totalBytes)} MB) sent ${s.eventsSent} ` +
      `accepted ${s.accepted} duplicate ${s.duplicate} rejected ${s.rejected} open ${s.inFlight} resends ${s.resends} ` +
      `${rate.toFixed(1)} ev/s eta ${eta}`
    );
  }

  start(): void {
    this.startedAt = Date.now();
    this.lastAt = this.startedAt;
  }
  update(s: ProgressState): void {
    if (Date.now() - this.lastAt < this.intervalMs) return;
    this.lastAt = Date.now();
    this.write(this.line(s));
  }
  note(message: string): void {
    this.write(`replay: ${message}`);
  }
  stop(s: ProgressState): void {
    this.write(this.line(s));
  }
}
