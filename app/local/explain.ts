// `trainyard explain STEP`: what goes into a step's cache key at the commit `trainyard run`
// would run, and which parts changed since the step's last execution. A command of its own
// rather than `run --explain`: it runs nothing, needs no Temporal server and no container,
// and answers at once, so it reads as a question, not as a kind of run.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { explainStep, type Explanation } from '../../activities/explain.js';
import { LocalGitSource } from '../../activities/source/local.js';
import type { TreeEntry } from '../../activities/source/files.js';
import { openStore } from '../store.js';
import { loadPipelines } from '../../pipeline/load.js';
import { parseParamArgs, resolveParams } from '../../pipeline/params.js';
import { formatPipelineError } from '../../pipeline/parse.js';
import { loadEngineConfig } from '../config.js';
import { findProject, snapshot } from './project.js';
import { choosePipeline } from './run.js';
import { UsageError } from './errors.js';

export const EXPLAIN_USAGE = 'trainyard explain STEP [-C DIR] [--pipeline NAME] [--param k=v]... [--json]';

/** Parses `explain`'s arguments, prints the explanation; returns the exit code (0, or 2 for pipeline errors). */
export async function explainCommand(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      dir: { type: 'string', short: 'C', default: '.' },
      pipeline: { type: 'string', short: 'p' },
      param: { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`usage: ${EXPLAIN_USAGE}`);
  const cfg = loadEngineConfig();
  const project = await findProject(values.dir!);
  const snap = await snapshot(project);
  const source = { kind: 'git' as const, repoPath: project.repoPath, commit: snap.commit, subdir: project.subdir };
  const sources = new LocalGitSource(join(cfg.workRoot, 'sources'));
  const loaded = await loadPipelines(await sources.checkout(source));
  if (loaded.errors.length) {
    for (const e of loaded.errors) process.stderr.write(`${formatPipelineError(e)}\n`);
    return 2;
  }
  const pipeline = choosePipeline(loaded.pipelines, values.pipeline);
  const { given, errors: argErrors } = parseParamArgs(values.param!);
  const { values: params, errors } = resolveParams(pipeline, given);
  if (argErrors.length || errors.length) throw new UsageError([...argErrors, ...errors].join('\n'));
  if (!pipeline.steps[positionals[0]!])
    throw new UsageError(
      `no step ${JSON.stringify(positionals[0])} in pipeline ${pipeline.name}; its steps: ${pipeline.order.join(', ')}`,
    );
  // The same image resolution as the run's prepare (by local image id), when a container CLI answers.
  const cli = await resolveContainerCli(process.env).catch(() => undefined);
  const e = await explainStep(
    { store: openStore(cfg), sources, ...(cli ? { cli } : {}) },
    { pipeline, step: positionals[0]!, source, params },
  );
  out.write(
    values.json
      ? `${JSON.stringify({ ...e, ...(snap.dirtyBase ? { dirtyBase: snap.dirtyBase } : {}) }, null, 2)}\n`
      : formatExplanation(e, snap.dirtyBase),
  );
  return 0;
}

const outputRef = (stepDotOutput: string): string => `steps.${stepDotOutput.replace('.', '.outputs.')}`;
const short = (d: string): string => d.replace(/^sha256:/, '').slice(0, 12);

/** The plain-text explanation `trainyard explain` prints. */
export function formatExplanation(e: Explanation, dirtyBase?: string): string {
  const lines: string[] = [];
  const at = dirtyBase
    ? `snapshot ${short(e.commit)} of HEAD ${short(dirtyBase)} (uncommitted changes included)`
    : `commit ${short(e.commit)}`;
  lines.push(`step ${e.step} of pipeline ${e.pipeline} at ${at}`);
  const pending = Object.entries(e.pending);
  if (!e.key)
    lines.push(
      `key: not known yet: ${pending.map(([n, s]) => `input ${n} comes from ${outputRef(s)}`).join(', ')}, which has no cached result at this commit (it runs first)`,
    );
  else if (e.cached)
    lines.push(
      `key: ${e.key}\n  cached: a run reuses the result of step ${e.cached.step} of run ${e.cached.runId} (commit ${short(e.cached.commit)})`,
    );
  else lines.push(`key: ${e.key}\n  not cached: a run executes this step`);
  const last = e.last;
  lines.push(
    last
      ? `last execution: run ${last.record.source.runId} (commit ${short(last.record.source.commit)}${last.record.source.finishedAt ? `, ${last.record.source.finishedAt}` : ''})${last.changes.length ? '' : pending.length ? ': every part known so far is the same' : ': every part is the same'}`
      : 'last execution: none recorded for this step in this store',
  );
  const changed = (part: string): string => {
    if (!last) return '';
    const c = last.changes.filter((x) => x.part === part || x.part.startsWith(`${part} `));
    return c.length ? `   [changed: ${c.map((x) => `${x.part} ${x.before} → ${x.after}`).join('; ')}]` : '';
  };
  const p = e.parts;
  lines.push('', 'what goes into the key:');
  lines.push(`  image          ${p.image}${changed('image')}`);
  lines.push(`  command        ${JSON.stringify(p.command)}${changed('command')}`);
  lines.push(
    `  env            ${
      Object.keys(p.env).length
        ? Object.entries(p.env)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(' ')
        : '(none)'
    }${changed('env')}`,
  );
  lines.push(`  cache_version  ${p.cacheVersion ?? 'unset'}${changed('cache_version')}`);
  lines.push(
    `  params         ${
      Object.keys(p.params).length
        ? Object.entries(p.params)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(' ')
        : '(none)'
    }${changed('parameter')}`,
  );
  lines.push(`  outputs        ${p.outputs.join(', ') || '(none)'}${changed('outputs')}`);
  if (p.secrets?.length || last?.changes.some((c) => c.part === 'secrets'))
    lines.push(`  secrets        ${p.secrets?.join(', ') || '(none)'} (names only)${changed('secrets')}`);
  for (const [name, input] of Object.entries(e.inputs).sort()) {
    const o = input.origin;
    const from =
      o.kind === 'step' ? `steps.${o.step}.outputs.${o.output}` : o.kind === 'repo' ? `repository ${o.path}` : o.uri;
    lines.push(
      `  input ${name.padEnd(8)} ${input.artifact.digest} (${input.artifact.kind}, ${input.artifact.size} bytes, from ${from})${changed(`input ${name}`)}`,
    );
  }
  for (const [name, src] of pending)
    lines.push(`  input ${name.padEnd(8)} not known until ${src.split('.')[0]} runs (${outputRef(src)})`);
  const scope =
    e.code.scope.kind === 'listed'
      ? `code: ${JSON.stringify(e.code.scope.code)}`
      : `the commit tree minus .trainyard/ and ${e.code.scope.ignoreFile ? 'what .trainyardignore lists' : 'the built-in ignore list (no .trainyardignore)'}: ${e.code.scope.patterns.filter((x) => x.trim() && !x.startsWith('#')).join(' ')}`;
  lines.push(`  code           ${e.code.digest}, ${e.code.entries.length} entries; scope: ${scope}`);
  if (last?.changes.some((c) => c.part === 'code')) {
    lines.push(
      last.files
        ? `                 changed since the last execution: ${last.files.join(', ') || '(same entries)'}`
        : '                 changed since the last execution (its file listing is not in the store)',
    );
  }
  for (const entry of e.code.entries) lines.push(`    ${describe(entry)}`);
  return `${lines.join('\n')}\n`;
}

function describe(e: TreeEntry): string {
  if (e.type === 'file') return `${short(e.digest)}  ${e.executable ? 'x' : ' '} ${e.path}`;
  if (e.type === 'symlink') return `symlink        ${e.path} → ${e.target}`;
  return `empty folder   ${e.path}/`;
}
