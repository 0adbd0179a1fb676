// `trainyard serve`: the webhook server for GitHub (a Probot app) and GitLab, plus — unless
// TRAINYARD_WORKERS=none — the control worker and this host's runner agent, so one process
// is a whole installation. Configuration comes from the environment (see
// app/intake/config.ts and docs/githost.md) and is checked before anything listens.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { pino, type Logger } from 'pino';
import { createNodeMiddleware, Probot } from 'probot';
import { createStore } from '../activities/store/factory.js';
import { GitHubClients } from '../activities/githost/github-client.js';
import { createGitLab, type GitLabApi } from '../activities/githost/gitlab-client.js';
import { RunLinks, linkSecretFrom } from '../activities/githost/links.js';
import { GitHostRecords } from '../activities/githost/records.js';
import { dataConverter } from './codec.js';
import { defaultRunOptions } from './engine.js';
import { quietTemporalRuntime, startWorkers } from './worker.js';
import { githubApp } from './github/app.js';
import { signatureValid } from './github/verify.js';
import { gitlabWebhookHandler } from './gitlab/endpoint.js';
import { ConfigError, loadServeConfig, type ServeConfig } from './intake/config.js';
import type { Intake } from './intake/context.js';
import { readBody, sendJson, sendText } from './intake/http.js';
import { JobQueue } from './intake/jobs.js';
import { runPageHandler } from './intake/runpage.js';
import { temporalStarter } from './intake/starter.js';
import { gitHostWorkerParts } from './intake/workers.js';

export const GITHUB_WEBHOOK_PATH = '/api/github/webhooks';
export const GITLAB_WEBHOOK_PATH = '/api/gitlab/webhooks';

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

async function githubHandler(cfg: NonNullable<ServeConfig['github']>, deps: Parameters<typeof githubApp>[0], log: Logger): Promise<Handler> {
  const probot = new Probot({ appId: cfg.appId, privateKey: cfg.privateKey, secret: cfg.webhookSecret, baseUrl: cfg.apiUrl, log: log.child({ name: 'probot' }) });
  const middleware = await createNodeMiddleware(githubApp(deps), { probot, webhooksPath: GITHUB_WEBHOOK_PATH });
  return async (req, res) => {
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' });
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      return sendJson(res, 413, { error: 'payload too large' });
    }
    const sig = req.headers['x-hub-signature-256'];
    if (!signatureValid(cfg.webhookSecret, body, Array.isArray(sig) ? sig[0] : sig)) {
      return sendJson(res, 401, { error: 'missing or wrong X-Hub-Signature-256' });
    }
    // Probot's middleware reads a string body when one is present (it verifies again).
    (req as IncomingMessage & { body?: string }).body = body.toString('utf8');
    await middleware(req, res);
  };
}

function runOptions(cfg: ServeConfig) {
  return defaultRunOptions({
    ...(cfg.statusIntervalMs !== null ? { statusIntervalMs: cfg.statusIntervalMs } : {}),
    ...(cfg.controlQueue !== null ? { controlQueue: cfg.controlQueue } : {}),
    ...(cfg.hostQueue !== null ? { localHostQueue: cfg.hostQueue } : {}),
  });
}

export async function startServer(cfg: ServeConfig, log: Logger, env: Record<string, string | undefined> = process.env): Promise<RunningServer> {
  const store = createStore(cfg.store);
  const connection = await Connection.connect({ address: cfg.temporalAddress });
  const client = new Client({ connection, namespace: cfg.temporalNamespace, dataConverter });
  const links = new RunLinks(cfg.publicUrl, linkSecretFrom(env));
  const records = new GitHostRecords(store);
  const github = cfg.github ? new GitHubClients(cfg.github, log) : undefined;
  const gitlab: GitLabApi | undefined = cfg.gitlab ? createGitLab(cfg.gitlab) : undefined;
  const intake: Intake = {
    starter: temporalStarter(client),
    records,
    policy: cfg.policy,
    log,
    runOptions: () => runOptions(cfg),
    runUrl: (id) => links.runUrl(id),
  };
  const jobs = new JobQueue(log, cfg.jobConcurrency);

  let workers: { shutdown(): Promise<void> } | undefined;
  let workerConnection: NativeConnection | undefined;
  if (cfg.workers === 'in-process') {
    workerConnection = await NativeConnection.connect({ address: cfg.temporalAddress });
    workers = await startWorkers({
      connection: workerConnection,
      address: cfg.temporalAddress,
      namespace: cfg.temporalNamespace,
      store,
      workRoot: cfg.workRoot,
      hostQueue: runOptions(cfg).localHostQueue,
      controlQueue: runOptions(cfg).controlQueue,
      shutdownGraceMs: cfg.shutdownGraceMs,
      ...gitHostWorkerParts(env, store, cfg.workRoot, log, github ? { github } : {}),
    });
  }

  const routes = new Map<string, Handler>();
  if (cfg.github && github) routes.set(GITHUB_WEBHOOK_PATH, await githubHandler(cfg.github, { intake, clients: github, jobs, ackOnly: cfg.ackOnly }, log));
  if (cfg.gitlab && gitlab) {
    routes.set(GITLAB_WEBHOOK_PATH, gitlabWebhookHandler({
      api: gitlab, intake, secret: cfg.gitlab.webhookSecret, jobs, ackOnly: cfg.ackOnly, verdictUrl: (id) => links.runUrl(id),
    }));
  }
  const runPage = runPageHandler(intake, links);

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = routes.get(path);
    const handled = route
      ? route(req, res)
      : path === '/healthz'
        ? Promise.resolve(sendJson(res, 200, { ok: true, github: Boolean(cfg.github), gitlab: Boolean(cfg.gitlab), queued: jobs.size, ackOnly: cfg.ackOnly }))
        : path.startsWith('/runs/') && req.method === 'GET'
          ? runPage(req, res)
          : Promise.resolve(sendText(res, 404, 'not found\n'));
    handled.catch((err: unknown) => {
      log.error({ err, path }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.bind, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    async close() {
      // Workers stop polling at once; the grace time for running steps runs meanwhile.
      const workersStopped = workers?.shutdown();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await Promise.race([jobs.idle(), new Promise((r) => setTimeout(r, 30_000))]);
      await workersStopped;
      await workerConnection?.close();
      await connection.close();
    },
  };
}

const USAGE = `usage: trainyard serve [--port N]

Serves the GitHub App webhook (${GITHUB_WEBHOOK_PATH}), the GitLab webhook
(${GITLAB_WEBHOOK_PATH}), run pages (/runs/…) and /healthz. Configured from the
environment: see docs/githost.md.`;

export async function serveCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const env = { ...process.env };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port' && argv[i + 1] !== undefined) env.TRAINYARD_PORT = argv[++i];
    else throw new Error(`serve: unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
  }
  let cfg: ServeConfig;
  try {
    cfg = loadServeConfig(env);
  } catch (err) {
    // The CLI prints the message and exits 2: a bad setting stops the server before it listens.
    if (err instanceof ConfigError) throw new Error(`serve: configuration error: ${err.message}`);
    throw err;
  }
  const log = pino({ level: cfg.logLevel, name: 'trainyard-serve' });
  quietTemporalRuntime();
  const running = await startServer(cfg, log, env);
  process.stdout.write(`trainyard serve: listening on ${running.url}\n`);
  log.info({ url: running.url, github: Boolean(cfg.github), gitlab: Boolean(cfg.gitlab), workers: cfg.workers, ackOnly: cfg.ackOnly }, 'serving');
  // SIGTERM (a Kubernetes rollout) or SIGINT: stop taking webhooks, let queued intake jobs
  // and running steps finish within the grace time, hand back the rest, then return (exit 0).
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal, graceSeconds: cfg.shutdownGraceMs / 1000 }, 'already shutting down: running steps are handed back when the grace time is up');
        return;
      }
      stopping = true;
      log.info({ signal, graceSeconds: cfg.shutdownGraceMs / 1000 }, 'shutting down');
      running.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  log.info('stopped');
}
