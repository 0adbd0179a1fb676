// Local git checkouts: `git archive <commit>:<subdir>` unpacked once per commit into a
// cache shared by every step on this host (steps mount it read-only).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SourceRef } from '../../model/types.js';
import { COMMIT_ID, OncePerKey, fillOnce } from './once.js';
import type { SourceProvider } from './types.js';

const run = promisify(execFile);

export class LocalGitSource implements SourceProvider {
  private readonly once = new OncePerKey();

  constructor(private readonly cacheRoot: string) {}

  async checkout(source: SourceRef): Promise<string> {
    if (source.kind !== 'git') throw new Error(`LocalGitSource cannot check out a ${source.kind} source`);
    if (!COMMIT_ID.test(source.commit))
      throw new Error(`refusing to check out ${JSON.stringify(source.commit)}: not a full commit id`);
    if (source.subdir.split('/').some((p) => p === '..') || source.subdir.startsWith('/')) {
      throw new Error(`refusing project directory ${JSON.stringify(source.subdir)}: it must be inside the repository`);
    }
    const repoKey = createHash('sha256').update(`${source.repoPath}\n${source.subdir}`).digest('hex').slice(0, 16);
    const dir = join(this.cacheRoot, 'git', repoKey, source.commit);
    return this.once.run(dir, () => this.extract(source, dir));
  }

  private async extract(source: Extract<SourceRef, { kind: 'git' }>, dir: string): Promise<string> {
    const treeish = source.subdir ? `${source.commit}:${source.subdir}` : source.commit;
    return fillOnce(dir, async (tmp) => {
      await run('git', ['-C', source.repoPath, 'cat-file', '-e', treeish]).catch(() => {
        throw new Error(
          `commit ${source.commit.slice(0, 12)} (${source.subdir || 'repository root'}) is not in ${source.repoPath}`,
        );
      });
      await pipeArchive(source.repoPath, treeish, tmp);
    });
  }
}

function pipeArchive(repo: string, treeish: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const git = spawn('git', ['-C', repo, 'archive', '--format=tar', treeish], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '--no-same-owner', '-C', dest], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    git.stderr.on('data', (d: Buffer) => (err += d.toString()));
    tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
    git.stdout.pipe(tar.stdin);
    let done = 0;
    const codes: number[] = [];
    const finish = (code: number | null) => {
      codes.push(code ?? 1);
      if (++done === 2)
        codes.every((c) => c === 0) ? resolve() : reject(new Error(`git archive ${treeish} failed: ${err.trim()}`));
    };
    git.on('close', finish);
    tar.on('close', finish);
    git.on('error', reject);
    tar.on('error', reject);
  });
}

/** The providers a worker has, by source kind. */
export class SourceProviders implements SourceProvider {
  constructor(
    private readonly git: SourceProvider,
    private readonly remote?: SourceProvider,
  ) {}

  checkout(source: SourceRef): Promise<string> {
    if (source.kind === 'git') return this.git.checkout(source);
    if (!this.remote)
      throw new Error(`this worker cannot fetch ${source.host} sources: no ${source.host} credentials configured`);
    return this.remote.checkout(source);
  }
}
