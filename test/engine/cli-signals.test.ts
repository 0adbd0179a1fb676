// `trainyard run` stopped by its user, on its embedded Temporal server: SIGINT or SIGTERM
// cancel the run, wait for the clean-up, print the report and exit 130; a second signal
// leaves at once; a terminal's Ctrl-C (which reaches the whole process group), a closed
// stdout and even SIGKILL leave no container and no Temporal server behind.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { envFileRoot } from '../../activities/container/envfile.js';
import { removeContainers } from '../../activities/container/run.js';
import { startDevServer } from '../../app/devserver.js';
import { ensureTestImages } from '../fixtures/images/images.js';
import { BUSYBOX_IMAGE, GitRepo } from './harness.js';
import { containersLabelled, processesWithEnv, startTrainyard, waitUntil, type TrainyardProcess } from './processes.js';

let envRoot: string;
const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'cli-signals-'));
const salt = randomBytes(3).toString('hex');
const pipelines: string[] = [];
const commands: TrainyardProcess[] = [];

beforeAll(async () => {
  envRoot = await envFileRoot();
  await ensureTestImages();
});
afterAll(async () => {
  // Only what a failed test left: every passing test asserts there is nothing.
  for (const c of commands) c.child.kill('SIGKILL');
  const cli = await resolveContainerCli(process.env);
  for (const name of pipelines) await removeContainers(cli, { 'trainyard.pipeline': name });
  rmSync(root, { recursive: true, force: true });
});

/** A committed pipeline whose one step runs until it is stopped (or `run` when given). */
function project(run = 'echo started; sleep 600'): { repo: GitRepo; name: string } {
  const name = `sig-${salt}-${pipelines.length}`;
  pipelines.push(name);
  const repo = new GitRepo(root).write({
    [`.trainyard/${name}.yaml`]: `name: ${name}\nsteps:\n  work:\n    image: ${BUSYBOX_IMAGE}\n    run: ${JSON.stringify(run)}\n`,
  });
  repo.commit();
  return { repo, name };
}

/** `trainyard run` on an embedded Temporal server, with a TRAINYARD_HOME of its own (the marker its processes carry). */
function run(
  repo: GitRepo,
  opts: { pty?: boolean; stdout?: 'closed'; env?: Record<string, string> } = {},
): { p: TrainyardProcess; home: string } {
  const home = mkdtempSync(join(root, 'home-'));
  const p = startTrainyard(
    ['run', '-C', repo.path],
    { TEMPORAL_ADDRESS: '', TRAINYARD_HOME: home, TRAINYARD_STORE: join(home, 'store'), ...opts.env },
    opts,
  );
  commands.push(p);
  return { p, home };
}

const stepRunning = (name: string) =>
  waitUntil(
    `the container of ${name}`,
    async () => (await containersLabelled('trainyard.pipeline', name)).length > 0,
    180_000,
  );

/** What a user checks after the command ended: no container of the run, no Temporal server, nothing else it started. */
async function nothingLeft(name: string, home: string): Promise<void> {
  expect(await containersLabelled('trainyard.pipeline', name)).toEqual([]);
  expect(processesWithEnv('TRAINYARD_HOME', home).filter((p) => /temporal|guard\.mjs/.test(p.cmd))).toEqual([]);
  await waitUntil(
    'every process of the command to be gone',
    () => processesWithEnv('TRAINYARD_HOME', home).length === 0,
    15_000,
  );
}

/** The report the command printed and wrote: its file, and that it says the run was cancelled. */
function cancelledReport(output: string, name: string): void {
  const file = /cancelled: report (\S+\.md)/.exec(output)?.[1];
  expect(file, output.slice(-3000)).toBeDefined();
  expect(readFileSync(file!, 'utf8')).toContain(`${name} cancelled`);
  expect(output).toContain(`${name} cancelled`);
}

describe('trainyard run told to stop', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s mid-step cancels the run, waits for the clean-up, prints the report and exits 130',
    async (signal) => {
      const { repo, name } = project();
      const { p, home } = run(repo);
      await stepRunning(name);
      p.child.kill(signal);
      await p.waitFor(new RegExp(`${signal}: cancelling`));
      const { code } = await p.exited;
      expect(code, p.output().slice(-3000)).toBe(130);
      cancelledReport(p.output(), name);
      await nothingLeft(name, home);
    },
    300_000,
  );

  it('Ctrl-C in a terminal, which signals the whole process group, cancels the run the same way', async () => {
    const { repo, name } = project();
    const { p, home } = run(repo, { pty: true });
    await stepRunning(name);
    p.ctrlC();
    const { code } = await p.exited;
    expect(code, p.output().slice(-3000)).toBe(130);
    expect(p.output()).toContain('SIGINT: cancelling');
    cancelledReport(p.output(), name);
    expect(p.output()).not.toMatch(/Not running|Failed to get Workflow execution history/);
    await nothingLeft(name, home);
  }, 300_000);

  it('a second signal leaves at once, still removing the container and stopping the embedded server', async () => {
    const { repo, name } = project();
    const { p, home } = run(repo);
    await stepRunning(name);
    // The step's env file (its values, secrets among them) lives while its container runs.
    const envDirs = () => readdirSync(envRoot).filter((n) => n.startsWith(`trainyard-env-${p.child.pid}-`));
    expect(envDirs()).toHaveLength(1);
    p.child.kill('SIGINT');
    await p.waitFor(/SIGINT: cancelling/);
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code, p.output().slice(-3000)).toBe(130);
    expect(p.output()).toContain('SIGTERM again: leaving now');
    await nothingLeft(name, home);
    expect(envDirs()).toEqual([]);
  }, 300_000);

  it('SIGKILL, which cannot be handled, still leaves no Temporal server and no container behind', async () => {
    const { repo, name } = project();
    const { p, home } = run(repo);
    await stepRunning(name);
    expect(processesWithEnv('TRAINYARD_HOME', home).some((x) => /temporal server start-dev/.test(x.cmd))).toBe(true);
    p.child.kill('SIGKILL');
    await p.exited;
    await waitUntil(
      'the embedded Temporal server to stop',
      () => !processesWithEnv('TRAINYARD_HOME', home).some((x) => /temporal|guard\.mjs/.test(x.cmd)),
      30_000,
    );
    await waitUntil(
      'the step container to be removed',
      async () => (await containersLabelled('trainyard.pipeline', name)).length === 0,
      60_000,
    );
  }, 300_000);

  it('with TEMPORAL_ADDRESS too, SIGKILL leaves no container behind', async () => {
    // A server of the test's own: the run left open in it must not reach other tests' runners.
    const server = await startDevServer();
    try {
      const { repo, name } = project();
      const { p, home } = run(repo, { env: { TEMPORAL_ADDRESS: server.address } });
      await stepRunning(name);
      p.child.kill('SIGKILL');
      await p.exited;
      await waitUntil(
        'the step container to be removed',
        async () => (await containersLabelled('trainyard.pipeline', name)).length === 0,
        60_000,
      );
      await waitUntil(
        'every process of the command to be gone',
        () => processesWithEnv('TRAINYARD_HOME', home).length === 0,
        30_000,
      );
    } finally {
      await server.stop();
    }
  }, 300_000);

  it('a closed stdout (trainyard run | head -1) does not stop the run: it succeeds, writes its report, leaves nothing', async () => {
    const { repo, name } = project(`echo ${salt}`);
    const { p, home } = run(repo, { stdout: 'closed' });
    const { code } = await p.exited;
    expect(code, p.output().slice(-3000)).toBe(0);
    const file = /succeeded: report (\S+\.md)/.exec(p.output())?.[1];
    expect(file && existsSync(file)).toBe(true);
    await nothingLeft(name, home);
  }, 300_000);
});
