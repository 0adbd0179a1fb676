// GET /healthz for the processes that have no HTTP server of their own (`trainyard worker`,
// `trainyard agent`), so Kubernetes probes and Compose health checks can watch them the way
// they watch `serve`. Off unless TRAINYARD_HEALTH_PORT is set.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setting } from './settings/read.js';
import { METRICS_PATH, serveMetrics } from './metrics.js';

export interface HealthServer {
  /** Where it listens, e.g. http://0.0.0.0:3001. */
  url: string;
  /** From now on /healthz answers 503 (the process is draining; take it out of rotation). */
  stopping(): void;
  close(): Promise<void>;
}

/**
 * Listens on TRAINYARD_HEALTH_PORT (1-65535; TRAINYARD_HEALTH_BIND, default 0.0.0.0) when it
 * is set: GET /healthz answers 200 `{"ok":true,"role":…}` while the workers run and 503 once
 * stopping() was called. Resolves to undefined when the variable is unset. Throws SettingError
 * naming the variable when it is not a port, and the listen error when the port is taken.
 */
export async function startHealthServer(
  env: Record<string, string | undefined>,
  info: { role: string; queues: string[] },
): Promise<HealthServer | undefined> {
  const port = setting(env, 'TRAINYARD_HEALTH_PORT');
  if (port === undefined) return undefined;
  const bind = setting(env, 'TRAINYARD_HEALTH_BIND');
  let draining = false;
  const since = new Date().toISOString();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === METRICS_PATH && req.method === 'GET') {
      serveMetrics(res).catch(() => res.destroy());
      return;
    }
    if (path !== '/healthz' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const body = JSON.stringify({
      ok: !draining,
      role: info.role,
      queues: info.queues,
      since,
      ...(draining ? { stopping: true } : {}),
    });
    res
      .writeHead(draining ? 503 : 200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      })
      .end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, bind, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    stopping: () => {
      draining = true;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
