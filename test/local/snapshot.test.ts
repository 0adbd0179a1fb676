// What `trainyard run` sees of a checkout, in every working-tree state git allows: the
// snapshot commit holds the working tree of the tracked files, and the user's index,
// working tree and refs are exactly as they were.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProjectError, findProject, snapshot } from '../../app/local/project.js';
import { GitRepo } from '../engine/harness.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'snapshot-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();

/** A repository with a pipeline and three committed files. */
function baseRepo(): GitRepo {
  const repo = new GitRepo(root).write({
    '.trainyard/p.yaml': 'name: p\nsteps:\n  a:\n    image: busybox\n    run: "true"\n',
    'keep.txt': 'keep\n',
    'old.txt': 'old\n',
    'edit.txt': 'v1\n',
  });
  repo.commit('base');
  return repo;
}

/** Everything a user would compare before and after: status, the index's bytes, refs and stash. */
function userState(dir: string) {
  const index = git(dir, 'rev-parse', '--path-format=absolute', '--git-path', 'index');
  return {
    status: git(dir, 'status', '--porcelain=v2', '--branch'),
    index: createHash('sha256').update(readFileSync(index)).digest('hex'),
    refs: git(dir, 'for-each-ref'),
    stash: git(dir, 'stash', 'list'),
  };
}

/** The files of a commit, path → content (what `git archive` gives the run). */
function filesOf(dir: string, commit: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of git(dir, 'ls-tree', '-r', '-z', commit).split('\0').filter(Boolean)) {
    const [meta, path] = line.split('\t') as [string, string];
    out[path] = meta.startsWith('160000') ? `<submodule ${meta.split(' ')[2]}>` : git(dir, 'show', `${commit}:${path}`);
  }
  return out;
}

/** Snapshots `dir` and checks that nothing of the user's changed. */
async function snap(dir: string) {
  const before = userState(dir);
  const s = await snapshot(await findProject(dir));
  expect(userState(dir)).toEqual(before);
  return s;
}

describe('snapshot of the working tree', () => {
  it('a clean checkout runs HEAD itself', async () => {
    const repo = baseRepo();
    const s = await snap(repo.path);
    expect(s.commit).toBe(repo.git('rev-parse', 'HEAD'));
    expect(s.dirtyBase).toBeUndefined();
  });

  it('a file touched but not changed runs HEAD itself', async () => {
    const repo = baseRepo();
    writeFileSync(join(repo.path, 'keep.txt'), 'keep\n');
    const s = await snap(repo.path);
    expect(s.commit).toBe(repo.git('rev-parse', 'HEAD'));
  });

  it('a file added with `git add -N` is included with its working-tree content', async () => {
    const repo = baseRepo();
    writeFileSync(join(repo.path, 'new.txt'), 'fresh\n');
    repo.git('add', '-N', 'new.txt');
    const s = await snap(repo.path);
    expect(s.dirtyBase).toBe(repo.git('rev-parse', 'HEAD'));
    expect(filesOf(repo.path, s.commit)['new.txt']).toBe('fresh');
    expect(s.untracked).toEqual([]);
  });

  it('staged-only changes are included; where the working tree differs from the index, the working tree wins', async () => {
    const repo = baseRepo();
    repo.write({ 'edit.txt': 'v2\n', 'added.txt': 'staged new file\n' });
    repo.git('add', 'edit.txt', 'added.txt');
    let files = filesOf(repo.path, (await snap(repo.path)).commit);
    expect(files['edit.txt']).toBe('v2');
    expect(files['added.txt']).toBe('staged new file');
    repo.write({ 'edit.txt': 'v3\n' });
    files = filesOf(repo.path, (await snap(repo.path)).commit);
    expect(files['edit.txt']).toBe('v3');
  });

  it('deleted files are left out, whether deleted with rm or git rm', async () => {
    const repo = baseRepo();
    unlinkSync(join(repo.path, 'old.txt'));
    repo.git('rm', '-q', 'edit.txt');
    const files = filesOf(repo.path, (await snap(repo.path)).commit);
    expect(Object.keys(files).sort()).toEqual(['.trainyard/p.yaml', 'keep.txt']);
  });

  it('a file renamed with git mv is under its new name; one renamed with mv is left out and its new name listed as untracked', async () => {
    const repo = baseRepo();
    repo.git('mv', 'old.txt', 'renamed.txt');
    renameSync(join(repo.path, 'edit.txt'), join(repo.path, 'moved.txt'));
    const s = await snap(repo.path);
    const files = filesOf(repo.path, s.commit);
    expect(files['renamed.txt']).toBe('old');
    expect(Object.keys(files).sort()).toEqual(['.trainyard/p.yaml', 'keep.txt', 'renamed.txt']);
    expect(s.untracked).toEqual(['moved.txt']);
  });

  it('the same changes on the same HEAD give the same snapshot commit', async () => {
    const repo = baseRepo();
    repo.write({ 'edit.txt': 'same\n' });
    const a = await snap(repo.path);
    const b = await snap(repo.path);
    expect(a.dirtyBase).toBeDefined();
    expect(b.commit).toBe(a.commit);
  });

  it('works on a detached HEAD', async () => {
    const repo = baseRepo();
    const first = repo.git('rev-parse', 'HEAD');
    repo.write({ 'keep.txt': 'later\n' }).commit('later');
    repo.git('checkout', '-q', '--detach', first);
    repo.write({ 'edit.txt': 'detached edit\n' });
    const s = await snap(repo.path);
    expect(s.dirtyBase).toBe(first);
    expect(repo.git('rev-parse', `${s.commit}^`)).toBe(first);
    expect(filesOf(repo.path, s.commit)).toMatchObject({ 'edit.txt': 'detached edit', 'keep.txt': 'keep' });
  });

  it('works in a shallow clone', async () => {
    const repo = baseRepo();
    repo.write({ 'keep.txt': 'second\n' }).commit('second');
    const clone = join(mkdtempSync(join(root, 'shallow-')), 'c');
    execFileSync('git', ['clone', '-q', '--depth', '1', `file://${repo.path}`, clone]);
    expect(git(clone, 'rev-parse', '--is-shallow-repository')).toBe('true');
    writeFileSync(join(clone, 'edit.txt'), 'in the clone\n');
    const s = await snap(clone);
    expect(s.dirtyBase).toBe(git(clone, 'rev-parse', 'HEAD'));
    expect(filesOf(clone, s.commit)).toMatchObject({ 'edit.txt': 'in the clone', 'keep.txt': 'second' });
  });

  it('works in a linked worktree, whose changes and index are its own', async () => {
    const repo = baseRepo();
    const wt = join(mkdtempSync(join(root, 'linked-')), 'wt');
    repo.git('worktree', 'add', '-q', '-b', 'side', wt);
    writeFileSync(join(wt, 'side.txt'), 'side\n');
    git(wt, 'add', '-N', 'side.txt');
    writeFileSync(join(wt, 'edit.txt'), 'edited in the worktree\n');
    repo.write({ 'keep.txt': 'edited in the main checkout\n' });
    const mainBefore = userState(repo.path);
    const s = await snap(wt);
    expect(userState(repo.path)).toEqual(mainBefore);
    expect(filesOf(wt, s.commit)).toMatchObject({
      'side.txt': 'side',
      'edit.txt': 'edited in the worktree',
      'keep.txt': 'keep',
    });
  });

  it('with submodules: a submodule moved to another commit is recorded at that commit and listed', async () => {
    const sub = new GitRepo(root).write({ 'lib.txt': 'v1\n' });
    const v1 = sub.commit('v1');
    sub.write({ 'lib.txt': 'v2\n' }).commit('v2');
    const repo = baseRepo();
    repo.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub.path, 'vendor/lib');
    repo.commit('add submodule');
    git(join(repo.path, 'vendor', 'lib'), 'checkout', '-q', v1);
    writeFileSync(join(repo.path, 'vendor', 'lib', 'scratch.txt'), 'untracked inside the submodule\n');
    const s = await snap(repo.path);
    expect(s.submodules).toEqual(['vendor/lib']);
    expect(filesOf(repo.path, s.commit)['vendor/lib']).toBe(`<submodule ${v1}>`);
  });

  it('a merge with unresolved conflicts runs the working tree and names the conflicted files', async () => {
    const repo = baseRepo();
    repo.git('checkout', '-q', '-b', 'other');
    repo.write({ 'edit.txt': 'theirs\n' }).commit('theirs');
    repo.git('checkout', '-q', 'main');
    repo.write({ 'edit.txt': 'ours\n' }).commit('ours');
    expect(() => repo.git('merge', '-q', 'other')).toThrow();
    repo.write({ 'edit.txt': 'resolved by hand\n' });
    const s = await snap(repo.path);
    expect(s.conflicted).toEqual(['edit.txt']);
    expect(filesOf(repo.path, s.commit)['edit.txt']).toBe('resolved by hand');
  });

  it('a project in a subfolder lists only its own untracked files', async () => {
    const repo = new GitRepo(root).write({
      'ml/.trainyard/p.yaml': 'name: p\nsteps:\n  a:\n    image: busybox\n    run: "true"\n',
      'ml/a.txt': 'a\n',
    });
    repo.commit('base');
    repo.write({ 'ml/b.txt': 'b\n', 'other/c.txt': 'c\n' });
    const s = await snap(join(repo.path, 'ml'));
    expect(s.untracked).toEqual(['ml/b.txt']);
  });

  it('a repository with no commit yet is refused with what to do', async () => {
    const repo = new GitRepo(root).write({ '.trainyard/p.yaml': 'name: p\nsteps: {}\n' });
    repo.git('add', '-A');
    const err = await snapshot(await findProject(repo.path)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProjectError);
    expect((err as Error).message).toContain(`${repo.path} has no commit yet: commit your pipeline and code first`);
  });
});
