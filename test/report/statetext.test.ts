// Every place that shows a step's state says it once: the report's step table, the CLI's live
// table (terminal and log form), the check run's progress table and `trainyard lineage`. The
// messages are the ones the workflow really sets ('failed' when a failure carries no message,
// 'skipped: <step> failed', 'cancelled: no run needs this step any more').
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildLineage } from '../../activities/lineage/document.js';
import { saveLineage } from '../../activities/lineage/storage.js';
import { lineageOf } from '../../activities/lineage/query.js';
import { formatLineageAnswer } from '../../activities/lineage/text.js';
import { stepTable } from '../../activities/githost/text.js';
import { renderReport } from '../../activities/report/markdown.js';
import { LiveTable, renderTable } from '../../app/local/table.js';
import type { RunStatus } from '../../model/types.js';
import { currentRun } from '../lineage/fixture.js';
import { MemStore } from '../lineage/memstore.js';

function run(): { input: ReturnType<typeof currentRun>['input']; status: RunStatus } {
  const r = currentRun();
  const steps = r.status.steps;
  const big = steps.find((s) => s.name === 'train_big')!;
  // A failure without an exit code or a message of its own (an image that would not start).
  big.message = 'failed';
  big.outcome = {
    ...big.outcome!,
    message: undefined,
    attempts: [
      {
        attempt: 1,
        host: 'h',
        startedAt: big.startedAt!,
        finishedAt: big.finishedAt!,
        exitCode: null,
        outcome: 'failed',
      },
    ],
  };
  steps.find((s) => s.name === 'evaluate')!.message = 'skipped: train_big failed';
  const small = steps.find((s) => s.name === 'train_small')!;
  Object.assign(small, { state: 'cancelled', message: 'cancelled: no run needs this step any more' });
  small.outcome = {
    ...small.outcome!,
    state: 'cancelled',
    attempts: [{ ...small.outcome!.attempts[0]!, exitCode: null, outcome: 'cancelled' }],
  };
  return r;
}

const STEPS = { train_big: 'failed', evaluate: 'skipped', train_small: 'cancelled' } as const;

/** How often the state's word appears in the text shown for that step. */
function times(text: string, word: string): number {
  return text.match(new RegExp(`\\b${word}\\b`, 'gi'))?.length ?? 0;
}

function lineOf(text: string, step: string): string {
  const line = text.split('\n').find((l) => l.includes(step) && !l.includes('-->') && !l.includes(':::'));
  if (line === undefined) throw new Error(`no line for ${step} in\n${text}`);
  return line;
}

describe('state texts never repeat themselves', () => {
  it("in the report's step table", () => {
    const r = run();
    const md = renderReport(
      buildLineage(r.input, r.status, {
        pipelineFileDigest: r.input.pipeline.digest,
        finishedAt: '2030-01-01T00:00:00.000Z',
      }),
    );
    const table = md.slice(md.indexOf('### Steps'), md.indexOf('###', md.indexOf('### Steps') + 3));
    for (const [step, state] of Object.entries(STEPS))
      expect({ step, n: times(lineOf(table, `\`${step}\``), state) }).toEqual({ step, n: 1 });
    expect(lineOf(table, '`train_big`')).toContain('| ❌ failed |');
    expect(lineOf(table, '`evaluate`')).toMatch(/train\\?_big failed/);
    expect(lineOf(table, '`train_small`')).toContain('no run needs this step any more');
  });

  it("in the CLI's live table, on a terminal and in a log", () => {
    const r = run();
    const lines = renderTable(r.status, 400);
    for (const [step, state] of Object.entries(STEPS))
      expect({ step, n: times(lineOf(lines.join('\n'), step), state) }).toEqual({ step, n: 1 });
    const out = new PassThrough();
    let written = '';
    out.on('data', (b: Buffer) => (written += b.toString()));
    new LiveTable(Object.assign(out, { isTTY: false }) as unknown as NodeJS.WriteStream).update(r.status);
    for (const [step, state] of Object.entries(STEPS))
      expect({ step, n: times(lineOf(written, `${step}:`), state) }).toEqual({ step, n: 1 });
    expect(lineOf(written, 'evaluate:')).toMatch(/evaluate: skipped — train_big failed$/);
  });

  it('says why a running step runs without "running — ran:"', () => {
    const r = run();
    const small = r.status.steps.find((s) => s.name === 'train_small')!;
    Object.assign(small, {
      state: 'running',
      message: undefined,
      cache: { decision: 'miss', key: 'k', reason: 'ran: code changed (train.py)' },
    });
    expect(lineOf(renderTable(r.status, 400).join('\n'), 'train_small')).toMatch(
      /running\s+\d+m \d+s\s+code changed \(train\.py\)$/,
    );
    expect(lineOf(stepTable(r.status), '`train_small`')).toMatch(/\| running \|.*\| code changed \(train\.py\) \|$/);
    const out = new PassThrough();
    let written = '';
    out.on('data', (b: Buffer) => (written += b.toString()));
    new LiveTable(Object.assign(out, { isTTY: false }) as unknown as NodeJS.WriteStream).update(r.status);
    expect(lineOf(written, 'train_small:')).toMatch(/train_small: running — code changed \(train\.py\)$/);
  });

  it("in the check run's progress table", () => {
    const r = run();
    for (const s of r.status.steps) delete s.cache;
    const table = stepTable(r.status);
    for (const [step, state] of Object.entries(STEPS))
      expect({ step, n: times(lineOf(table, `\`${step}\``), state) }).toEqual({ step, n: 1 });
  });

  it('in `trainyard lineage <run>`', async () => {
    const r = run();
    for (const s of r.status.steps) delete s.cache;
    const store = new MemStore();
    await saveLineage(
      store,
      buildLineage(r.input, r.status, {
        pipelineFileDigest: r.input.pipeline.digest,
        finishedAt: '2030-01-01T00:00:00.000Z',
      }),
    );
    const text = formatLineageAnswer(await lineageOf(store, r.status.runId));
    for (const [step, state] of Object.entries(STEPS))
      expect({ step, n: times(lineOf(text, `- ${step}:`), state) }).toEqual({ step, n: 1 });
  });
});
