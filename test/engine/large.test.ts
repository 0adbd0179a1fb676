// A pipeline of 2,000 steps stays inside Temporal's history limits: the run continues as
// new whenever its history passes the configured length.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, startEngine, type Engine } from './harness.js';

let engine: Engine;
beforeAll(async () => { engine = await startEngine(); });
afterAll(async () => { await engine?.stop(); });

it('2,000 steps in 20 layers complete, continuing as new on the way', async () => {
  const layers = 20;
  const width = 100;
  const lines = ['name: large', 'steps:'];
  for (let l = 0; l < layers; l++) {
    for (let i = 0; i < width; i++) {
      lines.push(`  s${l}_${i}:`, `    image: ${BUSYBOX_IMAGE}`, `    run: "true"`, `    env: { LAYER: "${l}", SALT: "${engine.salt}" }`);
      if (l > 0) lines.push(`    needs: [s${l - 1}_${i}]`);
    }
  }
  const repo = engine.repo().write({ '.trainyard/large.yaml': `${lines.join('\n')}\n` });
  repo.commit();
  const s = await engine.run(repo, '.trainyard/large.yaml', { options: { historyEventLimit: 400, parallelism: 64 } });
  expect(s.state).toBe('succeeded');
  expect(s.steps).toHaveLength(layers * width);
  expect(s.steps.filter((x) => x.state !== 'succeeded' && x.state !== 'cached').map((x) => `${x.name}:${x.state}:${x.message}`).slice(0, 5)).toEqual([]);
  expect(s.continuedAsNew).toBeGreaterThan(0);
  const handle = engine.client.workflow.getHandle(`test:${s.runId}`);
  const desc = await handle.describe();
  expect(desc.historyLength).toBeLessThan(2000);
}, 300_000);
