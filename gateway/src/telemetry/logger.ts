// Structured JSON logs (pino) on stdout.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, gatewayId: string): Logger {
  return pino({ level, base: { service: "simgate-gateway", gatewayId }, timestamp: pino.stdTimeFunctions.isoTime });
}
