// Steps with `machine:` of kind kubernetes run as Jobs on a real local Kubernetes: outputs
// flow between local steps and Jobs, the cache skips Jobs, failures read as a person would
// say them, and GPU time and cost reach the lineage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepOf, BUSYBOX_IMAGE } from '../../engine/harness.js';
import { lineageSchemaErrors } from '../../lineage/schema.js';
import { startKubeEngine, type KubeEngine } from './harness.js';

let e: KubeEngine;
beforeAll(async () => {
  e = await startKubeEngine();
});
afterAll(async () => {
  await e?.stop();
});

const FLOW = `name: flow
params:
  who: { type: string, default: world }
machines:
  k: { kubernetes: standard }
steps:
  make:
    image: ${BUSYBOX_IMAGE}
    run: printf 'hello %s' "$PARAM_WHO" > /outputs/greeting
    outputs: [greeting]
  shout:
    image: ${BUSYBOX_IMAGE}
    machine: k
    run: |
      tr a-z A-Z < /inputs/greeting > /outputs/loud && cat data.txt >> /outputs/loud && cp /trainyard/params.json /outputs/params && echo '{"chars": 11}' && echo done >&2
    inputs: { greeting: steps.make.outputs.greeting }
    outputs: [loud, params]
  check:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/loud > /outputs/final
    inputs: { loud: steps.shout.outputs.loud }
    outputs: [final]
`;

describe('kubernetes steps', () => {
  it('run as Jobs with the commit, inputs and params in place; outputs flow back to a local step; no pod is left', async () => {
    const repo = e.repo().write({ '.trainyard/flow.yaml': FLOW, 'data.txt': ' from the commit', 'salt.txt': e.salt });
    repo.commit();
    const s = await e.run(repo, '.trainyard/flow.yaml');
    expect(s.steps.map((x) => [x.name, x.state, x.message])).toEqual([
      ['make', 'succeeded', undefined],
      ['shout', 'succeeded', undefined],
      ['check', 'succeeded', undefined],
    ]);
    const final = stepOf(s, 'check').outcome!.outputs.final!;
    expect((await e.store.getBytes(final.digest)).toString()).toBe('HELLO WORLD from the commit');
    const shout = stepOf(s, 'shout');
    expect(JSON.parse((await e.store.getBytes(shout.outcome!.outputs.params!.digest)).toString())).toEqual({
      who: 'world',
    });
    expect(shout.host).toMatchObject({
      kind: 'kubernetes',
      machineClass: 'k',
      kubernetesClass: 'standard',
      namespace: e.namespace,
      node: 'localhost',
      gpus: 0,
    });
    expect(shout.outcome!.metrics).toMatchObject({ samples: 1, last: { chars: 11 } });
    const log = (await e.store.getBytes(shout.outcome!.logDigest!)).toString();
    expect(log).toContain('O {"chars": 11}');
    expect(log).toContain('O done');
    expect(shout.outcome!.attempts).toMatchObject([
      {
        attempt: 1,
        outcome: 'succeeded',
        exitCode: 0,
        compute: { kind: 'kubernetes', namespace: e.namespace, node: 'localhost' },
      },
    ]);
    expect(e.jobsCreated()).toBe(1);
    expect(await e.pods()).toEqual([]);

    // The same commit again: every step from the cache, no Job created.
    const again = await e.run(repo, '.trainyard/flow.yaml');
    expect(again.steps.map((x) => x.state)).toEqual(['cached', 'cached', 'cached']);
    expect(e.jobsCreated()).toBe(1);
  });

  it('bills requested GPU time at the class rate, in the step and the lineage totals', async () => {
    const repo = e.repo().write({
      '.trainyard/gpu.yaml': `name: gpu
machines:
  g: { kubernetes: standard, gpus: 1 }
steps:
  train: { image: ${BUSYBOX_IMAGE}, machine: g, run: "sleep 2 && echo trained > /outputs/model", outputs: [model], cache: false }
`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/gpu.yaml');
    const host = stepOf(s, 'train').host!;
    expect([stepOf(s, 'train').state, stepOf(s, 'train').message]).toEqual(['succeeded', undefined]);
    expect(host.gpus).toBe(1);
    expect(host.billedSeconds).toBeGreaterThanOrEqual(2);
    // standard: $0.36/h per pod + $3.60/h per GPU
    expect(host.pricePerHourUsd).toBeCloseTo(3.96, 6);
    expect(host.costUsd).toBeCloseTo((host.billedSeconds! * 3.96) / 3600, 5);
    const lineage = await e.store.getRecord<{ totals: { costUsd: number; gpu?: { billedGpuSeconds: number } } }>(
      s.lineageKey!,
    );
    expect(lineage!.totals.costUsd).toBeCloseTo(host.costUsd!, 5);
    expect(lineage!.totals.gpu!.billedGpuSeconds).toBeCloseTo(host.billedSeconds!, 2);
    expect(lineageSchemaErrors(lineage)).toEqual([]);
  });

  it('says why a step failed: its exit code and last line, or an image that cannot be pulled', async () => {
    const repo = e.repo().write({
      '.trainyard/bad.yaml': `name: bad
machines:
  k: { kubernetes: standard }
steps:
  exits: { image: ${BUSYBOX_IMAGE}, machine: k, run: "echo giving up && exit 3", cache: false }
  pull: { image: localhost/trainyard-no-such-image:1, machine: k, run: "true", cache: false }
`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/bad.yaml');
    expect(stepOf(s, 'exits')).toMatchObject({ state: 'failed', message: 'exited with code 3: giving up' });
    expect(stepOf(s, 'exits').outcome!.attempts[0]).toMatchObject({ exitCode: 3, outcome: 'failed' });
    expect(stepOf(s, 'pull').state).toBe('failed');
    expect(stepOf(s, 'pull').message).toMatch(
      /^image localhost\/trainyard-no-such-image:1 of container step could not be pulled \((ErrImagePull|ImagePullBackOff)\)/,
    );
    expect(await e.pods()).toEqual([]);
  });
});
