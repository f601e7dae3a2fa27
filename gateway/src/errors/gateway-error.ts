import { errorSpec, wireAnswer, type ErrorClass, type ErrorCode, type ErrorStage } from "./catalogue.js";

/** An error that carries a catalogue code; its class tells the receiver which answer to give. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly errorClass: ErrorClass;
  readonly stage: ErrorStage;
  /** Suggested delay before resending, for retryable and throttled errors. */
  readonly retryAfterMs: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    const spec = errorSpec(code);
    this.code = code;
    this.errorClass = spec.class;
    this.stage = spec.stage;
    this.retryAfterMs = options.retryAfterMs ?? wireAnswer(code).retryAfterMs;
  }

  get permanent(): boolean {
    return this.errorClass === "permanent";
  }
}

/** Any thrown value as a GatewayError: unknown failures become GW_ERR_INTERNAL (retryable). */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError("GW_ERR_INTERNAL", message, { cause: err });
}
