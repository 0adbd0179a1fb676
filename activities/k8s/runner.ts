// The Kubernetes runner: one attempt of one step as a Job (activities/k8s/job.ts) on the
// team's cluster. Lays the commit into the store as one tar blob, creates the Job (or adopts
// the one a lost worker created for the same attempt), follows its pod through the API —
// scheduling, image pull, the step container's log into the log store, exit status — and
// turns what happened into the same result or failure the local runner gives, with a reason
// a person understands (Unschedulable, ImagePullBackOff, OOMKilled, Evicted, pod deleted).
// Whatever happens, the Job and its pod are deleted before the activity returns.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { RunStepRequest, RunStepResult } from '../../workflows/contracts.js';
import { boundMessage } from '../../workflows/bounds.js';
import type { AttemptCompute } from '../../workflows/hosttypes.js';
import type { ArtifactRef } from '../../workflows/types.js';
import { LineSplitter } from '../container/lines.js';
import { StepOutput } from '../runner/output.js';
import { failureDetails, stepResult } from '../runner/result.js';
import type { SourceProvider } from '../source/types.js';
import { sha256Bytes } from '../store/digest.js';
import type { ArtifactStore } from '../store/types.js';
import { paramEnvName } from '../../pipeline/names.js';
import { apiMessage, apiStatus, type KubeClients } from './client.js';
import { buildJob, CONTAINER, jobName, type PodPlan, type UploadResult } from './job.js';
import { K8S_ANNOTATION, type KubernetesClass, type KubernetesSettings } from './types.js';

export interface KubeRunnerDeps {
  /** The store the pods use too (the same s3:// location as settings.store). */
  store: ArtifactStore;
  sources: SourceProvider;
  settings: KubernetesSettings;
  kube: KubeClients;
  /** Scratch space for commit archives and logs. */
  workRoot: string;
  /** How often the pod is looked at, ms (default 1000). */
  pollMs?: number;
}

const IMAGE_FAILURES = new Set(['ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName', 'ErrImagePull']);
const CONFIG_FAILURES = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);
/** An ErrImagePull is retried by the kubelet; it is final once it has lasted this long. */
const IMAGE_PULL_GRACE_MS = 20_000;
const RUN_WORKFLOW_ANNOTATION = 'trainyard.dev/workflow-run-id';

type Failure = { type: 'StepFailed' | 'StepTimedOut' | 'StepInvalid' | 'StepHostLost'; message: string; exitCode: number | null };

/**
 * `runStep` for steps whose host is `kind: 'kubernetes'`. Throws ApplicationFailure of type
 * StepFailed (non-zero exit, OOMKilled, missing output), StepTimedOut, StepInvalid (image cannot
 * be pulled, Unschedulable past the class's wait, unknown class) or StepHostLost (pod evicted,
 * deleted behind Trainyard's back, node lost: the workflow retries it on a new pod), each with
 * StepFailureDetails; CancelledFailure once the pod is gone after a cancel.
 */
export function createKubernetesRunStep(deps: KubeRunnerDeps) {
  const workspaces = new Map<string, Promise<Pick<ArtifactRef, 'digest' | 'kind'>>>();
  const pollMs = deps.pollMs ?? 1000;
  const { settings, kube } = deps;

  /** The commit's files as one deterministic tar blob (symlinks and modes kept), once per commit. */
  const workspaceOf = (source: RunStepRequest['spec']['source']): Promise<Pick<ArtifactRef, 'digest' | 'kind'>> => {
    const key = `${source.kind === 'git' ? source.repoPath : source.cloneUrl}\n${source.commit}\n${source.subdir}`;
    let p = workspaces.get(key);
    if (!p) {
      p = (async () => {
        const checkout = await deps.sources.checkout(source);
        const dir = join(deps.workRoot, 'k8s');
        await mkdir(dir, { recursive: true });
        const file = join(dir, `${sha256Bytes(key).slice(7, 31)}-${process.pid}.tar`);
        try {
          // The top-level entries, not `.`: the pod unpacks into a volume's mount point, which
          // its non-root agent may not chmod, and GNU tar restores the mode of a `./` member
          // even with --no-overwrite-dir.
          const entries = (await readdir(checkout)).sort();
          await run('tar', ['-C', checkout, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', file, ...(entries.length ? ['--', ...entries] : ['-T', '/dev/null'])]);
          const ref = await deps.store.putPath(file);
          return { digest: ref.digest, kind: ref.kind };
        } finally {
          await rm(file, { force: true });
        }
      })();
      p.catch(() => workspaces.delete(key));
      workspaces.set(key, p);
    }
    return p;
  };

  return async function runStep(req: RunStepRequest): Promise<RunStepResult> {
    const ctx = Context.current();
    const { spec } = req;
    const startedAt = new Date().toISOString();
    const clsName = req.host?.kubernetesClass;
    const cls = clsName ? settings.classes[clsName] : undefined;
    const name = jobName(req.execId, req.attempt);
    if (spec.secrets?.length) {
      // The parser refuses `secrets` on Kubernetes machines; this guards older pipeline payloads.
      throw ApplicationFailure.create({ type: 'StepInvalid', nonRetryable: true, message: `step ${spec.step} needs secrets (${spec.secrets.join(', ')}), which Kubernetes machines do not support yet`, details: [failureDetails(null, { startedAt, host: name })] });
    }
    if (!cls) {
      throw ApplicationFailure.create({ type: 'StepInvalid', nonRetryable: true, message: `Kubernetes machine class "${clsName ?? '?'}" is not defined on this server (its classes: ${Object.keys(settings.classes).join(', ') || 'none'})`, details: [failureDetails(null, { startedAt, host: name })] });
    }
    const ns = cls.namespace;
    // Unique per execution of the key (stable across retries of this activity): told apart from a
    // leftover Job of the same name and attempt that an earlier execution left.
    const execRunId = ctx.info.workflowExecution?.runId ?? req.execId;
    const gpus = req.host?.gpus ?? 0;
    const hostName = `kubernetes:${ns}/${name}`;
    // The log and metrics series of this attempt: files here, then the store (activities/runner/output.ts).
    const outDir = join(deps.workRoot, 'k8s', 'logs', `${name}-${ctx.info.attempt}`);
    await rm(outDir, { recursive: true, force: true });
    await mkdir(outDir, { recursive: true });
    const t0 = Date.now();
    const out = new StepOutput(outDir, () => Date.now() - t0);
    // The API merges stdout and stderr: every line counts as stdout (metrics included).
    const splitter = new LineSplitter((line) => out.onLine('stdout', line));
    let pod: V1Pod | undefined;
    let deleting = false;
    const compute = (): AttemptCompute => billing(cls, gpus, ns, name, pod);

    const fail = async (f: Failure): Promise<never> => {
      splitter.end();
      const stored = await out.finish(deps.store).catch(() => undefined);
      throw ApplicationFailure.create({
        type: f.type, message: boundMessage(f.message), nonRetryable: true,
        details: [{ ...failureDetails(f.exitCode, { startedAt, host: hostName, ...(stored ? { stored } : {}) }), compute: compute() }],
      });
    };

    try {
      const workspace = await workspaceOf(spec.source);
      const plan: PodPlan = {
        store: settings.store,
        workspace,
        inputs: Object.fromEntries(Object.entries(spec.inputs).map(([k, v]) => [k, { digest: v.digest, kind: v.kind }])),
        params: spec.params,
        outputs: spec.outputs,
        resultKey: `kubernetes/results/${name}/${execRunId}`,
      };
      const env: Record<string, string> = {
        ...spec.env,
        TRAINYARD_RUN_STEP: spec.step,
        TRAINYARD_PIPELINE: spec.pipeline,
        TRAINYARD_COMMIT: spec.source.commit,
        TRAINYARD_ATTEMPT: String(req.attempt),
        TRAINYARD_PARAMS_FILE: '/trainyard/params.json',
        TRAINYARD_INPUTS: '/inputs',
        TRAINYARD_OUTPUTS: '/outputs',
      };
      for (const [k, v] of Object.entries(spec.params)) env[paramEnvName(k)] = String(v);
      const job = buildJob({
        settings, cls, execId: req.execId, attempt: req.attempt, runId: req.runId ?? '', pipeline: spec.pipeline, step: spec.step,
        commit: spec.source.commit, image: spec.image, command: spec.command, env, gpus, plan,
        activeDeadlineSeconds: spec.timeoutSeconds + cls.unschedulableTimeoutSeconds + cls.uploadGraceSeconds + 600,
      });
      job.metadata!.annotations![RUN_WORKFLOW_ANNOTATION] = execRunId;
      job.spec!.template.metadata!.annotations![RUN_WORKFLOW_ANNOTATION] = execRunId;
      await createOrAdopt(kube, ns, name, job, execRunId);
      ctx.heartbeat({ job: name, phase: 'created' });

      let unschedulableSince: number | undefined;
      let imageTroubleSince: number | undefined;
      let runningAt: number | undefined;
      let follow: { done: Promise<boolean>; abort: () => void } | undefined;
      let seenPod = false;
      const timeoutMs = spec.timeoutSeconds * 1000;

      for (;;) {
        if (ctx.cancellationSignal.aborted) {
          deleting = true;
          follow?.abort();
          await deleteJob(kube, ns, name, cls.terminationGracePeriodSeconds, true);
          throw new CancelledFailure('step cancelled; Job and pod deleted');
        }
        pod = await findPod(kube, ns, name);
        if (!pod) {
          const why = await jobGone(kube, ns, name);
          if (why) await fail({ type: 'StepHostLost', exitCode: null, message: seenPod ? `pod lost: ${why}` : why });
          await pause(ctx, pollMs, { job: name, phase: 'waiting for the pod' });
          continue;
        }
        seenPod = true;
        const podName = pod.metadata!.name!;
        const st = pod.status ?? {};
        if (pod.metadata?.deletionTimestamp && !deleting) {
          await fail({ type: 'StepHostLost', exitCode: null, message: `pod lost: ${podName} was deleted (not by Trainyard)` });
        }
        const disruption = st.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
        if (st.reason === 'Evicted' || (st.phase === 'Failed' && !terminated(st.containerStatuses, CONTAINER.step))) {
          const why = st.reason === 'Evicted' ? `evicted: ${st.message ?? 'node pressure'}` : `${st.reason ?? 'failed'}${st.message ? `: ${st.message}` : ''}`;
          await fail({ type: 'StepHostLost', exitCode: null, message: `pod lost: ${podName} ${why}${disruption ? ` (${disruption.reason})` : ''}` });
        }
        // Scheduling.
        const sched = st.conditions?.find((c) => c.type === 'PodScheduled');
        if (st.phase === 'Pending' && sched?.status === 'False' && sched.reason === 'Unschedulable') {
          unschedulableSince ??= Date.now();
          if (Date.now() - unschedulableSince >= cls.unschedulableTimeoutSeconds * 1000) {
            await fail({ type: 'StepInvalid', exitCode: null, message: `Unschedulable for ${cls.unschedulableTimeoutSeconds}s in namespace ${ns} (class ${cls.name}${gpus ? `, ${gpus} × ${cls.gpu.resource}` : ''}): ${sched.message ?? 'no node fits the pod'}` });
          }
        } else unschedulableSince = undefined;
        // Images and container configuration.
        const all = [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])];
        const waitingBad = all.find((c) => c.state?.waiting?.reason && (IMAGE_FAILURES.has(c.state.waiting.reason) || CONFIG_FAILURES.has(c.state.waiting.reason)));
        if (waitingBad) {
          const w = waitingBad.state!.waiting!;
          imageTroubleSince ??= Date.now();
          if (CONFIG_FAILURES.has(w.reason!)) {
            await fail({ type: 'StepInvalid', exitCode: null, message: `container ${waitingBad.name} could not be created (${w.reason}): ${w.message ?? ''}`.trim() });
          }
          if (w.reason !== 'ErrImagePull' || Date.now() - imageTroubleSince >= IMAGE_PULL_GRACE_MS) {
            await fail({ type: 'StepInvalid', exitCode: null, message: `image ${waitingBad.image ?? '?'} of container ${waitingBad.name} could not be pulled (${w.reason})${w.message ? `: ${w.message}` : ''}` });
          }
        } else imageTroubleSince = undefined;
        const fetch = st.initContainerStatuses?.find((c) => c.name === CONTAINER.fetch)?.state?.terminated;
        if (fetch && fetch.exitCode !== 0) {
          await fail({ type: 'StepFailed', exitCode: null, message: `the pod could not lay out the commit and inputs (${fetch.reason ?? `exit ${fetch.exitCode}`}): ${(fetch.message ?? '').trim() || 'see the fetch container'}` });
        }
        const main = st.containerStatuses?.find((c) => c.name === CONTAINER.step);
        if (main?.state?.running || main?.state?.terminated) {
          runningAt ??= main.state.running?.startedAt ? new Date(main.state.running.startedAt).getTime() : Date.now();
          follow ??= followLog(kube, ns, podName, splitter);
        }
        const done = main?.state?.terminated;
        if (done) {
          // The follow ends when the container does; a bounded wait covers a slow last chunk.
          const streamed = await Promise.race([follow!.done, sleepMs(10_000).then(() => false)]);
          if (!streamed && out.progress().lines === 0) await readWholeLog(kube, ns, podName, splitter);
          const code = done.exitCode;
          if (code !== 0) {
            const limit = cls.resources.limits.memory;
            const message = done.reason === 'OOMKilled'
              ? `killed: out of memory (OOMKilled; memory limit ${limit ?? 'none set'}, exit code ${code})`
              : `exited with code ${code}${out.lastLine ? `: ${out.lastLine}` : ''}`;
            await fail({ type: 'StepFailed', exitCode: code, message });
          }
          const upload = await waitForUpload(kube, ns, name, cls, ctx, pollMs);
          pod = upload.pod ?? pod;
          if (upload.error) await fail({ type: 'StepFailed', exitCode: 0, message: `outputs could not be stored: ${upload.error}` });
          const result = await deps.store.getRecord<UploadResult>(plan.resultKey);
          if (!result) await fail({ type: 'StepFailed', exitCode: 0, message: 'outputs could not be stored: the upload agent left no result' });
          const missing = spec.outputs.find((o) => result!.missing.includes(o) || !result!.outputs[o]);
          if (missing) {
            const refused = result!.refused[missing];
            await fail({ type: 'StepFailed', exitCode: 0, message: refused ? `output "${missing}" refused: ${refused}` : `declared output "${missing}" was not written (expected /outputs/${missing})` });
          }
          splitter.end();
          const stored = await out.finish(deps.store);
          const facts = { startedAt, finishedAt: new Date().toISOString(), host: hostName, stored };
          return { ...stepResult({ outputs: result!.outputs, facts, activityAttempt: ctx.info.attempt }), compute: compute() };
        }
        if (runningAt !== undefined && Date.now() - runningAt > timeoutMs) {
          await fail({ type: 'StepTimedOut', exitCode: null, message: `timed out after ${spec.timeoutSeconds}s; Job deleted` });
        }
        await pause(ctx, pollMs, { job: name, phase: main?.state?.running ? 'running' : (st.phase ?? 'pending'), ...out.progress() });
      }
    } finally {
      splitter.end();
      await out.close();
      // Finished pods go at once; a running one (failure paths) gets the class's short grace.
      await deleteJob(kube, ns, name, cls.terminationGracePeriodSeconds, true).catch((e) => ctx.log.warn('could not delete the Job; the reaper will', { job: name, error: String(e) }));
      await rm(outDir, { recursive: true, force: true });
    }
  };
}


/**
 * What the attempt held: from the pod's start on its node to the last container's end (or
 * now), with the class's rate. GPU-seconds are the requested GPUs times that.
 */
export function billing(cls: KubernetesClass, gpus: number, namespace: string, job: string, pod: V1Pod | undefined): AttemptCompute {
  const st = pod?.status;
  const start = st?.startTime ? new Date(st.startTime).getTime() : undefined;
  const ends = [...(st?.initContainerStatuses ?? []), ...(st?.containerStatuses ?? [])]
    .map((c) => c.state?.terminated?.finishedAt)
    .filter((d): d is Date => !!d)
    .map((d) => new Date(d).getTime());
  const running = [...(st?.containerStatuses ?? [])].some((c) => c.state?.running);
  const end = running || ends.length === 0 ? Date.now() : Math.max(...ends);
  const seconds = start === undefined ? 0 : Math.max(0, Math.round((end - start) / 10) / 100);
  const rate = cls.hourlyRateUsd + gpus * cls.gpuHourlyRateUsd;
  return {
    kind: 'kubernetes', machineClass: cls.name, namespace, job, ...(pod?.metadata?.name ? { pod: pod.metadata.name } : {}), ...(pod?.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
    gpus, billedSeconds: seconds, gpuSeconds: Math.round(seconds * gpus * 100) / 100, pricePerHourUsd: rate, costUsd: Math.round(((seconds * rate) / 3600) * 1e6) / 1e6,
  };
}

function terminated(statuses: V1ContainerStatus[] | undefined, name: string): boolean {
  return !!statuses?.find((c) => c.name === name)?.state?.terminated;
}

async function createOrAdopt(kube: KubeClients, ns: string, name: string, job: Parameters<KubeClients['batch']['createNamespacedJob']>[0]['body'], runId: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    try {
      await kube.batch.createNamespacedJob({ namespace: ns, body: job });
      return;
    } catch (e) {
      if (apiStatus(e) !== 409) throw new Error(`could not create Job ${ns}/${name}: ${apiMessage(e)}`);
    }
    // Same name: this attempt's Job from an earlier try of this activity (adopt it), or a
    // leftover of an earlier execution of the same key (replace it).
    const existing = await kube.batch.readNamespacedJob({ namespace: ns, name }).catch(() => undefined);
    if (existing && existing.metadata?.annotations?.[RUN_WORKFLOW_ANNOTATION] === runId && !existing.metadata.deletionTimestamp) return;
    await deleteJob(kube, ns, name, 0, true);
  }
  throw new Error(`could not create Job ${ns}/${name}: a Job of that name keeps coming back`);
}

/** The Job's pod (the first one, if the Job controller ever made two). */
async function findPod(kube: KubeClients, ns: string, name: string): Promise<V1Pod | undefined> {
  const pods = await kube.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` });
  return pods.items.sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')))[0];
}

/** Why the Job has no pod and never will, or undefined while one may still come. */
async function jobGone(kube: KubeClients, ns: string, name: string): Promise<string | undefined> {
  try {
    const job = await kube.batch.readNamespacedJob({ namespace: ns, name });
    if (job.metadata?.deletionTimestamp) return `Job ${name} is being deleted (not by Trainyard)`;
    const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
    return failed ? `Job ${name} failed without a pod (${failed.reason ?? ''}: ${failed.message ?? ''})` : undefined;
  } catch (e) {
    if (apiStatus(e) === 404) return `Job ${name} was deleted (not by Trainyard)`;
    throw e;
  }
}

/** Deletes the Job and its pods; with `wait`, until no pod of it is left (at most grace + 60 s). */
export async function deleteJob(kube: KubeClients, ns: string, name: string, graceSeconds: number, wait: boolean): Promise<void> {
  // Pods first, with the grace period: deleting a Job lets the garbage collector delete its
  // pods with their own (long) terminationGracePeriodSeconds instead.
  await kube.core.deleteCollectionNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}`, gracePeriodSeconds: graceSeconds }).catch((e) => {
    if (apiStatus(e) !== 404) throw e;
  });
  await kube.batch.deleteNamespacedJob({ namespace: ns, name, propagationPolicy: 'Background', gracePeriodSeconds: graceSeconds }).catch((e) => {
    if (apiStatus(e) !== 404) throw e;
  });
  if (!wait) return;
  const deadline = Date.now() + (graceSeconds + 60) * 1000;
  while (Date.now() < deadline) {
    const pods = await kube.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` });
    if (pods.items.length === 0) return;
    await sleepMs(250);
  }
  throw new Error(`pods of Job ${ns}/${name} still there ${graceSeconds + 60}s after their deletion`);
}

/** Waits for the upload sidecar to stop after the step container exited. */
async function waitForUpload(kube: KubeClients, ns: string, name: string, cls: KubernetesClass, ctx: Context, pollMs: number): Promise<{ error?: string; pod?: V1Pod }> {
  const deadline = Date.now() + (cls.uploadGraceSeconds + 60) * 1000;
  for (;;) {
    const pod = await findPod(kube, ns, name);
    if (!pod) return { error: 'the pod disappeared while its outputs were being stored' };
    const up = pod.status?.initContainerStatuses?.find((c) => c.name === CONTAINER.upload)?.state?.terminated;
    if (up) return up.exitCode === 0 ? { pod } : { pod, error: `the upload agent exited with code ${up.exitCode}${up.reason ? ` (${up.reason})` : ''}${up.message?.trim() ? `: ${up.message.trim().split('\n').slice(-3).join(' ')}` : ''}` };
    if (Date.now() > deadline) return { pod, error: `the upload agent did not finish within ${cls.uploadGraceSeconds}s` };
    await pause(ctx, pollMs, { job: name, phase: 'storing outputs' });
  }
}

function followLog(kube: KubeClients, ns: string, pod: string, splitter: LineSplitter): { done: Promise<boolean>; abort: () => void } {
  let controller: AbortController | undefined;
  const done = new Promise<boolean>((resolve) => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        splitter.push(chunk);
        cb();
      },
    });
    sink.on('finish', () => resolve(true));
    sink.on('error', () => resolve(false));
    kube.log
      .log(ns, pod, CONTAINER.step, sink, { follow: true })
      .then((c) => (controller = c))
      .catch(() => resolve(false));
  });
  return { done, abort: () => controller?.abort() };
}

/** The whole log at once, when following it failed (the container ended before the follow began). */
async function readWholeLog(kube: KubeClients, ns: string, pod: string, splitter: LineSplitter): Promise<void> {
  const text = await kube.core.readNamespacedPodLog({ namespace: ns, name: pod, container: CONTAINER.step }).catch(() => '');
  splitter.push(Buffer.from(typeof text === 'string' ? text : String(text)));
}

async function pause(ctx: Context, ms: number, detail: unknown): Promise<void> {
  ctx.heartbeat(detail);
  if (ctx.cancellationSignal.aborted) return;
  // One listener per pause, removed after it: a long step polls thousands of times.
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      ctx.cancellationSignal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    ctx.cancellationSignal.addEventListener('abort', done, { once: true });
  });
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} failed: ${err.trim() || `exit ${code}`}`))));
  });
}
