// A step's code digest changes exactly when what the step can read through its code scope
// changes. Real commits, checked out as the runner does (`git archive`, LocalGitSource).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalGitSource } from '../../activities/source/local.js';
import { describeEntries, stepCode } from '../../activities/source/files.js';
import { changedFiles } from '../../activities/cache.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'code-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const sources = new LocalGitSource(join(root, 'checkouts'));
let n = 0;

class Repo {
  readonly path = join(root, `repo-${++n}`);
  constructor() {
    mkdirSync(this.path);
    this.git('init', '-q', '-b', 'main');
    this.git('config', 'user.email', 't@example.com');
    this.git('config', 'user.name', 't');
    this.git('config', 'protocol.file.allow', 'always');
  }
  git(...args: string[]): string {
    return execFileSync('git', ['-C', this.path, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  }
  write(files: Record<string, string>): this {
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(dirname(join(this.path, p)), { recursive: true });
      writeFileSync(join(this.path, p), text);
    }
    return this;
  }
  link(path: string, target: string): this {
    mkdirSync(dirname(join(this.path, path)), { recursive: true });
    try {
      unlinkSync(join(this.path, path));
    } catch {
      /* new link */
    }
    symlinkSync(target, join(this.path, path));
    return this;
  }
  rm(path: string): this {
    rmSync(join(this.path, path), { recursive: true, force: true });
    return this;
  }
  /** Commit everything and give the checkout a step would see. */
  async commit(): Promise<string> {
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', 'c');
    return sources.checkout({ kind: 'git', repoPath: this.path, commit: this.git('rev-parse', 'HEAD'), subdir: '' });
  }
}

const digestOf = async (repo: Repo, code?: string[]) => (await stepCode(await repo.commit(), code)).digest;

describe('symbolic links', () => {
  it('retargeting a link changes the key (issue 7: a link digested as the text "symlink")', async () => {
    const repo = new Repo().write({
      'configs/a.json': '{"a":1}',
      'configs/b.json': '{"b":2}',
      'run.sh': 'cat current.json',
    });
    repo.link('current.json', 'configs/a.json');
    const a = await digestOf(repo, ['current.json', 'run.sh']);
    repo.link('current.json', 'configs/b.json');
    const b = await digestOf(repo, ['current.json', 'run.sh']);
    expect(b).not.toBe(a);
  });

  it('an edit to what a link leads to changes the key, even outside the listed code or in an ignored path', async () => {
    const repo = new Repo()
      .write({ 'docs/params.md': 'lr=1', 'run.sh': 'cat params' })
      .link('params', 'docs/params.md');
    const listed = await digestOf(repo, ['params', 'run.sh']);
    const byDefault = await digestOf(repo);
    repo.write({ 'docs/params.md': 'lr=2' });
    const ck = await repo.commit();
    expect((await stepCode(ck, ['params', 'run.sh'])).digest).not.toBe(listed);
    expect((await stepCode(ck)).digest).not.toBe(byDefault);
    // ...and the listing names the file that changed.
    expect((await stepCode(ck)).entries.map((e) => e.path)).toEqual(['docs/params.md', 'params', 'run.sh']);
  });

  it('follows links through linked folders, chains and `..`, and everything under a linked folder', async () => {
    const repo = new Repo().write({
      'vendor/v2/lib/util.py': 'x=1',
      'vendor/v2/lib/deep/k.py': 'k=1',
      'other.py': 'o',
    });
    repo.link('vendor/current', 'v2').link('lib', 'vendor/current/lib').link('entry.py', './lib/../lib/util.py');
    const ck = await repo.commit();
    expect((await stepCode(ck, ['entry.py'])).entries.map((e) => e.path)).toEqual([
      'entry.py',
      'lib',
      'vendor/current',
      'vendor/v2/lib/util.py',
    ]);
    expect((await stepCode(ck, ['lib'])).entries.map((e) => e.path)).toEqual([
      'lib',
      'vendor/current',
      'vendor/v2/lib/deep/k.py',
      'vendor/v2/lib/util.py',
    ]);
    // A listed path read through a linked folder (the walk does not descend links).
    expect((await stepCode(ck, ['lib/deep/k.py'])).entries.map((e) => e.path)).toEqual([
      'lib',
      'vendor/current',
      'vendor/v2/lib/deep/k.py',
    ]);
    const before = (await stepCode(ck, ['lib/deep/k.py'])).digest;
    repo.write({ 'vendor/v2/lib/deep/k.py': 'k=2' });
    expect((await stepCode(await repo.commit(), ['lib/deep/k.py'])).digest).not.toBe(before);
  });

  it('a link leaving the checkout is keyed by its text only; loops end', async () => {
    const repo = new Repo()
      .write({ 'a.py': 'a' })
      .link('passwd', '/etc/passwd')
      .link('up', '../../outside')
      .link('loop1', 'loop2')
      .link('loop2', 'loop1')
      .link('self', '.');
    const ck = await repo.commit();
    const code = await stepCode(ck, ['passwd', 'up', 'loop1']);
    expect(code.entries).toEqual([
      { path: 'loop1', type: 'symlink', target: 'loop2' },
      { path: 'loop2', type: 'symlink', target: 'loop1' },
      { path: 'passwd', type: 'symlink', target: '/etc/passwd' },
      { path: 'up', type: 'symlink', target: '../../outside' },
    ]);
    // A link to the root brings in the whole checkout, pipeline files and ignored paths too.
    expect((await stepCode(ck, ['self'])).entries.map((e) => e.path)).toEqual([
      'a.py',
      'loop1',
      'loop2',
      'passwd',
      'self',
      'up',
    ]);
  });
});

describe('modes, empty folders, submodules, LFS', () => {
  it('the executable bit is keyed and a miss names the file', async () => {
    const repo = new Repo().write({ 'tool.sh': 'echo hi' });
    const before = await stepCode(await repo.commit(), ['tool.sh']);
    chmodSync(join(repo.path, 'tool.sh'), 0o755);
    const after = await stepCode(await repo.commit(), ['tool.sh']);
    expect(after.digest).not.toBe(before.digest);
    expect(changedFiles(describeEntries(before.entries), describeEntries(after.entries))).toEqual(['tool.sh']);
  });

  it('a submodule is an empty folder in the checkout: adding one changes the key, moving its commit does not', async () => {
    const sub = new Repo().write({ 'lib.py': 'v1' });
    await sub.commit();
    const repo = new Repo().write({ 'main.py': 'import lib' });
    const without = await digestOf(repo);
    repo.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub.path, 'vendor/lib');
    const ck = await repo.commit();
    const withSub = await stepCode(ck);
    expect(withSub.digest).not.toBe(without);
    expect(withSub.entries.filter((e) => e.path.startsWith('vendor'))).toEqual([{ path: 'vendor/lib', type: 'dir' }]);
    // New submodule commit: the step still reads an empty folder, so the key stays.
    sub.write({ 'lib.py': 'v2' });
    await sub.commit();
    execFileSync('git', ['-C', join(repo.path, 'vendor/lib'), 'pull', '-q'], { stdio: 'ignore' });
    expect(repo.git('diff', '--name-only')).toBe('vendor/lib');
    expect(await digestOf(repo)).toBe(withSub.digest);
  });

  it('a Git LFS file is keyed by the bytes the step reads: the pointer without a smudge filter, the content with one', async () => {
    const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 6\n';
    const repo = new Repo().write({
      '.gitattributes': '*.bin filter=lfs diff=lfs merge=lfs -text\n',
      'w.bin': pointer,
    });
    const ck = await repo.commit();
    const entry = (await stepCode(ck, ['w.bin'])).entries[0]!;
    const { sha256Bytes } = await import('../../activities/store/digest.js');
    expect(entry).toMatchObject({ type: 'file', digest: sha256Bytes(pointer) });
    // A configured smudge filter (what `git lfs install` sets up) gives the step the content.
    repo.git('config', 'filter.lfs.smudge', 'sed s/version/CONTENT/');
    repo.git('config', 'filter.lfs.clean', 'cat');
    repo.git('config', 'filter.lfs.required', 'true');
    repo.write({ 'other.txt': 'new commit' });
    const ck2 = await repo.commit();
    const smudged = (await stepCode(ck2, ['w.bin'])).entries[0]!;
    expect(smudged).toMatchObject({ type: 'file', digest: sha256Bytes(pointer.replace('version', 'CONTENT')) });
  });
});

describe('the default code scope', () => {
  const base = {
    '.trainyard/p.yaml': 'name: p\n',
    'README.md': 'hello',
    'docs/guide.md': 'g',
    'docs/img.png': 'png',
    '.github/workflows/ci.yml': 'ci',
    'src/train.py': 't',
  };

  it('leaves out .trainyard/, *.md, docs/ and .github/ when there is no .trainyardignore', async () => {
    const repo = new Repo().write(base);
    const code = await stepCode(await repo.commit(), undefined);
    expect(code.entries.map((e) => e.path)).toEqual(['src/train.py']);
    expect(code.scope).toEqual({ kind: 'default', ignoreFile: false, patterns: ['*.md', 'docs/', '.github/'] });
  });

  it('a .trainyardignore replaces the defaults and is itself outside the scope; a listed code: ignores it', async () => {
    const repo = new Repo().write({
      ...base,
      '.trainyardignore': '# data is an input, not code\ndata/\n',
      'data/x.csv': '1',
    });
    const ck = await repo.commit();
    expect((await stepCode(ck)).entries.map((e) => e.path)).toEqual([
      '.github/workflows/ci.yml',
      'README.md',
      'docs/guide.md',
      'docs/img.png',
      'src/train.py',
    ]);
    expect((await stepCode(ck, ['data', 'README.md'])).entries.map((e) => e.path)).toEqual(['README.md', 'data/x.csv']);
  });

  it('refuses a .trainyardignore that is a symbolic link (it could lead anywhere on the host)', async () => {
    const repo = new Repo().write(base).link('.trainyardignore', '/etc/hostname');
    await expect(stepCode(await repo.commit())).rejects.toThrow(
      '.trainyardignore must be a regular file with one pattern per line; it is a symbolic link',
    );
  });
});
