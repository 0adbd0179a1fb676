// `trainyard logs RUN [STEP] [-f]`: a step's stdout and stderr. A finished step's whole log
// comes from the store by digest (streamed, never held whole in memory); a running step's
// from its live log chunks (activities/runner/livelog.ts), which -f follows until it ends.
import { latestLiveAttempt, readLiveChunks } from '../../activities/runner/livelog.js';
import { createStore } from '../../activities/store/factory.js';
import { stepExecWorkflowId } from '../../workflows/contracts.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { terminalText } from '../../activities/usertext.js';
import type { RunStatus, StepStatus } from '../../workflows/types.js';
import { loadEngineConfig, type EngineConfig } from '../config.js';
import { findRun } from './runcmds.js';
import { UsageError } from './errors.js';

type Out = NodeJS.WritableStream;

export interface LogsOptions {
  follow: boolean;
  /** Poll interval while following, ms. */
  pollMs?: number;
}

/** The digest of the step's last attempt's log, once stored. */
function logDigestOf(s: StepStatus): string | undefined {
  return s.outcome?.logDigest ?? s.outcome?.attempts.at(-1)?.logDigest;
}

/**
 * Writes a stored log (lines `O text` / `E text`, as activities/runner/output.ts writes
 * them) without the stream marks, streaming.
 */
export async function writeStoredLog(store: ArtifactStore, digest: string, out: Out): Promise<void> {
  let rest = '';
  for await (const chunk of (await store.openRead(digest)) as AsyncIterable<Buffer>) {
    const text = rest + chunk.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    if (lines.length) out.write(`${lines.map(unmark).join('\n')}\n`);
  }
  if (rest) out.write(`${unmark(rest)}\n`);
}

const unmark = (line: string): string => (line.startsWith('O ') || line.startsWith('E ') ? line.slice(2) : line);

function pickSteps(status: RunStatus, step: string | undefined): StepStatus[] {
  if (step === undefined) return status.steps;
  const s = status.steps.find((x) => x.name === step);
  if (!s) throw new UsageError(`run ${status.runId} has no step ${JSON.stringify(step)}; its steps: ${status.steps.map((x) => x.name).join(', ')}`);
  return [s];
}

const FINISHED = new Set(['succeeded', 'cached', 'failed', 'skipped', 'cancelled']);

/**
 * Prints a step's live log from its chunks; with `follow`, keeps polling until the attempt's
 * end record appears or the step is over. Returns whether anything was found.
 */
async function writeLiveLog(store: ArtifactStore, execId: string, out: Out, opts: LogsOptions, stepDone: () => Promise<boolean>): Promise<boolean> {
  let attempt: string | undefined;
  let seq = 0;
  let polls = 0;
  for (;;) {
    attempt ??= await latestLiveAttempt(store, execId);
    if (attempt) {
      const { chunks, end } = await readLiveChunks(store, execId, attempt, seq);
      for (const c of chunks) out.write(c.text.split('\n').map((l, i, all) => (i === all.length - 1 ? l : unmark(l))).join('\n'));
      seq += chunks.length;
      if (end && chunks.length === 0) return true;
    }
    if (!opts.follow) return attempt !== undefined;
    // A newer attempt (a retry) starts its own live log: switch once the step says so.
    if (++polls % 5 === 0 && (await stepDone())) {
      if (!attempt) return false;
      const { chunks } = await readLiveChunks(store, execId, attempt, seq);
      for (const c of chunks) out.write(c.text.split('\n').map((l, i, all) => (i === all.length - 1 ? l : unmark(l))).join('\n'));
      return true;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}

/** Returns the exit code: 0, or 1 when a step asked for has no log (it never ran). */
export async function logsCommand(run: string, step: string | undefined, opts: LogsOptions, out: Out = process.stdout, cfg: EngineConfig = loadEngineConfig()): Promise<number> {
  const store = createStore(cfg.store);
  const { status } = await findRun(cfg, store, run);
  let code = 0;
  for (const s of pickSteps(status, step)) {
    if (step === undefined) out.write(`==> ${terminalText(s.name)} (${s.state}) <==\n`);
    const digest = logDigestOf(s);
    if (digest && FINISHED.has(s.state)) {
      await writeStoredLog(store, digest, out);
      continue;
    }
    const live = s.cache?.key
      ? await writeLiveLog(store, stepExecWorkflowId(s.cache.key), out, opts, async () => {
          const now = (await findRun(cfg, store, run)).status.steps.find((x) => x.name === s.name);
          return !now || FINISHED.has(now.state);
        })
      : false;
    if (!live) {
      out.write(`(no log: step ${terminalText(s.name)} is ${s.state})\n`);
      if (step !== undefined) code = 1;
    }
  }
  return code;
}
