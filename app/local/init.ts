// `trainyard init`: a pipeline that runs to success on the first `trainyard run`, in a fresh
// repository or beside existing code. It writes the pipeline, a copy of the JSON Schema for
// editors, `.trainyardignore`, and the small scripts the pipeline runs when they are missing;
// it never overwrites a file.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { DEFAULT_IGNORE_PATTERNS, IGNORE_FILE } from '../../activities/source/ignore.js';
import { PIPELINE_NAME, PIPELINE_NAME_RULE } from '../../pipeline/names.js';
import { UsageError } from './errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = join(here, '..', '..');
export const TEMPLATES = join(REPO, 'templates');
const STARTER = join(TEMPLATES, 'pipelines', 'starter');
/** Where init puts the schema copy, relative to the project root; the modeline names it. */
export const SCHEMA_COPY = '.trainyard/pipeline.schema.json';
const SCHEMA = join(REPO, 'schema', 'pipeline.schema.json');
/**
 * The `.trainyardignore` init writes: the cache's built-in list (DEFAULT_IGNORE_PATTERNS), so a
 * repository with the written file and one without it scope their steps alike.
 */
export const TRAINYARDIGNORE_TEXT = [
  "# Paths that no step's cache key depends on (.gitignore syntax): editing them re-runs nothing.",
  '# A step that lists `code:` is keyed on exactly those paths instead. Written by `trainyard init`.',
  ...DEFAULT_IGNORE_PATTERNS,
  '',
].join('\n');

/** Examples `init --from` offers: name → folder under examples/ (a project root with .trainyard/). */
export const EXAMPLES: Readonly<Record<string, string>> = { flowers: join(REPO, 'examples', 'blobs') };

/** The image the starter uses when this host has none of setup.sh's local images. */
export const FALLBACK_IMAGE = 'python:3.12-slim';

const PLACEHOLDER = /\{\{([a-z]+)\}\}/g;

/**
 * Fills `{{key}}` placeholders. Throws when the text names a key that `values` lacks, or when a
 * `{{` … `}}` is left that is not a placeholder, so that no template text ever reaches a user
 * half-filled.
 */
export function renderTemplate(text: string, values: Readonly<Record<string, string>>): string {
  const out = text.replace(PLACEHOLDER, (whole, key: string) => {
    if (!Object.hasOwn(values, key)) throw new Error(`template placeholder ${whole} has no value`);
    return values[key]!;
  });
  const left = /\{\{[^}]*\}\}/.exec(text.replace(PLACEHOLDER, ''));
  if (left) throw new Error(`template holds ${left[0]}, which is not a placeholder`);
  return out;
}

/** Sets the `# yaml-language-server: $schema=…` line (the first line when there is none). */
export function withModeline(text: string, schemaPath: string): string {
  const line = `# yaml-language-server: $schema=${schemaPath}`;
  return /^# yaml-language-server: \$schema=\S*$/m.test(text)
    ? text.replace(/^# yaml-language-server: \$schema=\S*$/m, line)
    : `${line}\n${text}`;
}

/** The modeline's schema path for a pipeline file: relative to that file's folder, as yaml-language-server resolves it. */
export function modelinePath(pipelineFile: string): string {
  return relative(dirname(pipelineFile), SCHEMA_COPY).split('\\').join('/');
}

/** The newest local python image setup.sh built (`localhost/trainyard-python:X.Y`), else the fallback. */
export async function starterImage(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const cli = await resolveContainerCli(env);
    const { stdout } = await promisify(execFile)(
      cli.command,
      ['images', '--filter', 'reference=localhost/trainyard-python', '--format', '{{.Repository}}:{{.Tag}}'],
      { timeout: 15_000 },
    );
    const tags = stdout
      .split('\n')
      .map((l) => l.trim().replace(/^localhost\/trainyard-python:/, ''))
      .filter((t) => /^\d+(\.\d+)*$/.test(t));
    tags.sort((a, b) => {
      const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
      for (let i = 0; i < Math.max(x.length, y.length); i++)
        if ((x[i] ?? -1) !== (y[i] ?? -1)) return (y[i] ?? -1) - (x[i] ?? -1);
      return 0;
    });
    return tags[0] === undefined ? FALLBACK_IMAGE : `localhost/trainyard-python:${tags[0]}`;
  } catch {
    return FALLBACK_IMAGE;
  }
}

export interface InitOptions {
  dir: string;
  name?: string;
  from?: string;
  env?: NodeJS.ProcessEnv;
}

export interface InitResult {
  root: string;
  pipelineFile: string;
  /** Paths relative to the root. */
  created: string[];
  kept: string[];
}

/** A pipeline name from a folder name: `My Project` → `my-project`; `pipeline` when nothing is left. */
export function defaultName(root: string): string {
  const name = basename(root)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return name || 'pipeline';
}

const exists = (p: string) =>
  readFile(p).then(
    () => true,
    (e: NodeJS.ErrnoException) => e.code !== 'ENOENT',
  );

/**
 * Writes the starter (or `from`, an example of EXAMPLES) into `dir`. Throws UsageError, having
 * written nothing, when the pipeline file exists, the name is not a pipeline name or the example
 * is unknown.
 */
export async function initProject(opts: InitOptions): Promise<InitResult> {
  const root = resolve(opts.dir);
  const files = new Map<string, string | { copyFrom: string }>();
  let pipelineRel: string;
  if (opts.from !== undefined) {
    const source = Object.hasOwn(EXAMPLES, opts.from) ? EXAMPLES[opts.from] : undefined;
    if (source === undefined)
      throw new UsageError(
        `--from ${JSON.stringify(opts.from)} is not an example; the examples are ${Object.keys(EXAMPLES).join(', ')}`,
      );
    if (opts.name !== undefined)
      throw new UsageError(`--name does not apply to --from: the example's pipeline is named ${opts.from}`);
    pipelineRel = `.trainyard/${opts.from}.yaml`;
    for (const rel of await listFiles(source)) {
      const path = join(source, rel);
      files.set(
        rel,
        rel === pipelineRel ? withModeline(await readFile(path, 'utf8'), modelinePath(rel)) : { copyFrom: path },
      );
    }
    if (!files.has(pipelineRel)) throw new Error(`example ${opts.from} has no ${pipelineRel}`);
  } else {
    const name = opts.name ?? defaultName(root);
    if (!PIPELINE_NAME.test(name))
      throw new UsageError(`--name ${JSON.stringify(name)} is not a pipeline name; ${PIPELINE_NAME_RULE}`);
    pipelineRel = `.trainyard/${name}.yaml`;
    const template = await readFile(join(STARTER, 'pipeline.yaml'), 'utf8');
    files.set(
      pipelineRel,
      renderTemplate(template, { name, image: await starterImage(opts.env), schema: modelinePath(pipelineRel) }),
    );
    for (const script of ['prepare.py', 'train.py']) files.set(script, { copyFrom: join(STARTER, script) });
  }
  const pipelineFile = join(root, pipelineRel);
  if (await exists(pipelineFile)) throw new UsageError(`${pipelineFile} exists already; not overwriting it`);
  files.set(SCHEMA_COPY, { copyFrom: SCHEMA });
  files.set(IGNORE_FILE, TRAINYARDIGNORE_TEXT);

  const created: string[] = [];
  const kept: string[] = [];
  for (const [rel, content] of files) {
    const path = join(root, rel);
    await mkdir(dirname(path), { recursive: true });
    try {
      // `wx` and COPYFILE_EXCL: a file that appeared meanwhile is still never overwritten.
      if (typeof content === 'string') await writeFile(path, content, { flag: 'wx' });
      else await copyFile(content.copyFrom, path, constants.COPYFILE_EXCL);
      created.push(rel);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (rel === pipelineRel) throw new UsageError(`${pipelineFile} exists already; not overwriting it`);
      kept.push(rel);
    }
  }
  return { root, pipelineFile, created, kept };
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

/** What `init` prints: what it wrote, what it left alone, and the two commands to run next. */
export function initSummary(r: InitResult, cwd = process.cwd()): string {
  const where = relative(cwd, r.root) || '.';
  const lines = [`created ${r.created.join(', ')}${where === '.' ? '' : ` in ${where}`}`];
  if (r.kept.length) lines.push(`kept ${r.kept.join(', ')} (already there; the pipeline uses them as they are)`);
  const cd = where === '.' ? '' : `cd ${/^[\w./-]+$/.test(where) ? where : `'${where.replaceAll("'", "'\\''")}'`} && `;
  lines.push(
    '',
    'Next: commit the new files (a run sees what is committed, plus changes to files git tracks), then run it:',
    `  ${cd}git add -A && git commit -m "Add a Trainyard pipeline"`,
    `  ${cd}trainyard run`,
  );
  return `${lines.join('\n')}\n`;
}
