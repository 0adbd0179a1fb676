// The remote SourceProvider against the fake hosts: archives through the GitHub tarball
// redirect (with an installation token) and the GitLab archive endpoint, unpacked once per
// commit; hostile archives cannot write outside the cache.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubClients } from '../../activities/githost/github-client.js';
import { RemoteSourceProvider } from '../../activities/githost/source.js';
import { FakeGitHub } from './fake-github.js';
import { FakeGitLab } from './fake-gitlab.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const repo = { id: 1001, owner: 'octo-org', name: 'models' };
const gh = new FakeGitHub(77, publicKey, repo, 42);
const gl = new FakeGitLab('gl-token', 15);
const cacheRoot = mkdtempSync(join(tmpdir(), 'trainyard-src-'));
let provider: RemoteSourceProvider;

beforeAll(async () => {
  await Promise.all([gh.start(), gl.start()]);
  provider = new RemoteSourceProvider({
    cacheRoot,
    github: new GitHubClients({ appId: 77, privateKey, apiUrl: gh.url }, pino({ level: 'silent' })),
    gitlab: { url: gl.url, token: 'gl-token' },
  });
});
afterAll(async () => {
  await Promise.all([gh.stop(), gl.stop()]);
  rmSync(cacheRoot, { recursive: true, force: true });
});

describe('remote source provider', () => {
  it('unpacks a GitHub commit once and serves the project subdirectory', async () => {
    const sha = gh.commit({ 'README.md': 'hi', 'ml/src/train.py': 'print(1)' });
    const source = {
      kind: 'remote',
      cloneUrl: `${gh.url}/octo-org/models.git`,
      commit: sha,
      subdir: 'ml',
      host: 'github',
      installationId: 42,
    } as const;
    const [a, b] = await Promise.all([provider.checkout(source), provider.checkout(source)]);
    expect(a).toBe(b);
    expect(readFileSync(join(a, 'src/train.py'), 'utf8')).toBe('print(1)');
    expect(gh.calls.filter((c) => c.path.endsWith(`/tarball/${sha}`))).toHaveLength(1);
    await provider.checkout(source);
    expect(gh.calls.filter((c) => c.path.endsWith(`/tarball/${sha}`))).toHaveLength(1);
    expect(gh.violations).toEqual([]);
  });

  it('refuses a subdirectory that leaves the repository, and a short commit id', async () => {
    const sha = gh.commit({ 'a.txt': 'a' });
    const base = {
      kind: 'remote',
      cloneUrl: `${gh.url}/octo-org/models.git`,
      commit: sha,
      host: 'github',
      installationId: 42,
    } as const;
    await expect(provider.checkout({ ...base, subdir: '../../..' })).rejects.toThrow(/leaves the repository/);
    await expect(provider.checkout({ ...base, subdir: '', commit: 'main' })).rejects.toThrow(/not a full commit id/);
  });

  it('unpacks a GitLab commit with the project token', async () => {
    const sha = gl.commit({ 'data/x.csv': '1,2' });
    const dir = await provider.checkout({
      kind: 'remote',
      cloneUrl: `${gl.url}/g/p.git`,
      commit: sha,
      subdir: '',
      host: 'gitlab',
      projectId: 15,
    });
    expect(readFileSync(join(dir, 'data/x.csv'), 'utf8')).toBe('1,2');
    expect(gl.violations).toEqual([]);
  });

  it('does not let an archive write outside its folder', async () => {
    const sha = gl.commit({ marker: String(Date.now()) });
    const evilName = `escaped-${Date.now()}`;
    const tgz = execFileSync('python3', [
      '-c',
      `
import io, sys, tarfile
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w:gz') as t:
    for name in ['top/ok.txt', 'top/../../${evilName}', '/tmp/${evilName}-abs']:
        data = b'x'
        info = tarfile.TarInfo(name); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    link = tarfile.TarInfo('top/link'); link.type = tarfile.SYMTYPE; link.linkname = '/tmp'
    t.addfile(link)
    data = b'y'; info = tarfile.TarInfo('top/link/${evilName}-via-link'); info.size = 1
    t.addfile(info, io.BytesIO(data))
sys.stdout.buffer.write(buf.getvalue())
`,
    ]);
    gl.archives.set(sha, tgz);
    const source = {
      kind: 'remote',
      cloneUrl: `${gl.url}/g/p.git`,
      commit: sha,
      subdir: '',
      host: 'gitlab',
      projectId: 15,
    } as const;
    await provider.checkout(source).catch(() => undefined);
    expect(existsSync(join(cacheRoot, 'remote', 'gitlab', evilName))).toBe(false);
    expect(existsSync(join('/tmp', `${evilName}-abs`))).toBe(false);
    expect(existsSync(join('/tmp', `${evilName}-via-link`))).toBe(false);
    const everything = readdirSync(cacheRoot, { recursive: true }).map(String);
    expect(everything.some((p) => p.endsWith(evilName))).toBe(false);
  });
});
