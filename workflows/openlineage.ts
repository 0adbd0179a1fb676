// Which OpenLineage run events a pipeline run owes, worked out from its step states: the
// workflow hands these facts to the `emitOpenLineage` control activity, which builds and
// sends the events (activities/lineage/openlineage.ts). Deterministic: no I/O, no clock but
// the step times the workflow recorded. Types only from elsewhere (part of the bundle).
import type { LineageEventType, LineageFact } from '../model/openlineage.js';
import type { RunStatus, StepStatus } from '../model/types.js';

const TERMINAL: Partial<Record<StepStatus['state'], LineageEventType>> = {
  succeeded: 'COMPLETE',
  cached: 'COMPLETE',
  failed: 'FAIL',
  cancelled: 'ABORT',
};

/**
 * The facts not sent yet. Every run gets one START and one terminal event; a step gets START
 * when it starts running or is answered from the cache, and COMPLETE (succeeded, cached),
 * FAIL or ABORT (cancelled while running) when it ends. A step that never started and was
 * skipped or cancelled gets none; one that failed before it could start (no host, could not
 * be prepared) gets START and FAIL at that moment.
 */
export class LineageFacts {
  private readonly sent = new Map<string, 'started' | 'done'>();
  private runStarted: boolean;

  /** `resumed`: a continued-as-new run, whose facts up to `steps` were all sent before. */
  constructor(resumed: boolean, steps: Record<string, StepStatus> = {}) {
    this.runStarted = resumed;
    if (!resumed) return;
    for (const st of Object.values(steps)) {
      if (st.state === 'running') this.sent.set(st.name, 'started');
      else if (st.state !== 'pending') this.sent.set(st.name, 'done');
    }
  }

  /** The facts owed by the run's current state (marked as sent), in order: run START first. */
  take(steps: StepStatus[], runStartedAt: string): LineageFact[] {
    const out: LineageFact[] = [];
    if (!this.runStarted) {
      this.runStarted = true;
      out.push({ eventType: 'START', eventTime: runStartedAt });
    }
    for (const st of steps) {
      const was = this.sent.get(st.name);
      if (was === 'done' || st.state === 'pending') continue;
      const end = TERMINAL[st.state];
      const started = was === 'started';
      if (!started && (st.state === 'skipped' || (st.state === 'cancelled' && !st.startedAt))) {
        this.sent.set(st.name, 'done');
        continue;
      }
      const inputs = st.inputs
        ? Object.fromEntries(Object.entries(st.inputs).map(([k, v]) => [k, v.artifact]))
        : undefined;
      if (!started) {
        out.push({
          eventType: 'START',
          eventTime: st.startedAt ?? st.finishedAt ?? runStartedAt,
          step: st.name,
          ...(inputs ? { inputs } : {}),
        });
        this.sent.set(st.name, 'started');
      }
      if (end) {
        const outputs = end === 'COMPLETE' ? st.outcome?.outputs : undefined;
        out.push({
          eventType: end,
          eventTime: st.finishedAt ?? st.startedAt ?? runStartedAt,
          step: st.name,
          ...(inputs ? { inputs } : {}),
          ...(outputs ? { outputs } : {}),
        });
        this.sent.set(st.name, 'done');
      } else if (st.state === 'skipped') {
        // Started, then skipped: cannot happen today; end it rather than leave it open.
        out.push({ eventType: 'ABORT', eventTime: st.finishedAt ?? runStartedAt, step: st.name });
        this.sent.set(st.name, 'done');
      }
    }
    return out;
  }
}

/** The run's own terminal event for its final state. */
export function runEnd(state: RunStatus['state'], at: string): LineageFact {
  return { eventType: state === 'succeeded' ? 'COMPLETE' : state === 'cancelled' ? 'ABORT' : 'FAIL', eventTime: at };
}
