// `trainyard serve` in-process as a replica (TRAINYARD_WORKERS=none) against a test engine's
// store and Temporal, and signed links to its run pages.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { RunLinks } from '../../activities/githost/links.js';
import { loadServeConfig } from '../../app/intake/config.js';
import { startServer, type RunningServer } from '../../app/serve.js';
import type { Engine } from '../engine/harness.js';
import { temporalAddress } from '../setup/services.js';

export interface PageServer {
  server: RunningServer;
  links: RunLinks;
  /** The run page's signed URL (another `sig` when given). */
  pageUrl(workflowId: string, sig?: string): string;
}

export async function startPageServer(engine: Engine, linkSecret = 'run-page-test-link-secret'): Promise<PageServer> {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  // The GitHub settings are only there because serve needs a git host; nothing calls it.
  const cfg = loadServeConfig({
    GITHUB_APP_ID: '1',
    GITHUB_PRIVATE_KEY: privateKey,
    GITHUB_WEBHOOK_SECRET: 'unused-webhook-secret',
    GITHUB_API_URL: 'http://127.0.0.1:9',
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_STORE: join(engine.root, 'store'),
    TRAINYARD_WORKERS: 'none',
    TRAINYARD_LINK_SECRET: linkSecret,
    TRAINYARD_PUBLIC_URL: 'none',
    TRAINYARD_PORT: '0',
    TRAINYARD_BIND: '127.0.0.1',
  });
  const server = await startServer(cfg, pino({ level: 'silent' }));
  const links = new RunLinks(null, linkSecret);
  return {
    server,
    links,
    pageUrl: (id, sig = links.sign(id)) => `${server.url}/runs/${encodeURIComponent(id)}?sig=${sig}`,
  };
}
