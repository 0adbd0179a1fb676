// bench/engine.ts at small sizes, so the benchmark cannot rot: it runs to the end and prints
// every row of the performance table and the phases of `trainyard run`. No figure is checked
// (speed is measured in bench/, never asserted: machines here are noisy).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const project = mkdtempSync(join(tmpdir(), 'trainyard-bench-smoke-'));
afterAll(() => rmSync(project, { recursive: true, force: true }));

describe('bench/engine.ts', () => {
  it('runs at small sizes and prints every row of the table and every phase', async () => {
    await ensureTestImages();
    // A two-step pipeline stands in for the example: the row is about the CLI, not Python.
    mkdirSync(join(project, '.trainyard'));
    writeFileSync(
      join(project, '.trainyard', 'smoke.yaml'),
      [
        'name: smoke',
        'steps:',
        `  a: { image: ${BUSYBOX_IMAGE}, run: ["sh", "-c", "echo hi > /outputs/x"], outputs: [x] }`,
        `  b: { image: ${BUSYBOX_IMAGE}, run: ["cat", "/inputs/x"], inputs: { x: steps.a.outputs.x } }`,
        '',
      ].join('\n'),
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/engine.ts',
        '--steps',
        '5',
        '--big',
        '10',
        '--cli-runs',
        '1',
        '--webhook-latency',
        '2',
        '--webhook-burst',
        '4',
        '--example',
        project,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, `${out}\n${err}`).toBe(0);
    const row = (start: string) => out.split('\n').find((l) => l.startsWith(`| ${start}`));
    for (const measure of [
      'executed step, 5-step DAG',
      'fully cached re-run of 10 steps',
      '`trainyard run` of',
      '`trainyard --help`',
      '`trainyard validate`',
      'webhook answer, durable intake',
      '10,000 distinct steps',
    ])
      expect(row(measure), `no "${measure}" row in:\n${out}`).toBeDefined();
    expect(out).toMatch(/\| +\| accepted deliveries per second \(burst[^|]*\| [\d.]+ +\| [\d.]+ bare client starts\/s/);
    expect(out).toMatch(/\| +\| accepted deliveries per second, no intake worker[^|]*\| [\d.]+ +\| [\d.]+ bare/);
    expect(out).toMatch(/\| +\| runs started per second \(burst[^|]*\| [\d.]+ +\| [\d.]+ bare client starts\/s/);
    for (const phase of [
      'process start',
      'checks',
      'embedded Temporal server ready',
      'workflow bundle + workers',
      'run (all cached)',
      'shutdown',
    ]) {
      expect(row(phase), `no "${phase}" phase in:\n${out}`).toMatch(/\| [\d.]+ m?s +\|$/);
    }
  }, 900_000);
});
