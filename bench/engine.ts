// Trainyard's own overhead per step (parsing, hashing, cache lookups, artifact moves,
// lineage) against a bare Temporal workflow of the same shape running the same container
// command, on the same server in the same run; and a fully cached re-run of 1,000 steps.
// Usage: node --import tsx bench/engine.ts [--steps 50] [--big 1000]
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { resolveContainerCli } from '../activities/container/cli.js';
import { LocalStore } from '../activities/store/local.js';
import { dataConverter } from '../app/codec.js';
import { startDevServer } from '../app/devserver.js';
import { defaultRunOptions, startPipelineRun } from '../app/engine.js';
import { quietTemporalRuntime } from '../app/local/run.js';
import { startWorkers } from '../app/worker.js';
import { parsePipeline } from '../pipeline/parse.js';
import { GitRepo } from '../test/engine/harness.js';
import type { RunInput, RunStatus } from '../workflows/types.js';

const run = promisify(execFile);
const IMAGE = 'localhost/trainyard-busybox:1';
const { values } = parseArgs({ options: { steps: { type: 'string', default: '50' }, big: { type: 'string', default: '1000' }, parallelism: { type: 'string', default: '4' } } });
const N = Number(values.steps);
const BIG = Number(values.big);
const PAR = Number(values.parallelism);

/** Layers of 5; each step needs the same-index step of the layer before. */
function shape(n: number): Record<string, string[]> {
  const deps: Record<string, string[]> = {};
  for (let i = 0; i < n; i++) deps[`s${i}`] = i >= 5 ? [`s${i - 5}`] : [];
  return deps;
}

function pipelineYaml(name: string, n: number, salt: string): string {
  const lines = [`name: ${name}`, 'steps:'];
  for (const [s, deps] of Object.entries(shape(n))) {
    lines.push(`  ${s}:`, `    image: ${IMAGE}`, `    run: ["true"]`, `    env: { I: "${s}", SALT: "${salt}" }`);
    if (deps.length) lines.push(`    needs: [${deps.join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  quietTemporalRuntime();
  const cli = await resolveContainerCli();
  const dev = await startDevServer();
  const root = mkdtempSync(join(tmpdir(), 'trainyard-bench-'));
  const native = await NativeConnection.connect({ address: dev.address });
  const client = new Client({ connection: await Connection.connect({ address: dev.address }), dataConverter });
  const salt = String(Date.now());
  const store = new LocalStore(join(root, 'store'));
  const workers = await startWorkers({ connection: native, address: dev.address, store, workRoot: join(root, 'work'), hostQueue: 'bench-host', controlQueue: 'bench-control' });
  const bare = await Worker.create({
    connection: native, taskQueue: 'bench-bare',
    workflowBundle: await bundleWorkflowCode({ workflowsPath: new URL('./bare/workflows.ts', import.meta.url).pathname, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } }),
    activities: { runBare: async () => { await run(cli.command, ['run', '--rm', ...cli.runFlags, IMAGE, 'true']); } },
  });
  const bareRunning = bare.run();
  const repo = new GitRepo(root);
  const rows: string[][] = [];
  try {
    const runTrainyard = async (name: string, n: number, noCache: boolean, par: number): Promise<{ ms: number; status: RunStatus }> => {
      repo.write({ [`.trainyard/${name}.yaml`]: pipelineYaml(name, n, salt) });
      const commit = repo.commit(name);
      const { pipeline } = parsePipeline(pipelineYaml(name, n, salt), `.trainyard/${name}.yaml`);
      const input: RunInput = {
        runId: `bench-${name}-${Date.now()}`, pipeline: pipeline!, params: {},
        source: { kind: 'git', repoPath: repo.path, commit, subdir: '' }, trigger: { kind: 'cli', user: 'bench' }, status: { kind: 'none' },
        options: defaultRunOptions({ controlQueue: 'bench-control', localHostQueue: 'bench-host', parallelism: par, noCache }),
      };
      const t0 = performance.now();
      await startPipelineRun(client, input, { workflowId: input.runId, reuse: 'allow-duplicate' });
      const status = (await client.workflow.getHandle(input.runId).result()) as RunStatus;
      if (status.state !== 'succeeded') throw new Error(`${name} ${status.state}`);
      return { ms: performance.now() - t0, status };
    };
    const runBare = async (n: number): Promise<number> => {
      const t0 = performance.now();
      await client.workflow.execute('bareDag', { taskQueue: 'bench-bare', workflowId: `bare-${Date.now()}`, args: [shape(n), PAR] });
      return performance.now() - t0;
    };
    // Warm-up: image cache, bundles, first checkout.
    await runBare(5);
    await runTrainyard('warm', 5, true, PAR);

    const bareMs = await runBare(N);
    const ty = await runTrainyard('dag', N, true, PAR);
    const cachedSmall = await runTrainyard('dag', N, false, PAR);
    rows.push([`${N}-step DAG, containers run \`true\` (parallelism ${PAR})`, 'bare Temporal workflow', fmt(bareMs), fmt(bareMs / N), '1.00']);
    rows.push(['', 'Trainyard (--no-cache)', fmt(ty.ms), fmt(ty.ms / N), (ty.ms / bareMs).toFixed(2)]);
    rows.push(['', 'Trainyard, all cached', fmt(cachedSmall.ms), fmt(cachedSmall.ms / N), (cachedSmall.ms / bareMs).toFixed(2)]);

    const first = await runTrainyard('big', BIG, false, 16);
    const again = await runTrainyard('big', BIG, false, 16);
    const cached = again.status.steps.filter((s) => s.state === 'cached').length;
    rows.push([`${BIG}-step pipeline`, 'first run (parallelism 16)', fmt(first.ms), fmt(first.ms / BIG), '']);
    rows.push(['', `fully cached re-run (${cached}/${BIG} cached)`, fmt(again.ms), fmt(again.ms / BIG), (again.ms / first.ms).toFixed(3)]);
  } finally {
    bare.shutdown();
    await bareRunning;
    await workers.shutdown();
    await native.close();
    await dev.stop();
    rmSync(root, { recursive: true, force: true });
  }
  const head = ['workload', 'engine', 'wall time', 'per step', 'ratio'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log([line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

await main();
process.exit(0);
