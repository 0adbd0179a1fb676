// The runner: one attempt of one step on this host. Mounts the commit's files read-only at
// /workspace, each input at /inputs/<name>, an empty /outputs, and the parameters as
// environment variables and /trainyard/params.json; streams the log into the artifact
// store; heartbeats; kills the container on cancellation; leaves nothing behind.
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunStepRequest, RunStepResult, StepFailureDetails } from '../workflows/contracts.js';
import type { ArtifactRef, MetricSample } from '../workflows/types.js';
import { GpuSampler } from './container/gpu.js';
import { takeOverStaleAttempts, type AttemptContext } from './execution.js';
import { parseMetricLine } from './container/metrics.js';
import { ensureImage, removeContainers, runContainer } from './container/run.js';
import type { ContainerCliConfig } from './container/types.js';
import type { SourceProvider } from './source/types.js';
import { sha256Bytes } from './store/digest.js';
import type { ArtifactStore } from './store/types.js';

export interface RunnerDeps {
  store: ArtifactStore;
  sources: SourceProvider;
  cli: ContainerCliConfig;
  /** Scratch space for step directories; wiped per execution. */
  workRoot: string;
  /** Name of this host in lineage (queue name or instance id). */
  hostName: string;
  queue: string;
}

const MAX_METRIC_SAMPLES = 5000;

/** Parameter name → environment variable (`learning-rate` → `PARAM_LEARNING_RATE`). */
export const paramEnvName = (name: string): string => `PARAM_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;

export function createRunStep(deps: RunnerDeps) {
  // A later Temporal attempt that finds this process still running the execution (Temporal
  // was down longer than the heartbeat timeout) takes it over rather than running it twice.
  return takeOverStaleAttempts((req: RunStepRequest) => `${req.execId}#${req.attempt}`, async function runStep(req: RunStepRequest, ctx: AttemptContext): Promise<RunStepResult> {
    const { spec } = req;
    const execTag = sha256Bytes(req.execId).slice(7, 31);
    const labels = { 'trainyard.exec': execTag, 'trainyard.queue': deps.queue, 'trainyard.step': spec.step, 'trainyard.pipeline': spec.pipeline };
    // A worker killed mid-step leaves its container and scratch dir: a retry clears them first.
    if (ctx.info.attempt > 1) await removeContainers(deps.cli, { 'trainyard.exec': execTag });
    const dir = join(deps.workRoot, 'exec', execTag);
    await rm(dir, { recursive: true, force: true });
    const startedAt = new Date().toISOString();
    const t0 = Date.now();
    const metrics: MetricSample[] = [];
    const gpu = spec.gpus ? new GpuSampler() : undefined;
    try {
      const checkout = await deps.sources.checkout(spec.source);
      const inputsDir = join(dir, 'inputs');
      const outputsDir = join(dir, 'outputs');
      const metaDir = join(dir, 'meta');
      await mkdir(inputsDir, { recursive: true });
      await mkdir(outputsDir, { recursive: true, mode: 0o777 });
      await mkdir(metaDir, { recursive: true });
      for (const [name, ref] of Object.entries(spec.inputs)) await deps.store.materialize(ref, join(inputsDir, name));
      await writeFile(join(metaDir, 'params.json'), JSON.stringify(spec.params, null, 2));
      try {
        await imageReady(deps.cli, spec.image);
      } catch (err) {
        throw ApplicationFailure.create({ type: 'StepInvalid', message: (err as Error).message, nonRetryable: true, details: [failure(null, undefined, startedAt, deps.hostName, metrics)] });
      }

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

      const logPath = join(dir, 'log.txt');
      const log = createWriteStream(logPath);
      let lines = 0;
      let lastLine = '';
      const beat = setInterval(() => ctx.heartbeat({ lines, lastLine }), Math.max(1000, Math.min(5000, req.heartbeatTimeoutMs / 3)));
      const abort = new AbortController();
      ctx.cancellationSignal.addEventListener('abort', () => abort.abort(), { once: true });
      gpu?.start(2000);
      let result;
      try {
        ctx.heartbeat({ lines: 0, lastLine: 'starting' });
        result = await runContainer(deps.cli, {
          name: `trainyard-${execTag}-${req.attempt}-${ctx.info.attempt}`,
          labels,
          image: spec.image,
          command: spec.command,
          env,
          mounts: [
            { host: checkout, container: '/workspace', readOnly: true },
            { host: inputsDir, container: '/inputs', readOnly: true },
            { host: outputsDir, container: '/outputs', readOnly: false },
            { host: metaDir, container: '/trainyard', readOnly: true },
          ],
          workdir: '/workspace',
          gpus: spec.gpus,
          timeoutMs: spec.timeoutSeconds * 1000,
          signal: abort.signal,
          onLine: (stream, line) => {
            lines++;
            lastLine = line.slice(0, 200);
            log.write(`${stream === 'stderr' ? 'E ' : 'O '}${line}\n`);
            if (stream === 'stdout' && metrics.length < MAX_METRIC_SAMPLES) {
              const values = parseMetricLine(line);
              if (values) metrics.push({ t: Date.now() - t0, values });
            }
          },
        });
      } finally {
        clearInterval(beat);
        await new Promise<void>((r) => log.end(r));
      }
      const gpuSummary = await gpu?.stop();
      const logRef = await deps.store.putPath(logPath);
      const finishedAt = new Date().toISOString();
      if (result.cancelled) {
        // A stopping worker's grace time is up: hand the attempt back as a retryable failure,
        // so Temporal retries it on another runner now, not after the heartbeat timeout.
        if (ctx.workerShutdown) throw ApplicationFailure.retryable(`the runner on ${deps.hostName} was shut down mid-step; container removed, the step is retried`, 'RunnerShutdown');
        throw new CancelledFailure('step cancelled; container removed');
      }
      if (result.timedOut) {
        throw ApplicationFailure.create({ type: 'StepTimedOut', message: `timed out after ${spec.timeoutSeconds}s; container killed`, nonRetryable: true, details: [failure(null, logRef.digest, startedAt, deps.hostName, metrics, finishedAt)] });
      }
      if (result.exitCode !== 0) {
        throw ApplicationFailure.create({ type: 'StepFailed', message: `exited with code ${result.exitCode}${lastLine ? `: ${lastLine}` : ''}`, nonRetryable: true, details: [failure(result.exitCode, logRef.digest, startedAt, deps.hostName, metrics, finishedAt)] });
      }
      const outputs: Record<string, ArtifactRef> = {};
      for (const name of spec.outputs) {
        const p = join(outputsDir, name);
        const st = await lstat(p).catch(() => undefined);
        if (!st) {
          throw ApplicationFailure.create({ type: 'StepFailed', message: `declared output "${name}" was not written (expected /outputs/${name})`, nonRetryable: true, details: [failure(0, logRef.digest, startedAt, deps.hostName, metrics, finishedAt)] });
        }
        try {
          outputs[name] = await deps.store.putPath(p);
        } catch (err) {
          throw ApplicationFailure.create({ type: 'StepFailed', message: `output "${name}" refused: ${(err as Error).message}`, nonRetryable: true, details: [failure(0, logRef.digest, startedAt, deps.hostName, metrics, finishedAt)] });
        }
        ctx.heartbeat({ lines, lastLine: `stored output ${name}` });
      }
      const extra = (await readdir(outputsDir)).filter((n) => !spec.outputs.includes(n));
      if (extra.length) ctx.log.warn('undeclared outputs ignored', { step: spec.step, extra });
      return {
        exitCode: 0, outputs, metrics, logDigest: logRef.digest, startedAt, finishedAt, host: deps.hostName,
        activityAttempt: ctx.info.attempt, ...(gpuSummary ? { gpu: { samples: gpuSummary.samples, meanUtilisation: gpuSummary.meanUtilisation, maxMemoryMiB: gpuSummary.maxMemoryMiB, idleFraction: gpuSummary.idleFraction } } : {}),
      };
    } finally {
      await gpu?.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
}

const readyImages = new Map<string, number>();
/** `ensureImage`, remembered for a minute: one podman call per image, not per step. */
async function imageReady(cli: ContainerCliConfig, image: string): Promise<void> {
  const key = `${cli.command}\n${image}`;
  if ((readyImages.get(key) ?? 0) > Date.now()) return;
  await ensureImage(cli, image);
  readyImages.set(key, Date.now() + 60_000);
}

function failure(exitCode: number | null, logDigest: string | undefined, startedAt: string, host: string, metrics: MetricSample[], finishedAt = new Date().toISOString()): StepFailureDetails {
  return { exitCode, ...(logDigest ? { logDigest } : {}), startedAt, finishedAt, host, metrics };
}
