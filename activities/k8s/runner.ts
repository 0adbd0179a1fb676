// The Kubernetes runner: one attempt of one step as a Job (activities/k8s/job.ts) on the
// team's cluster. Lays the commit into the store as one tar blob, creates the Job (or adopts
// the one a lost worker created for the same attempt), follows its pod through the API —
// scheduling, image pull, the step container's log into the log store, exit status — and
// turns what happened into the same result or failure the local runner gives, with a reason
// a person understands (Unschedulable, ImagePullBackOff, OOMKilled, Evicted, pod deleted).
// Whatever happens, the Job and its pod are deleted before the activity returns (unless a newer
// attempt of the same step, started by Temporal after late heartbeats, has adopted the Job).
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { V1ContainerStateTerminated, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { RunStepRequest, RunStepResult } from '../../model/contracts.js';
import { boundMessage } from '../../model/bounds.js';
import type { AttemptCompute } from '../../model/hosttypes.js';
import type { ArtifactRef } from '../../model/types.js';
import { LineSplitter } from '../container/lines.js';
import { StepOutput } from '../runner/output.js';
import { failureDetails, stepResult } from '../runner/result.js';
import type { SourceProvider } from '../source/types.js';
import { sha256Bytes } from '../store/digest.js';
import { kubernetesResultKey } from '../store/keys.js';
import type { ArtifactStore } from '../store/types.js';
import { stepEnvironment } from '../runner/env.js';
import { apiMessage, apiStatus, type KubeClients } from './client.js';
import { startDcgmSampler } from './dcgm.js';
import { buildJob, CONTAINER, jobName, type PodPlan, type UploadResult } from './job.js';
import { K8S_ANNOTATION, type KubernetesClass, type KubernetesSettings } from './types.js';
import type { FailureType } from '../../model/failures.js';

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

type Failure = {
  type:
    | typeof FailureType.StepFailed
    | typeof FailureType.StepTimedOut
    | typeof FailureType.StepInvalid
    | typeof FailureType.StepHostLost;
  message: string;
  exitCode: number | null;
};

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
          await run('tar', [
            '-C',
            checkout,
            '--sort=name',
            '--mtime=@0',
            '--owner=0',
            '--group=0',
            '--numeric-owner',
            '-cf',
            file,
            ...(entries.length ? ['--', ...entries] : ['-T', '/dev/null']),
          ]);
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
      throw ApplicationFailure.create({
        type: 'StepInvalid',
        nonRetryable: true,
        message: `step ${spec.step} needs secrets (${spec.secrets.join(', ')}), which Kubernetes machines do not support yet`,
        details: [failureDetails(null, { startedAt, host: name })],
      });
    }
    if (!cls) {
      throw ApplicationFailure.create({
        type: 'StepInvalid',
        nonRetryable: true,
        message: `Kubernetes machine class "${clsName ?? '?'}" is not defined on this server (its classes: ${Object.keys(settings.classes).join(', ') || 'none'})`,
        details: [failureDetails(null, { startedAt, host: name })],
      });
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
    /** Scrapes of the node's dcgm-exporter, from the step container's start to its end. */
    let dcgm: ReturnType<typeof startDcgmSampler> | undefined;
    const compute = (): AttemptCompute => billing(cls, gpus, ns, name, pod);
    // Heartbeats on a timer of their own, not only between polls: an API call, the wait for the
    // log's end or for a deletion can take longer than the heartbeat timeout on a loaded
    // cluster, and Temporal would then start a second attempt of the step on the same Job while
    // this one still runs (they used to delete the Job under each other: an upload sidecar
    // SIGKILLed mid-upload, exit 137). The SDK sends at most one per 0.8 × heartbeatTimeout.
    let progress: unknown = { job: name, phase: 'creating' };
    const beat = setInterval(() => ctx.heartbeat(progress), Math.max(500, Math.min(5000, req.heartbeatTimeoutMs / 4)));
    // Cancelled because Temporal gave the step to a newer attempt (this one's heartbeats were
    // late) rather than because the run was cancelled: that attempt adopts the Job by name, so
    // this one leaves it alone (stops following, deletes nothing).
    const superseded = (): boolean => {
      const d = ctx.cancellationSignal.aborted ? ctx.cancellationDetails : undefined;
      return !!d && (d.timedOut || d.notFound) && !d.cancelRequested;
    };
    let handedBack = false;
    /** Sleeps one poll interval (less when cancelled), with `detail` as the heartbeats' progress. */
    const wait = (detail: unknown): Promise<void> => {
      progress = detail;
      ctx.heartbeat(detail);
      return pause(ctx, pollMs);
    };
    const onCancel = async (follow?: { abort: () => void }): Promise<never> => {
      follow?.abort();
      if (superseded()) {
        handedBack = true;
        throw new CancelledFailure(`attempt superseded by a newer one (heartbeats late); Job ${name} left to it`);
      }
      deleting = true;
      await deleteJob(kube, ns, name, cls.terminationGracePeriodSeconds, true);
      throw new CancelledFailure('step cancelled; Job and pod deleted');
    };

    const fail = async (f: Failure): Promise<never> => {
      splitter.end();
      const stored = await out.finish(deps.store).catch(() => undefined);
      throw ApplicationFailure.create({
        type: f.type,
        message: boundMessage(f.message),
        nonRetryable: true,
        details: [
          {
            ...failureDetails(f.exitCode, { startedAt, host: hostName, ...(stored ? { stored } : {}) }),
            compute: compute(),
          },
        ],
      });
    };

    try {
      const workspace = await workspaceOf(spec.source);
      const plan: PodPlan = {
        store: settings.store,
        workspace,
        inputs: Object.fromEntries(
          Object.entries(spec.inputs).map(([k, v]) => [k, { digest: v.digest, kind: v.kind }]),
        ),
        params: spec.params,
        outputs: spec.outputs,
        resultKey: kubernetesResultKey(name, execRunId),
      };
      const env = stepEnvironment(spec, req.attempt);
      const job = buildJob({
        settings,
        cls,
        execId: req.execId,
        attempt: req.attempt,
        runId: req.runId ?? '',
        pipeline: spec.pipeline,
        step: spec.step,
        commit: spec.source.commit,
        image: spec.image,
        command: spec.command,
        env,
        gpus,
        plan,
        activeDeadlineSeconds: spec.timeoutSeconds + cls.unschedulableTimeoutSeconds + cls.uploadGraceSeconds + 600,
      });
      job.metadata!.annotations![RUN_WORKFLOW_ANNOTATION] = execRunId;
      job.spec!.template.metadata!.annotations![RUN_WORKFLOW_ANNOTATION] = execRunId;
      await createOrAdopt(kube, ns, name, job, execRunId);
      progress = { job: name, phase: 'created' };
      ctx.heartbeat(progress);

      let unschedulableSince: number | undefined;
      let imageTroubleSince: number | undefined;
      let runningAt: number | undefined;
      let follow: { done: Promise<boolean>; abort: () => void } | undefined;
      let seenPod = false;
      const timeoutMs = spec.timeoutSeconds * 1000;

      for (;;) {
        if (ctx.cancellationSignal.aborted) {
          await onCancel(follow);
        }
        pod = await findPod(kube, ns, name);
        if (!pod) {
          const why = await jobGone(kube, ns, name);
          if (why) await fail({ type: 'StepHostLost', exitCode: null, message: seenPod ? `pod lost: ${why}` : why });
          await wait({ job: name, phase: 'waiting for the pod' });
          continue;
        }
        seenPod = true;
        const podName = pod.metadata!.name!;
        const st = pod.status ?? {};
        // Kubernetes marks a pod it is about to remove for a reason of its own (an eviction through
        // the API as `kubectl drain` does, preemption, a taint): that reason is the one to report.
        const disruption = st.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
        if (pod.metadata?.deletionTimestamp && !deleting) {
          const why = disruption?.reason === 'EvictionByEvictionAPI' ? 'was evicted' : 'was deleted (not by Trainyard)';
          await fail({
            type: 'StepHostLost',
            exitCode: null,
            message: `pod lost: ${podName} ${why}${disruption ? ` (${disruption.reason}${disruption.message ? `: ${disruption.message}` : ''})` : ''}`,
          });
        }
        if (st.reason === 'Evicted' || (st.phase === 'Failed' && !terminated(st.containerStatuses, CONTAINER.step))) {
          const why =
            st.reason === 'Evicted'
              ? `evicted: ${st.message ?? 'node pressure'}`
              : `${st.reason ?? 'failed'}${st.message ? `: ${st.message}` : ''}`;
          await fail({
            type: 'StepHostLost',
            exitCode: null,
            message: `pod lost: ${podName} ${why}${disruption ? ` (${disruption.reason})` : ''}`,
          });
        }
        // Scheduling.
        const sched = st.conditions?.find((c) => c.type === 'PodScheduled');
        if (st.phase === 'Pending' && sched?.status === 'False' && sched.reason === 'Unschedulable') {
          unschedulableSince ??= Date.now();
          if (Date.now() - unschedulableSince >= cls.unschedulableTimeoutSeconds * 1000) {
            await fail({
              type: 'StepInvalid',
              exitCode: null,
              message: `Unschedulable for ${cls.unschedulableTimeoutSeconds}s in namespace ${ns} (class ${cls.name}${gpus ? `, ${gpus} × ${cls.gpu.resource}` : ''}): ${sched.message ?? 'no node fits the pod'}`,
            });
          }
        } else unschedulableSince = undefined;
        // Images and container configuration.
        const all = [...(st.initContainerStatuses ?? []), ...(st.containerStatuses ?? [])];
        const waitingBad = all.find(
          (c) =>
            c.state?.waiting?.reason &&
            (IMAGE_FAILURES.has(c.state.waiting.reason) || CONFIG_FAILURES.has(c.state.waiting.reason)),
        );
        if (waitingBad) {
          const w = waitingBad.state!.waiting!;
          imageTroubleSince ??= Date.now();
          if (CONFIG_FAILURES.has(w.reason!)) {
            await fail({
              type: 'StepInvalid',
              exitCode: null,
              message: `container ${waitingBad.name} could not be created (${w.reason}): ${w.message ?? ''}`.trim(),
            });
          }
          if (w.reason !== 'ErrImagePull' || Date.now() - imageTroubleSince >= IMAGE_PULL_GRACE_MS) {
            await fail({
              type: 'StepInvalid',
              exitCode: null,
              message: `image ${waitingBad.image ?? '?'} of container ${waitingBad.name} could not be pulled (${w.reason})${w.message ? `: ${w.message}` : ''}`,
            });
          }
        } else imageTroubleSince = undefined;
        const fetch = st.initContainerStatuses?.find((c) => c.name === CONTAINER.fetch)?.state?.terminated;
        if (fetch && fetch.exitCode !== 0) {
          await fail({
            type: 'StepFailed',
            exitCode: null,
            message: `the pod could not lay out the commit and inputs (${fetch.reason ?? `exit ${fetch.exitCode}`}): ${(fetch.message ?? '').trim() || 'see the fetch container'}`,
          });
        }
        const main = st.containerStatuses?.find((c) => c.name === CONTAINER.step);
        if (main?.state?.running || main?.state?.terminated) {
          runningAt ??= main.state.running?.startedAt ? new Date(main.state.running.startedAt).getTime() : Date.now();
          follow ??= followLog(kube, ns, podName, splitter);
          // GPU utilisation from the node's dcgm-exporter while the step container runs.
          if (main.state.running && gpus > 0 && cls.dcgmExporterUrl && !dcgm) {
            dcgm = startDcgmSampler({
              urlTemplate: cls.dcgmExporterUrl,
              target: { namespace: ns, pod: podName },
              node: {
                ...(st.hostIP ? { hostIP: st.hostIP } : {}),
                ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
              },
              intervalSeconds: cls.dcgmScrapeSeconds ?? 5,
              onFirstError: (error, url) =>
                ctx.log.warn('dcgm-exporter scrape failed; GPU utilisation may go unmeasured, the step goes on', {
                  job: name,
                  pod: podName,
                  url,
                  error,
                }),
            });
          }
        }
        const done = main?.state?.terminated;
        if (done) {
          const gpuSummary = await dcgm?.stop();
          dcgm = undefined;
          // The follow ends when the container does; a bounded wait covers a slow last chunk.
          progress = { job: name, phase: 'reading the end of the log', ...out.progress() };
          const streamed = await Promise.race([follow!.done, sleepMs(10_000).then(() => false)]);
          if (!streamed && out.progress().lines === 0) await readWholeLog(kube, ns, podName, splitter);
          const code = done.exitCode;
          if (code !== 0) {
            const limit = cls.resources.limits.memory;
            const message =
              done.reason === 'OOMKilled'
                ? `killed: out of memory (OOMKilled; memory limit ${limit ?? 'none set'}, exit code ${code})`
                : `exited with code ${code}${out.lastLine ? `: ${out.lastLine}` : ''}`;
            await fail({ type: 'StepFailed', exitCode: code, message });
          }
          const upload = await waitForUpload(kube, ns, name, cls, ctx, wait);
          if (upload.aborted) await onCancel();
          pod = upload.pod ?? pod;
          if (upload.error)
            await fail({ type: 'StepFailed', exitCode: 0, message: `outputs could not be stored: ${upload.error}` });
          const result = await deps.store.getRecord<UploadResult>(plan.resultKey);
          if (!result)
            await fail({
              type: 'StepFailed',
              exitCode: 0,
              message: 'outputs could not be stored: the upload agent left no result',
            });
          const missing = spec.outputs.find((o) => result!.missing.includes(o) || !result!.outputs[o]);
          if (missing) {
            const refused = result!.refused[missing];
            await fail({
              type: 'StepFailed',
              exitCode: 0,
              message: refused
                ? `output "${missing}" refused: ${refused}`
                : `declared output "${missing}" was not written (expected /outputs/${missing})`,
            });
          }
          splitter.end();
          const stored = await out.finish(deps.store);
          const facts = { startedAt, finishedAt: new Date().toISOString(), host: hostName, stored };
          const gpu = gpuSummary
            ? {
                samples: gpuSummary.samples,
                meanUtilisation: gpuSummary.meanUtilisation,
                maxMemoryMiB: gpuSummary.maxMemoryMiB,
                idleFraction: gpuSummary.idleFraction,
              }
            : undefined;
          return {
            ...stepResult({
              outputs: result!.outputs,
              facts,
              activityAttempt: ctx.info.attempt,
              ...(gpu ? { gpu } : {}),
            }),
            compute: compute(),
          };
        }
        if (runningAt !== undefined && Date.now() - runningAt > timeoutMs) {
          await fail({
            type: 'StepTimedOut',
            exitCode: null,
            message: `timed out after ${spec.timeoutSeconds}s; Job deleted`,
          });
        }
        await wait({ job: name, phase: main?.state?.running ? 'running' : (st.phase ?? 'pending'), ...out.progress() });
      }
    } finally {
      await dcgm?.stop(); // failure paths: no scrape outlives the attempt
      splitter.end();
      await out.close();
      // Finished pods go at once; a running one (failure paths) gets the class's short grace.
      // Not when a newer attempt of this step owns the Job now.
      progress = { job: name, phase: 'deleting the Job' };
      if (!handedBack && !superseded()) {
        await deleteJob(kube, ns, name, cls.terminationGracePeriodSeconds, true).catch((e) =>
          ctx.log.warn('could not delete the Job; the reaper will', { job: name, error: String(e) }),
        );
      }
      clearInterval(beat);
      await rm(outDir, { recursive: true, force: true });
    }
  };
}

/**
 * What the attempt held: from the pod's start on its node to the last container's end (or
 * now), with the class's rate. GPU-seconds are the requested GPUs times that.
 */
export function billing(
  cls: KubernetesClass,
  gpus: number,
  namespace: string,
  job: string,
  pod: V1Pod | undefined,
): AttemptCompute {
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
    kind: 'kubernetes',
    machineClass: cls.name,
    namespace,
    job,
    ...(pod?.metadata?.name ? { pod: pod.metadata.name } : {}),
    ...(pod?.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
    gpus,
    billedSeconds: seconds,
    gpuSeconds: Math.round(seconds * gpus * 100) / 100,
    pricePerHourUsd: rate,
    costUsd: Math.round(((seconds * rate) / 3600) * 1e6) / 1e6,
  };
}

function terminated(statuses: V1ContainerStatus[] | undefined, name: string): boolean {
  return !!statuses?.find((c) => c.name === name)?.state?.terminated;
}

async function createOrAdopt(
  kube: KubeClients,
  ns: string,
  name: string,
  job: Parameters<KubeClients['batch']['createNamespacedJob']>[0]['body'],
  runId: string,
): Promise<void> {
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
    if (
      existing &&
      existing.metadata?.annotations?.[RUN_WORKFLOW_ANNOTATION] === runId &&
      !existing.metadata.deletionTimestamp
    )
      return;
    await deleteJob(kube, ns, name, 0, true);
  }
  throw new Error(`could not create Job ${ns}/${name}: a Job of that name keeps coming back`);
}

/** The Job's pod (the first one, if the Job controller ever made two). */
async function findPod(kube: KubeClients, ns: string, name: string): Promise<V1Pod | undefined> {
  const pods = await kube.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` });
  return pods.items.sort((a, b) =>
    String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')),
  )[0];
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
export async function deleteJob(
  kube: KubeClients,
  ns: string,
  name: string,
  graceSeconds: number,
  wait: boolean,
): Promise<void> {
  // Pods first, with the grace period: deleting a Job lets the garbage collector delete its
  // pods with their own (long) terminationGracePeriodSeconds instead.
  await kube.core
    .deleteCollectionNamespacedPod({
      namespace: ns,
      labelSelector: `job-name=${name}`,
      gracePeriodSeconds: graceSeconds,
    })
    .catch((e) => {
      if (apiStatus(e) !== 404) throw e;
    });
  await kube.batch
    .deleteNamespacedJob({ namespace: ns, name, propagationPolicy: 'Background', gracePeriodSeconds: graceSeconds })
    .catch((e) => {
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

/** Waits for the upload sidecar to stop after the step container exited, or for the activity's cancellation (`aborted`). */
async function waitForUpload(
  kube: KubeClients,
  ns: string,
  name: string,
  cls: KubernetesClass,
  ctx: Context,
  wait: (progress: unknown) => Promise<void>,
): Promise<{ error?: string; pod?: V1Pod; aborted?: true }> {
  const deadline = Date.now() + (cls.uploadGraceSeconds + 60) * 1000;
  for (;;) {
    if (ctx.cancellationSignal.aborted) return { aborted: true };
    const pod = await findPod(kube, ns, name);
    if (!pod) return { error: 'the pod disappeared while its outputs were being stored' };
    const up = pod.status?.initContainerStatuses?.find((c) => c.name === CONTAINER.upload)?.state?.terminated;
    if (up) return up.exitCode === 0 ? { pod } : { pod, error: await uploadFailure(kube, ns, pod, up) };
    if (Date.now() > deadline)
      return { pod, error: `the upload agent did not finish within ${cls.uploadGraceSeconds}s` };
    await wait({ job: name, phase: 'storing outputs' });
  }
}

/**
 * Why the upload sidecar failed, in words that explain a flake by themselves: its exit code and
 * reason, how long after the step container it ended (a SIGKILL at the grace time's end, or
 * sooner), whether the pod was being deleted and with what grace, and its own last log lines
 * (the agent logs when it was told to stop and each output it stored).
 */
async function uploadFailure(
  kube: KubeClients,
  ns: string,
  pod: V1Pod,
  up: V1ContainerStateTerminated,
): Promise<string> {
  const parts = [`the upload agent exited with code ${up.exitCode}${up.reason ? ` (${up.reason})` : ''}`];
  const stepEnd = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER.step)?.state?.terminated?.finishedAt;
  if (stepEnd && up.finishedAt)
    parts.push(
      `${Math.round((new Date(up.finishedAt).getTime() - new Date(stepEnd).getTime()) / 1000)}s after the step container ended (grace ${pod.spec?.terminationGracePeriodSeconds ?? '?'}s)`,
    );
  if (pod.metadata?.deletionTimestamp)
    parts.push(`the pod was being deleted (grace ${pod.metadata.deletionGracePeriodSeconds ?? '?'}s)`);
  if (pod.status?.reason) parts.push(`pod ${pod.status.reason}${pod.status.message ? `: ${pod.status.message}` : ''}`);
  const text = await kube.core
    .readNamespacedPodLog({ namespace: ns, name: pod.metadata!.name!, container: CONTAINER.upload, tailLines: 12 })
    .then(String, () => '');
  const lines = text
    .split('\n')
    .filter((l) => l.trim())
    .map(agentLine);
  const fallback = up.message?.trim() ? up.message.trim().split('\n').slice(-3).join(' ') : '';
  parts.push(
    lines.length ? `its log: ${lines.join(' | ')}` : fallback ? `its message: ${fallback}` : 'it logged nothing',
  );
  return parts.join('; ');
}

/** A pod agent's pino line as `HH:MM:SS.mmm msg (output)`; any other line as it is. */
function agentLine(line: string): string {
  try {
    const j = JSON.parse(line) as { time?: number; msg?: string; output?: string; signal?: string; error?: string };
    if (typeof j.msg !== 'string') return line;
    const at = typeof j.time === 'number' ? `${new Date(j.time).toISOString().slice(11, 23)} ` : '';
    const extra = [j.output, j.signal, j.error].filter((x) => typeof x === 'string');
    return `${at}${j.msg}${extra.length ? ` (${extra.join(', ')})` : ''}`;
  } catch {
    return line;
  }
}

function followLog(
  kube: KubeClients,
  ns: string,
  pod: string,
  splitter: LineSplitter,
): { done: Promise<boolean>; abort: () => void } {
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
  const text = await kube.core
    .readNamespacedPodLog({ namespace: ns, name: pod, container: CONTAINER.step })
    .catch(() => '');
  splitter.push(Buffer.from(typeof text === 'string' ? text : String(text)));
}

async function pause(ctx: Context, ms: number): Promise<void> {
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
    p.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} failed: ${err.trim() || `exit ${code}`}`)),
    );
  });
}
