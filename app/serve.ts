// `trainyard serve`: the webhook server for GitHub and GitLab, plus — unless
// TRAINYARD_WORKERS=none — a control worker and a runner agent on the shared local queue, so
// one process is a whole installation. A verified webhook is answered once its delivery is
// recorded in Temporal (app/intake/deliveries.ts); everything it asks for happens in the
// delivery workflow's activities on a control worker, so replicas hold no state and any of
// them can die. Configuration comes from the environment (see app/intake/config.ts and
// docs/githost.md) and is checked before anything listens.
import { METRICS_PATH, observeDelivery, serveMetrics } from './metrics.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { pino, type Logger } from 'pino';
import { openStore, s3Settings } from './store.js';
import { pinoTextHooks } from '../activities/usertext.js';
import { GitHubClients } from '../activities/githost/github-client.js';
import { RunLinks } from '../activities/githost/links.js';
import { GitHostRecords } from '../activities/githost/records.js';
import type { IntakeEvent } from '../activities/intake/events.js';
import { deliveryIdFrom } from '../activities/intake/ids.js';
import { temporalStarter } from '../activities/intake/temporalstarter.js';
import { dataConverter } from './codec.js';
import { temporalConnectOptions } from './config.js';
import { waitForTemporal } from './connect.js';
import { serviceRunOptions } from './engine.js';
import { loadWorkerSettings, quietTemporalRuntime, startWorkers } from './worker.js';
import { githubIntakeEvent } from './github/events.js';
import { readSignedBody, signatureWellFormed } from './github/verify.js';
import { gitlabWebhookHandler } from './gitlab/endpoint.js';
import { ConfigError, loadServeConfig, type ServeConfig } from './intake/config.js';
import { answerDelivery, temporalDeliveries, type DeliveryRecorder } from './intake/deliveries.js';
import { ByteBudget, header, refuse, refuseBody, sendJson, sendText } from './intake/http.js';
import { runPageHandler } from './intake/runpage.js';
import { ASSETS_PREFIX, assetHandler } from './page/assets.js';
import { gitHostWorkerParts } from './intake/githostparts.js';

export const GITHUB_WEBHOOK_PATH = '/api/github/webhooks';
export const GITLAB_WEBHOOK_PATH = '/api/gitlab/webhooks';

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

function githubHandler(
  cfg: NonNullable<ServeConfig['github']>,
  deliveries: DeliveryRecorder,
  ackOnly: boolean,
  budget: ByteBudget,
  log: Logger,
): Handler {
  return async (req, res) => {
    if (req.method !== 'POST') return refuse(res, 405, 'use POST');
    const delivery = header(req, 'x-github-delivery');
    // Everything that can be decided from the headers is, before a byte of the body is read.
    const sig = header(req, 'x-hub-signature-256');
    if (!signatureWellFormed(sig)) return refuse(res, 401, 'missing or wrong X-Hub-Signature-256');
    const r = await readSignedBody(req, cfg.webhookSecret, sig, { budget, res });
    if (r.kind === 'bad-signature') return refuse(res, 401, 'missing or wrong X-Hub-Signature-256');
    if (r.kind !== 'ok') {
      if (r.kind === 'busy')
        log.warn(
          { delivery, unverifiedBytes: budget.inUse, limit: budget.limit },
          'webhook refused: unverified body budget spent (503)',
        );
      else log.info({ delivery, refused: r.kind }, 'webhook body refused');
      return refuseBody(res, r);
    }
    const name = header(req, 'x-github-event');
    if (!name) return sendJson(res, 400, { error: 'missing X-GitHub-Event' });
    let event: IntakeEvent | null;
    try {
      event = githubIntakeEvent(name, JSON.parse(r.body.toString('utf8')));
    } catch (err) {
      return sendJson(res, 400, { error: `not a GitHub ${name} payload: ${(err as Error).message}` });
    }
    if (ackOnly) return sendJson(res, 200, { ok: true, handled: false });
    await answerDelivery(res, deliveries, 'github', deliveryIdFrom(delivery, r.body), event, log);
  };
}

export async function startServer(
  cfg: ServeConfig,
  log: Logger,
  env: Record<string, string | undefined> = process.env,
): Promise<RunningServer> {
  const store = openStore(cfg);
  const connectOptions = temporalConnectOptions(cfg, cfg.temporalAddress);
  // Lazy: a replica starts, and answers 503, while Temporal is down; it reconnects by itself.
  const connection = Connection.lazy(connectOptions);
  const client = new Client({ connection, namespace: cfg.temporalNamespace, dataConverter });
  const links = new RunLinks(cfg.publicUrl, cfg.linkSecret);
  const deliveries = temporalDeliveries(client, { taskQueue: cfg.controlQueue, log });

  let workers: { shutdown(): Promise<void> } | undefined;
  let workerConnection: NativeConnection | undefined;
  if (cfg.workers === 'in-process') {
    await waitForTemporal(connectOptions, log);
    workerConnection = await NativeConnection.connect(connectOptions);
    const github = cfg.github ? new GitHubClients(cfg.github, log) : undefined;
    workers = await startWorkers({
      connection: workerConnection,
      address: cfg.temporalAddress,
      connectOptions,
      namespace: cfg.temporalNamespace,
      store,
      s3: s3Settings(cfg),
      settings: await loadWorkerSettings(env, { host: true }),
      workRoot: cfg.workRoot,
      hostQueue: cfg.localQueue,
      controlQueue: cfg.controlQueue,
      shutdownGraceMs: cfg.shutdownGraceMs,
      ...gitHostWorkerParts(env, store, cfg.workRoot, log, {
        ...(github ? { github } : {}),
        links: { publicUrl: cfg.publicUrl, secret: cfg.linkSecret },
        policy: cfg.policy,
        runOptions: () => serviceRunOptions(cfg),
      }),
    });
  }

  const routes = new Map<string, Handler>();
  // Shared by every request whose body is read before it is authenticated.
  const unverified = new ByteBudget(cfg.unverifiedBodyBytes);
  if (cfg.github) routes.set(GITHUB_WEBHOOK_PATH, githubHandler(cfg.github, deliveries, cfg.ackOnly, unverified, log));
  if (cfg.gitlab) {
    routes.set(
      GITLAB_WEBHOOK_PATH,
      gitlabWebhookHandler({ secret: cfg.gitlab.webhookSecret, deliveries, ackOnly: cfg.ackOnly, log }),
    );
  }
  const runPage = runPageHandler({ records: new GitHostRecords(store), starter: temporalStarter(client) }, links);

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = routes.get(path);
    if (route) observeDelivery(path === GITHUB_WEBHOOK_PATH ? 'github' : 'gitlab', req, res);
    const handled = route
      ? route(req, res)
      : path === '/healthz'
        ? Promise.resolve(
            sendJson(res, 200, {
              ok: true,
              github: Boolean(cfg.github),
              gitlab: Boolean(cfg.gitlab),
              workers: cfg.workers,
              ackOnly: cfg.ackOnly,
              unverifiedBytes: unverified.inUse,
            }),
          )
        : path === METRICS_PATH && req.method === 'GET'
          ? serveMetrics(res)
          : path.startsWith('/runs/') && req.method === 'GET'
            ? runPage(req, res)
            : path.startsWith(ASSETS_PREFIX) && req.method === 'GET'
              ? assetHandler(res, path)
              : Promise.resolve(sendText(res, 404, 'not found\n'));
    handled.catch((err: unknown) => {
      log.error({ err, path }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // Expect: 100-continue goes to the same handlers, which send `100 Continue` only once they
  // want the body (Node would otherwise send it before any check).
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
  server.keepAliveTimeout = 65_000;
  // A sender that trickles its body holds its share of the budget until this cuts it off;
  // GitHub itself gives up on an answer after 10 s.
  server.requestTimeout = 60_000;
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
      await workersStopped;
      await workerConnection?.close();
      await connection.close();
    },
  };
}

const USAGE = `usage: trainyard serve [--port N]

Serves the GitHub App webhook (${GITHUB_WEBHOOK_PATH}), the GitLab webhook
(${GITLAB_WEBHOOK_PATH}), run pages (/runs/…, their scripts under /assets/) and /healthz. Configured from the
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
  const log = pino({ level: cfg.logLevel, name: 'trainyard-serve', hooks: pinoTextHooks });
  quietTemporalRuntime();
  const running = await startServer(cfg, log, env);
  process.stdout.write(`trainyard serve: listening on ${running.url}\n`);
  log.info(
    {
      url: running.url,
      github: Boolean(cfg.github),
      gitlab: Boolean(cfg.gitlab),
      workers: cfg.workers,
      ackOnly: cfg.ackOnly,
    },
    'serving',
  );
  // SIGTERM (a Kubernetes rollout) or SIGINT: stop taking webhooks, let queued intake jobs
  // and running steps finish within the grace time, hand back the rest, then return (exit 0).
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn(
          { signal, graceSeconds: cfg.shutdownGraceMs / 1000 },
          'already shutting down: running steps are handed back when the grace time is up',
        );
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
