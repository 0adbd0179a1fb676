// `trainyard get DIGEST|RUN STEP OUTPUT [-o PATH]`: an artifact out of the store, onto this
// machine. Every blob is checked against its SHA-256 as it is written (the store's
// materialize), a folder is rebuilt only from a manifest whose every path stays inside it,
// and nothing is written anywhere but PATH, which must not exist yet.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { loadLineage } from '../../activities/lineage/storage.js';
import { lineageOf } from '../../activities/lineage/query.js';
import { isDigest } from '../../activities/store/digest.js';
import { openStore } from '../store.js';
import { terminalText } from '../../activities/usertext.js';
import { loadEngineConfig } from '../config.js';
import { UsageError } from './errors.js';

export interface GetResult {
  digest: string;
  kind: 'file' | 'dir';
  size: number | null;
  path: string;
}

/**
 * `what` is `[DIGEST]` (full `sha256:…` or a prefix of 12+ hex digits) or `[RUN, STEP,
 * OUTPUT]`. Writes to `output` (default: the output's name, or the digest's first 12 hex
 * digits, in the current folder). Throws UsageError for an unknown run/step/output/digest
 * or an existing destination; a damaged blob is an error and leaves nothing behind.
 */
export async function getArtifact(what: string[], opts: { output?: string }): Promise<GetResult> {
  const cfg = loadEngineConfig();
  const store = openStore(cfg);
  let digest: string;
  let kind: 'file' | 'dir';
  let size: number | null = null;
  let name: string;
  if (what.length === 3) {
    const [run, step, output] = what as [string, string, string];
    const doc = await loadLineage(store, run);
    if (!doc)
      throw new UsageError(
        `no run ${JSON.stringify(run)} in ${store.location} (finished runs only; see trainyard runs)`,
      );
    const s = doc.steps.find((x) => x.name === step);
    if (!s)
      throw new UsageError(
        `run ${run} has no step ${JSON.stringify(step)}; its steps: ${doc.steps.map((x) => x.name).join(', ')}`,
      );
    const o = s.outputs[output];
    if (!o)
      throw new UsageError(
        `step ${step} of run ${run} has no output ${JSON.stringify(output)}${Object.keys(s.outputs).length ? `; its outputs: ${Object.keys(s.outputs).join(', ')}` : ` (it is ${s.state})`}`,
      );
    ({ digest, kind, size } = o);
    name = output;
  } else if (what.length === 1) {
    const answer = await lineageOf(store, what[0]!);
    if (answer.kind === 'ambiguous')
      throw new UsageError(
        `${what[0]} matches ${answer.candidates.length} artifacts; give more digits: ${answer.candidates.join(', ')}`,
      );
    if (answer.kind === 'artifact') {
      digest = answer.digest;
      kind = answer.artifactKind ?? 'file';
      size = answer.size;
    } else if (isDigest(what[0]) && (await store.has(what[0]))) {
      // A blob no run recorded (an input, a manifest): bytes as they are.
      digest = what[0];
      kind = 'file';
    } else {
      throw new UsageError(
        answer.kind === 'not_found' ? answer.message : `${what[0]} is a run, not an artifact: give RUN STEP OUTPUT`,
      );
    }
    name = digest.slice('sha256:'.length, 'sha256:'.length + 12);
  } else {
    throw new UsageError('usage: trainyard get DIGEST | trainyard get RUN STEP OUTPUT [-o PATH]');
  }
  const path = resolve(opts.output ?? basename(name));
  if (existsSync(path)) throw new UsageError(`${path} exists; give -o a path that does not (nothing is overwritten)`);
  await store.materialize({ digest, kind }, path);
  return { digest, kind, size, path };
}

export function getSummary(r: GetResult): string {
  return `${r.kind === 'dir' ? 'folder' : 'file'} ${r.digest}${r.size !== null ? ` (${r.size} bytes)` : ''} → ${terminalText(r.path)} (SHA-256 checked)\n`;
}
