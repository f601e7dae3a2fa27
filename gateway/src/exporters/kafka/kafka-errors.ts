// Which Kafka failures are permanent for a record, as the Kafka protocol defines them: resending the
// same record cannot succeed (it is too large for the topic, the gateway may not write there, the topic
// name is invalid). Everything else (network, timeouts, leader changes, an unknown topic while metadata
// catches up) is retryable. kafkajs wraps the broker's error in its own (cause chain); it is unwrapped.
const PERMANENT_TYPES = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_TOPIC_EXCEPTION",
  "TOPIC_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "INVALID_RECORD",
  "POLICY_VIOLATION",
  "UNSUPPORTED_FOR_MESSAGE_FORMAT",
]);

/** The Kafka protocol error type (e.g. MESSAGE_TOO_LARGE) somewhere in err's cause chain. */
export function kafkaErrorType(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== null && typeof e === "object" && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const type = (e as { type?: unknown }).type;
    if (typeof type === "string") return type;
  }
  return undefined;
}

export function isPermanentKafkaError(err: unknown): boolean {
  const type = kafkaErrorType(err);
  return type !== undefined && PERMANENT_TYPES.has(type);
}
