// Node's process warnings (deprecations, the AWS SDK's notice of the Node.js versions its later releases
// need, a listener leak) go to the JSON log like every other line. Node itself prints them to stderr as
// several lines of text, which a log pipeline reading one JSON record per line cannot parse.
import type { EventEmitter } from "node:events";
import type { Logger } from "pino";

export function logProcessWarnings(logger: Logger, proc: EventEmitter = process): void {
  proc.removeAllListeners("warning"); // Node's own printer
  proc.on("warning", (warning: Error & { code?: string }) => {
    logger.warn({ warning: { name: warning.name, code: warning.code, message: warning.message } }, `process warning: ${warning.message.split("\n")[0]}`);
  });
}
