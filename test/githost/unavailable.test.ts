// A replica whose Temporal is unreachable starts anyway and answers a verified delivery
// 503 (with Retry-After): the host shows a failed delivery that can be redelivered, rather
// than a 200 for an event nobody recorded.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../app/devserver.js';
import { pushPayload, sign } from './payloads.js';
import { startServe, type ServeProcess } from './serve-process.js';

const SECRET = 'unavailable-secret';
const repo = { id: 5005, owner: 'octo-org', name: 'offline' };
const scratch = mkdtempSync(join(tmpdir(), 'trainyard-unavailable-'));
let serve: ServeProcess;

beforeAll(async () => {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  // Nothing listens on this port: Temporal is down.
  serve = await startServe({
    GITHUB_APP_ID: '79',
    GITHUB_PRIVATE_KEY: privateKey,
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: 'http://127.0.0.1:9',
    TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    TRAINYARD_WORKERS: 'none',
    TRAINYARD_STORE: join(scratch, 'store'),
    TRAINYARD_WORK_ROOT: join(scratch, 'work'),
  });
});

afterAll(async () => {
  await serve?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

it('answers 503 with Retry-After when the delivery cannot be recorded in Temporal', async () => {
  const body = JSON.stringify(
    pushPayload(repo, 1, 'http://gh.test', {
      before: 'a'.repeat(40),
      after: 'b'.repeat(40),
      changed: { modified: ['x'] },
    }),
  );
  const res = await fetch(`${serve.url}/api/github/webhooks`, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': sign(SECRET, body),
    },
  });
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('30');
  expect(await res.json()).toMatchObject({ error: expect.stringContaining('redeliver') });
  // Liveness is not readiness for deliveries: the replica itself stays up.
  expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
}, 60_000);
