// The local checkout a `trainyard run` works on: its git repository, the project root
// (the folder holding `.trainyard/`, possibly a subfolder of a monorepo), and the commit.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';

const git = promisify(execFile);

export class ProjectError extends Error {}

export interface LocalProject {
  repoPath: string;
  /** Project root relative to the repository root ('' = the root itself). */
  subdir: string;
  projectRoot: string;
}

export async function findProject(dir: string): Promise<LocalProject> {
  const start = resolve(dir);
  let repoPath: string;
  try {
    repoPath = (await git('git', ['-C', start, 'rev-parse', '--show-toplevel'])).stdout.trim();
  } catch {
    throw new ProjectError(
      `${start} is not inside a git repository: trainyard runs committed pipelines (git init, add your .trainyard/ folder, commit)`,
    );
  }
  for (let d = start; ; d = dirname(d)) {
    if (
      await stat(join(d, '.trainyard')).then(
        (s) => s.isDirectory(),
        () => false,
      )
    ) {
      return { repoPath, projectRoot: d, subdir: relative(repoPath, d).split('\\').join('/') };
    }
    if (d === repoPath || d === dirname(d)) break;
  }
  throw new ProjectError(
    `no .trainyard/ folder in ${start} or above it in the repository; create one with \`trainyard init\``,
  );
}

export interface Snapshot {
  commit: string;
  /** HEAD, when `commit` is a snapshot of uncommitted changes to tracked files. */
  dirtyBase?: string;
  /** Untracked files under the project root, which a run does not see. */
  untracked: string[];
  /** Submodule paths under the project root: a run sees each as an empty folder, as CI does without `submodules:`. */
  submodules: string[];
  /** Paths with an unresolved merge conflict: the run sees them as they are in the working tree. */
  conflicted: string[];
}

/** Who a snapshot commit is by: fixed, so the same changes on the same HEAD give the same commit id. */
const SNAPSHOT_IDENTITY = {
  GIT_AUTHOR_NAME: 'trainyard',
  GIT_AUTHOR_EMAIL: 'trainyard@localhost',
  GIT_COMMITTER_NAME: 'trainyard',
  GIT_COMMITTER_EMAIL: 'trainyard@localhost',
};

/**
 * What a run sees: HEAD, or — when tracked files differ from it in the working tree — a
 * snapshot commit whose parent is HEAD. Tracked means in the index: files added with
 * `git add` or `git add -N` count, a deleted file is left out, a renamed one is under its
 * new name; the working-tree content wins over what is staged. Untracked and ignored files
 * are never part of a run, as in CI.
 *
 * The snapshot is built in a temporary copy of the index (GIT_INDEX_FILE, `git add -u`,
 * `write-tree`, `commit-tree`), so the user's index, working tree, refs and stash are not
 * touched; only objects are added to the repository. Works on a detached HEAD, in a shallow
 * clone, in a linked worktree, with submodules and with a split index.
 *
 * Throws ProjectError when the repository has no commit yet or git refuses.
 */
export async function snapshot(project: LocalProject): Promise<Snapshot> {
  const git$ = async (args: string[], env?: Record<string, string>) =>
    (
      await git('git', ['-C', project.repoPath, ...args], {
        maxBuffer: 64 * 1024 * 1024,
        ...(env ? { env: { ...process.env, ...env } } : {}),
      })
    ).stdout;
  const fail =
    (what: string) =>
    (err: unknown): never => {
      const e = err as { stderr?: string; message: string };
      throw new ProjectError(
        `could not snapshot the working tree of ${project.repoPath} (${what}): ${(e.stderr ?? '').trim() || e.message}`,
      );
    };
  const headLine = await git$(['log', '-1', '--format=%H %T %ct', 'HEAD', '--']).catch(async (err: unknown) => {
    // An unborn branch: `git symbolic-ref` names it, `rev-parse HEAD` cannot resolve it.
    const unborn = await git$(['symbolic-ref', '-q', 'HEAD']).then(
      () =>
        git$(['rev-parse', '-q', '--verify', 'HEAD']).then(
          () => false,
          () => true,
        ),
      () => false,
    );
    if (unborn)
      throw new ProjectError(
        `${project.repoPath} has no commit yet: commit your pipeline and code first (git add -A && git commit), then run again`,
      );
    return fail('git log HEAD')(err);
  });
  const [head = '', headTree = '', headTime = ''] = headLine.trim().split(' ');
  const scope = project.subdir || '.';

  const tmp = await mkdtemp(join(tmpdir(), 'trainyard-index-'));
  let tree: string;
  let conflicted: string[];
  try {
    const index = join(tmp, 'index');
    const userIndex = resolve(project.repoPath, (await git$(['rev-parse', '--git-path', 'index'])).trim());
    const copied = await copyFile(userIndex, index).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false;
        throw new ProjectError(`could not read the index of ${project.repoPath} (${userIndex}): ${err.message}`);
      },
    );
    const env = { GIT_INDEX_FILE: index };
    if (!copied) await git$(['read-tree', 'HEAD'], env).catch(fail('git read-tree HEAD'));
    conflicted = [
      ...new Set(
        (await git$(['ls-files', '-u', '-z', '--', scope], env))
          .split('\0')
          .filter(Boolean)
          .map((l) => l.slice(l.indexOf('\t') + 1)),
      ),
    ];
    // Every tracked path (intent-to-add ones too) takes its working-tree state: modified,
    // deleted or a submodule moved to another commit.
    await git$(['add', '-u', '--', ':/'], env).catch(fail('git add -u'));
    tree = (await git$(['write-tree'], env).catch(fail('git write-tree'))).trim();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const untracked = (await git$(['ls-files', '-z', '--others', '--exclude-standard', '--', scope]))
    .split('\0')
    .filter(Boolean);
  const submodules = (
    await git$(['ls-tree', '-r', '-z', '--full-tree', tree, '--', ...(project.subdir ? [project.subdir] : [])])
  )
    .split('\0')
    .filter((l) => l.startsWith('160000 '))
    .map((l) => l.slice(l.indexOf('\t') + 1));
  if (tree === headTree) return { commit: head, untracked, submodules, conflicted };
  const date = `@${headTime} +0000`;
  const commit = (
    await git$(
      [
        'commit-tree',
        '--no-gpg-sign',
        '-p',
        head,
        '-m',
        `trainyard run snapshot of uncommitted changes on ${head}`,
        tree,
      ],
      { ...SNAPSHOT_IDENTITY, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
    ).catch(fail('git commit-tree'))
  ).trim();
  return { commit, dirtyBase: head, untracked, submodules, conflicted };
}
