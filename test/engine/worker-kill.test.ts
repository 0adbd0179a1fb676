// A runner killed mid-step (kill -9): the step's heartbeat times out, a new runner picks
// the attempt up, removes what the dead one left, and the run completes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine } from './harness.js';

let engine: Engine;
const agents: ChildProcess[] = [];
beforeAll(async () => { engine = await startEngine({ host: false }); });
afterAll(async () => {
  for (const a of agents) a.kill('SIGKILL');
  await engine?.stop();
});

function startAgent(): ChildProcess {
  const child = spawn(process.execPath, ['bin/trainyard.js', 'agent', '--queue', engine.hostQueue], {
    env: { ...process.env, TEMPORAL_ADDRESS: engine.address, TRAINYARD_STORE: join(engine.root, 'store'), TRAINYARD_WORK_DIR: join(engine.root, 'agent-work'), TRAINYARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  agents.push(child);
  return child;
}

it('a killed runner is replaced and the step completes, its output stored once', async () => {
  const repo = engine.repo().write({ '.trainyard/kill.yaml': `
name: kill
steps:
  work:
    image: ${BUSYBOX_IMAGE}
    run: echo started; sleep 8; echo "result ${engine.salt}" > /outputs/model
    outputs: [model]
` });
  repo.commit();
  const first = startAgent();
  const { workflowId } = await engine.start(repo, '.trainyard/kill.yaml');
  const deadline = Date.now() + 60_000;
  while ((await engine.containers()).length === 0) {
    if (Date.now() > deadline) throw new Error('the step never started');
    await new Promise((r) => setTimeout(r, 200));
  }
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  startAgent();
  const s = await engine.result(workflowId);
  expect(s.state).toBe('succeeded');
  const attempts = stepOf(s, 'work').outcome!.attempts;
  expect(attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
  const digest = stepOf(s, 'work').outcome!.outputs.model!.digest.replace('sha256:', '');
  // Content-addressed: exactly one blob under that digest, no leftover temp files.
  expect(readdirSync(join(engine.root, 'store', 'blobs', 'sha256', digest.slice(0, 2)))).toEqual([digest]);
  expect(await engine.containers()).toEqual([]);
}, 120_000);
