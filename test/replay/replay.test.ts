// Upgrade safety: every history recorded from a real run (test/replay/record.ts) replays
// against the workflow code of this checkout, bundled as the workers bundle it. A change
// that would make running workflows fail on their next task after an upgrade (a new
// activity call, a reordered timer, a removed signal handler, without `patched()`) fails
// here with Temporal's DeterminismViolationError.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { dataConverter } from '../../app/codec.js';
import { quietTemporalRuntime } from '../../app/local/run.js';
import { workflowBundle } from '../../app/worker.js';
import { historyFromJson } from './history.js';

const DIR = join(import.meta.dirname, 'histories');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

/** The scenarios the recorder covers; a missing one means a history file was lost. */
const SCENARIOS = [
  'local',
  'cached',
  'failed-retries',
  'cancelled',
  'continue-as-new',
  'ec2-host-lost',
  'lookahead-executed',
  'lookahead-cached',
  'local-start-executed',
  'slim-hits-cached',
];

it('has a recorded history for every scenario, pipeline runs and step executions alike', () => {
  for (const s of SCENARIOS)
    expect(
      files.filter((f) => f.startsWith(`${s}.pipelineRun`)),
      s,
    ).not.toEqual([]);
  expect(files.filter((f) => f.includes('.stepExecution.')).length).toBeGreaterThanOrEqual(4);
  expect(files.filter((f) => f.startsWith('continue-as-new.pipelineRun.')).length).toBeGreaterThan(1);
});

it('every recorded history replays against the current workflow code', async () => {
  quietTemporalRuntime();
  const histories = files.map((f) => ({
    workflowId: f.replace(/\.json$/, ''),
    history: historyFromJson(JSON.parse(readFileSync(join(DIR, f), 'utf8'))),
  }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const r of Worker.runReplayHistories(
    { workflowBundle: await workflowBundle(), dataConverter },
    histories,
  )) {
    replayed++;
    if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message.split('\n')[0]}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
}, 180_000);
