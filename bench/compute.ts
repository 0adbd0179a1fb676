// Compute simulation: what host reuse saves. A 20-step pipeline in which 12 steps need one
// GPU class (at most 3 hosts of it at once) runs on a virtual clock through the host pool's
// own bookkeeping (PoolCore: which host a step gets, when a host stays warm, how its bill is
// split); with reuse off every GPU step boots a host of its own and terminates it after.
// Prints instances booted and idle billed GPU-seconds (boot, waiting, one-minute minimum).
//
//   npx tsx bench/compute.ts [--boot-seconds 150] [--idle-seconds 600]
import { EMBEDDED_PRICES, priceFor } from '../activities/ec2/pricing.js';
import { PoolCore, type ComputeSummary, type PoolHost } from '../workflows/hostpool.js';

interface SimStep {
  name: string;
  needs: string[];
  seconds: number;
  gpu: boolean;
}

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number of seconds`);
  return v;
};

const BOOT_S = arg('boot-seconds', 150);
const IDLE_S = arg('idle-seconds', 600);
const LIMIT = 3;
const TYPE = 'g5.xlarge';
const PRICE = priceFor(EMBEDDED_PRICES, TYPE, 'spot')!;

/** prepare → split → 6 × (train → eval) on the GPU class → compare → report/export → package; plus data checks. */
function pipeline(): SimStep[] {
  const steps: SimStep[] = [
    { name: 'prepare', needs: [], seconds: 120, gpu: false },
    { name: 'check-data', needs: ['prepare'], seconds: 45, gpu: false },
    { name: 'split', needs: ['prepare'], seconds: 60, gpu: false },
  ];
  const trainSeconds = [900, 1200, 600, 1500, 750, 1050];
  const evalSeconds = [180, 240, 120, 300, 150, 210];
  for (let i = 1; i <= 6; i++) {
    steps.push({ name: `train-${i}`, needs: ['split'], seconds: trainSeconds[i - 1]!, gpu: true });
    steps.push({ name: `eval-${i}`, needs: [`train-${i}`], seconds: evalSeconds[i - 1]!, gpu: true });
  }
  steps.push(
    { name: 'compare', needs: [1, 2, 3, 4, 5, 6].map((i) => `eval-${i}`), seconds: 30, gpu: false },
    { name: 'report', needs: ['compare', 'check-data'], seconds: 20, gpu: false },
    { name: 'export', needs: ['compare'], seconds: 90, gpu: false },
    { name: 'sign', needs: ['export'], seconds: 10, gpu: false },
    { name: 'package', needs: ['sign', 'report'], seconds: 30, gpu: false },
  );
  return steps;
}

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

function simulate(steps: SimStep[], reuse: boolean): ComputeSummary & { wallSeconds: number } {
  const core = new PoolCore();
  const events: Event[] = [];
  let seq = 0;
  let now = 0;
  const at = (t: number, run: () => void) => events.push({ at: t, seq: seq++, run });
  const done = new Set<string>();
  const started = new Set<string>();
  const waiting: SimStep[] = [];
  let hostSeq = 0;
  const ms = (t: number) => t * 1000;

  const pendingGpu = () => steps.filter((s) => s.gpu && !started.has(s.name)).length;

  const runOn = (h: PoolHost, step: SimStep, first: boolean) => {
    core.startStep(h, ms(now), first);
    at(now + step.seconds, () => {
      core.endStep(h, ms(now), undefined);
      // As in the pipeline: the step releases its host, blocked acquires wake, then dependents start.
      const needed = reuse ? pendingGpu() + waiting.length : 0;
      const surplus = core.surplusIdle('gpu', needed, LIMIT);
      for (const x of surplus) core.terminated(x, ms(now));
      if (!surplus.includes(h)) {
        const gen = h.idleGen;
        at(now + IDLE_S, () => {
          if (h.state === 'idle' && h.idleGen === gen) core.terminated(h, ms(now));
        });
      }
      serveWaiting();
      finish(step);
    });
  };

  const acquire = (step: SimStep): boolean => {
    const idle = reuse ? core.pickIdle('gpu') : undefined;
    if (idle) {
      runOn(idle, step, false);
      return true;
    }
    if (core.active('gpu') >= LIMIT) return false;
    const h = core.addProvisioning('gpu', `q${++hostSeq}`, 1);
    core.launched(h, {
      instanceId: `i-${hostSeq}`,
      instanceType: TYPE,
      market: 'spot',
      imageId: '',
      launchedAt: new Date(ms(now)).toISOString(),
      pricePerHourUsd: PRICE,
      attempts: [],
      found: false,
    });
    at(now + BOOT_S, () => runOn(h, step, true));
    return true;
  };

  const serveWaiting = () => {
    while (waiting.length > 0 && acquire(waiting[0]!)) waiting.shift();
  };

  const start = (step: SimStep) => {
    started.add(step.name);
    if (!step.gpu) at(now + step.seconds, () => finish(step));
    else if (!acquire(step)) waiting.push(step);
  };

  const finish = (step: SimStep) => {
    done.add(step.name);
    for (const s of steps) if (!started.has(s.name) && s.needs.every((n) => done.has(n))) start(s);
  };

  for (const s of steps) if (s.needs.length === 0) start(s);
  while (events.length > 0) {
    events.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const e = events.shift()!;
    now = e.at;
    e.run();
  }
  if (done.size !== steps.length) throw new Error(`simulation stalled: ${steps.length - done.size} steps never ran`);
  return { ...core.summary(), wallSeconds: now };
}

const steps = pipeline();
const on = simulate(steps, true);
const off = simulate(steps, false);
const gpuSteps = steps.filter((s) => s.gpu).length;
const row = (label: string, a: string | number, b: string | number) =>
  `${label.padEnd(28)}${String(a).padStart(12)}${String(b).padStart(12)}`;
const usd = (x: number) => `$${x.toFixed(2)}`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
console.log(
  `Compute simulation: ${steps.length} steps, ${gpuSteps} on one GPU class (${TYPE} spot, $${PRICE}/h, 1 GPU), at most ${LIMIT} hosts at once;`,
);
console.log(`boot ${BOOT_S} s to a ready agent, idle timeout ${IDLE_S} s, per-second billing with a 60 s minimum.\n`);
console.log(row('', 'reuse on', 'reuse off'));
console.log(row('instances booted', on.instancesBooted, off.instancesBooted));
console.log(row('billed GPU-seconds', on.gpuSeconds.toFixed(0), off.gpuSeconds.toFixed(0)));
console.log(row('idle billed GPU-seconds', on.idleGpuSeconds.toFixed(0), off.idleGpuSeconds.toFixed(0)));
console.log(row('idle fraction of GPU time', pct(on.idleFraction), pct(off.idleFraction)));
console.log(row('compute cost', usd(on.costUsd), usd(off.costUsd)));
console.log(row('wall time (s)', on.wallSeconds, off.wallSeconds));
