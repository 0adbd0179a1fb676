// The local checkout a `trainyard run` works on: its git repository, the project root
// (the folder holding `.trainyard/`, possibly a subfolder of a monorepo), and the commit.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
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
    throw new ProjectError(`${start} is not inside a git repository: trainyard runs committed pipelines (git init, add your .trainyard/ folder, commit)`);
  }
  for (let d = start; ; d = dirname(d)) {
    if (await stat(join(d, '.trainyard')).then((s) => s.isDirectory(), () => false)) {
      return { repoPath, projectRoot: d, subdir: relative(repoPath, d).split('\\').join('/') };
    }
    if (d === repoPath || d === dirname(d)) break;
  }
  throw new ProjectError(`no .trainyard/ folder in ${start} or above it in the repository; create one with \`trainyard init\``);
}

export interface Snapshot {
  commit: string;
  /** HEAD, when `commit` is a snapshot of uncommitted changes to tracked files. */
  dirtyBase?: string;
  /** Untracked files, which a run does not see. */
  untracked: string[];
}

/**
 * What a run sees: HEAD, or — when tracked files have uncommitted changes — a snapshot
 * commit of the working tree (`git stash create`: nothing in the checkout is touched).
 * Untracked files are never part of a run, as in CI.
 */
export async function snapshot(project: LocalProject): Promise<Snapshot> {
  const run = async (args: string[]) => (await git('git', ['-C', project.repoPath, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout.trim();
  let head: string;
  try {
    head = await run(['rev-parse', '--verify', 'HEAD^{commit}']);
  } catch {
    throw new ProjectError(`${project.repoPath} has no commit yet: commit your pipeline and code first`);
  }
  // A file touched but not changed (npm install rewriting its lock file, say) leaves stale
  // stat data in the index, and `git stash create` then exits 1 with nothing to say.
  // Refreshing first makes it answer: a commit id when something changed, nothing when not.
  await run(['update-index', '-q', '--refresh']).catch(() => undefined);
  let stash: string;
  try {
    stash = await run(['stash', 'create', 'trainyard run snapshot']);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ProjectError(`could not snapshot the working tree of ${project.repoPath} (git stash create): ${(e.stderr ?? '').trim() || e.message}`);
  }
  const untracked = (await run(['ls-files', '--others', '--exclude-standard', '--', project.subdir || '.'])).split('\n').filter(Boolean);
  return stash ? { commit: stash, dirtyBase: head, untracked } : { commit: head, untracked };
}
