// `trainyard validate`: every .trainyard/*.yaml of the project checked as a run would check
// it, each mistake as file:line:column. Runs nothing, needs no server.
import { loadPipelines } from '../../pipeline/load.js';
import { formatPipelineError } from '../../pipeline/parse.js';
import { terminalText } from '../../activities/usertext.js';
import { findProject } from './project.js';

/** Returns the exit code: 0 all valid, 1 some error (printed to stderr, or in the JSON). */
export async function validateCommand(dir: string, opts: { json: boolean }, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const project = await findProject(dir);
  const { pipelines, errors } = await loadPipelines(project.projectRoot);
  if (opts.json) {
    out.write(`${JSON.stringify({
      ok: errors.length === 0,
      pipelines: pipelines.map((p) => ({ name: p.name, file: p.file, steps: p.order })),
      errors: errors.map((e) => ({ file: e.file, line: e.line, column: e.column, message: e.message })),
    }, null, 2)}\n`);
    return errors.length ? 1 : 0;
  }
  for (const e of errors) process.stderr.write(`${terminalText(formatPipelineError(e))}\n`);
  if (errors.length) return 1;
  out.write(`ok: ${pipelines.length} pipeline(s): ${pipelines.map((p) => `${p.name} (${Object.keys(p.steps).length} steps)`).join(', ')}\n`);
  return 0;
}
