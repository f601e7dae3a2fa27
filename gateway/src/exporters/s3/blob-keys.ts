// Object keys derived from run, event id and view, so that a resend writes the same key. Every segment
// is checked again here (defence in depth after validation): no separators, no '.'/'..', bounded.
const SEGMENT = /^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,127}$/;

export function assertSafeSegment(segment: string, what: string): string {
  if (!SEGMENT.test(segment) || segment.includes("..")) throw new Error(`unsafe ${what} for an object key: ${JSON.stringify(segment)}`);
  return segment;
}

export function imageKey(prefix: string, runId: string, eventId: string, view: string, extension: string): string {
  return `${prefix}runs/${assertSafeSegment(runId, "run id")}/events/${assertSafeSegment(eventId, "event id")}/${assertSafeSegment(view, "view")}.${extension}`;
}

/** Quarantined payload of a rejected message: keyed by content hash, so a resend overwrites itself. */
export function quarantineKey(prefix: string, receivedDay: string, sha256: string): string {
  return `${prefix}quarantine/${receivedDay}/${assertSafeSegment(sha256, "hash")}.bin`;
}
