// `trainyard run` starts its embedded Temporal server while the rest of the command loads
// (app/local/embedded.ts). A command that ends before it uses the server — bad input, a
// missing container CLI — must stop it all the same: nothing it started outlives it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { startEarlyServer } from '../../app/local/embedded.js';
import { GitRepo } from '../engine/harness.js';
import { processesWithEnv, startTrainyard } from '../engine/processes.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'embedded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Processes (the watchdog, the server) that carry this test's marker in their environment. */
const marked = (mark: string) =>
  processesWithEnv('TRAINYARD_TEST_EARLY_SERVER', mark).filter((p) => /temporal|guard\.mjs/.test(p.cmd));

/** Runs `f` with a marker in this process's environment, which the servers it starts inherit. */
async function withMarker<T>(f: (mark: string) => Promise<T>): Promise<T> {
  const mark = randomBytes(6).toString('hex');
  process.env.TRAINYARD_TEST_EARLY_SERVER = mark;
  try {
    return await f(mark);
  } finally {
    delete process.env.TRAINYARD_TEST_EARLY_SERVER;
  }
}

describe('the embedded server started ahead of need', () => {
  it('is not started when TEMPORAL_ADDRESS names a server', () => {
    expect(startEarlyServer({ TEMPORAL_ADDRESS: '127.0.0.1:7233' })).toBeUndefined();
  });

  it('answers once taken, and is gone (port refused, no process) when discarded', async () => {
    await withMarker(async (mark) => {
      const early = startEarlyServer({ TEMPORAL_ADDRESS: '' })!;
      const dev = await early.take();
      const c = await Connection.connect({ address: dev.address, connectTimeout: 5000 });
      await c.workflowService.getSystemInfo({});
      await c.close();
      await early.discard();
      expect(marked(mark)).toEqual([]);
      await expect(Connection.connect({ address: dev.address, connectTimeout: 1000 })).rejects.toThrow();
    });
  }, 120_000);

  it('discarded while still starting, it leaves no watchdog and no server', async () => {
    await withMarker(async (mark) => {
      const early = startEarlyServer({ TEMPORAL_ADDRESS: '' })!;
      await early.discard();
      expect(marked(mark)).toEqual([]);
      await expect(early.take()).rejects.toThrow(/ended before it needed/);
    });
  }, 120_000);

  it('`trainyard run` refused for an invalid pipeline exits 2 and leaves no Temporal server', async () => {
    const repo = new GitRepo(root).write({ '.trainyard/bad.yaml': 'name: bad\nsteps:\n  a: { image: 3 }\n' });
    repo.commit();
    const home = mkdtempSync(join(root, 'home-'));
    const p = startTrainyard(['run', '-C', repo.path], {
      TEMPORAL_ADDRESS: '',
      TRAINYARD_HOME: home,
      TRAINYARD_STORE: join(home, 'store'),
    });
    const { code } = await p.exited;
    expect(code, p.output()).toBe(2);
    expect(p.output()).toMatch(/bad\.yaml/);
    expect(processesWithEnv('TRAINYARD_HOME', home).filter((x) => /temporal|guard\.mjs/.test(x.cmd))).toEqual([]);
  }, 120_000);
});
