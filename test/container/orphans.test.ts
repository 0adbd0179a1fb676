// A runner agent killed mid-step leaves its container running. The next agent started on
// that host removes the containers whose runner process is gone — and only those: a live
// agent's container on the same podman, and another host's, are left alone.
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers, removeContainers } from '../../activities/container/run.js';
import type { ContainerCliConfig } from '../../activities/container/types.js';
import { AGENT_HOST_LABEL, AGENT_LABEL, removeOrphanedContainers } from '../../activities/step.js';
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
