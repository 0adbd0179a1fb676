// The agent inside a step's pod (activities/k8s/job.ts): `fetch` lays out the commit, the
// inputs and the parameters before the step container starts; `upload` waits, and once the
// kubelet stops it (the step container has exited) stores the declared outputs and writes
// what it stored to the plan's result record. Everything comes from the store by digest.
import { spawn } from 'node:child_process';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { pinoTextHooks } from '../usertext.js';
import { createStore } from '../store/factory.js';
import type { ArtifactStore } from '../store/types.js';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { ArtifactRef } from '../../model/types.js';
import { AGENT_MOUNT, UPLOAD_READY_FILE, type PodPlan, type UploadResult } from './job.js';

/** Where the agent finds the pod's volumes: AGENT_MOUNT, or folders of a test's choosing. */
export type AgentMounts = { readonly [K in keyof typeof AGENT_MOUNT]: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** Reads and checks TRAINYARD_POD_PLAN. Throws with a sentence naming what is wrong. */
export function readPlan(env: Record<string, string | undefined>): PodPlan {
  const raw = env.TRAINYARD_POD_PLAN;
  if (!raw) throw new Error('TRAINYARD_POD_PLAN is not set');
  const plan = JSON.parse(raw) as PodPlan;
  if (typeof plan.store !== 'string' || !plan.store.startsWith('s3://'))
    throw new Error('TRAINYARD_POD_PLAN: store must be s3://…');
  for (const n of [...Object.keys(plan.inputs ?? {}), ...(plan.outputs ?? [])]) {
    // Names become paths under /inputs and /outputs: they must stay there.
    if (!NAME.test(n)) throw new Error(`TRAINYARD_POD_PLAN: ${JSON.stringify(n)} is not an input or output name`);
  }
  return plan;
}

/**
 * Attempts per S3 request of the pod agent (the AWS SDK's default is 3). The upload sidecar
 * holds the only copy of the step's outputs: with the SDK's standard retry strategy (backoff up
 * to 20 s, https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html) and the
 * 10 s connect timeout (store/s3config.ts) this rides out a minute or more of S3 being
 * unreachable, well inside a class's uploadGraceSeconds (default 600).
 */
export const POD_AGENT_S3_ATTEMPTS = 8;

/** The store named by the plan, its S3 client retrying POD_AGENT_S3_ATTEMPTS times; `s3` overrides the client settings. */
export function podAgentStore(plan: PodPlan, s3?: S3ClientConfig): ArtifactStore {
  return createStore(plan.store, { s3: { maxAttempts: POD_AGENT_S3_ATTEMPTS, ...s3 } });
}

/** `fetch`: the commit at /workspace, inputs at /inputs/<name>, parameters at /trainyard/params.json. */
export async function fetchInputs(
  plan: PodPlan,
  store: ArtifactStore,
  mounts: AgentMounts = AGENT_MOUNT,
): Promise<void> {
  const tarFile = join(mounts.scratch, 'workspace.tar');
  await rm(tarFile, { force: true });
  await store.materialize(plan.workspace, tarFile);
  await untar(tarFile, mounts.workspace);
  await rm(tarFile, { force: true });
  for (const [name, ref] of Object.entries(plan.inputs)) await store.materialize(ref, join(mounts.inputs, name));
  await writeFile(join(mounts.meta, 'params.json'), JSON.stringify(plan.params, null, 2));
}

/**
 * `upload`: each declared output found under /outputs is stored; the result goes to the plan's
 * record. `log` gets a line per output (name, digest, bytes, ms): the container's own log is what
 * the runner quotes when this agent is killed before it finishes (activities/k8s/runner.ts).
 */
export async function uploadOutputs(
  plan: PodPlan,
  store: ArtifactStore,
  mounts: AgentMounts = AGENT_MOUNT,
  log?: Logger,
): Promise<UploadResult> {
  const result: UploadResult = { outputs: {}, missing: [], refused: {} };
  for (const name of plan.outputs) {
    const p = join(mounts.outputs, name);
    if (!(await lstat(p).catch(() => undefined))) {
      result.missing.push(name);
      log?.info({ output: name }, 'output missing');
      continue;
    }
    const t0 = Date.now();
    try {
      const ref: ArtifactRef = await store.putPath(p);
      result.outputs[name] = ref;
      log?.info({ output: name, digest: ref.digest, bytes: ref.size, ms: Date.now() - t0 }, 'output stored');
    } catch (e) {
      // How long it tried tells a network outage (many attempts, a minute) from a refusal (one).
      const attempts = (e as { $metadata?: { attempts?: number } }).$metadata?.attempts;
      const ms = Date.now() - t0;
      const tried = attempts ? `${attempts} attempt${attempts === 1 ? '' : 's'} in ` : '';
      result.refused[name] = `${(e as Error).message} (${tried}${(ms / 1000).toFixed(1)} s)`;
      log?.warn({ output: name, error: (e as Error).message, attempts, ms }, 'output refused');
    }
  }
  const t0 = Date.now();
  await store.putRecord(plan.resultKey, result);
  log?.info({ ms: Date.now() - t0 }, 'result recorded');
  return result;
}

function untar(file: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // -o: files belong to whoever runs the step, not to the uid recorded in the archive.
    // --no-overwrite-dir: `dest` is a volume's mount point owned by root; the agent runs as
    // the image's non-root user and may not set its mode or times (GNU tar would fail).
    const tar = spawn('tar', ['-x', '-o', '--no-overwrite-dir', '-f', file, '-C', dest], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let err = '';
    tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
    tar.on('error', reject);
    tar.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar could not unpack the commit: ${err.trim() || `exit ${code}`}`)),
    );
  });
}

/**
 * Entry point of `trainyard-pod-agent fetch|upload`. Resolves with the process exit code; a
 * failure's message goes to stderr and /dev/termination-log, which Kubernetes shows in the
 * pod's status (Trainyard puts it in the step's failure reason). `env` is the pod's environment
 * (app/podagent.ts passes it): TRAINYARD_POD_PLAN and the ids for the log; `s3` the store's
 * client settings (the endpoint the Job sets, activities/k8s/job.ts).
 */
export async function runPodAgent(
  mode: string | undefined,
  env: NodeJS.ProcessEnv,
  s3: S3ClientConfig = {},
): Promise<number> {
  try {
    const plan = readPlan(env);
    const store = podAgentStore(plan, s3);
    if (mode === 'fetch') {
      await mkdir(AGENT_MOUNT.scratch, { recursive: true });
      await fetchInputs(plan, store);
      return 0;
    }
    if (mode === 'upload') {
      // Synchronous writes: the process exits right after its last line.
      const log = pino(
        {
          name: 'trainyard-pod-agent',
          base: { mode, job: env.TRAINYARD_JOB, runId: env.TRAINYARD_RUN_ID, step: env.TRAINYARD_RUN_STEP },
          hooks: pinoTextHooks,
        },
        pino.destination({ dest: 1, sync: true }),
      );
      // A native sidecar: it runs beside the step and is told to stop (SIGTERM) once the step exits.
      // A signal listener does not keep Node alive: a timer does, until the signal comes.
      const told = new Promise<void>((resolve) => {
        const alive = setInterval(() => undefined, 60_000);
        const stop = (signal: NodeJS.Signals) => {
          clearInterval(alive);
          log.info({ signal, outputs: plan.outputs }, 'told to stop: storing the outputs');
          resolve();
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      // As PID 1 a SIGTERM that comes before the listener is ignored, and the outputs would be
      // lost to the grace time's SIGKILL: the sidecar's startupProbe waits for this file, and
      // the kubelet starts the step container only after it (activities/k8s/job.ts).
      await mkdir(AGENT_MOUNT.scratch, { recursive: true });
      await writeFile(UPLOAD_READY_FILE, 'listening for SIGTERM\n');
      log.info('listening for SIGTERM');
      await told;
      const r = await uploadOutputs(plan, store, AGENT_MOUNT, log);
      log.info({ stored: Object.keys(r.outputs), missing: r.missing, refused: Object.keys(r.refused) }, 'done');
      return 0;
    }
    throw new Error(`usage: trainyard-pod-agent fetch|upload (got ${JSON.stringify(mode)})`);
  } catch (e) {
    const msg = `trainyard-pod-agent ${mode ?? ''}: ${(e as Error).message}`;
    process.stderr.write(`${msg}\n`);
    await writeFile('/dev/termination-log', msg.slice(0, 4000)).catch(() => undefined);
    return 1;
  }
}
