// The plugins' listeners as one: each is told in turn, and one that throws is logged and does not stop
// the others nor the event that produced the record.
import type { RecordKind, RecordLocation } from "../model/outcome.js";
import type { PipelineEvents } from "../model/stages.js";
import type { Logger } from "../telemetry/logger.js";

export function fanOut(listeners: readonly PipelineEvents[], logger: Logger): Required<PipelineEvents> {
  const each = (fn: (l: PipelineEvents) => void): void => {
    for (const l of listeners) {
      try {
        fn(l);
      } catch (err) {
        logger.error({ err }, "a pipeline listener threw");
      }
    }
  };
  return {
    onRecordProduced: (topic: string, location: RecordLocation, kind: RecordKind) => each((l) => l.onRecordProduced?.(topic, location, kind)),
    onRunEnded: (runId: string, location: RecordLocation) => each((l) => l.onRunEnded?.(runId, location)),
  };
}
