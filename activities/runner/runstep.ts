// The runner: one attempt of one step on this host. Mounts the commit's files read-only at
// /workspace, each input at /inputs/<name>, an empty /outputs, and the parameters as
// environment variables and /trainyard/params.json; streams the log into the artifact
// store; heartbeats; kills the container on cancellation; leaves nothing behind.
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { RunStepRequest, RunStepResult } from '../../model/contracts.js';
import type { ArtifactRef } from '../../model/types.js';
import { stepEnvironment } from './env.js';
import { GpuSampler } from '../container/gpu.js';
import { listContainersWithLabel, removeContainerIds } from '../container/run.js';
import { cliRuntime } from '../container/runtime.js';
import { takeOverStaleAttempts, type AttemptContext } from '../execution.js';
import { LiveLog, liveAttemptKey, liveLogPrefix } from './livelog.js';
import { StepOutput } from './output.js';
import { masker, secretSourceFromEnv, SecretsMissing, type SecretSource } from '../secrets.js';
import { terminalText } from '../usertext.js';
import { stepFailure, stepResult } from './result.js';
import type { ContainerCliConfig, ContainerRuntime } from '../container/types.js';
import { pidAlive, removeOrphanedEnvDirs } from '../container/envfile.js';
import type { SourceProvider } from '../source/types.js';
import { sha256Bytes } from '../store/digest.js';
import { EntryRefused } from '../store/manifest.js';
import type { ArtifactStore } from '../store/types.js';

export interface RunnerDeps {
  store: ArtifactStore;
  sources: SourceProvider;
  cli: ContainerCliConfig;
  /** The engine that runs step containers (default: cliRuntime(cli), docker or podman). */
  runtime?: ContainerRuntime;
  /** Scratch space for step directories; wiped per execution. */
  workRoot: string;
  /** Name of this host in lineage (queue name or instance id). */
  hostName: string;
  queue: string;
  /** Where step secrets come from (default: none configured, so a step with secrets fails before it starts). */
  secrets?: SecretSource;
}

/** Labels naming the runner process that started a container: the host, and `<host>:<pid>`. */
export const AGENT_HOST_LABEL = 'trainyard.agent-host';
export const AGENT_LABEL = 'trainyard.agent';

/**
 * Removes the containers that a runner process on this host left behind when it died
 * (SIGKILL, OOM): each container names its runner as `<host>:<pid>`, and one whose runner
 * pid is gone is an orphan. Runners on other hosts, and live runners of this host (several
 * agents may share one podman), are left alone. Called when an agent starts, before it
 * polls; a step's own retry also removes its earlier attempt's container by its exec label
 * when it lands on the same host. Returns the names removed. `host` is this machine's
 * hostname (the label agents write); tests pass a name of their own so that agents of other
 * tests on the same podman never race them.
 */
export async function removeOrphanedContainers(cli: ContainerCliConfig, host: string = hostname()): Promise<string[]> {
  const found = await listContainersWithLabel(cli, { [AGENT_HOST_LABEL]: host }, AGENT_LABEL);
  const orphans = found.filter((c) => {
    const m = /:(\d+)$/.exec(c.value);
    const pid = m ? Number(m[1]) : NaN;
    return c.value.startsWith(`${host}:`) && Number.isSafeInteger(pid) && pid !== process.pid && !pidAlive(pid);
  });
  await removeContainerIds(cli, orphans);
  // Their env files too: they may hold secret values (activities/container/envfile.ts).
  await removeOrphanedEnvDirs();
  return orphans.map((c) => c.name);
}

export function createRunStep(deps: RunnerDeps) {
  const secretSource = deps.secrets ?? secretSourceFromEnv({});
  const runtime = deps.runtime ?? cliRuntime(deps.cli);
  // A later Temporal attempt that finds this process still running the execution (Temporal
  // was down longer than the heartbeat timeout) takes it over rather than running it twice.
  return takeOverStaleAttempts(
    (req: RunStepRequest) => `${req.execId}#${req.attempt}`,
    async function runStep(req: RunStepRequest, ctx: AttemptContext): Promise<RunStepResult> {
      const { spec } = req;
      const execTag = sha256Bytes(req.execId).slice(7, 31);
      const labels = {
        'trainyard.exec': execTag,
        'trainyard.queue': deps.queue,
        'trainyard.step': spec.step,
        'trainyard.pipeline': spec.pipeline,
        [AGENT_HOST_LABEL]: hostname(),
        [AGENT_LABEL]: `${hostname()}:${process.pid}`,
      };
      // A worker killed mid-step leaves its container and scratch dir: a retry clears them first.
      if (ctx.info.attempt > 1) await runtime.removeContainers({ 'trainyard.exec': execTag });
      const dir = join(deps.workRoot, 'exec', execTag);
      await rm(dir, { recursive: true, force: true });
      const startedAt = new Date().toISOString();
      const t0 = Date.now();
      // Before anything else: a step whose secrets cannot be found never starts.
      let secrets: Record<string, string> = {};
      if (spec.secrets?.length) {
        try {
          secrets = await secretSource.fetch(spec.secrets);
        } catch (err) {
          if (!(err instanceof SecretsMissing)) throw err;
          throw stepFailure('StepInvalid', `step ${spec.step} did not start: ${err.message}`, null, {
            startedAt,
            host: deps.hostName,
          });
        }
      }
      const gpu = spec.gpus ? new GpuSampler() : undefined;
      let output: StepOutput | undefined;
      // From the start: a checkout or a large input can take longer than the heartbeat timeout.
      const beat = setInterval(
        () => ctx.heartbeat(output?.progress() ?? { lines: 0, lastLine: 'preparing inputs' }),
        Math.max(1000, Math.min(5000, req.heartbeatTimeoutMs / 3)),
      );
      try {
        const checkout = await deps.sources.checkout(spec.source);
        const inputsDir = join(dir, 'inputs');
        const outputsDir = join(dir, 'outputs');
        const metaDir = join(dir, 'meta');
        await mkdir(inputsDir, { recursive: true });
        await mkdir(outputsDir, { recursive: true, mode: 0o777 });
        await mkdir(metaDir, { recursive: true });
        const runDir = join(dir, 'run');
        await mkdir(runDir, { recursive: true });
        for (const [name, ref] of Object.entries(spec.inputs)) await deps.store.materialize(ref, join(inputsDir, name));
        await writeFile(join(metaDir, 'params.json'), JSON.stringify(spec.params, null, 2));
        try {
          await imageReady(runtime, spec.image);
        } catch (err) {
          throw stepFailure('StepInvalid', (err as Error).message, null, { startedAt, host: deps.hostName });
        }

        const env = stepEnvironment(spec, req.attempt, secrets);

        const out = new StepOutput(
          runDir,
          () => Date.now() - t0,
          masker(Object.values(secrets)),
          new LiveLog(deps.store, `${liveLogPrefix(req.execId)}${liveAttemptKey(req.attempt, ctx.info.attempt)}/`),
        );
        output = out;
        const abort = new AbortController();
        // A cancel that came with an early heartbeat (while inputs were prepared) has already
        // aborted the signal, and an 'abort' listener added now would never fire: the
        // container would run to its timeout with nobody waiting for it.
        if (ctx.cancellationSignal.aborted) abort.abort();
        else ctx.cancellationSignal.addEventListener('abort', () => abort.abort(), { once: true });
        gpu?.start(2000);
        ctx.heartbeat({ lines: 0, lastLine: 'starting' });
        const result = await runtime.run({
          // Per runner process too: two Temporal servers (two test runs, two deployments) may run
          // the same step on one engine at once, and names are unique per engine.
          name: `trainyard-${execTag}-${req.attempt}-${ctx.info.attempt}-${process.pid}`,
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
          onLine: (stream, line) => out.onLine(stream, line),
        });
        const gpuSummary = await gpu?.stop();
        const stored = await out.finish(deps.store);
        const facts = { startedAt, finishedAt: new Date().toISOString(), host: deps.hostName, stored };
        if (result.cancelled) {
          // A stopping worker's grace time is up: hand the attempt back as a retryable failure,
          // so Temporal retries it on another runner now, not after the heartbeat timeout.
          if (ctx.workerShutdown)
            throw ApplicationFailure.retryable(
              `the runner on ${deps.hostName} was shut down mid-step; container removed, the step is retried`,
              'RunnerShutdown',
            );
          throw new CancelledFailure('step cancelled; container removed');
        }
        if (result.timedOut)
          throw stepFailure('StepTimedOut', `timed out after ${spec.timeoutSeconds}s; container killed`, null, facts);
        if (result.exitCode !== 0) {
          const lastLine = out.lastLine;
          throw stepFailure(
            'StepFailed',
            `exited with code ${result.exitCode}${lastLine ? `: ${lastLine}` : ''}`,
            result.exitCode,
            facts,
          );
        }
        const outputs: Record<string, ArtifactRef> = {};
        for (const name of spec.outputs) {
          const p = join(outputsDir, name);
          const st = await lstat(p).catch(() => undefined);
          if (!st) {
            throw stepFailure(
              'StepFailed',
              `declared output "${name}" was not written (expected /outputs/${name})`,
              0,
              facts,
            );
          }
          try {
            outputs[name] = await deps.store.putPath(p);
          } catch (err) {
            throw stepFailure('StepFailed', `output "${name}" refused: ${outputRefusal(name, err)}`, 0, facts);
          }
          ctx.heartbeat({ ...out.progress(), lastLine: `stored output ${name}` });
        }
        const extra = (await readdir(outputsDir)).filter((n) => !spec.outputs.includes(n));
        // A listing the step controls: a count and the first few names only.
        if (extra.length)
          ctx.log.warn('undeclared outputs ignored', {
            step: spec.step,
            count: extra.length,
            first: extra.slice(0, 10).map(terminalText),
          });
        return stepResult({
          outputs,
          facts,
          activityAttempt: ctx.info.attempt,
          ...(gpuSummary
            ? {
                gpu: {
                  samples: gpuSummary.samples,
                  meanUtilisation: gpuSummary.meanUtilisation,
                  maxMemoryMiB: gpuSummary.maxMemoryMiB,
                  idleFraction: gpuSummary.idleFraction,
                },
              }
            : {}),
        });
      } finally {
        clearInterval(beat);
        await gpu?.stop().catch(() => undefined);
        await output?.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
}

/** Why an output could not be stored, naming the entry by its path under /outputs rather than a scratch path. */
function outputRefusal(name: string, err: unknown): string {
  if (!(err instanceof EntryRefused)) return (err as Error).message;
  const at = err.path ? `${name}/${err.path}` : name;
  return err.what === 'a symbolic link'
    ? `/outputs/${at} is a symbolic link. Outputs may not contain links (a link could lead outside the output); copy the file or folder it points to instead.`
    : `/outputs/${at} is ${err.what}; only regular files and folders can be stored.`;
}

const readyImages = new WeakMap<ContainerRuntime, Map<string, number>>();
/** `ensureImage`, remembered for a minute: one podman call per image, not per step. */
async function imageReady(runtime: ContainerRuntime, image: string): Promise<void> {
  let ready = readyImages.get(runtime);
  if (!ready) readyImages.set(runtime, (ready = new Map()));
  if ((ready.get(image) ?? 0) > Date.now()) return;
  await runtime.ensureImage(image);
  ready.set(image, Date.now() + 60_000);
}
