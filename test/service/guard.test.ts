// The service-topology harness (cluster.ts) must not leave its processes behind when the test
// runner dies without stopping them (SIGKILLed, Ctrl-C'ed, out of memory): a stand-in runner
// (harness-child.ts) starts a Temporal server and a runner agent, is SIGKILLed, and every
// process it started — and the watchdog that ends them — must be gone within a deadline.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../githost/serve-process.js';
import { processesWith } from './cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('ends the Temporal server and the agent it started when the test runner is SIGKILLed', async () => {
  const tag = randomUUID().slice(0, 8);
  const marker = `TRAINYARD_HARNESS_TAG=${tag}`;
  const scratch = mkdtempSync(join(tmpdir(), 'trainyard-harness-guard-'));
  const runner = spawn(process.execPath, ['--import', 'tsx', join('test', 'service', 'harness-child.ts'), scratch], {
    cwd: REPO_ROOT,
    env: { ...process.env, TRAINYARD_HARNESS_TAG: tag },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  runner.stdout.on('data', (d: Buffer) => (out += d.toString()));
  runner.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => runner.once('exit', () => r()));
  try {
    const readyBy = Date.now() + 240_000;
    let ready: RegExpExecArray | null = null;
    while (!(ready = /^ready (\d+) (\d+)$/m.exec(out))) {
      if (runner.exitCode !== null) throw new Error(`the harness exited before it was ready:\n${out.slice(-4000)}`);
      if (Date.now() > readyBy) throw new Error(`the harness was not ready within 240 s:\n${out.slice(-4000)}`);
      await sleep(200);
    }
    const [temporalPid, agentPid] = [Number(ready[1]), Number(ready[2])];
    const started = processesWith(marker).filter((p) => p.pid !== runner.pid);
    expect(started.map((p) => p.pid)).toEqual(expect.arrayContaining([temporalPid, agentPid]));
    expect(
      started.some((p) => p.cmdline.includes('guard.mjs')),
      'the watchdog runs',
    ).toBe(true);

    runner.kill('SIGKILL');
    await exited;
    // The agent's shutdown grace is 20 s; the watchdog SIGKILLs what is left 5 s after it.
    const goneBy = Date.now() + 60_000;
    let left = processesWith(marker);
    while (left.length && Date.now() < goneBy) {
      await sleep(200);
      left = processesWith(marker);
    }
    expect(
      left.map((p) => `${p.pid} ${p.cmdline}`),
      'processes left after the test runner was SIGKILLed',
    ).toEqual([]);
  } finally {
    runner.kill('SIGKILL');
    for (const p of processesWith(marker)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(scratch, { recursive: true, force: true });
  }
}, 360_000);
