// Sends a recorded run under another run id (replay --as-run): event ids are re-prefixed (the recorded
// run id at their start is replaced, else the new id is put in front), and the RunStart's lineage says
// which run it replays. Without a new run id everything passes unchanged.
import type { simgate } from "../generated/simgate.js";

export class RunRewrite {
  constructor(
    private readonly recordedRunId: string,
    private readonly asRunId: string | undefined,
  ) {}

  /** The run id the gateway sees. */
  get runId(): string {
    return this.asRunId ?? this.recordedRunId;
  }

  event(event: simgate.v1.IEvent): simgate.v1.IEvent {
    const as = this.asRunId;
    if (!as) return event;
    const from = this.recordedRunId;
    const id = event.eventId ?? "";
    const eventId = from && id.startsWith(from) ? as + id.slice(from.length) : `${as}-${id}`;
    return { ...event, runId: as, eventId };
  }

  runStart(runStart: simgate.v1.IRunStart): simgate.v1.IRunStart {
    const as = this.asRunId;
    if (!as) return runStart;
    const lineage = runStart.lineage ?? {};
    return { ...runStart, runId: as, lineage: { ...lineage, extra: { ...(lineage.extra ?? {}), "replay.of": this.recordedRunId } } };
  }
}
