// `trainyard logs RUN [STEP] [-f]`: a step's stdout and stderr. A finished step's whole log
// comes from the store by digest (streamed, never held whole in memory).
import { createStore } from '../../activities/store/factory.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { terminalText } from '../../activities/usertext.js';
import type { RunStatus, StepStatus } from '../../workflows/types.js';
import { loadEngineConfig, type EngineConfig } from '../config.js';
import { findRun } from './runcmds.js';
import { UsageError } from './usage.js';

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

/** Returns the exit code: 0, or 1 when a step asked for has no log (it never ran). */
export async function logsCommand(run: string, step: string | undefined, opts: LogsOptions, out: Out = process.stdout, cfg: EngineConfig = loadEngineConfig()): Promise<number> {
  const store = createStore(cfg.store);
  const { status } = await findRun(cfg, store, run);
  let code = 0;
  for (const s of pickSteps(status, step)) {
    if (step === undefined) out.write(`==> ${terminalText(s.name)} (${s.state}) <==\n`);
    const digest = logDigestOf(s);
    if (digest) await writeStoredLog(store, digest, out);
    else {
      out.write(`(no log: step ${terminalText(s.name)} is ${s.state})\n`);
      if (step !== undefined) code = 1;
    }
  }
  return code;
}
