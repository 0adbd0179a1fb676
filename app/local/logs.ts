// `trainyard logs RUN [STEP] [-f]`: a step's stdout and stderr. A finished step's whole log
// comes from the store by digest (streamed, never held whole in memory); a running step's
// from its live log chunks (activities/runner/livelog.ts), which -f follows until it ends.
import { latestLiveAttempt, readLiveChunks } from '../../activities/runner/livelog.js';
import { openStore } from '../store.js';
import { stepExecWorkflowId } from '../../model/contracts.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { terminalText } from '../../activities/usertext.js';
import type { RunStatus, StepStatus } from '../../model/types.js';
import { loadEngineConfig, type EngineConfig } from '../config.js';
import { findRun } from './runcmds.js';
import { UsageError } from './errors.js';
import { uncachedExecKey } from '../../activities/prepare.js';

type Out = NodeJS.WritableStream;

export interface LogsOptions {
  follow: boolean;
  /** NDJSON: one LogRecord per line instead of the text. */
  json?: boolean;
  /** Poll interval while following, ms. */
  pollMs?: number;
}

/** The digest of the step's last attempt's log, once stored. */
function logDigestOf(s: StepStatus): string | undefined {
  return s.outcome?.logDigest ?? s.outcome?.attempts.at(-1)?.logDigest;
}

/**
 * One line of `logs --json` (NDJSON). `stream`: the step's stdout or stderr, or `trainyard`
 * for a note of Trainyard's own in the log (a "truncated" marker). `attempt`: the step's
 * attempt (1-based) the line belongs to. Lines carry no time: steps' output is stored without
 * timestamps.
 */
export interface LogRecord {
  step: string;
  attempt: number | null;
  stream: 'stdout' | 'stderr' | 'trainyard';
  line: string;
}

/** How a reader writes a step's log lines (each as stored: `O text` / `E text` / a note). */
type LineSink = (stored: string[]) => void;

function sinkFor(out: Out, opts: LogsOptions, step: string, attempt: number | null): LineSink {
  if (!opts.json)
    return (lines) => {
      if (lines.length) out.write(`${lines.map(unmark).join('\n')}\n`);
    };
  return (lines) => {
    if (!lines.length) return;
    out.write(
      lines
        .map(
          (l) =>
            `${JSON.stringify({
              step,
              attempt,
              stream: l.startsWith('O ') ? 'stdout' : l.startsWith('E ') ? 'stderr' : 'trainyard',
              line: unmark(l),
            } satisfies LogRecord)}\n`,
        )
        .join(''),
    );
  };
}

/**
 * Writes a stored log (lines `O text` / `E text`, as activities/runner/output.ts writes
 * them) without the stream marks, streaming.
 */
export async function writeStoredLog(store: ArtifactStore, digest: string, out: Out): Promise<void> {
  await readStoredLog(store, digest, sinkFor(out, { follow: false }, '', null));
}

async function readStoredLog(store: ArtifactStore, digest: string, sink: LineSink): Promise<void> {
  let rest = '';
  for await (const chunk of (await store.openRead(digest)) as AsyncIterable<Buffer>) {
    const text = rest + chunk.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    sink(lines);
  }
  if (rest) sink([rest]);
}

const unmark = (line: string): string => (line.startsWith('O ') || line.startsWith('E ') ? line.slice(2) : line);

/** The step attempt of a live log's attempt folder (`a0002-t001` → 2). */
const attemptOfLive = (folder: string): number => Number(folder.slice(1, 5));

function pickSteps(status: RunStatus, step: string | undefined): StepStatus[] {
  if (step === undefined) return status.steps;
  const s = status.steps.find((x) => x.name === step);
  if (!s)
    throw new UsageError(
      `run ${status.runId} has no step ${JSON.stringify(step)}; its steps: ${status.steps.map((x) => x.name).join(', ')}`,
    );
  return [s];
}

const FINISHED = new Set(['succeeded', 'cached', 'failed', 'skipped', 'cancelled']);

/**
 * Prints a step's live log from its chunks; with `follow`, keeps polling until the attempt's
 * end record appears or the step is over. Returns whether anything was found.
 */
async function writeLiveLog(
  store: ArtifactStore,
  execId: string,
  out: Out,
  opts: LogsOptions,
  step: string,
  stepDone: () => Promise<boolean>,
): Promise<boolean> {
  let attempt: string | undefined;
  let sink: LineSink | undefined;
  let seq = 0;
  let polls = 0;
  // Chunks hold whole lines, each ending in a newline.
  const write = (chunks: { text: string }[]) => {
    for (const c of chunks) sink!(c.text.split('\n').slice(0, -1));
  };
  for (;;) {
    attempt ??= await latestLiveAttempt(store, execId);
    if (attempt) {
      sink ??= sinkFor(out, opts, step, attemptOfLive(attempt));
      const { chunks, end } = await readLiveChunks(store, execId, attempt, seq);
      write(chunks);
      seq += chunks.length;
      if (end && chunks.length === 0) return true;
    }
    if (!opts.follow) return attempt !== undefined;
    // A newer attempt (a retry) starts its own live log: switch once the step says so.
    if (++polls % 5 === 0 && (await stepDone())) {
      if (!attempt) return false;
      write((await readLiveChunks(store, execId, attempt, seq)).chunks);
      return true;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}

/** Returns the exit code: 0, or 1 when a step asked for has no log (it never ran). */
export async function logsCommand(
  run: string,
  step: string | undefined,
  opts: LogsOptions,
  out: Out = process.stdout,
  cfg: EngineConfig = loadEngineConfig(),
): Promise<number> {
  const store = openStore(cfg);
  const { status } = await findRun(cfg, store, run);
  let code = 0;
  for (const s of pickSteps(status, step)) {
    if (step === undefined && !opts.json) out.write(`==> ${terminalText(s.name)} (${s.state}) <==\n`);
    const digest = logDigestOf(s);
    if (digest && FINISHED.has(s.state)) {
      await readStoredLog(store, digest, sinkFor(out, opts, s.name, s.outcome?.attempts.at(-1)?.attempt ?? null));
      continue;
    }
    // A step run without the cache (--no-cache, cache: false) has an execution key of its own.
    const execKey = s.cache
      ? s.cache.decision === 'disabled'
        ? uncachedExecKey(s.cache.key, status.runId, s.name)
        : s.cache.key
      : undefined;
    const live = execKey
      ? await writeLiveLog(store, stepExecWorkflowId(execKey), out, opts, s.name, async () => {
          const now = (await findRun(cfg, store, run)).status.steps.find((x) => x.name === s.name);
          return !now || FINISHED.has(now.state);
        })
      : false;
    if (!live) {
      // With --json, stdout stays NDJSON of log lines: the note goes to stderr.
      (opts.json ? process.stderr : out).write(`(no log: step ${terminalText(s.name)} is ${s.state})\n`);
      if (step !== undefined) code = 1;
    }
  }
  return code;
}
