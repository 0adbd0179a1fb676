// Finding and parsing a project's pipeline files, from a local checkout or from file
// contents fetched from a git host.
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Pipeline, PipelineError } from './types.js';
import { MAX_PIPELINE_BYTES, parsePipeline } from './parse.js';

export const PIPELINE_DIR = '.trainyard';
const PIPELINE_FILE = /\.ya?ml$/;

export interface LoadResult {
  pipelines: Pipeline[];
  errors: PipelineError[];
}

/** Parses every file given; two files declaring the same pipeline name are an error too. */
export function loadPipelineTexts(files: { file: string; text: string }[]): LoadResult {
  const pipelines: Pipeline[] = [];
  const errors: PipelineError[] = [];
  const seen = new Map<string, Pipeline>();
  for (const f of [...files].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    const result = parsePipeline(f.text, f.file);
    errors.push(...result.errors);
    const p = result.pipeline;
    if (p === undefined) continue;
    const first = seen.get(p.name);
    if (first !== undefined) {
      errors.push({
        file: p.file,
        line: 1,
        column: 1,
        message: `pipeline "${p.name}" is already defined in ${first.file}; each pipeline name may be used once`,
      });
      continue;
    }
    seen.set(p.name, p);
    pipelines.push(p);
  }
  return { pipelines, errors };
}

/** Reads `.trainyard/*.yaml` and `*.yml` under `projectRoot`, in name order. */
export async function loadPipelines(projectRoot: string): Promise<LoadResult> {
  const dir = join(projectRoot, PIPELINE_DIR);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => PIPELINE_FILE.test(n)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return { pipelines: [], errors: [] };
    throw e;
  }
  const root = await realpath(projectRoot);
  const texts: { file: string; text: string }[] = [];
  const errors: PipelineError[] = [];
  for (const name of names) {
    const file = `${PIPELINE_DIR}/${name}`;
    const refuse = (message: string) => errors.push({ file, line: 1, column: 1, message });
    const path = join(dir, name);
    const info = await lstat(path);
    if (info.isDirectory()) continue;
    // A link may point anywhere on the machine; follow it only while it stays in the project.
    const real = await realpath(path).catch(() => undefined);
    if (real === undefined || relative(root, real).startsWith(`..${sep}`) || relative(root, real) === '..') {
      refuse('the file is a link to somewhere outside the project; pipeline files must live in the project');
      continue;
    }
    // Checked before opening: opening a FIFO for reading would wait forever.
    if (!(await stat(real)).isFile()) {
      refuse('this is not a regular file');
      continue;
    }
    const text = await readLimited(real);
    if (text === 'too large')
      refuse(`the file is larger than ${MAX_PIPELINE_BYTES / 1024} KiB, the limit for a pipeline file`);
    else if (text === 'not utf-8') refuse('the file is not valid UTF-8 text');
    else texts.push({ file, text });
  }
  const loaded = loadPipelineTexts(texts);
  return {
    pipelines: loaded.pipelines,
    errors: [...errors, ...loaded.errors].sort((a, b) =>
      a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column,
    ),
  };
}

/** Reads at most one byte past the limit, so a huge file is refused without loading it. */
async function readLimited(path: string): Promise<string | 'too large' | 'not utf-8'> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(MAX_PIPELINE_BYTES + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > MAX_PIPELINE_BYTES) return 'too large';
    try {
      // ignoreBOM keeps a byte-order mark in the text, so the digest covers the file's exact bytes.
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buffer.subarray(0, filled));
    } catch {
      return 'not utf-8';
    }
  } finally {
    await handle.close();
  }
}
