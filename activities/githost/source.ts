// SourceProvider for `remote` sources: the commit's archive from the GitHub or GitLab API,
// unpacked once per commit into a cache shared by every step on this host. No git clone,
// no credentials on disk; the archive is streamed into tar with a size cap.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join, relative, resolve, sep, isAbsolute } from 'node:path';
import type { SourceRef } from '../../model/types.js';
import { COMMIT_ID, OncePerKey, fillOnce } from '../source/once.js';
import type { SourceProvider } from '../source/types.js';
import { ownerRepoFromCloneUrl, type GitHubClients } from './github-client.js';
import { countGitLabResponse, type GitLabCredentials } from './gitlab-client.js';

export interface RemoteSourceConfig {
  cacheRoot: string;
  github?: GitHubClients;
  gitlab?: GitLabCredentials;
  /** Largest archive accepted, bytes (compressed). */
  maxArchiveBytes?: number;
}

export class RemoteSourceProvider implements SourceProvider {
  private readonly once = new OncePerKey();

  constructor(private readonly cfg: RemoteSourceConfig) {}

  async checkout(source: SourceRef): Promise<string> {
    if (source.kind !== 'remote') throw new Error(`RemoteSourceProvider cannot check out a ${source.kind} source`);
    if (!COMMIT_ID.test(source.commit))
      throw new Error(`refusing to fetch ${JSON.stringify(source.commit)}: not a full commit id`);
    const repoKey = createHash('sha256')
      .update(`${source.host}\n${source.cloneUrl}\n${source.projectId ?? ''}`)
      .digest('hex')
      .slice(0, 16);
    const dir = join(this.cfg.cacheRoot, 'remote', source.host, repoKey, source.commit);
    const root = await this.once.run(dir, () => this.fetchOnce(source, dir));
    return projectRoot(root, source.subdir);
  }

  private async fetchOnce(source: Extract<SourceRef, { kind: 'remote' }>, dir: string): Promise<string> {
    return fillOnce(dir, async (tmp) =>
      untar(await this.download(source), tmp, this.cfg.maxArchiveBytes ?? 2 * 1024 ** 3),
    );
  }

  private async download(source: Extract<SourceRef, { kind: 'remote' }>): Promise<Response> {
    let url: string;
    let headers: Record<string, string>;
    if (source.host === 'github') {
      const gh = this.cfg.github;
      if (!gh || source.installationId === undefined)
        throw new Error('cannot fetch a GitHub commit: no GitHub App configured on this worker, or no installation id');
      const { owner, repo } = ownerRepoFromCloneUrl(source.cloneUrl);
      const auth = (await gh.installation(source.installationId).auth({ type: 'installation' })) as { token: string };
      url = `${gh.creds.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/tarball/${source.commit}`;
      headers = {
        authorization: `token ${auth.token}`,
        accept: 'application/vnd.github+json',
        'user-agent': 'trainyard',
      };
    } else {
      const gl = this.cfg.gitlab;
      if (!gl || source.projectId === undefined)
        throw new Error('cannot fetch a GitLab commit: no GitLab configured on this worker, or no project id');
      url = `${gl.url}/api/v4/projects/${source.projectId}/repository/archive.tar.gz?sha=${source.commit}`;
      headers = { 'private-token': gl.token };
    }
    // fetch drops the authorization header when a redirect leaves the origin (GitHub sends
    // the download to codeload with a token of its own in the URL).
    const res = await fetch(url, { headers, redirect: 'follow' });
    // The archive is a GitLab API call too (GitHub's tarball is not counted: not made through Octokit).
    if (source.host === 'gitlab') countGitLabResponse(res.status, (n) => res.headers.get(n));
    if (!res.ok || !res.body)
      throw new Error(`fetching the archive of ${source.commit} from ${source.host} failed: HTTP ${res.status}`);
    return res;
  }
}

/** The project root inside the unpacked tree; refuses a subdir that leaves it. */
async function projectRoot(root: string, subdir: string): Promise<string> {
  if (isAbsolute(subdir)) throw new Error(`project subdirectory ${JSON.stringify(subdir)} must be relative`);
  const wanted = resolve(root, subdir || '.');
  const real = await realpath(wanted);
  const realRoot = await realpath(root);
  const rel = relative(realRoot, real);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new Error(`project subdirectory ${JSON.stringify(subdir)} leaves the repository`);
  }
  return real;
}

/**
 * Unpacks a .tar.gz stream. GNU tar drops leading `/` and refuses `..` members, and with
 * --no-same-owner/--no-same-permissions nothing from the archive sets owners or setuid bits.
 * Both hosts wrap the tree in one top folder, which --strip-components removes.
 */
async function untar(res: Response, dest: string, maxBytes: number): Promise<void> {
  const tar = spawn(
    'tar',
    ['-xzf', '-', '-C', dest, '--strip-components=1', '--no-same-owner', '--no-same-permissions'],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  // tar exiting early (a corrupt archive) must surface as its exit code, not an EPIPE crash.
  tar.stdin.on('error', () => {});
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<number | null>((r) => tar.once('close', (code) => r(code)));
  let total = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > maxBytes) throw new Error(`the commit archive is larger than ${maxBytes} bytes`);
      if (!tar.stdin.write(chunk)) await new Promise((r) => tar.stdin.once('drain', r));
    }
    tar.stdin.end();
  } catch (err) {
    tar.kill('SIGKILL');
    await exited;
    throw err;
  }
  const code = await exited;
  if (code !== 0) throw new Error(`unpacking the commit archive failed (tar exit ${code}): ${stderr.trim()}`);
}
