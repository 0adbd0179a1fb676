// Every row of the performance table (issue 10) in one run, each beside its baseline measured
// in the same run where one exists, with the ratio, plus where `trainyard run`'s wall time goes.
//   - executed step: an N-step DAG of `true` containers (parallelism 4), Trainyard --no-cache
//     against a bare Temporal workflow of the same shape running the same `podman run`;
//   - a fully cached re-run of a BIG-step pipeline on the warm engine;
//   - `trainyard run` of examples/blobs with everything cached: a new process, its own
//     embedded Temporal server; wall time, peak RSS and the phases;
//   - `trainyard --help` against `node -e 0` (the process start alone);
//   - webhook answer with durable intake (bench/webhooks.ts in its own process): the ack p99,
//     and accepted deliveries/s (answered 2xx, so recorded in Temporal) against the start rate
//     of a bare Temporal client on the same server, plus runs started/s for the whole intake;
//   - HUGE distinct steps at parallelism 16 (only with --huge N: 10,000 takes an hour on 2 cores).
// Usage: node --import tsx bench/engine.ts [--steps 50] [--big 1000] [--huge 0] [--cli-runs 5]
//        [--example examples/blobs] [--webhook-latency 100] [--webhook-burst 300] [--no-webhooks]
//        [--only executed,cached,cli,webhooks,huge]   (rows to run; default all)
//        [--store DIR --salt S]   (keep the step cache in DIR and reuse the step names of salt S:
//                                  a later bench with the same two finds the huge row cached)
// test/bench/smoke.test.ts runs it at small sizes so it cannot rot.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { resolveContainerCli } from '../activities/container/cli.js';
import { LocalStore } from '../activities/store/local.js';
import { cachedWorkflowBundle } from '../app/bundlecache.js';
import { dataConverter } from '../app/codec.js';
import { startDevServer } from '../app/devserver.js';
import { defaultRunOptions, startPipelineRun } from '../app/engine.js';
import { quietTemporalRuntime } from '../app/local/run.js';
import { loadWorkerSettings, startWorkers } from '../app/worker.js';
import { parsePipeline } from '../pipeline/parse.js';
import { GitRepo } from '../test/engine/harness.js';
import type { RunInput, RunStatus } from '../model/types.js';
import type { pipelineRun } from '../workflows/pipeline.js';
import type { bareDag } from './bare/workflows.js';
import { cachedExampleRun, ensureBuilt, median, timeNode, type CachedRunFigures } from './cli.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BARE_WORKFLOWS = fileURLToPath(new URL('./bare/workflows.ts', import.meta.url));
const run = promisify(execFile);
const IMAGE = 'localhost/trainyard-busybox:1';
const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '50' },
    big: { type: 'string', default: '1000' },
    huge: { type: 'string', default: '0' },
    parallelism: { type: 'string', default: '4' },
    'cli-runs': { type: 'string', default: '5' },
    example: { type: 'string', default: 'examples/blobs' },
    'webhook-latency': { type: 'string', default: '100' },
    'webhook-burst': { type: 'string', default: '300' },
    'no-webhooks': { type: 'boolean', default: false },
    only: { type: 'string', default: 'executed,cached,cli,webhooks,huge' },
    store: { type: 'string' },
    salt: { type: 'string' },
  },
});
const ROWS = new Set(values.only!.split(','));
const unknownRows = [...ROWS].filter((r) => !['executed', 'cached', 'cli', 'webhooks', 'huge'].includes(r));
if (unknownRows.length) throw new Error(`--only: unknown row(s) ${unknownRows.join(', ')}`);
const N = Number(values.steps);
const BIG = Number(values.big);
const HUGE = Number(values.huge);
const PAR = Number(values.parallelism);
const CLI_RUNS = Number(values['cli-runs']);

/** Layers of 5; each step needs the same-index step of the layer before. */
function shape(n: number): Record<string, string[]> {
  const deps: Record<string, string[]> = {};
  for (let i = 0; i < n; i++) deps[`s${i}`] = i >= 5 ? [`s${i - 5}`] : [];
  return deps;
}

/**
 * One line per step, so 10,000 steps fit in a pipeline file (at most 1 MiB). Each step runs
 * `true` with an argument of its own (`true` ignores it): a cache key of its own per step and
 * per bench run (`salt`), for the cost of the same container as the bare workflow's.
 */
function pipelineYaml(name: string, n: number, salt: string): string {
  const lines = [`name: ${name}`, 'steps:'];
  for (const [s, deps] of Object.entries(shape(n))) {
    const needs = deps.length ? `, needs: [${deps.join(', ')}]` : '';
    lines.push(`  ${s}: {image: ${IMAGE}, run: ["true", "${salt}.${s}"]${needs}}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One row of the table: measure, what was measured, its value, the baseline's, the ratio, the target. */
type Row = [string, string, string, string, string, string];

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const mb = (kb: number): string => `${Math.round(kb / 1024)} MB`;

async function main(): Promise<void> {
  quietTemporalRuntime();
  const cli = await resolveContainerCli(process.env);
  const dev = await startDevServer();
  const root = mkdtempSync(join(tmpdir(), 'trainyard-bench-'));
  const native = await NativeConnection.connect({ address: dev.address });
  const client = new Client({ connection: await Connection.connect({ address: dev.address }), dataConverter });
  const salt = values.salt ?? Date.now().toString(36);
  const store = new LocalStore(values.store ? resolve(values.store) : join(root, 'store'));
  console.error(`bench: salt ${salt}, step cache in ${values.store ? resolve(values.store) : 'a temporary folder'}`);
  const workers = await startWorkers({
    connection: native,
    address: dev.address,
    settings: await loadWorkerSettings(process.env, { host: true }),
    store,
    workRoot: join(root, 'work'),
    hostQueue: 'bench-host',
    controlQueue: 'bench-control',
  });
  const bare = await Worker.create({
    connection: native,
    taskQueue: 'bench-bare',
    workflowBundle: {
      code: (
        await cachedWorkflowBundle(BARE_WORKFLOWS, () =>
          bundleWorkflowCode({
            workflowsPath: BARE_WORKFLOWS,
            logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
          }),
        )
      ).code,
    },
    activities: {
      runBare: async () => {
        await run(cli.command, ['run', '--rm', ...cli.runFlags, IMAGE, 'true']);
      },
    },
  });
  const bareRunning = bare.run();
  const repo = new GitRepo(root);
  const rows: Row[] = [];
  let breakdown: CachedRunFigures | undefined;
  let peakRss = 0;
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 250);
  try {
    const runTrainyard = async (
      name: string,
      n: number,
      noCache: boolean,
      par: number,
    ): Promise<{ ms: number; status: RunStatus; history: number }> => {
      repo.write({ [`.trainyard/${name}.yaml`]: pipelineYaml(name, n, salt) });
      const commit = repo.commit(name);
      const { pipeline } = parsePipeline(pipelineYaml(name, n, salt), `.trainyard/${name}.yaml`);
      const input: RunInput = {
        runId: `bench-${name}-${Date.now()}`,
        pipeline: pipeline!,
        params: {},
        source: { kind: 'git', repoPath: repo.path, commit, subdir: '' },
        trigger: { kind: 'cli', user: 'bench' },
        status: { kind: 'none' },
        options: defaultRunOptions({
          controlQueue: 'bench-control',
          localHostQueue: 'bench-host',
          parallelism: par,
          noCache,
        }),
      };
      const t0 = performance.now();
      await startPipelineRun(client, input, { workflowId: input.runId, reuse: 'allow-duplicate' });
      const handle = client.workflow.getHandle<typeof pipelineRun>(input.runId);
      const status = await handle.result();
      const ms = performance.now() - t0;
      if (status.state !== 'succeeded') throw new Error(`${name} ${status.state}`);
      return { ms, status, history: (await handle.describe()).historyLength };
    };
    const runBare = async (n: number): Promise<number> => {
      const t0 = performance.now();
      await client.workflow.execute<typeof bareDag>('bareDag', {
        taskQueue: 'bench-bare',
        workflowId: `bare-${Date.now()}`,
        args: [shape(n), PAR],
      });
      return performance.now() - t0;
    };
    // Warm-up: image cache, bundles, first checkout.
    await runBare(5);
    await runTrainyard('warm', 5, true, PAR);

    // 1. Executed steps against the bare workflow.
    if (ROWS.has('executed')) {
      const bareMs = await runBare(N);
      const ty = await runTrainyard('dag', N, true, PAR);
      rows.push([
        `executed step, ${N}-step DAG of \`true\`, parallelism ${PAR}`,
        `per step (own overhead ${fmt((ty.ms - bareMs) / N)})`,
        fmt(ty.ms / N),
        `${fmt(bareMs / N)} bare Temporal workflow`,
        `${(ty.ms / bareMs).toFixed(2)}×`,
        '≤ 1.2× (≤ 30 ms own)',
      ]);
    }

    // 2. Cached re-run on the warm engine.
    if (ROWS.has('cached')) {
      const first = await runTrainyard('big', BIG, false, 16);
      const again = await runTrainyard('big', BIG, false, 16);
      const cached = again.status.steps.filter((s) => s.state === 'cached').length;
      rows.push([
        `fully cached re-run of ${BIG} steps, warm engine`,
        `wall (${cached}/${BIG} cached; ${fmt(again.ms / BIG)} per step)`,
        fmt(again.ms),
        `${fmt(first.ms)} first run`,
        (again.ms / first.ms).toFixed(3),
        '< 1 s (1,000 steps)',
      ]);
    }

    // 3. `trainyard run`, everything cached, a new process.
    if (ROWS.has('cli')) {
      await ensureBuilt();
      breakdown = await cachedExampleRun(resolve(REPO, values.example!), root);
      rows.push([
        `\`trainyard run\` of ${values.example}, all cached, new process, embedded Temporal`,
        'wall / peak RSS',
        `${fmt(breakdown.wallMs)} / ${mb(breakdown.maxRssKb)}`,
        '',
        '',
        '< 1.5 s / < 200 MB',
      ]);

      // 4. `trainyard --help` against the process start alone.
      const help = await median(CLI_RUNS, () => timeNode(['bin/trainyard.js', '--help']));
      const nodeOnly = await median(CLI_RUNS, () => timeNode(['-e', '0']));
      rows.push([
        '`trainyard --help`',
        `wall (median of ${CLI_RUNS})`,
        fmt(help.wallMs),
        `${fmt(nodeOnly.wallMs)} \`node -e 0\``,
        `${(help.wallMs / nodeOnly.wallMs).toFixed(2)}×`,
        '< 150 ms',
      ]);
      const validate = await median(CLI_RUNS, () =>
        timeNode(['bin/trainyard.js', 'validate', '-C', resolve(REPO, values.example!)]),
      );
      rows.push([
        '`trainyard validate`',
        `wall (median of ${CLI_RUNS})`,
        fmt(validate.wallMs),
        `${fmt(nodeOnly.wallMs)} \`node -e 0\``,
        `${(validate.wallMs / nodeOnly.wallMs).toFixed(2)}×`,
        '',
      ]);
    }

    // 5. Webhooks: the intake benchmark in its own process, against a bare client's start rate.
    if (!values['no-webhooks'] && ROWS.has('webhooks')) {
      const bareRate = await bareStartRate(client, Number(values['webhook-burst']));
      const w = await webhookFigures(dev.address, Number(values['webhook-latency']), Number(values['webhook-burst']));
      rows.push([
        'webhook answer, durable intake, dev server',
        'ack p99 (sequential)',
        `${w.ackP99.toFixed(1)} ms`,
        `${w.bareAckP99.toFixed(1)} ms acknowledge only`,
        `${(w.ackP99 / w.bareAckP99).toFixed(2)}×`,
        'p99 < 100 ms',
      ]);
      rows.push([
        '',
        'accepted deliveries per second (burst; 2xx once recorded in Temporal)',
        w.acceptedPerSecond.toFixed(1),
        `${bareRate.toFixed(1)} bare client starts/s`,
        `${(w.acceptedPerSecond / bareRate).toFixed(2)}×`,
        '≥ 0.8×',
      ]);
      rows.push([
        '',
        'accepted deliveries per second, no intake worker running (serve alone)',
        w.recordOnlyPerSecond.toFixed(1),
        `${bareRate.toFixed(1)} bare client starts/s`,
        `${(w.recordOnlyPerSecond / bareRate).toFixed(2)}×`,
        '',
      ]);
      rows.push([
        '',
        "runs started per second (burst, until every delivery's run started)",
        w.startedPerSecond.toFixed(1),
        `${bareRate.toFixed(1)} bare client starts/s`,
        `${(w.startedPerSecond / bareRate).toFixed(2)}×`,
        '',
      ]);
    } else {
      rows.push([
        'webhook answer, durable intake, dev server',
        'not run (--no-webhooks)',
        '',
        '',
        '',
        'p99 < 100 ms; ≥ 0.8× bare',
      ]);
    }

    // 6. Many distinct steps.
    if (HUGE > 0 && ROWS.has('huge')) {
      peakRss = process.memoryUsage().rss;
      const h1 = await runTrainyard('huge', HUGE, false, 16);
      const rss = peakRss;
      const h2 = await runTrainyard('huge', HUGE, false, 16);
      rows.push([
        `${HUGE} distinct steps (\`true\`), parallelism 16`,
        'first run / bench+worker peak RSS',
        `${fmt(h1.ms)} / ${mb(rss / 1024)}`,
        '',
        '',
        'completes; RSS < 1 GB',
      ]);
      rows.push([
        '',
        "cached re-run / last run's history events",
        `${fmt(h2.ms)} / ${h2.history}`,
        '',
        '',
        '< 10 s; ≤ 51,200 events',
      ]);
    } else {
      rows.push([
        '10,000 distinct steps (`true`), parallelism 16',
        'not run (--huge 10000; hours on 2 cores)',
        '',
        '',
        '',
        'completes; RSS < 1 GB; re-run < 10 s',
      ]);
    }
  } finally {
    clearInterval(rssTimer);
    bare.shutdown();
    await bareRunning;
    await workers.shutdown();
    await native.close();
    await dev.stop();
    rmSync(root, { recursive: true, force: true });
  }
  printTable(['measure', 'what', 'Trainyard', 'baseline (same run)', 'ratio', 'target'], rows);
  if (breakdown) {
    console.log(`\n\`trainyard run\` all cached: where its ${fmt(breakdown.wallMs)} go\n`);
    printTable(
      ['phase', 'wall'],
      breakdown.breakdown.map(([p, ms]) => [p, fmt(ms)]),
    );
  }
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log([line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
}

/** Workflow starts per second a bare client gets from the server, `n` at 32 at a time (no worker: they are terminated after). */
async function bareStartRate(client: Client, n: number): Promise<number> {
  const ids: string[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        const id = `bare-start-${process.pid}-${next++}`;
        await client.workflow.start<typeof bareDag>('bareDag', {
          taskQueue: 'bench-nobody',
          workflowId: id,
          args: [{}, 1],
        });
        ids.push(id);
      }
    }),
  );
  const rate = n / ((performance.now() - t0) / 1000);
  for (const id of ids)
    await client.workflow
      .getHandle(id)
      .terminate('benchmark over')
      .catch(() => undefined);
  return rate;
}

/** bench/webhooks.ts against `address`, its table read back. */
async function webhookFigures(
  address: string,
  latency: number,
  burst: number,
): Promise<{
  ackP99: number;
  bareAckP99: number;
  acceptedPerSecond: number;
  recordOnlyPerSecond: number;
  startedPerSecond: number;
}> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/webhooks.ts', '--latency', String(latency), '--burst', String(burst)],
    { cwd: REPO, env: { ...process.env, TEMPORAL_ADDRESS: address }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`bench/webhooks.ts exited ${code}: ${err}`);
  const row = (mode: string): string[] => {
    const l = out.split('\n').find((x) => x.startsWith(`| ${mode} |`));
    if (!l) throw new Error(`bench/webhooks.ts printed no "${mode}" row:\n${out}`);
    return l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  };
  const ack = row('acknowledge only');
  const start = row('start runs');
  const record = row('record only');
  return {
    bareAckP99: Number(ack[2]),
    ackP99: Number(start[2]),
    acceptedPerSecond: Number(start[5]),
    recordOnlyPerSecond: Number(record[5]),
    startedPerSecond: Number(start[6]),
  };
}

await main();
process.exit(0);
