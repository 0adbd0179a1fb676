// The branches of a local checkout that `trainyard run` records and `trainyard diff`
// compares by: the checked-out branch, and the repository's default branch.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function git(repo: string, ...args: string[]): Promise<string | undefined> {
  try {
    return (await run('git', ['-C', repo, ...args], { encoding: 'utf8' })).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The checked-out branch's short name; undefined on a detached HEAD. */
export function currentBranch(repo: string): Promise<string | undefined> {
  return git(repo, 'symbolic-ref', '--short', '-q', 'HEAD');
}

/**
 * The branch a feature branch is compared with: origin's HEAD branch when the clone knows
 * it (`refs/remotes/origin/HEAD`), else `main`, else `master`, whichever exists locally.
 */
export async function defaultBranch(repo: string): Promise<string | undefined> {
  const origin = await git(repo, 'symbolic-ref', '--short', '-q', 'refs/remotes/origin/HEAD');
  if (origin) return origin.replace(/^origin\//, '');
  for (const b of ['main', 'master']) if (await git(repo, 'rev-parse', '--verify', '-q', `refs/heads/${b}`)) return b;
  return undefined;
}
