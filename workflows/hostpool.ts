// The run's compute hosts, kept inside the pipeline workflow: deterministic code only.
// A step that needs a machine class gets a warm idle host of that class when there is one,
// otherwise a new one (bounded per class; waits at the limit). A host is terminated as soon
// as no pending step of the run can use it, after an idle timeout at the latest, and always
// at the end of the run. Billing is accounted here from EC2's launch time and the workflow
// clock: every billed second of a host is charged to exactly one step.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxyActivities,
  sleep,
} from '@temporalio/workflow';
import type { ComputeActivities } from '../activities/ec2/activities.js';
import type { PoolSettings, ProvisionHostResult } from '../activities/ec2/types.js';
import type { Ec2MachineSpec, MachineSpec } from '../pipeline/types.js';
import type { HostRecord, ProvisionAttempt } from '../model/hosttypes.js';
import { FailureType } from '../model/failures.js';

export interface HostPoolOptions {
  runId: string;
  workflowId: string;
  machines: Record<string, MachineSpec>;
  /** Per-class concurrency; lowered (never raised) to the server's limit. */
  maxPerClass?: Record<string, number>;
  /** Step timeouts, so a host's lease covers the step it runs (default 6 h). */
  stepTimeoutSeconds?: Record<string, number>;
  /** State from `state()` of the run before a continue-as-new. */
  restore?: HostPoolState;
}

/** Cost of the run's compute, for the report. */
export interface ComputeSummary {
  instancesBooted: number;
  billedSeconds: number;
  costUsd: number;
  gpuSeconds: number;
  idleGpuSeconds: number;
  /** idleGpuSeconds / gpuSeconds (0 when no GPU time was billed). */
  idleFraction: number;
}

type HostState = 'provisioning' | 'idle' | 'busy' | 'terminating' | 'terminated' | 'failed';

export interface PoolHost {
  queue: string;
  machine: string;
  gpus: number;
  state: HostState;
  /** Instance-level record: provisioning attempts and the host's whole bill. */
  record: HostRecord;
  launchedAtMs?: number;
  /** Start of the not-yet-charged span (launch, or the previous step's release). */
  chargeFromMs?: number;
  stepStartMs?: number;
  /** Record of the step on it now, or of the last one (the final idle tail goes there). */
  stepRecord?: HostRecord;
  chargedSeconds: number;
  /** Bumped on every release, so a stale idle timer can tell it is stale. */
  idleGen: number;
  idleSinceMs?: number;
}

export interface HostPoolState {
  seq: number;
  hosts: PoolHost[];
}

const DEFAULT_STEP_TIMEOUT_S = 6 * 3600;
/** EC2 bills Linux instances per second with a one-minute minimum. */
const MIN_BILLED_SECONDS = 60;

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const r6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/**
 * Pool bookkeeping without Temporal: which host to hand out, when one may be provisioned,
 * and the billing. The workflow wrapper (HostPool) and the compute bench share it.
 */
export class PoolCore {
  hosts: PoolHost[] = [];
  constructor(restore?: HostPoolState) {
    if (restore) {
      this.hosts = restore.hosts.map((h) => ({ ...h, state: h.state === 'busy' ? 'idle' : h.state }));
    }
  }

  /** The warm idle host of the class used most recently (the others reach their idle timeout first). */
  pickIdle(machine: string): PoolHost | undefined {
    let best: PoolHost | undefined;
    for (const h of this.hosts) {
      if (h.machine === machine && h.state === 'idle' && (!best || (h.idleSinceMs ?? 0) > (best.idleSinceMs ?? 0)))
        best = h;
    }
    return best;
  }

  /** Hosts that count against the class limit. */
  active(machine: string): number {
    return this.hosts.filter(
      (h) => h.machine === machine && (h.state === 'provisioning' || h.state === 'idle' || h.state === 'busy'),
    ).length;
  }

  idleCount(machine: string, except?: PoolHost): number {
    return this.hosts.filter((h) => h !== except && h.machine === machine && h.state === 'idle').length;
  }

  /**
   * Idle hosts of the class beyond what steps still need (pending steps plus acquires
   * blocked at the limit), longest idle first: those are terminated. The host just
   * released is kept over older idle ones, since the step that follows it usually
   * starts at once and picks the most recently idle host.
   */
  surplusIdle(machine: string, needed: number, limit: number): PoolHost[] {
    const idle = this.hosts
      .filter((h) => h.machine === machine && h.state === 'idle')
      .sort((a, b) => (a.idleSinceMs ?? 0) - (b.idleSinceMs ?? 0));
    return idle.slice(0, Math.max(0, idle.length - Math.min(needed, limit)));
  }

  addProvisioning(machine: string, queue: string, gpus: number): PoolHost {
    const h: PoolHost = {
      queue,
      machine,
      gpus,
      state: 'provisioning',
      record: { kind: 'ec2', queue, machineClass: machine, gpus, provisioning: [] },
      chargedSeconds: 0,
      idleGen: 0,
    };
    this.hosts.push(h);
    return h;
  }

  launched(h: PoolHost, r: ProvisionHostResult): void {
    const rec = h.record;
    rec.instanceId = r.instanceId;
    rec.instanceType = r.instanceType;
    rec.market = r.market;
    rec.pricePerHourUsd = r.pricePerHourUsd;
    rec.imageId = r.imageId || undefined;
    rec.availabilityZone = r.availabilityZone;
    rec.launchedAt = r.launchedAt;
    rec.provisioning = [...(rec.provisioning ?? []), ...r.attempts];
    h.launchedAtMs = Date.parse(r.launchedAt);
    h.chargeFromMs = h.launchedAtMs;
  }

  provisionFailed(h: PoolHost, attempts: ProvisionAttempt[], message: string): void {
    h.record.provisioning = [...(h.record.provisioning ?? []), ...attempts];
    h.record.lostReason = message;
    h.state = h.record.instanceId ? 'terminating' : 'failed';
  }

  /** Hands the host to a step; returns the step's own record. */
  startStep(h: PoolHost, nowMs: number, firstUse: boolean): HostRecord {
    const rec = h.record;
    const stepRecord: HostRecord = {
      kind: 'ec2',
      queue: h.queue,
      machineClass: h.machine,
      instanceId: rec.instanceId,
      instanceType: rec.instanceType,
      market: rec.market,
      gpus: h.gpus,
      pricePerHourUsd: rec.pricePerHourUsd,
      imageId: rec.imageId,
      availabilityZone: rec.availabilityZone,
      launchedAt: rec.launchedAt,
      // Provisioning attempts belong to the step that caused the boot.
      ...(firstUse ? { provisioning: rec.provisioning } : {}),
      billedSeconds: 0,
      costUsd: 0,
      idleGpuSeconds: 0,
    };
    h.state = 'busy';
    h.stepStartMs = nowMs;
    h.stepRecord = stepRecord;
    h.idleGen += 1;
    return stepRecord;
  }

  /** The step is done: charge it from the end of the previous charge until now. */
  endStep(h: PoolHost, nowMs: number, gpu: HostRecord['gpu']): void {
    const rec = h.stepRecord;
    if (!rec) return;
    const from = h.chargeFromMs ?? h.stepStartMs ?? nowMs;
    const charged = Math.max(0, (nowMs - from) / 1000);
    const busy = Math.max(0, (nowMs - (h.stepStartMs ?? nowMs)) / 1000);
    // Without samples the step's own time counts as used: idle time is then a lower bound.
    const used = busy * (1 - (gpu?.idleFraction ?? 0));
    if (gpu) rec.gpu = gpu;
    this.charge(h, rec, charged, h.gpus * (charged - used));
    h.chargeFromMs = nowMs;
    h.stepStartMs = undefined;
    h.state = 'idle';
    h.idleSinceMs = nowMs;
    h.idleGen += 1;
  }

  /** The instance is gone: charge what is left of its bill (idle tail, one-minute minimum) to its last step. */
  terminated(h: PoolHost, nowMs: number): void {
    if (h.state === 'terminated') return;
    const rec = h.record;
    rec.terminatedAt = new Date(nowMs).toISOString();
    h.state = 'terminated';
    if (h.launchedAtMs === undefined) return;
    const billed = Math.max(MIN_BILLED_SECONDS, Math.ceil((nowMs - h.launchedAtMs) / 1000));
    const tail = Math.max(0, billed - h.chargedSeconds);
    this.charge(h, h.stepRecord, tail, h.gpus * tail);
  }

  private charge(h: PoolHost, step: HostRecord | undefined, seconds: number, idleGpuSeconds: number): void {
    const price = h.record.pricePerHourUsd ?? 0;
    for (const rec of step ? [step, h.record] : [h.record]) {
      rec.billedSeconds = r3((rec.billedSeconds ?? 0) + seconds);
      rec.costUsd = r6((rec.costUsd ?? 0) + (seconds * price) / 3600);
      rec.idleGpuSeconds = r3((rec.idleGpuSeconds ?? 0) + idleGpuSeconds);
    }
    h.chargedSeconds += seconds;
  }

  summary(): ComputeSummary {
    let billed = 0;
    let cost = 0;
    let gpuSeconds = 0;
    let idle = 0;
    let booted = 0;
    for (const h of this.hosts) {
      if (h.record.instanceId) booted += 1;
      billed += h.record.billedSeconds ?? 0;
      cost += h.record.costUsd ?? 0;
      gpuSeconds += h.gpus * (h.record.billedSeconds ?? 0);
      idle += h.record.idleGpuSeconds ?? 0;
    }
    return {
      instancesBooted: booted,
      billedSeconds: r3(billed),
      costUsd: r6(cost),
      gpuSeconds: r3(gpuSeconds),
      idleGpuSeconds: r3(idle),
      idleFraction: gpuSeconds > 0 ? r6(idle / gpuSeconds) : 0,
    };
  }
}

/** Stable short hash for queue names (FNV-1a, 32 bit). */
function fnv(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

const quick = proxyActivities<ComputeActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 10 },
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

// Clean-up: always awaited to the end, and run in non-cancellable scopes.
const cleanup = proxyActivities<ComputeActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 30 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

const provisioning = proxyActivities<ComputeActivities>({
  startToCloseTimeout: '5 minutes',
  // Retries cover throttling and the deployment-wide instance limit; the rest is final.
  scheduleToCloseTimeout: '1 hour',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: [FailureType.Ec2CapacityExhausted, FailureType.Ec2ConfigError],
  },
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

/** Boots tried for one step attempt when a host never becomes ready. */
const MAX_BOOTS = 2;

export class HostPool {
  private readonly core: PoolCore;
  private seq: number;
  private settings?: PoolSettings;
  private closed = false;
  /** Acquires blocked at the class limit: they need a host as much as pending steps do. */
  private readonly waiting = new Map<string, number>();

  constructor(private readonly opts: HostPoolOptions) {
    this.core = new PoolCore(opts.restore);
    this.seq = opts.restore?.seq ?? 0;
  }

  /** A ready host of that class for this step (see the class comment). */
  async acquire(machineName: string, step: string, attempt: number): Promise<HostRecord> {
    const spec = this.opts.machines[machineName];
    if (!spec)
      throw ApplicationFailure.nonRetryable(
        `step ${step} asks for machine class "${machineName}", which the pipeline does not define`,
        'UnknownMachineClass',
      );
    if ('kubernetes' in spec)
      throw ApplicationFailure.nonRetryable(
        `machine class "${machineName}" is a Kubernetes class; its steps run as Jobs, not on pool hosts`,
        'UnknownMachineClass',
      );
    if (this.closed) throw ApplicationFailure.nonRetryable('the host pool is shut down', 'HostPoolClosed');
    const settings = await this.poolSettings();
    const limit = Math.max(
      1,
      Math.min(
        this.opts.maxPerClass?.[machineName] ?? Infinity,
        settings.maxPerClass[machineName] ?? settings.defaultMaxPerClass,
      ),
    );

    for (;;) {
      const idle = this.core.pickIdle(machineName);
      if (idle) {
        const rec = this.core.startStep(idle, Date.now(), false);
        log.info('reusing warm host', { step, queue: idle.queue, instanceId: idle.record.instanceId });
        await this.extendLease(idle, step);
        return rec;
      }
      if (this.core.active(machineName) < limit) break;
      this.waiting.set(machineName, (this.waiting.get(machineName) ?? 0) + 1);
      try {
        await condition(
          () => this.closed || this.core.pickIdle(machineName) !== undefined || this.core.active(machineName) < limit,
        );
      } finally {
        this.waiting.set(machineName, (this.waiting.get(machineName) ?? 1) - 1);
      }
      if (this.closed) throw ApplicationFailure.nonRetryable('the host pool is shut down', 'HostPoolClosed');
    }

    for (let boot = 0; ; boot++) {
      const h = await this.boot(machineName, spec, step, attempt, boot, settings);
      if (h) return this.core.startStep(h, Date.now(), true);
      if (boot + 1 >= MAX_BOOTS) {
        throw ApplicationFailure.nonRetryable(
          `no ready host of class ${machineName} for step ${step} after ${MAX_BOOTS} boots`,
          FailureType.Ec2HostNotReady,
        );
      }
    }
  }

  /** The step is done with the host (see HostPoolOptions and the class comment). */
  async release(host: HostRecord, stillNeeded: number, broken: boolean): Promise<void> {
    const h = this.core.hosts.find((x) => x.queue === host.queue);
    if (!h || h.state !== 'busy') return;
    this.core.endStep(h, Date.now(), host.gpu);
    if (broken) {
      // Out of the pool before the first await, so no waiting step can pick it up.
      h.state = 'terminating';
      const reason = await this.lostReason(h);
      host.lostReason = reason;
      h.record.lostReason = reason;
      await this.terminate(h, `host lost: ${reason}`);
      return;
    }
    // Decided synchronously: a waiting acquire may take the idle host at the next await.
    const settings = this.settings ?? (await this.poolSettings());
    if ((h.state as HostState) !== 'idle') return;
    const limit = this.opts.maxPerClass?.[h.machine] ?? settings.maxPerClass[h.machine] ?? settings.defaultMaxPerClass;
    const needed = this.closed ? 0 : stillNeeded + (this.waiting.get(h.machine) ?? 0);
    const surplus = this.core.surplusIdle(h.machine, needed, limit);
    for (const x of surplus) x.state = 'terminating';
    if (!surplus.includes(h)) void this.expireWhenIdle(h, h.idleGen, settings.idleSeconds);
    const reason = needed > 0 ? 'more warm hosts than pending steps need' : 'no pending step needs this class';
    await Promise.all(surplus.map((x) => this.terminate(x, reason)));
  }

  /** Terminates every instance the pool started, and any the run launched that the pool never heard of. */
  async shutdownAll(): Promise<void> {
    this.closed = true;
    const live = this.core.hosts.filter((h) => h.state !== 'terminated' && h.state !== 'failed');
    for (const h of live) if (h.state === 'busy') this.core.endStep(h, Date.now(), undefined);
    for (const h of live) h.state = 'terminating';
    const ids = live.map((h) => h.record.instanceId).filter((id): id is string => !!id);
    await CancellationScope.nonCancellable(() =>
      cleanup.computeTerminateRunHosts({
        runId: this.opts.runId,
        workflowId: this.opts.workflowId,
        instanceIds: ids,
        reason: 'run finished',
      }),
    );
    const now = Date.now();
    for (const h of live) this.core.terminated(h, now);
  }

  /** Instance-level records (attempts, ids, whole bills), including provisioning that failed. */
  hosts(): HostRecord[] {
    return this.core.hosts.map((h) => ({ ...h.record }));
  }

  summary(): ComputeSummary {
    return this.core.summary();
  }

  /** For continue-as-new: pass as `restore` to the next run's pool. */
  state(): HostPoolState {
    return { seq: this.seq, hosts: this.core.hosts.map((h) => ({ ...h, record: { ...h.record } })) };
  }

  private async poolSettings(): Promise<PoolSettings> {
    this.settings ??= await quick.computePoolSettings();
    return this.settings;
  }

  /** One boot; undefined when the host never became ready (it is terminated then). */
  private async boot(
    machine: string,
    spec: Ec2MachineSpec,
    step: string,
    attempt: number,
    boot: number,
    settings: PoolSettings,
  ): Promise<PoolHost | undefined> {
    const queue = `trainyard-host-${fnv(`${this.opts.workflowId}/${this.opts.runId}`)}-${machine.replace(/[^A-Za-z0-9_-]/g, '_')}-${++this.seq}`;
    const h = this.core.addProvisioning(machine, queue, spec.gpus);
    const leaseUntil = this.leaseUntil(step, settings);
    try {
      const r = await provisioning.computeProvisionHost({
        runId: this.opts.runId,
        workflowId: this.opts.workflowId,
        step,
        attempt,
        boot,
        machineClass: machine,
        spec,
        queue,
        leaseUntil,
      });
      this.core.launched(h, r);
    } catch (e) {
      const cause = e instanceof ActivityFailure && e.cause instanceof ApplicationFailure ? e.cause : undefined;
      const attempts = (cause?.details?.[0] as ProvisionAttempt[] | undefined) ?? [];
      this.core.provisionFailed(h, attempts, cause?.message ?? (e as Error).message);
      // The pool was told to stop, or the run is cancelled: the run's clean-up terminates by tag.
      if (isCancellation(e) || !cause) throw e;
      throw ApplicationFailure.create({
        message: cause.message,
        type: cause.type ?? 'Ec2ProvisionFailed',
        nonRetryable: true,
        details: [attempts],
      });
    }
    if (this.closed) {
      await this.terminate(h, 'the pool shut down while the host was launching');
      throw ApplicationFailure.nonRetryable('the host pool is shut down', 'HostPoolClosed');
    }
    const wait = proxyActivities<ComputeActivities>({
      startToCloseTimeout: `${settings.readyTimeoutSeconds + 60} seconds`,
      heartbeatTimeout: '30 seconds',
      retry: {
        initialInterval: '2 seconds',
        maximumAttempts: 3,
        nonRetryableErrorTypes: [FailureType.Ec2HostNotReady, FailureType.Ec2HostLost],
      },
      cancellationType: ActivityCancellationType.TRY_CANCEL,
    });
    try {
      await wait.computeWaitHostReady({
        queue,
        instanceId: h.record.instanceId!,
        timeoutSeconds: settings.readyTimeoutSeconds,
      });
      return h;
    } catch (e) {
      if (isCancellation(e)) throw e;
      const msg = e instanceof ActivityFailure && e.cause ? e.cause.message : (e as Error).message;
      log.warn('host did not become ready', { queue, instanceId: h.record.instanceId, error: msg });
      h.record.lostReason = msg;
      await this.terminate(h, 'never became ready');
      return undefined;
    }
  }

  private leaseUntil(step: string, settings: PoolSettings): string {
    const timeout = this.opts.stepTimeoutSeconds?.[step] ?? DEFAULT_STEP_TIMEOUT_S;
    return new Date(
      Date.now() + (timeout + settings.leaseSlackSeconds + settings.readyTimeoutSeconds) * 1000,
    ).toISOString();
  }

  private async extendLease(h: PoolHost, step: string): Promise<void> {
    const settings = await this.poolSettings();
    const id = h.record.instanceId;
    if (!id) return;
    try {
      await quick.computeExtendLease({ instanceId: id, leaseUntil: this.leaseUntil(step, settings) });
    } catch (e) {
      // The host is fine; only the reaper's backstop is shorter. Not a reason to fail the step.
      if (isCancellation(e)) throw e;
      log.warn('could not extend the host lease', { instanceId: id, error: String(e) });
    }
  }

  private async lostReason(h: PoolHost): Promise<string> {
    const id = h.record.instanceId;
    if (!id) return 'runner agent stopped heartbeating';
    try {
      const d = await quick.computeDescribeHost({ instanceId: id });
      if (!d) return 'instance no longer exists';
      if (d.lostReason) return d.lostReason;
      return `runner agent stopped heartbeating (instance ${d.state})`;
    } catch (e) {
      if (isCancellation(e)) throw e;
      return 'runner agent stopped heartbeating';
    }
  }

  private async terminate(h: PoolHost, reason: string): Promise<void> {
    if (h.state === 'terminated') return;
    h.state = 'terminating';
    const id = h.record.instanceId;
    if (id) await CancellationScope.nonCancellable(() => cleanup.computeTerminateHosts({ instanceIds: [id], reason }));
    log.info('terminated host', { queue: h.queue, instanceId: id, reason });
    this.core.terminated(h, Date.now());
  }

  private async expireWhenIdle(h: PoolHost, gen: number, idleSeconds: number): Promise<void> {
    try {
      await sleep(idleSeconds * 1000);
      if (h.state === 'idle' && h.idleGen === gen) await this.terminate(h, `idle for ${idleSeconds}s`);
    } catch (e) {
      // Cancelled with the run: its shutdownAll terminates the host.
      if (!isCancellation(e))
        log.error('idle host clean-up failed; the reaper will terminate it', { queue: h.queue, error: String(e) });
    }
  }
}
