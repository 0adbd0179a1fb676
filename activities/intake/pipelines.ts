// The pipelines of a repository at a commit, read through the host API (no clone), parsed
// by the same parser as the CLI so the check run shows exactly the CLI's errors.
import { basename } from 'node:path';
import { loadPipelineTexts } from '../../pipeline/load.js';
import { formatPipelineError, MAX_PIPELINE_BYTES } from '../../pipeline/parse.js';
import type { Pipeline, PipelineError } from '../../pipeline/types.js';
import type { Annotation, RepoPort, Verdict } from './port.js';

export interface CommitPipelines {
  pipelines: Pipeline[];
  /** Errors grouped by file; a file with errors has no pipeline. */
  invalid: Map<string, PipelineError[]>;
  /** Source text by file, for locating policy errors. */
  texts: Map<string, string>;
}

export async function pipelinesAt(port: RepoPort, sha: string): Promise<CommitPipelines> {
  const files = await port.readPipelineFiles(sha);
  const texts: { file: string; text: string }[] = [];
  const errors: PipelineError[] = [];
  for (const f of files) {
    if (f.text === null) {
      errors.push({
        file: f.file,
        line: 1,
        column: 1,
        message: f.problem ?? `the file is larger than ${MAX_PIPELINE_BYTES / 1024} KiB, the limit for a pipeline file`,
      });
    } else texts.push({ file: f.file, text: f.text });
  }
  const loaded = loadPipelineTexts(texts);
  const invalid = new Map<string, PipelineError[]>();
  for (const e of [...errors, ...loaded.errors]) invalid.set(e.file, [...(invalid.get(e.file) ?? []), e]);
  // A file whose pipeline parsed but also collided (duplicate name) counts as invalid only.
  const pipelines = loaded.pipelines.filter((p) => !invalid.has(p.file));
  return { pipelines, invalid, texts: new Map(texts.map((t) => [t.file, t.text])) };
}

/** The check name of an invalid file: its name without extension (the pipeline name cannot be trusted). */
export function invalidFileCheckName(file: string): string {
  return basename(file).replace(/\.ya?ml$/, '');
}

export function invalidVerdict(file: string, errors: PipelineError[]): Verdict {
  const lines = errors.map((e) => `- \`${formatPipelineError(e).replace(/`/g, "'")}\``);
  const annotations: Annotation[] = errors.map((e) => ({
    path: e.file,
    line: Math.max(1, e.line),
    column: Math.max(1, e.column),
    level: 'failure',
    title: 'Invalid pipeline',
    message: e.message,
  }));
  return {
    conclusion: 'failure',
    title: `${file} is invalid (${errors.length} error${errors.length === 1 ? '' : 's'})`,
    summary:
      `Nothing ran: \`${file}\` has ${errors.length === 1 ? 'an error' : `${errors.length} errors`}. ` +
      `\`trainyard validate\` shows the same list locally.\n\n${lines.join('\n')}`,
    annotations,
  };
}

export function listPipelines(pipelines: Pipeline[]): string {
  return pipelines.length === 0 ? '(none)' : pipelines.map((p) => `\`${p.name}\``).join(', ');
}
