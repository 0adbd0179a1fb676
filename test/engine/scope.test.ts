// The default cache scope and what a key sees, end to end: real Temporal dev server, real
// podman containers, local store. Steps here list no `code:`, as `trainyard init` and the
// README sketch start out.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { explainStep } from '../../activities/explain.js';
import { LocalGitSource } from '../../activities/source/local.js';
import { parsePipeline } from '../../pipeline/parse.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine, type GitRepo } from './harness.js';

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine();
});
afterAll(async () => {
  await engine?.stop();
});

const blob = (digest: string): string => {
  const hex = digest.replace('sha256:', '');
  return readFileSync(`${engine.root}/store/blobs/sha256/${hex.slice(0, 2)}/${hex}`, 'utf8');
};
const states = (s: Awaited<ReturnType<Engine['run']>>) => Object.fromEntries(s.steps.map((x) => [x.name, x.state]));

const FILE = '.trainyard/scope.yaml';

/** `trainyard explain STEP` as a user runs it, on the engine's store. */
const explainCli = (repo: GitRepo, step: string) =>
  spawnSync(
    process.execPath,
    [join(import.meta.dirname, '..', '..', 'bin', 'trainyard.js'), 'explain', step, '-C', repo.path],
    {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        TRAINYARD_HOME: join(engine.root, 'home'),
        TRAINYARD_STORE: join(engine.root, 'store'),
        TRAINYARD_WORK_DIR: join(engine.root, 'cli-work'),
      },
    },
  );
const pipeline = (
  salt: string,
  o: { comment?: string; reorder?: boolean; trainEnv?: string; prepareRun?: string; prepareN?: string } = {},
) => {
  const prepare = `
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: ${o.prepareRun ?? 'sh src/prepare.sh'}
    env: { SALT: "${salt}", N: "${o.prepareN ?? '1'}" }
    outputs: [data]`;
  const train = `
  train:
    image: ${BUSYBOX_IMAGE}
    run: sh src/train.sh
    env: { SALT: "${salt}", OPT: "${o.trainEnv ?? 'a'}" }
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]`;
  return `${o.comment ?? ''}
name: scope
steps:${o.reorder ? train + prepare : prepare + train}
`;
};

describe('default code scope: the commit tree minus .trainyard/ and the ignore list', () => {
  // Each test starts from its own first run (a salt of its own), so none depends on another.
  const fresh = async (label: string) => {
    const salt = `${engine.salt}-${label}`;
    const repo = engine.repo().write({
      [FILE]: pipeline(salt),
      'src/prepare.sh': 'echo "data n=$N" > /outputs/data\n',
      'src/train.sh': 'echo "model of $(cat /inputs/data)" > /outputs/model\n',
      'README.md': 'hello\n',
      'docs/guide.txt': 'guide\n',
      '.github/workflows/ci.yml': 'on: push\n',
    });
    repo.commit('first');
    const s = await engine.run(repo, FILE);
    expect(states(s)).toEqual({ prepare: 'succeeded', train: 'succeeded' });
    return { repo, salt };
  };

  const reusesEverything = async (label: string, edit: (repo: GitRepo, salt: string) => void) => {
    const { repo, salt } = await fresh(label);
    edit(repo, salt);
    repo.commit(label);
    const s = await engine.run(repo, FILE);
    expect(states(s)).toEqual({ prepare: 'cached', train: 'cached' });
  };

  it('a README edit reuses every step', () =>
    reusesEverything('readme', (r) => r.write({ 'README.md': 'typo fixed\n' })));
  it('a comment in the pipeline file reuses every step', () =>
    reusesEverything('comment', (r, salt) => r.write({ [FILE]: pipeline(salt, { comment: '# tuned on Tuesday' }) })));
  it('reordering the steps in the file reuses every step', () =>
    reusesEverything('reorder', (r, salt) => r.write({ [FILE]: pipeline(salt, { reorder: true }) })));
  it('edits under ignored paths (docs/, .github/, *.md anywhere) reuse every step', () =>
    reusesEverything('ignored', (r) =>
      r.write({
        'docs/guide.txt': 'guide v2\n',
        '.github/workflows/ci.yml': 'on: [push]\n',
        'src/NOTES.md': 'notes\n',
      }),
    ));
  it('another pipeline file in .trainyard/ reuses every step', () =>
    reusesEverything('other', (r) => r.write({ '.trainyard/other.yaml': 'name: other\nsteps: {}\n' })));

  it('an edit to another step reruns only that step', async () => {
    const { repo, salt } = await fresh('another');
    repo.write({ [FILE]: pipeline(salt, { trainEnv: 'b' }) }).commit('edit train');
    const s = await engine.run(repo, FILE);
    expect(states(s)).toEqual({ prepare: 'cached', train: 'succeeded' });
    expect(stepOf(s, 'train').cache!.reason).toBe('ran: env changed (OPT)');
  });

  it('an edit to a file in the code scope (not ignored) reruns the steps that see it, naming the file', async () => {
    const { repo } = await fresh('code');
    repo.write({ 'src/prepare.sh': '# same output\necho "data n=$N" > /outputs/data\n' }).commit('edit prepare.sh');
    const s = await engine.run(repo, FILE);
    // Both steps' default scope holds src/: each reruns because its code changed.
    expect(stepOf(s, 'prepare').cache!.reason).toBe('ran: code changed (src/prepare.sh)');
    expect(stepOf(s, 'train').cache!.reason).toBe('ran: code changed (src/prepare.sh)');
  });

  it("a change to a step's own definition reruns it, and its dependents only when their inputs' bytes change", async () => {
    const { repo, salt } = await fresh('definition');
    repo.write({ [FILE]: pipeline(salt, { prepareRun: 'sh ./src/prepare.sh' }) }).commit('same output');
    const same = await engine.run(repo, FILE);
    expect(states(same)).toEqual({ prepare: 'succeeded', train: 'cached' });
    expect(stepOf(same, 'prepare').cache!.reason).toBe('ran: command changed');

    repo.write({ [FILE]: pipeline(salt, { prepareRun: 'sh ./src/prepare.sh', prepareN: '2' }) }).commit('new output');
    const changed = await engine.run(repo, FILE);
    expect(states(changed)).toEqual({ prepare: 'succeeded', train: 'succeeded' });
    expect(stepOf(changed, 'prepare').cache!.reason).toBe('ran: env changed (N)');
    expect(stepOf(changed, 'train').cache!.reason).toMatch(/^ran: input data changed \(/);
    expect(blob(stepOf(changed, 'train').outcome!.outputs.model!.digest)).toBe('model of data n=2\n');
  });

  it('a .trainyardignore replaces the built-in list: README.md becomes code, and an edit to it reruns', async () => {
    const { repo } = await fresh('ignorefile');
    repo.write({ '.trainyardignore': 'docs/\n' }).commit('own ignore file');
    const first = await engine.run(repo, FILE);
    expect(stepOf(first, 'prepare').cache!.reason).toBe('ran: code changed (.github/workflows/ci.yml, README.md)');
    repo.write({ 'README.md': 'now part of the code\n', 'docs/guide.txt': 'guide v3\n' }).commit('readme again');
    const s = await engine.run(repo, FILE);
    expect(stepOf(s, 'prepare').cache!.reason).toBe('ran: code changed (README.md)');
  });

  it('trainyard explain lists what went into the key and what changed since the last execution', async () => {
    const { repo, salt } = await fresh('explain');
    const { pipeline: p } = parsePipeline(repo.git('show', `HEAD:${FILE}`), FILE);
    // The container CLI resolves images to local ids, as the run's workers do.
    const deps = {
      store: engine.store,
      sources: new LocalGitSource(`${engine.root}/explain`),
      cli: await resolveContainerCli(process.env),
    };
    const at = () => ({ kind: 'git' as const, repoPath: repo.path, commit: repo.git('rev-parse', 'HEAD'), subdir: '' });
    // Nothing changed since the run: the key is known and cached, every part the same.
    const before = await explainStep(deps, { pipeline: p!, step: 'train', source: at(), params: {} });
    expect(before.cached?.commit).toBe(repo.git('rev-parse', 'HEAD'));
    expect(before.last!.changes).toEqual([]);
    expect(before.parts).toMatchObject({
      command: ['sh', '-c', 'sh src/train.sh'],
      env: { SALT: salt, OPT: 'a' },
      cacheVersion: null,
      outputs: ['model'],
    });
    expect(before.parts.image).toMatch(new RegExp(`^${BUSYBOX_IMAGE}@`));
    expect(before.inputs.data!.origin).toEqual({ kind: 'step', step: 'prepare', output: 'data' });
    expect(before.code.entries.map((e) => e.path)).toEqual(['src/prepare.sh', 'src/train.sh']);

    const cli = explainCli(repo, 'train');
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
    expect(cli.stdout).toContain(
      `step train of pipeline scope at commit ${repo.git('rev-parse', 'HEAD').slice(0, 12)}\nkey: ${before.key}\n  cached: a run reuses the result of step train of run `,
    );
    expect(cli.stdout).toContain(': every part is the same\n');
    expect(cli.stdout).toContain(`  env            SALT="${salt}" OPT="a"\n`);
    expect(cli.stdout).toMatch(
      /\n {2}input data {5}sha256:[0-9a-f]{64} \(file, 9 bytes, from steps\.prepare\.outputs\.data\)\n/,
    );
    expect(cli.stdout).toMatch(
      /\n {2}code {11}sha256:[0-9a-f]{64}, 2 entries; scope: the commit tree minus \.trainyard\/ and the built-in ignore list \(no \.trainyardignore\): \*\.md docs\/ \.github\/\n {4}[0-9a-f]{12} {4}src\/prepare\.sh\n {4}[0-9a-f]{12} {4}src\/train\.sh\n$/,
    );

    repo.write({ 'src/train.sh': 'echo "model v2 of $(cat /inputs/data)" > /outputs/model\n' }).commit('edit train.sh');
    expect(explainCli(repo, 'train').stdout).toContain(
      'key: not known yet: input data comes from steps.prepare.outputs.data, which has no cached result at this commit (it runs first)\n',
    );
    expect(explainCli(repo, 'prepare').stdout).toContain(
      '                 changed since the last execution: src/train.sh\n',
    );
    const train = await explainStep(deps, { pipeline: p!, step: 'train', source: at(), params: {} });
    // prepare sees src/ too, so it runs first and train's input (hence its key) is not known yet.
    expect(train.key).toBeUndefined();
    expect(train.pending).toEqual({ data: 'prepare.data' });
    expect(train.last!.changes.map((c) => c.part)).toEqual(['code']);
    expect(train.last!.files).toEqual(['src/train.sh']);
    const prepare = await explainStep(deps, { pipeline: p!, step: 'prepare', source: at(), params: {} });
    expect(prepare.key).toBeDefined();
    expect(prepare.cached).toBeUndefined();
    expect(prepare.last!.files).toEqual(['src/train.sh']);
  });
});

describe('what a step reads is what its key sees', () => {
  it('retargeting a symbolic link reruns the step with the new content (issue 7)', async () => {
    const repo = engine.repo().write({
      '.trainyard/link.yaml': `
name: link
steps:
  read:
    image: ${BUSYBOX_IMAGE}
    run: cat current.json > /outputs/o
    env: { SALT: "${engine.salt}" }
    outputs: [o]
`,
      'configs/a.json': '{"a":1}\n',
      'configs/b.json': '{"b":2}\n',
    });
    await import('node:fs').then((fs) => fs.symlinkSync('configs/a.json', `${repo.path}/current.json`));
    repo.commit('link');
    const a = await engine.run(repo, '.trainyard/link.yaml');
    expect(blob(stepOf(a, 'read').outcome!.outputs.o!.digest)).toBe('{"a":1}\n');
    await import('node:fs').then((fs) => {
      fs.unlinkSync(`${repo.path}/current.json`);
      fs.symlinkSync('configs/b.json', `${repo.path}/current.json`);
    });
    repo.commit('retarget');
    const b = await engine.run(repo, '.trainyard/link.yaml');
    expect(stepOf(b, 'read').state).toBe('succeeded');
    expect(stepOf(b, 'read').cache!.reason).toBe('ran: code changed (current.json)');
    expect(blob(stepOf(b, 'read').outcome!.outputs.o!.digest)).toBe('{"b":2}\n');
  });

  it('a folder output reaches its consumer as the same tree: empty folders and executable bits included', async () => {
    const repo = engine.repo().write({
      '.trainyard/tree.yaml': `
name: tree
steps:
  make:
    image: ${BUSYBOX_IMAGE}
    run: mkdir -p /outputs/t/empty /outputs/t/a/b/c /outputs/t/bin && echo x > /outputs/t/a/f && printf '#!/bin/sh\\necho ran\\n' > /outputs/t/bin/tool && chmod 755 /outputs/t/bin/tool
    env: { SALT: "${engine.salt}" }
    outputs: [t]
  use:
    image: ${BUSYBOX_IMAGE}
    run: cd /inputs/t && find . | sort > /outputs/listing && /inputs/t/bin/tool >> /outputs/listing && test ! -x a/f && echo plain >> /outputs/listing
    env: { SALT: "${engine.salt}" }
    inputs: { t: steps.make.outputs.t }
    outputs: [listing]
`,
    });
    repo.commit();
    const s = await engine.run(repo, '.trainyard/tree.yaml');
    expect(stepOf(s, 'use').state).toBe('succeeded');
    expect(blob(stepOf(s, 'use').outcome!.outputs.listing!.digest)).toBe(
      ['.', './a', './a/b', './a/b/c', './a/f', './bin', './bin/tool', './empty', 'ran', 'plain', ''].join('\n'),
    );
  });

  it('a symbolic link inside a folder output is refused by its path under /outputs, not a scratch path', async () => {
    const repo = engine.repo().write({
      '.trainyard/outlink.yaml': `
name: outlink
steps:
  make:
    image: ${BUSYBOX_IMAGE}
    run: mkdir -p /outputs/model/sub && echo w > /outputs/model/w && ln -s /etc/passwd /outputs/model/sub/link
    env: { SALT: "${engine.salt}" }
    outputs: [model]
`,
    });
    repo.commit();
    const s = await engine.run(repo, '.trainyard/outlink.yaml');
    expect(stepOf(s, 'make').state).toBe('failed');
    expect(stepOf(s, 'make').message).toBe(
      'output "model" refused: /outputs/model/sub/link is a symbolic link. Outputs may not contain links (a link could lead outside the output); copy the file or folder it points to instead.',
    );
  });

  it('a symbolic link inside a repository folder input is refused, naming the input and the link', async () => {
    const repo = engine.repo().write({
      '.trainyard/inlink.yaml': `
name: inlink
steps:
  use:
    image: ${BUSYBOX_IMAGE}
    run: ls /inputs/raw
    env: { SALT: "${engine.salt}" }
    inputs: { raw: data/raw }
`,
      'data/raw/a.csv': '1\n',
    });
    await import('node:fs').then((fs) => fs.symlinkSync('../../secrets.txt', `${repo.path}/data/raw/b.csv`));
    repo.commit();
    const s = await engine.run(repo, '.trainyard/inlink.yaml');
    expect(stepOf(s, 'use').state).toBe('failed');
    expect(stepOf(s, 'use').message).toMatch(
      /^could not prepare the step: input raw of step use: data\/raw\/b\.csv is a symbolic link\. A repository folder input may not contain links/,
    );
    expect(stepOf(s, 'use').message).not.toContain(engine.root);
  });
});
