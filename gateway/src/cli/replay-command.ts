// `simgate replay FILE`: sends a recording to a gateway, or checks it (--check).
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { RecordingError } from "../recording/errors.js";
import { checkRecording, formatCheck } from "../replay/check.js";
import { GrpcTransport } from "../replay/grpc-transport.js";
import { progressFor } from "../replay/progress.js";
import { replay } from "../replay/replayer.js";
import { failureOf, summaryJson, summaryLines } from "../replay/summary.js";
import type { ReplayTransport } from "../replay/transport.js";
import { WsTransport } from "../replay/ws-transport.js";

interface ReplayFlags {
  check?: boolean;
  skipCorrupt?: boolean;
  speed: number;
  max?: boolean;
  transport: string;
  gateway?: string;
  token?: string;
  tls?: boolean;
  checkpoint?: string;
  concurrency: number;
  ackTimeout: number;
  maxAttempts: number;
  giveUpAfter: number;
  asRun?: string;
  summaryJson?: string;
  progress: string;
  quiet?: boolean;
}

function positive(name: string, integer: boolean): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got "${value}"`);
    }
    return n;
  };
}

export function transportFor(flags: { transport: string; gateway?: string; token?: string; tls?: boolean }): ReplayTransport {
  const token = flags.token ?? process.env["SIMGATE_TOKEN"];
  if (flags.transport === "grpc") {
    const address = flags.gateway ?? `${process.env["SIMGATE_HOST"] ?? "127.0.0.1"}:${process.env["SIMGATE_GRPC_PORT"] ?? "50051"}`;
    return new GrpcTransport({ address, token, tls: flags.tls ?? false });
  }
  if (flags.transport === "ws") {
    const fallback = `${flags.tls ? "wss" : "ws"}://${process.env["SIMGATE_HOST"] ?? "127.0.0.1"}:${process.env["SIMGATE_HTTP_PORT"] ?? "8080"}${process.env["SIMGATE_WS_PATH"] ?? "/v1/events"}`;
    const given = flags.gateway;
    const url = given === undefined ? fallback : /^wss?:\/\//.test(given) ? given : `${flags.tls ? "wss" : "ws"}://${given}${process.env["SIMGATE_WS_PATH"] ?? "/v1/events"}`;
    return new WsTransport({ url, token });
  }
  throw new Error(`--transport must be grpc or ws, got "${flags.transport}"`);
}

export function registerReplayCommand(program: Command): void {
  program
    .command("replay")
    .description("send a recording (.simrec) to a gateway, or check it with --check")
    .argument("<file>", "recording to replay")
    .option("--check", "validate the recording without sending it")
    .option("--skip-corrupt", "replay the intact frames around damaged ones")
    .option("--speed <x>", "simulation-time speed-up (1 = recorded cadence)", positive("speed", false), 1)
    .option("--max", "as fast as acknowledgements allow (ignores --speed)")
    .option("--transport <grpc|ws>", "transport", "grpc")
    .option("--gateway <address>", "grpc: host:port (default $SIMGATE_HOST:$SIMGATE_GRPC_PORT, else 127.0.0.1:50051); ws: URL or host:port (default from $SIMGATE_HOST, $SIMGATE_HTTP_PORT and $SIMGATE_WS_PATH, else ws://127.0.0.1:8080/v1/events)")
    .option("--token <token>", "bearer token (default $SIMGATE_TOKEN)")
    .option("--tls", "TLS (grpcs / wss)")
    .option("--checkpoint <file>", "resume file: frames already answered are not sent again")
    .option("--concurrency <n>", "events sent and not yet answered, at most", positive("concurrency", true), 16)
    .option("--ack-timeout <ms>", "resend an event not answered within this time", positive("ack-timeout", true), 60_000)
    .option("--max-attempts <n>", "sends per event before giving it up", positive("max-attempts", true), 20)
    .option("--give-up-after <ms>", "stop when the gateway is unreachable this long", positive("give-up-after", true), 120_000)
    .option("--as-run <id>", "send under this run id (event ids re-prefixed), to replay a recording again as a new run")
    .option("--summary-json <file>", "also write the summary as JSON")
    .option("--progress <auto|bar|lines|none>", "progress display", "auto")
    .option("--quiet", "no progress, no summary (errors only)")
    .action(async (file: string, flags: ReplayFlags) => {
      if (flags.check) {
        let report;
        try {
          report = await checkRecording(file);
        } catch (err) {
          if (err instanceof RecordingError) throw new Error(`${file}: ${err.describe()}`);
          throw err;
        }
        for (const line of formatCheck(report)) console.log(line);
        if (report.problems.length > 0) throw new Error(`${file}: ${report.problems.length} problem(s): damaged or out-of-order frames`);
        return;
      }
      if (flags.asRun !== undefined && !/^[A-Za-z0-9._:-]{1,100}$/.test(flags.asRun)) {
        throw new Error(`--as-run must be 1..100 characters of [A-Za-z0-9._:-], got "${flags.asRun}"`);
      }
      const mode = flags.quiet ? "none" : flags.progress === "auto" ? (process.stderr.isTTY ? "bar" : "lines") : flags.progress;
      if (!["bar", "lines", "none"].includes(mode)) throw new Error(`--progress must be auto, bar, lines or none, got "${flags.progress}"`);
      const controller = new AbortController();
      const interrupt = (): void => controller.abort();
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      let summary;
      try {
        summary = await replay({
          path: file,
          transport: transportFor(flags),
          speed: flags.max ? "max" : flags.speed,
          concurrency: flags.concurrency,
          ackTimeoutMs: flags.ackTimeout,
          maxAttempts: flags.maxAttempts,
          giveUpAfterMs: flags.giveUpAfter,
          skipCorrupt: flags.skipCorrupt ?? false,
          asRunId: flags.asRun,
          checkpointPath: flags.checkpoint,
          progress: progressFor({ tty: mode === "bar", quiet: mode === "none" }),
          signal: controller.signal,
        });
      } catch (err) {
        if (err instanceof RecordingError) throw new Error(`${file}: ${err.describe()}`);
        throw err;
      } finally {
        process.off("SIGINT", interrupt);
        process.off("SIGTERM", interrupt);
      }
      if (!flags.quiet) for (const line of summaryLines(summary)) console.log(line);
      if (flags.summaryJson) await writeFile(flags.summaryJson, `${JSON.stringify(summaryJson(summary), null, 2)}\n`);
      const failure = failureOf(summary, flags.skipCorrupt ?? false);
      if (failure) throw new Error(failure);
    });
}
