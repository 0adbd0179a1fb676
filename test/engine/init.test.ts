// The first five minutes, as a new user types them, through the real `trainyard` command:
//   git init; echo "print('hi')" > train.py; trainyard init; git add -A; git commit -m init; trainyard run
// then an edit of the starter's train script reruns that step alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IGNORE_PATTERNS } from '../../activities/source/ignore.js';
import { renderTemplate } from '../../app/local/init.js';
import { loadPipelines } from '../../pipeline/load.js';
import { ensureTestImages } from '../fixtures/images/images.js';

const REPO = join(import.meta.dirname, '..', '..');
const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? '/tmp', 'init-'));
const home = join(root, 'home');
// A user's git identity, as `git commit` needs one.
const gitEnv = {
  GIT_AUTHOR_NAME: 'new user',
  GIT_AUTHOR_EMAIL: 'new@example.com',
  GIT_COMMITTER_NAME: 'new user',
  GIT_COMMITTER_EMAIL: 'new@example.com',
};

function sh(cwd: string, cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...gitEnv } });
}

function trainyard(cwd: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'trainyard.js'), ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    // No TEMPORAL_ADDRESS: the CLI starts its own Temporal dev server, as on a new user's machine.
    env: {
      ...process.env,
      ...gitEnv,
      TEMPORAL_ADDRESS: '',
      TRAINYARD_HOME: home,
      TRAINYARD_STORE: join(home, 'store'),
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await ensureTestImages();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('trainyard init in a fresh repository', () => {
  const repo = join(root, 'my-model');
  let first: ReturnType<typeof trainyard>;

  it('git init; train.py; trainyard init; git add -A; git commit; trainyard run — succeeds', () => {
    mkdirSync(repo);
    sh(repo, 'git', ['init', '-q']);
    writeFileSync(join(repo, 'train.py'), "print('hi')\n");
    const init = trainyard(repo, ['init']);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    // It says what it wrote, what it left alone, and the two commands to run next.
    expect(init.stdout).toMatch(/^created .*\.trainyard\/my-model\.yaml/m);
    expect(init.stdout).toMatch(/^kept train\.py /m);
    expect(init.stdout).toContain('  git add -A && git commit -m "Add a Trainyard pipeline"\n  trainyard run\n');
    expect(readFileSync(join(repo, 'train.py'), 'utf8')).toBe("print('hi')\n");
    sh(repo, 'git', ['add', '-A']);
    sh(repo, 'git', ['commit', '-q', '-m', 'init']);
    first = trainyard(repo, ['run']);
    expect(first.stderr).toContain('succeeded: report ');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('## ✅ my-model succeeded');
    expect(first.stderr).toMatch(/prepare: succeeded/);
    expect(first.stderr).toMatch(/train: succeeded/);
  });

  it("after an edit of the starter's train script, only train reruns", () => {
    expect(first?.code).toBe(0);
    writeFileSync(join(repo, 'train.py'), "print('hi')\nprint('tuned')\n");
    const r = trainyard(repo, ['run']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/prepare: cached/);
    expect(r.stderr).toMatch(/train: succeeded — ran: code changed \(train\.py\)/);
    expect(r.stdout).toMatch(/\| `train` \| ✅ succeeded \|/);
    expect(r.stdout).toMatch(/\| `prepare` \| ♻️ cached \|/);
  });

  it('never overwrites: a second init refuses and leaves every file as it was', () => {
    const before = readFileSync(join(repo, '.trainyard', 'my-model.yaml'), 'utf8');
    const r = trainyard(repo, ['init']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exists already; not overwriting it');
    expect(readFileSync(join(repo, '.trainyard', 'my-model.yaml'), 'utf8')).toBe(before);
  });
});

describe('what init writes', () => {
  it('creates the scripts it runs when they are missing, and a pipeline that validates', () => {
    const repo = join(root, 'empty');
    mkdirSync(repo);
    sh(repo, 'git', ['init', '-q']);
    const r = trainyard(repo, ['init', '--name', 'demo']);
    expect(r.code).toBe(0);
    for (const f of [
      '.trainyard/demo.yaml',
      '.trainyard/pipeline.schema.json',
      '.trainyardignore',
      'prepare.py',
      'train.py',
    ])
      expect(existsSync(join(repo, f)), f).toBe(true);
    expect(trainyard(repo, ['validate']).stdout).toContain('ok: 1 pipeline(s): demo (2 steps)');
  });

  it("writes .trainyardignore with the cache's built-in list, never over an existing one", () => {
    const repo = join(root, 'ignore');
    mkdirSync(repo);
    sh(repo, 'git', ['init', '-q']);
    writeFileSync(join(repo, '.trainyardignore'), 'mine\n');
    expect(trainyard(repo, ['init']).code).toBe(0);
    expect(readFileSync(join(repo, '.trainyardignore'), 'utf8')).toBe('mine\n');
    const other = join(root, 'ignore2');
    mkdirSync(other);
    expect(trainyard(other, ['init']).code).toBe(0);
    const entries = readFileSync(join(other, '.trainyardignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(entries).toEqual(['*.md', 'docs/', '.github/']);
    expect(entries).toEqual([...DEFAULT_IGNORE_PATTERNS]);
  });

  it("points the editor modeline at a schema copy that resolves from the pipeline file's folder, as yaml-language-server resolves it", async () => {
    const repo = join(root, 'modeline');
    mkdirSync(repo);
    expect(trainyard(repo, ['init', '--name', 'm']).code).toBe(0);
    const file = join(repo, '.trainyard', 'm.yaml');
    const text = readFileSync(file, 'utf8');
    const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text.split('\n')[0]!);
    expect(modeline).not.toBeNull();
    // yaml-language-server: a relative $schema is resolved against the YAML file's own folder.
    const schemaPath = resolve(dirname(file), modeline![1]!);
    const copy = JSON.parse(readFileSync(schemaPath, 'utf8')) as { $id?: string };
    expect(copy).toEqual(JSON.parse(readFileSync(join(REPO, 'schema', 'pipeline.schema.json'), 'utf8')));
    expect(copy.$id).toBe('urn:trainyard:schema:pipeline:v1');
    // And the schema accepts the starter it sits beside.
    const { parse } = await import('yaml');
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(copy);
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
    const { pipelines, errors } = await loadPipelines(repo);
    expect(errors).toEqual([]);
    expect(pipelines.map((p) => p.name)).toEqual(['m']);
  });

  it('copies the flowers example with --from, keeping files that are already there', async () => {
    const repo = join(root, 'flowers');
    mkdirSync(join(repo, 'src'), { recursive: true });
    writeFileSync(join(repo, 'src', 'common.py'), '# mine\n');
    const r = trainyard(repo, ['init', '--from', 'flowers']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kept src\/common\.py /m);
    expect(readFileSync(join(repo, 'src', 'common.py'), 'utf8')).toBe('# mine\n');
    const example = join(REPO, 'examples', 'blobs');
    for (const f of [
      'data/flowers.csv',
      'src/prepare.py',
      'src/train_knn.py',
      'src/train_softmax.py',
      'src/evaluate.py',
    ]) {
      expect(readFileSync(join(repo, f), 'utf8'), f).toBe(readFileSync(join(example, f), 'utf8'));
    }
    const text = readFileSync(join(repo, '.trainyard', 'flowers.yaml'), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=pipeline.schema.json');
    expect(existsSync(join(repo, '.trainyard', 'pipeline.schema.json'))).toBe(true);
    const { pipelines, errors } = await loadPipelines(repo);
    expect(errors).toEqual([]);
    expect(pipelines.map((p) => p.name)).toEqual(['flowers']);
    expect(readdirSync(join(repo, '.trainyard')).sort()).toEqual(['flowers.yaml', 'pipeline.schema.json']);
    const bad = trainyard(repo, ['init', '--from', 'nosuch']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('the examples are flowers');
  });
});

describe('starter templates', () => {
  const dir = join(REPO, 'templates', 'pipelines', 'starter');

  it('fill every placeholder and leave none behind', () => {
    const text = readFileSync(join(dir, 'pipeline.yaml'), 'utf8');
    const keys = [...text.matchAll(/\{\{([a-z]+)\}\}/g)].map((m) => m[1]).sort();
    expect([...new Set(keys)]).toEqual(['image', 'name', 'schema']);
    const out = renderTemplate(text, { name: 'NAME', image: 'img', schema: 's.json' });
    expect(out).not.toMatch(/\{\{|\}\}/);
    // The comment's PARAM_<NAME> is text, not a placeholder.
    expect(out).toContain('PARAM_<NAME>');
    expect(() => renderTemplate(text, { name: 'x', image: 'y' })).toThrow('{{schema}} has no value');
    expect(() => renderTemplate('a {{ name }} b', { name: 'x' })).toThrow('not a placeholder');
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8'), f).not.toMatch(/\{\{(?![a-z]+\}\})/);
  });
});
