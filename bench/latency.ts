// Latency of the refusals and clean-ups the tests check for behaviour only (timings are not
// asserted in tests: they depend on the machine and its load). Prints one table.
//
//   node --import tsx bench/latency.ts [--repeat N]
//
// - parsing: a pipeline file over the 256 KiB limit, and a billion-laughs file (refused
//   before reading the YAML / before expanding its aliases);
// - containers: a step container killed at its timeout, and one killed on abort (time from
//   the deadline / the abort until runContainer returns with the container gone);
// - images: examples/image/build.sh finding localhost/trainyard-python:3 up to date.
// Webhook answer times are in bench/webhooks.ts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { resolveContainerCli } from '../activities/container/cli.js';
import { runContainer } from '../activities/container/run.js';
import type { ContainerRunRequest } from '../activities/container/types.js';
import { MAX_PIPELINE_BYTES, parsePipeline } from '../pipeline/parse.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../test/fixtures/images/images.js';

const exec = promisify(execFile);
const i = process.argv.indexOf('--repeat');
const REPEAT = i >= 0 ? Number(process.argv[i + 1]) : 5;
if (!Number.isInteger(REPEAT) || REPEAT < 1 || REPEAT > 100)
  throw new Error('--repeat must be a whole number from 1 to 100');

function stats(ms: number[]): [string, string] {
  const s = [...ms].sort((a, b) => a - b);
  return [fmt(s[Math.floor(s.length / 2)]!), fmt(s.at(-1)!)];
}
const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

async function timed(n: number, f: () => Promise<number | void> | number | void): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const t0 = performance.now();
    const own = await f();
    out.push(typeof own === 'number' ? own : performance.now() - t0);
  }
  return out;
}

function request(over: Partial<ContainerRunRequest>): ContainerRunRequest {
  const name = `ty-bench-${randomBytes(5).toString('hex')}`;
  return {
    name,
    labels: { 'trainyard.bench': 'latency', 'trainyard.exec': name },
    image: BUSYBOX_IMAGE,
    command: ['sleep', '30'],
    env: {},
    mounts: [],
    workdir: '/workspace',
    gpus: false,
    timeoutMs: 60_000,
    onLine: () => undefined,
    signal: new AbortController().signal,
    ...over,
  };
}

async function main(): Promise<void> {
  await ensureTestImages();
  const cli = await resolveContainerCli(process.env);
  const rows: string[][] = [];

  const big = `name: big\nsteps:\n  a: { image: busybox, run: x }\n# ${'x'.repeat(MAX_PIPELINE_BYTES)}\n`;
  rows.push([
    'parse a 257 KiB pipeline file (refused)',
    ...stats(await timed(REPEAT * 10, () => void parsePipeline(big, 'big.yaml'))),
  ]);
  const levels = ['a: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let l = 1; l <= 12; l++)
    levels.push(`l${l}: &l${l} [${Array.from({ length: 10 }, () => `*l${l - 1}`).join(',')}]`);
  const lol = `name: lol\n${levels.join('\n')}\nsteps:\n  a: { image: busybox, run: x, env: { X: *l12 } }\n`;
  rows.push([
    'parse a billion-laughs file (refused)',
    ...stats(await timed(REPEAT * 10, () => void parsePipeline(lol, 'lol.yaml'))),
  ]);

  rows.push([
    'container past a 1 s timeout: deadline → gone',
    ...stats(
      await timed(REPEAT, async () => {
        const t0 = performance.now();
        const r = await runContainer(cli, request({ timeoutMs: 1000 }));
        if (!r.timedOut) throw new Error('the container was not timed out');
        return performance.now() - t0 - 1000;
      }),
    ),
  ]);
  rows.push([
    'container aborted once running: abort → gone',
    ...stats(
      await timed(REPEAT, async () => {
        const controller = new AbortController();
        let abortedAt = 0;
        const r = await runContainer(
          cli,
          request({
            command: ['sh', '-c', 'echo started; sleep 30'],
            signal: controller.signal,
            onLine: (_s, line) => {
              if (line === 'started') {
                abortedAt = performance.now();
                controller.abort();
              }
            },
          }),
        );
        if (!r.cancelled) throw new Error('the container was not cancelled');
        return performance.now() - abortedAt;
      }),
    ),
  ]);

  const build = fileURLToPath(new URL('../examples/image/build.sh', import.meta.url));
  rows.push([
    'examples/image/build.sh, image up to date',
    ...stats(await timed(REPEAT, async () => void (await exec('bash', [build, cli.command])))),
  ]);

  const head = ['what', 'median', 'worst'];
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (r: string[]) => `| ${r.map((c, k) => c.padEnd(widths[k]!)).join(' | ')} |`;
  console.log([line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
}

await main();
process.exit(0);
