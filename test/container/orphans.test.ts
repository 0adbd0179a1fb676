// A runner agent killed mid-step leaves its container running. The next agent started on
// that host removes the containers whose runner process is gone — and only those: a live
// agent's container on the same podman, and another host's, are left alone. So are the env
// files (they may hold secret values) such an agent wrote for the container CLI.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers, removeContainers } from '../../activities/container/run.js';
import { envFileRoot, makeEnvDir, removeOrphanedEnvDirs } from '../../activities/container/envfile.js';
import type { ContainerCliConfig } from '../../activities/container/types.js';
import { AGENT_HOST_LABEL, AGENT_LABEL, removeOrphanedContainers } from '../../activities/runner/runstep.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';

const queue = `orphans-test-${process.pid}`;
const live = spawn('sleep', ['600'], { stdio: 'ignore' });
let cli: ContainerCliConfig;

afterAll(async () => {
  live.kill('SIGKILL');
  if (cli) await removeContainers(cli, { 'trainyard.queue': queue });
});

function startContainer(name: string, host: string, pid: number): void {
  execFileSync(
    cli.command,
    [
      'run',
      ...cli.runFlags,
      '-d',
      '--name',
      name,
      '--label',
      `trainyard.queue=${queue}`,
      '--label',
      `${AGENT_HOST_LABEL}=${host}`,
      '--label',
      `${AGENT_LABEL}=${host}:${pid}`,
      BUSYBOX_IMAGE,
      'sleep',
      '600',
    ],
    { stdio: 'ignore' },
  );
}

it('removes the containers of runner processes of this host that no longer exist, and no other', async () => {
  await ensureTestImages();
  cli = await resolveContainerCli(process.env);
  const gone = spawn('true', [], { stdio: 'ignore' });
  await new Promise((r) => gone.once('exit', r));
  // A host name of this test's own: agents of other test files on the same podman remove
  // orphans of the real hostname, and would race this test for its "dead" container.
  const me = `orphans-host-${process.pid}`;
  startContainer(`${queue}-dead`, me, gone.pid!);
  startContainer(`${queue}-live`, me, live.pid!);
  startContainer(`${queue}-elsewhere`, 'another-host', gone.pid!);

  const removed = await removeOrphanedContainers(cli, me);
  expect(removed).toContain(`${queue}-dead`);
  expect(removed).not.toContain(`${queue}-live`);
  const left = (await listContainers(cli, { 'trainyard.queue': queue })).map((c) => c.name).sort();
  expect(left).toEqual([`${queue}-elsewhere`, `${queue}-live`]);
}, 120_000);

/** An env folder as a runner with `pid` leaves it, last touched `ageMs` ago. */
async function envDir(root: string, pid: number, ageMs: number): Promise<string> {
  const dir = join(root, `trainyard-env-${pid}-abc123`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'env'), 'API_TOKEN=s3cr3t\n', { mode: 0o600 });
  const t = (Date.now() - ageMs) / 1000;
  await utimes(dir, t, t);
  return dir;
}

it("removes the env files of runner processes that no longer exist, and not a live one's or a fresh one's", async () => {
  const root = await mkdtemp(join(tmpdir(), 'orphan-env-test-'));
  try {
    const gone = spawn('true', [], { stdio: 'ignore' });
    await new Promise((r) => gone.once('exit', r));
    const dead = await envDir(root, gone.pid!, 3_600_000);
    const alive = await envDir(root, live.pid!, 3_600_000);
    const own = await envDir(root, process.pid, 3_600_000);
    const other = join(root, 'unrelated');
    await mkdir(other);
    expect(await removeOrphanedEnvDirs(root)).toEqual([dead]);
    expect([existsSync(dead), existsSync(alive), existsSync(own), existsSync(other)]).toEqual([
      false,
      true,
      true,
      true,
    ]);
    // Written moments ago: possibly by a process in another pid namespace, about to hand it over.
    const fresh = await envDir(root, gone.pid!, 0);
    expect(await removeOrphanedEnvDirs(root)).toEqual([]);
    expect(existsSync(fresh)).toBe(true);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

it('keeps env files in memory (/dev/shm) where the host has it, named after the runner, and an agent start clears orphans there', async () => {
  const root = await envFileRoot();
  expect(root).toBe(existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const mine = await makeEnvDir();
  try {
    expect(mine.startsWith(join(root, `trainyard-env-${process.pid}-`))).toBe(true);
  } finally {
    await rm(mine, { recursive: true, force: true });
  }
  const gone = spawn('true', [], { stdio: 'ignore' });
  await new Promise((r) => gone.once('exit', r));
  const dead = await envDir(root, gone.pid!, 3_600_000);
  try {
    cli ??= await resolveContainerCli(process.env);
    await removeOrphanedContainers(cli, `orphans-host-${process.pid}`);
    expect(existsSync(dead)).toBe(false);
  } finally {
    await rm(dead, { recursive: true, force: true });
  }
}, 60_000);
