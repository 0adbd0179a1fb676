// `trainyard run` against TEMPORAL_ADDRESS when Temporal stops answering: a real dev server
// with its state in a SQLite file is stopped and restarted on the same port. The command
// waits the outage out, saying so, and the run goes on with each step executed once; past
// TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS it gives up, saying what it left open and how to
// cancel it. The heartbeat timeout is 2 s, so every outage here outlasts it.
import { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { removeContainers } from '../../activities/container/run.js';
import { startDevServer, type DevServer } from '../../app/devserver.js';
import { ensureTestImages } from '../fixtures/images/images.js';
import { BUSYBOX_IMAGE, GitRepo } from './harness.js';
import { containersLabelled, startTrainyard, waitUntil, type TrainyardProcess } from './processes.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'cli-outage-'));
const gates = join(root, 'gates');
const salt = randomBytes(3).toString('hex');
const pipelines: string[] = [];
const commands: TrainyardProcess[] = [];
const servers: DevServer[] = [];

beforeAll(async () => {
  mkdirSync(gates);
  await ensureTestImages();
});
afterAll(async () => {
  // Only what a failed test left: every passing test asserts there is nothing.
  for (const c of commands) {
    c.child.kill('SIGCONT');
    c.child.kill('SIGKILL');
  }
  for (const s of servers) await s.stop();
  const cli = await resolveContainerCli(process.env);
  for (const name of pipelines) await removeContainers(cli, { 'trainyard.pipeline': name });
  rmSync(root, { recursive: true, force: true });
});

/** A Temporal dev server keeping its state in `db`: restarted with the same file and port, it carries on. */
async function temporal(db: string, port?: number): Promise<DevServer> {
  const s = await startDevServer({ dbFile: db, ...(port ? { port } : {}) });
  servers.push(s);
  return s;
}

/** A pipeline whose step notes each container start in its gate's `attempts` and waits for its gate's `go`. */
function gatedProject(): { repo: GitRepo; name: string; gate: string } {
  const name = `outage-${salt}-${pipelines.length}`;
  pipelines.push(name);
  const gate = join(gates, name);
  mkdirSync(gate);
  const repo = new GitRepo(root).write({
    [`.trainyard/${name}.yaml`]: `name: ${name}
steps:
  work:
    image: ${BUSYBOX_IMAGE}
    run: echo started >> /gates/${name}/attempts; while [ ! -e /gates/${name}/go ]; do sleep 0.2; done; echo "done ${name}" > /outputs/model
    outputs: [model]
`,
  });
  repo.commit();
  return { repo, name, gate };
}

function run(repo: GitRepo, address: string, env: Record<string, string> = {}): TrainyardProcess {
  const home = mkdtempSync(join(root, 'home-'));
  const p = startTrainyard(['run', '-C', repo.path], {
    TEMPORAL_ADDRESS: address,
    TRAINYARD_HOME: home,
    TRAINYARD_STORE: join(home, 'store'),
    TRAINYARD_CONTAINER_RUN_FLAGS: `-v ${gates}:/gates`,
    TRAINYARD_HEARTBEAT_TIMEOUT_SECONDS: '2',
    ...env,
  });
  commands.push(p);
  return p;
}

const stepRunning = (name: string) =>
  waitUntil(
    `the container of ${name}`,
    async () => (await containersLabelled('trainyard.pipeline', name)).length > 0,
    180_000,
  );
const containerStarts = (gate: string) => readFileSync(join(gate, 'attempts'), 'utf8').trim().split('\n').length;
const portOf = (address: string) => Number(address.split(':')[1]);

describe('trainyard run when Temporal stops answering', () => {
  it('waits the outage out, says so, and the run succeeds with its step executed once', async () => {
    const db = join(root, 'wait.db');
    const first = await temporal(db);
    const { repo, name, gate } = gatedProject();
    const p = run(repo, first.address);
    await stepRunning(name);
    await first.stop();
    await p.waitFor(new RegExp(`Temporal unreachable at ${first.address} .*retrying for up to 600 s`));
    await temporal(db, portOf(first.address));
    await p.waitFor(new RegExp(`Temporal at ${first.address} answers again after \\d+ s; the run goes on`));
    writeFileSync(join(gate, 'go'), '');
    const { code } = await p.exited;
    expect(code, p.output().slice(-3000)).toBe(0);
    expect(p.output()).toMatch(/succeeded: report \S+\.md/);
    expect(containerStarts(gate)).toBe(1);
    expect(await containersLabelled('trainyard.pipeline', name)).toEqual([]);
  }, 300_000);

  it('gives up after TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS, saying which run it left open and the command that cancels it', async () => {
    const db = join(root, 'give-up.db');
    const first = await temporal(db);
    const { repo, name } = gatedProject();
    const p = run(repo, first.address, { TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS: '3' });
    await stepRunning(name);
    await first.stop();
    const { code } = await p.exited;
    expect(code, p.output().slice(-3000)).toBe(2);
    expect(p.output()).toMatch(new RegExp(`Temporal at ${first.address} has been unreachable for \\d+ s: giving up`));
    const workflowId = /Left running: run \S+ \(workflow (\S+)\) is still open in Temporal/.exec(p.output())?.[1];
    expect(workflowId, p.output().slice(-3000)).toBeDefined();
    // The command's own containers are gone with it.
    expect(await containersLabelled('trainyard.pipeline', name)).toEqual([]);

    // When Temporal is back, the printed command is what stops the run.
    const back = await temporal(db, portOf(first.address));
    const cancel = /To cancel it when Temporal answers again: (temporal workflow cancel .*)$/m.exec(p.output())?.[1];
    expect(cancel).toBe(
      `temporal workflow cancel --address ${first.address} --namespace default --workflow-id '${workflowId}'`,
    );
    execFileSync('sh', ['-c', cancel!], { stdio: 'pipe' });
    const connection = await Connection.connect({ address: back.address });
    try {
      const history = await new Client({ connection }).workflow.getHandle(workflowId!).fetchHistory();
      expect(history.events?.some((e) => e.workflowExecutionCancelRequestedEventAttributes)).toBe(true);
    } finally {
      await connection.close();
    }
  }, 300_000);

  it('a runner that Temporal stopped hearing from for longer than the heartbeat timeout takes its running step back over instead of running it twice', async () => {
    // SIGSTOP freezes the command, not its container: to Temporal it is a runner gone silent,
    // as during an outage; the retry it schedules comes back to the same process.
    const server = await temporal(join(root, 'stall.db'));
    const { repo, name, gate } = gatedProject();
    const p = run(repo, server.address);
    await stepRunning(name);
    const connection = await Connection.connect({ address: server.address });
    try {
      const client = new Client({ connection });
      p.child.kill('SIGSTOP');
      await waitUntil(
        'Temporal to retry the silent attempt',
        async () => {
          for await (const wf of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
            const d = await client.workflow.getHandle(wf.workflowId, wf.runId).describe();
            if (d.raw.pendingActivities?.some((a) => a.activityType?.name === 'runStep' && (a.attempt ?? 0) >= 2))
              return true;
          }
          return false;
        },
        120_000,
      );
    } finally {
      p.child.kill('SIGCONT');
      await connection.close();
    }
    writeFileSync(join(gate, 'go'), '');
    const { code } = await p.exited;
    expect(code, p.output().slice(-3000)).toBe(0);
    expect(containerStarts(gate)).toBe(1);
    expect(await containersLabelled('trainyard.pipeline', name)).toEqual([]);
  }, 300_000);
});
