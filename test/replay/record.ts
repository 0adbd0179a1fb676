// Records the workflow histories that test/replay/replay.test.ts replays against the current
// workflow code: real runs on a Temporal dev server with real podman containers (and EC2 on
// moto for the lost host), each history written as Temporal's JSON history format (the one
// `temporal workflow show --output json` writes) under test/replay/histories/.
//
//   npx vitest run -c test/replay/record.config.ts
//
// Refresh them after an intentional, versioned workflow change (README, "Upgrading safely"):
// the old files stay valid as long as the `patched()` branches they need are in the code, so
// add new files rather than replace old ones while runs of the old code may still be open.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { cancelSignal, stepExecWorkflowId } from '../../model/contracts.js';
import type { RunStatus } from '../../model/types.js';
import { temporalBinary } from '../../app/devserver.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, startEngine, type Engine } from '../engine/harness.js';
import { setTags } from '../../activities/ec2/instances.js';
import { TAG } from '../../activities/ec2/tags.js';
import { startEc2Engine, waitUntil, type Ec2Engine } from '../ec2/harness.js';

const OUT = join(import.meta.dirname, 'histories');

let engine: Engine | undefined;
let ec2: Ec2Engine | undefined;
afterAll(async () => {
  await engine?.stop();
  await ec2?.stop();
});

/**
 * One execution's history as `temporal workflow show --output json` writes it (the SDK's own
 * historyToJSON trips over two protobufjs copies in node_modules).
 */
function historyJson(workflowId: string, runId?: string): string {
  const args = [
    'workflow',
    'show',
    '--address',
    temporalAddress(),
    '--output',
    'json',
    '-w',
    workflowId,
    ...(runId ? ['-r', runId] : []),
  ];
  return execFileSync(temporalBinary(), args, { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Writes the run's executions (every one of a continue-as-new chain) and those of its step executions. */
async function save(
  client: Client,
  scenario: string,
  workflowId: string,
  status: RunStatus,
  firstRunId?: string,
): Promise<void> {
  let n = 0;
  for (let runId: string | undefined = firstRunId; ;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const suffix = firstRunId && (status.continuedAsNew ?? 0) > 0 ? `.${++n}` : '';
    writeFileSync(join(OUT, `${scenario}.pipelineRun${suffix}.json`), historyJson(workflowId, runId));
    runId = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId || undefined;
    if (!runId) break;
  }
  for (const st of status.steps) {
    // Only the executions this run started (a cached step has none of its own).
    if (!st.cache?.key || st.state === 'cached' || st.outcome?.producedBy.runId !== status.runId) continue;
    // A --no-cache execution runs under a key of its own, not the one the status shows.
    if (
      !(await client.workflow
        .getHandle(stepExecWorkflowId(st.cache.key))
        .describe()
        .then(
          () => true,
          () => false,
        ))
    )
      continue;
    writeFileSync(
      join(OUT, `${scenario}.stepExecution.${st.name}.json`),
      historyJson(stepExecWorkflowId(st.cache.key)),
    );
  }
}

const two = (salt: string) => `
name: two
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: "echo '{\\"rows\\": 3}'; echo rows-${salt} > /outputs/data"
    outputs: [data]
  train:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/data > /outputs/model
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]
`;

it('records local, cached, failed, cancelled and continue-as-new runs', async () => {
  engine = await startEngine();
  const e = engine;
  const repo = e.repo().write({ '.trainyard/two.yaml': two(e.salt) });
  repo.commit();

  const local = await e.start(repo, '.trainyard/two.yaml');
  const s1 = await e.result(local.workflowId);
  expect(s1.state).toBe('succeeded');
  await save(e.client, 'local', local.workflowId, s1);

  const cached = await e.start(repo, '.trainyard/two.yaml');
  const s2 = await e.result(cached.workflowId);
  expect(s2.steps.map((x) => x.state)).toEqual(['cached', 'cached']);
  await save(e.client, 'cached', cached.workflowId, s2);

  const broken = e.repo().write({
    '.trainyard/broken.yaml': `
name: broken
steps:
  bad:
    image: ${BUSYBOX_IMAGE}
    run: echo "failing ${e.salt}"; exit 3
    retries: 1
    outputs: [x]
  after_bad:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/x
    inputs: { x: steps.bad.outputs.x }
`,
  });
  broken.commit();
  const failed = await e.start(broken, '.trainyard/broken.yaml');
  const s3 = await e.result(failed.workflowId);
  expect(s3.state).toBe('failed');
  expect(s3.steps[0]!.outcome!.attempts).toHaveLength(2);
  await save(e.client, 'failed-retries', failed.workflowId, s3);

  const long = e.repo().write({
    '.trainyard/long.yaml': `
name: long
steps:
  forever:
    image: ${BUSYBOX_IMAGE}
    run: sleep 300
    env: { SALT: "${e.salt}" }
  later:
    image: ${BUSYBOX_IMAGE}
    run: "true"
    needs: [forever]
`,
  });
  long.commit();
  const cancelled = await e.start(long, '.trainyard/long.yaml');
  const deadline = Date.now() + 60_000;
  while ((await e.containers()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  await e.client.workflow.getHandle(cancelled.workflowId).signal(cancelSignal);
  const s4 = await e.result(cancelled.workflowId);
  expect(s4.state).toBe('cancelled');
  // The cancelled step's execution is not "produced by" anyone useful: save it by hand.
  await save(e.client, 'cancelled', cancelled.workflowId, s4);
  writeFileSync(
    join(OUT, 'cancelled.stepExecution.forever.json'),
    historyJson(stepExecWorkflowId(s4.steps[0]!.cache!.key)),
  );

  const chainLines = ['name: chain', 'steps:'];
  for (let i = 0; i < 6; i++)
    chainLines.push(
      `  s${i}: { image: ${BUSYBOX_IMAGE}, run: echo s${i} ${e.salt} >/outputs/o, outputs: [o]${i > 0 ? `, needs: [s${i - 1}]` : ''} }`,
    );
  const chain = e.repo().write({ '.trainyard/chain.yaml': `${chainLines.join('\n')}\n` });
  chain.commit();
  // A low event limit makes the run continue as new after every step or two.
  const can = await e.start(chain, '.trainyard/chain.yaml', { options: { historyEventLimit: 20, parallelism: 1 } });
  const s5 = await e.result(can.workflowId);
  expect(s5.state).toBe('succeeded');
  expect(s5.continuedAsNew).toBeGreaterThan(1);
  await save(e.client, 'continue-as-new', can.workflowId, s5, can.firstExecutionRunId);
});

it('records a chain that executes, then the same chain cached and looked up ahead', async () => {
  engine ??= await startEngine();
  const e = engine;
  const lines = ['name: ahead', 'steps:'];
  for (let i = 0; i < 4; i++)
    lines.push(
      `  a${i}: { image: ${BUSYBOX_IMAGE}, run: echo a${i} ${e.salt} >/outputs/o, outputs: [o]${i > 0 ? `, inputs: { i: steps.a${i - 1}.outputs.o }` : ''} }`,
    );
  const repo = e.repo().write({ '.trainyard/ahead.yaml': `${lines.join('\n')}\n` });
  repo.commit();
  const first = await e.start(repo, '.trainyard/ahead.yaml');
  const s1 = await e.result(first.workflowId);
  expect(s1.steps.map((x) => x.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  await save(e.client, 'lookahead-executed', first.workflowId, s1);
  const again = await e.start(repo, '.trainyard/ahead.yaml');
  const s2 = await e.result(again.workflowId);
  expect(s2.steps.map((x) => x.state)).toEqual(['cached', 'cached', 'cached', 'cached']);
  await save(e.client, 'lookahead-cached', again.workflowId, s2);
});

it('records a chain started by local activities, then the same chain answered by slim cache hits', async () => {
  engine ??= await startEngine();
  const e = engine;
  const lines = ['name: local-start', 'steps:'];
  for (let i = 0; i < 3; i++)
    lines.push(
      `  b${i}: { image: ${BUSYBOX_IMAGE}, run: echo b${i} ${e.salt} >/outputs/o, outputs: [o]${i > 0 ? `, inputs: { i: steps.b${i - 1}.outputs.o }` : ''} }`,
    );
  const repo = e.repo().write({ '.trainyard/local-start.yaml': `${lines.join('\n')}\n` });
  repo.commit();
  const first = await e.start(repo, '.trainyard/local-start.yaml');
  const s1 = await e.result(first.workflowId);
  expect(s1.steps.map((x) => x.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  await save(e.client, 'local-start-executed', first.workflowId, s1);
  const again = await e.start(repo, '.trainyard/local-start.yaml');
  const s2 = await e.result(again.workflowId);
  expect(s2.steps.map((x) => [x.state, x.image])).toEqual(s1.steps.map(() => ['cached', BUSYBOX_IMAGE]));
  await save(e.client, 'slim-hits-cached', again.workflowId, s2);
});

it('records an EC2 run whose spot host is lost mid-step', async () => {
  ec2 = await startEc2Engine();
  const x = ec2;
  let reclaimed: string | undefined;
  x.sim.onBoot = (b) => {
    if (reclaimed) return;
    reclaimed = b.instanceId;
    void (async () => {
      await waitUntil(
        async () => (await x.containersOn(b.queue)).length > 0,
        `a step container on ${b.queue}`,
        90_000,
        x.logs,
      );
      await setTags(x.ec2, b.instanceId, { [TAG.interruption]: 'terminate@2026-11-23T12:02:00Z' });
      await x.sim.kill(b.instanceId);
    })();
  };
  const workflowId = await x.start(`name: spot
machines:
  box: { instance: [m5.large], gpus: 0, spot: true, disk_gb: 20 }
steps:
  train:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: sleep 6 && echo trained > /outputs/model
    outputs: [model]
    timeout: 5m
    retries: 1
`);
  const s = await x.result(workflowId, 240_000);
  expect(s.steps[0]!.outcome!.attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
  await save(x.client, 'ec2-host-lost', workflowId, s);
});
