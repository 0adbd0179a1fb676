// `trainyard run` from working trees in the states git allows, through the real command:
// the step sees the working tree of the tracked files, whatever the index and HEAD look like.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureTestImages } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, GitRepo } from './harness.js';
import { startTrainyard } from './processes.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'cli-worktree-'));
const home = join(root, 'home');
beforeAll(async () => {
  await ensureTestImages();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function trainyardRun(dir: string) {
  const p = startTrainyard(['run', '-C', dir], {
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_HOME: home,
    TRAINYARD_STORE: join(home, 'store'),
  });
  const { code } = await p.exited;
  return { code, output: p.output() };
}

it('runs from a linked worktree on a detached HEAD with a file added with git add -N, one deleted and one renamed', async () => {
  const name = `worktree-${randomBytes(3).toString('hex')}`;
  // The step fails unless it sees exactly the working tree of the tracked files.
  const check =
    'test "$(cat new.txt)" = fresh && test ! -e gone.txt && test ! -e old.txt && test "$(cat renamed.txt)" = old && test ! -e scratch.txt';
  const repo = new GitRepo(root).write({
    [`.trainyard/${name}.yaml`]: `name: ${name}\nsteps:\n  check:\n    image: ${BUSYBOX_IMAGE}\n    run: ${JSON.stringify(check)}\n`,
    'gone.txt': 'to be deleted\n',
    'old.txt': 'old\n',
  });
  repo.commit('base');
  const wt = join(mkdtempSync(join(root, 'linked-')), 'wt');
  repo.git('worktree', 'add', '-q', '--detach', wt, 'HEAD');
  const git = (...args: string[]) => execFileSync('git', ['-C', wt, ...args], { encoding: 'utf8' });
  writeFileSync(join(wt, 'new.txt'), 'fresh\n');
  git('add', '-N', 'new.txt');
  unlinkSync(join(wt, 'gone.txt'));
  git('mv', 'old.txt', 'renamed.txt');
  writeFileSync(join(wt, 'scratch.txt'), 'untracked\n');
  const statusBefore = git('status', '--porcelain=v2');

  const r = await trainyardRun(wt);
  expect(r.code, r.output.slice(-3000)).toBe(0);
  expect(r.output).toContain('uncommitted changes to tracked files are included');
  expect(r.output).toContain('1 untracked file(s) are not part of the run (e.g. scratch.txt)');
  expect(r.output).toMatch(/check: succeeded/);
  expect(git('status', '--porcelain=v2')).toBe(statusBefore);
}, 240_000);

it('a repository without a commit is refused with what to do, and nothing runs', async () => {
  const repo = new GitRepo(root).write({
    '.trainyard/x.yaml': `name: x\nsteps:\n  a:\n    image: ${BUSYBOX_IMAGE}\n    run: "true"\n`,
  });
  repo.git('add', '-A');
  const r = await trainyardRun(repo.path);
  expect(r.code).toBe(2);
  expect(r.output).toContain(
    `trainyard: ${repo.path} has no commit yet: commit your pipeline and code first (git add -A && git commit), then run again`,
  );
  expect(r.output).not.toContain('run run-');
});
