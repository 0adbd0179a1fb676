// The registry-free images: built from this host's files, rebuilt only when their recipe changes.
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { imageId, runContainer } from '../../activities/container/run.js';
import type { ContainerCliConfig } from '../../activities/container/types.js';
import { BUSYBOX_IMAGE, PYTHON_IMAGE, ensureTestImages } from '../fixtures/images/images.js';

const exec = promisify(execFile);
const buildPython = fileURLToPath(new URL('../../examples/image/build.sh', import.meta.url));
const buildBusybox = fileURLToPath(new URL('../fixtures/images/build-busybox.sh', import.meta.url));
let cli: ContainerCliConfig;

beforeAll(async () => {
  cli = await resolveContainerCli(process.env);
  await ensureTestImages();
});

async function run(image: string, command: string[]): Promise<{ exitCode: number | null; out: string[] }> {
  const out: string[] = [];
  const r = await runContainer(cli, {
    name: `ty-img-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    labels: { 'trainyard.exec': 'image-test' },
    image,
    command,
    env: {},
    mounts: [],
    workdir: '/workspace',
    gpus: false,
    timeoutMs: 60_000,
    onLine: (_s, l) => out.push(l),
    signal: new AbortController().signal,
  });
  return { exitCode: r.exitCode, out };
}

/** The minor version of the python3 the image is built from (this host's, whatever it is). */
const hostPython = (): string =>
  execFileSync(
    process.env.TRAINYARD_HOST_PYTHON ?? '/usr/bin/python3',
    ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
    { encoding: 'utf8' },
  ).trim();

describe(PYTHON_IMAGE, () => {
  it('runs the standard library a training script needs, with busybox around it', async () => {
    const program =
      'import json, csv, math, random, statistics, hashlib, sqlite3, zlib, os, sys; ' +
      'print(json.dumps({"py": "%d.%d" % sys.version_info[:2], "sha": hashlib.sha256(b"abc").hexdigest()[:12], ' +
      '"mean": statistics.mean([1, 2, 3]), "cwd": os.getcwd(), "path": os.environ["PATH"]}))';
    const r = await run(PYTHON_IMAGE, ['python3', '-c', program]);
    expect(r.exitCode, r.out.join('\n')).toBe(0);
    expect(JSON.parse(r.out[0] ?? '{}')).toEqual({
      py: hostPython(),
      sha: 'ba7816bf8f01',
      mean: 2,
      cwd: '/workspace',
      path: '/usr/local/bin:/usr/bin:/bin',
    });
    const sh = await run(PYTHON_IMAGE, [
      'sh',
      '-c',
      'echo "$(basename "$(readlink /bin/sh)")" && ls /usr/bin/env && python --version',
    ]);
    expect(sh.out).toHaveLength(3);
    expect(sh.out.slice(0, 2)).toEqual(['busybox', '/usr/bin/env']);
    expect(sh.out[2]).toMatch(new RegExp(`^Python ${hostPython().replace('.', '\\.')}\\.\\d+$`));
  });

  // How long the up-to-date check takes is measured by bench/latency.ts.
  it('is not rebuilt when nothing changed', async () => {
    const before = await imageId(cli, PYTHON_IMAGE);
    const { stdout } = await exec('bash', [buildPython, cli.command]);
    expect(stdout).toContain(`${PYTHON_IMAGE} is up to date`);
    expect(await imageId(cli, PYTHON_IMAGE)).toBe(before);
  });

  it('says which package to install when python3 or busybox is missing', async () => {
    const noPython = exec('bash', [buildPython, cli.command], {
      env: { ...process.env, TRAINYARD_HOST_PYTHON: '/nonexistent/python3' },
    });
    await expect(noPython).rejects.toMatchObject({
      stderr: expect.stringMatching(/\/nonexistent\/python3 is missing: apt-get install python3 busybox-static/),
    });
    const noBusybox = exec('bash', [buildBusybox, cli.command], {
      env: { ...process.env, TRAINYARD_HOST_BUSYBOX: '/nonexistent/busybox' },
    });
    await expect(noBusybox).rejects.toMatchObject({
      stderr: expect.stringMatching(/\/nonexistent\/busybox is missing: apt-get install busybox-static/),
    });
  });
});

describe(BUSYBOX_IMAGE, () => {
  it('has a shell and core utilities', async () => {
    const r = await run(BUSYBOX_IMAGE, ['sh', '-c', 'echo a,b | cut -d, -f2; seq 3 | wc -l; pwd']);
    expect(r).toEqual({ exitCode: 0, out: ['b', '3', '/workspace'] });
  });
});
