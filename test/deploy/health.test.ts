// /healthz of `trainyard worker` and `trainyard agent` (TRAINYARD_HEALTH_PORT): what the
// probes in deploy/k8s and deploy/compose.yaml ask.
import { describe, expect, it } from 'vitest';
import { EnvError } from '../../app/config.js';
import { startHealthServer } from '../../app/health.js';

describe('the health endpoint of workers and agents', () => {
  it('is off without TRAINYARD_HEALTH_PORT, answers 200 while running and 503 once stopping', async () => {
    expect(await startHealthServer({}, { role: 'worker', queues: [] })).toBeUndefined();
    const h = (await startHealthServer({ TRAINYARD_HEALTH_PORT: String(40000 + Math.floor(Math.random() * 20000)), TRAINYARD_HEALTH_BIND: '127.0.0.1' }, { role: 'agent', queues: ['trainyard-local'] }))!;
    try {
      const ok = await fetch(`${h.url}/healthz`);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ ok: true, role: 'agent', queues: ['trainyard-local'] });
      expect((await fetch(`${h.url}/other`)).status).toBe(404);
      h.stopping();
      const draining = await fetch(`${h.url}/healthz`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toMatchObject({ ok: false, stopping: true });
    } finally {
      await h.close();
    }
  });

  it('names the variable when it is not a port', async () => {
    for (const bad of ['http', '0', '70000', '30 00']) {
      const err = await startHealthServer({ TRAINYARD_HEALTH_PORT: bad }, { role: 'worker', queues: [] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnvError);
      expect((err as Error).message).toMatch(/^TRAINYARD_HEALTH_PORT: must be a port number from 1 to 65535/);
    }
  });
});
