// The host pool's bookkeeping: which host a step gets, and how a host's bill is split over
// the steps that used it (every billed second charged once; idle GPU time counted).
import { describe, expect, it } from 'vitest';
import type { ProvisionHostResult } from '../../activities/ec2/types.js';
import { PoolCore } from '../../workflows/hostpool.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const s = (sec: number): number => T0 + sec * 1000;

function launch(price: number, atSec = 0): ProvisionHostResult {
  return {
    instanceId: 'i-0123456789abcdef0',
    instanceType: 'g5.xlarge',
    market: 'spot',
    imageId: 'ami-0123456789abcdef0',
    launchedAt: new Date(s(atSec)).toISOString(),
    pricePerHourUsd: price,
    attempts: [
      { instanceType: 'g5.xlarge', market: 'spot', outcome: 'launched', at: new Date(s(atSec)).toISOString() },
    ],
    found: false,
  };
}

describe('PoolCore', () => {
  it('charges boot to the first step, waiting to the next, the idle tail to the last, and bills the whole life once', () => {
    const core = new PoolCore();
    const h = core.addProvisioning('gpu', 'q1', 1);
    expect(core.active('gpu')).toBe(1);
    core.launched(h, launch(3.6));
    // Boot takes 100 s; step a runs 200 s.
    const a = core.startStep(h, s(100), true);
    expect(a.provisioning).toHaveLength(1);
    core.endStep(h, s(300), { samples: 10, meanUtilisation: 50, maxMemoryMiB: 1000, idleFraction: 0.5 });
    expect(a.billedSeconds).toBe(300);
    expect(a.costUsd).toBe(0.3);
    // 100 s boot + half of 200 s idle inside the step.
    expect(a.idleGpuSeconds).toBe(200);
    expect(core.pickIdle('gpu')).toBe(h);
    // Idle 50 s, then step b for 100 s without GPU samples (counted as used).
    const b = core.startStep(h, s(350), false);
    expect(b.provisioning).toBeUndefined();
    expect(core.pickIdle('gpu')).toBeUndefined();
    core.endStep(h, s(450), undefined);
    expect(b.billedSeconds).toBe(150);
    expect(b.idleGpuSeconds).toBe(50);
    // Terminated 30 s later: the tail goes to b.
    core.terminated(h, s(480));
    expect(b.billedSeconds).toBe(180);
    expect(h.record.billedSeconds).toBe(480);
    expect(h.record.costUsd).toBe(0.48);
    expect(h.record.terminatedAt).toBe(new Date(s(480)).toISOString());
    expect((a.billedSeconds ?? 0) + (b.billedSeconds ?? 0)).toBe(h.record.billedSeconds);
    expect(core.summary()).toEqual({
      instancesBooted: 1,
      billedSeconds: 480,
      costUsd: 0.48,
      gpuSeconds: 480,
      idleGpuSeconds: 280,
      idleFraction: 0.583333,
    });
    expect(core.active('gpu')).toBe(0);
  });

  it('bills the one-minute minimum for a host that lived less', () => {
    const core = new PoolCore();
    const h = core.addProvisioning('gpu', 'q1', 2);
    core.launched(h, launch(3.6));
    const a = core.startStep(h, s(5), true);
    core.endStep(h, s(20), undefined);
    core.terminated(h, s(21));
    expect(a.billedSeconds).toBe(60);
    expect(a.costUsd).toBe(0.06);
    // 2 GPUs × (60 − 15 used) s.
    expect(a.idleGpuSeconds).toBe(90);
  });

  it('hands out the most recently idle host and counts provisioning hosts against the limit', () => {
    const core = new PoolCore();
    const h1 = core.addProvisioning('gpu', 'q1', 1);
    const h2 = core.addProvisioning('gpu', 'q2', 1);
    core.addProvisioning('cpu', 'q3', 0);
    expect(core.active('gpu')).toBe(2);
    core.launched(h1, launch(1));
    core.launched(h2, launch(1));
    core.startStep(h1, s(10), true);
    core.startStep(h2, s(10), true);
    core.endStep(h1, s(20), undefined);
    core.endStep(h2, s(30), undefined);
    expect(core.pickIdle('gpu')).toBe(h2);
    expect(core.idleCount('gpu', h2)).toBe(1);
    core.provisionFailed(core.addProvisioning('gpu', 'q4', 1), [], 'no capacity');
    expect(core.active('gpu')).toBe(2);
  });

  it('keeps the host just released over an older idle one when only one is still needed', () => {
    const core = new PoolCore();
    const [a, b] = ['qa', 'qb'].map((q) => {
      const h = core.addProvisioning('gpu', q, 1);
      core.launched(h, launch(1));
      return h;
    }) as [ReturnType<PoolCore['addProvisioning']>, ReturnType<PoolCore['addProvisioning']>];
    core.startStep(a, s(10), true);
    core.startStep(b, s(10), true);
    core.endStep(a, s(20), undefined);
    core.endStep(b, s(40), undefined);
    expect(core.surplusIdle('gpu', 1, 3)).toEqual([a]);
    expect(core.surplusIdle('gpu', 2, 3)).toEqual([]);
    // The per-class limit caps what is worth keeping warm.
    expect(core.surplusIdle('gpu', 5, 1)).toEqual([a]);
    expect(core.surplusIdle('gpu', 0, 3)).toEqual([a, b]);
  });
});
