// A large pipeline stays inside Temporal's limits: 600 distinct steps, every one executed (a
// container of its own: ~5,700 history events, past Temporal's default suggestion), the run
// continuing as new at the documented threshold (README, "Large runs": when Temporal suggests
// it, by default after 4,096 events or 4 MiB of history, and at 10,000 events at the latest),
// and the state it carries across gzipped by app/codec.ts while small payloads stay plain
// JSON. 2,000 executions cost ~20 CPU-minutes of podman, Temporal and worker time, too much for
// CI on 2 cores: `node --import tsx bench/engine.ts --big 2000` runs that scale.
import type { Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GzipCodec } from '../../app/codec.js';
import { defaultRunOptions } from '../../app/engine.js';
import type { PipelineCarry } from '../../workflows/pipeline.js';
import { BUSYBOX_IMAGE, startEngine, type Engine } from './harness.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const LAYERS = 6;
const WIDTH = 100;
/** The run's own limit, as README documents it (not lowered for the test). */
const HISTORY_EVENT_LIMIT = 10_000;
/**
 * Events a run may add between reaching its threshold and continuing as new: the workflow
 * task in flight when Temporal first suggests it, and at most one pass of the run's loop
 * (finished-step signals arriving meanwhile, one prepare and one start activity).
 */
const SLACK = 300;

const text = (b: Uint8Array | null | undefined): string => (b ? Buffer.from(b).toString('utf8') : '');
const encodingOf = (p: Payload): string => text(p.metadata?.encoding);

let engine: Engine;
beforeAll(async () => {
  // No step here needs a network; without one, podman skips setting one up for each container.
  process.env.TRAINYARD_CONTAINER_RUN_FLAGS = '--network none';
  engine = await startEngine();
});
afterAll(async () => {
  await engine?.stop();
});

it('600 distinct steps each execute once; the run continues as new at the documented threshold, carrying gzipped state', async () => {
  const lines = ['name: large', 'steps:'];
  for (let l = 0; l < LAYERS; l++) {
    for (let i = 0; i < WIDTH; i++) {
      // Each step writes its own name (and this file's salt): a cache key, a container and an
      // output of its own. One line each keeps the file small.
      const needs = l > 0 ? `, needs: [s${l - 1}_${i}]` : '';
      lines.push(
        `  s${l}_${i}: { image: ${BUSYBOX_IMAGE}, run: echo s${l}_${i} ${engine.salt} >/outputs/o, outputs: [o]${needs} }`,
      );
    }
  }
  const repo = engine.repo().write({ '.trainyard/large.yaml': `${lines.join('\n')}\n` });
  repo.commit();
  const { workflowId, firstExecutionRunId } = await engine.start(repo, '.trainyard/large.yaml', {
    options: { parallelism: 8 },
  });
  const s = await engine.result(workflowId);
  expect(defaultRunOptions().historyEventLimit).toBe(HISTORY_EVENT_LIMIT);

  expect(s.state).toBe('succeeded');
  expect(s.steps).toHaveLength(LAYERS * WIDTH);
  // Every step executed here: not reused, not joined, one attempt, its own key and output.
  const notExecuted = s.steps.filter(
    (x) =>
      x.state !== 'succeeded' ||
      x.cache?.decision !== 'miss' ||
      x.outcome?.producedBy.runId !== s.runId ||
      x.outcome.attempts.length !== 1,
  );
  expect(notExecuted.map((x) => `${x.name}:${x.state}:${x.cache?.decision}:${x.message ?? ''}`).slice(0, 5)).toEqual(
    [],
  );
  expect(new Set(s.steps.map((x) => x.cache!.key)).size).toBe(LAYERS * WIDTH);
  const outputs = await Promise.all(
    s.steps.map(async (x) => [x.name, (await engine.store.getBytes(x.outcome!.outputs.o!.digest)).toString()]),
  );
  expect(outputs.filter(([name, out]) => out !== `${name} ${engine.salt}\n`).slice(0, 5)).toEqual([]);

  // The chain of executions, each read from Temporal as it was recorded (payloads still encoded).
  const runs: { events: HistoryEvent[] }[] = [];
  for (let runId: string | undefined = firstExecutionRunId; runId;) {
    const events: HistoryEvent[] =
      (await engine.client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    runs.push({ events });
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId || undefined;
  }
  expect(s.continuedAsNew).toBeGreaterThan(0);
  expect(runs).toHaveLength((s.continuedAsNew ?? 0) + 1);
  const codec = new GzipCodec();
  for (const [n, { events }] of runs.entries()) {
    // Where this execution reached its threshold: Temporal's first suggestion, or the run's own limit.
    const suggested = events.find((e) => e.workflowTaskStartedEventAttributes?.suggestContinueAsNew);
    const threshold = Math.min(suggested ? Number(String(suggested.eventId)) : Infinity, HISTORY_EVENT_LIMIT);
    if (n === runs.length - 1) {
      expect(events.length, 'the last execution').toBeLessThan(threshold + SLACK);
      continue;
    }
    expect(events.length, `execution ${n + 1} continued before its threshold (${threshold})`).toBeGreaterThanOrEqual(
      threshold,
    );
    expect(events.length - threshold, `execution ${n + 1} went on past its threshold (${threshold})`).toBeLessThan(
      SLACK,
    );
    // What it handed on: the state of every step, gzipped, and whole when decoded.
    const handedOn = events.at(-1)!.workflowExecutionContinuedAsNewEventAttributes!.input!.payloads! as Payload[];
    expect(handedOn.map(encodingOf)).toEqual(['binary/gzip', 'binary/gzip']);
    const [, carry] = await codec.decode(handedOn);
    const state = JSON.parse(text(carry!.data)) as PipelineCarry;
    expect(Object.keys(state.steps)).toHaveLength(LAYERS * WIDTH);
    expect(state.continuedAsNew).toBe(n + 1);
  }
  // Small payloads (a finished step's signal) stay plain JSON, readable in the Temporal UI.
  const signal = runs[0]!.events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'stepFinished');
  expect(encodingOf(signal!.workflowExecutionSignaledEventAttributes!.input!.payloads![0]! as Payload)).toBe(
    'json/plain',
  );
}, 900_000);
