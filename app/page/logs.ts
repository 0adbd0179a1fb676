// The end of a step's log for the run page: a finished step's stored log (by digest,
// streamed, only the tail kept in memory), a running step's live chunks
// (activities/runner/livelog.ts). Bounded: the page shows at most LOG_TAIL_BYTES per step
// and says where the whole log is.
import { latestLiveAttempt, readLiveChunks } from '../../activities/runner/livelog.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import type { StepState } from '../../model/types.js';
import { stepExecWorkflowId } from '../../model/contracts.js';
import { uncachedExecKey } from '../../activities/prepare.js';

/** Most bytes of one step's log sent to the page (its end: that is where errors are). */
export const LOG_TAIL_BYTES = 64 * 1024;

export interface PageLog {
  /** `stored`: the whole log of the step's last attempt; `live`: what it printed so far; `none`: no log (yet). */
  from: 'stored' | 'live' | 'none';
  /** Lines without their stream marks; stderr lines are listed in `stderr` by index. */
  lines: string[];
  stderr: number[];
  /** Bytes left out before the first line shown. */
  cutBytes: number;
}

const FINISHED = new Set<StepState>(['succeeded', 'cached', 'failed', 'skipped', 'cancelled']);

/** Keeps the last `max` bytes of what is pushed, cut at a line start. */
class Tail {
  private parts: Buffer[] = [];
  private held = 0;
  dropped = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.parts.push(b);
    this.held += b.length;
    while (this.held - this.parts[0]!.length >= this.max) {
      const first = this.parts.shift()!;
      this.held -= first.length;
      this.dropped += first.length;
    }
  }
  text(): { text: string; cut: number } {
    let buf = Buffer.concat(this.parts);
    let cut = this.dropped;
    if (buf.length > this.max) {
      const extra = buf.length - this.max;
      const nl = buf.indexOf(0x0a, extra);
      const from = nl < 0 ? extra : nl + 1;
      buf = buf.subarray(from);
      cut += from;
    } else if (cut > 0) {
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) {
        buf = buf.subarray(nl + 1);
        cut += nl + 1;
      }
    }
    return { text: buf.toString('utf8'), cut };
  }
}

function toPageLog(from: PageLog['from'], text: string, cutBytes: number): PageLog {
  const raw = text.endsWith('\n') ? text.slice(0, -1) : text;
  const lines: string[] = [];
  const stderr: number[] = [];
  for (const line of raw === '' ? [] : raw.split('\n')) {
    if (line.startsWith('E ')) stderr.push(lines.length);
    lines.push(line.startsWith('O ') || line.startsWith('E ') ? line.slice(2) : line);
  }
  return { from, lines, stderr, cutBytes };
}

/** What finds a step's log: its stored log's digest, else its execution (by cache decision, run and step). */
export interface LoggedStep {
  runId: string;
  name: string;
  state: StepState;
  logDigest?: string | null | undefined;
  cache?: { decision: string; key: string } | null | undefined;
}

/**
 * The tail of a step's log: stored by `logDigest` once the step finished, else the newest
 * attempt's live chunks of its execution (found by its cache decision). Never throws: a log that
 * cannot be read is shown as none.
 */
export async function logTail(store: ArtifactStore, step: LoggedStep, max = LOG_TAIL_BYTES): Promise<PageLog> {
  try {
    const tail = new Tail(max);
    if (step.logDigest && FINISHED.has(step.state)) {
      for await (const chunk of (await store.openRead(step.logDigest)) as AsyncIterable<Buffer>) tail.push(chunk);
      const { text, cut } = tail.text();
      return toPageLog('stored', text, cut);
    }
    if (!step.cache || step.state !== 'running') return toPageLog('none', '', 0);
    // A step run without the cache has an execution of its own (activities/prepare.ts).
    const execKey =
      step.cache.decision === 'disabled' ? uncachedExecKey(step.cache.key, step.runId, step.name) : step.cache.key;
    const execId = stepExecWorkflowId(execKey);
    const attempt = await latestLiveAttempt(store, execId);
    if (!attempt) return toPageLog('none', '', 0);
    const { chunks } = await readLiveChunks(store, execId, attempt, 0);
    for (const c of chunks) tail.push(Buffer.from(c.text, 'utf8'));
    const { text, cut } = tail.text();
    return toPageLog('live', text, cut);
  } catch {
    return toPageLog('none', '', 0);
  }
}
