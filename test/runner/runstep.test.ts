// The host runner with its container engine swapped out (ContainerRuntime): what it asks the
// engine for (image, command, environment, read-only mounts, labels) and what it makes of the
// answer (outputs stored by digest, a failure's exit code and last line, a timeout), with no
// podman involved. Temporal's MockActivityEnvironment gives the activity its context.
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRunRequest, ContainerRunResult, ContainerRuntime } from '../../activities/container/types.js';
import { createRunStep } from '../../activities/runner/runstep.js';
import { sha256Bytes } from '../../activities/store/digest.js';
import { LocalStore } from '../../activities/store/local.js';
import type { RunStepRequest, RunStepResult } from '../../model/contracts.js';

/** An engine that runs nothing: it records each request and plays the container's part. */
class ScriptedRuntime implements ContainerRuntime {
  readonly requests: ContainerRunRequest[] = [];
  readonly images: string[] = [];
  constructor(private readonly act: (req: ContainerRunRequest) => Promise<Partial<ContainerRunResult>>) {}
  async ensureImage(image: string): Promise<string> {
    this.images.push(image);
    return `sha256:${'0'.repeat(64)}`;
  }
  async run(req: ContainerRunRequest): Promise<ContainerRunResult> {
    this.requests.push(req);
    return { exitCode: 0, timedOut: false, cancelled: false, durationMs: 1, ...(await this.act(req)) };
  }
  async removeContainers(): Promise<string[]> {
    return [];
  }
}

const hostPathOf = (req: ContainerRunRequest, container: string): string =>
  req.mounts.find((m) => m.container === container)!.host;

let root: string;
let checkout: string;
let store: LocalStore;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'runstep-test-'));
  checkout = join(root, 'checkout');
  await mkdir(checkout);
  await writeFile(join(checkout, 'train.py'), 'print("hi")\n');
  store = new LocalStore(join(root, 'store'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function request(over: Partial<RunStepRequest['spec']> = {}): RunStepRequest {
  return {
    execId: `exec-${Math.random().toString(16).slice(2)}`,
    attempt: 1,
    heartbeatTimeoutMs: 30_000,
    spec: {
      pipeline: 'p',
      step: 'train',
      image: 'localhost/trainer:1',
      command: ['python', 'train.py'],
      env: { EPOCHS: '3' },
      params: { lr: 0.1 },
      inputs: {},
      outputs: ['model'],
      source: { kind: 'git', repoPath: '/nowhere', commit: 'c1', subdir: '' },
      timeoutSeconds: 60,
      gpus: false,
      ...over,
    },
  };
}

async function runWith(
  runtime: ContainerRuntime,
  req: RunStepRequest,
  env = new MockActivityEnvironment(),
): Promise<RunStepResult> {
  const runStep = createRunStep({
    store,
    sources: { checkout: async () => checkout },
    cli: { command: 'scripted', runFlags: [], env: {} },
    runtime,
    workRoot: join(root, 'work'),
    hostName: 'test-host',
    queue: 'q',
  });
  return env.run(runStep, req);
}

describe('host runner over a ContainerRuntime', () => {
  it('asks the engine for the step as declared and stores what it wrote under /outputs by digest', async () => {
    const runtime = new ScriptedRuntime(async (req) => {
      req.onLine('stdout', 'epoch 1 loss=0.5');
      await writeFile(join(hostPathOf(req, '/outputs'), 'model'), 'weights\n');
      return { exitCode: 0 };
    });
    const r = await runWith(runtime, request());
    expect(runtime.images).toEqual(['localhost/trainer:1']);
    const [req] = runtime.requests;
    expect(req).toMatchObject({
      image: 'localhost/trainer:1',
      command: ['python', 'train.py'],
      workdir: '/workspace',
      gpus: false,
      timeoutMs: 60_000,
      labels: { 'trainyard.step': 'train', 'trainyard.pipeline': 'p', 'trainyard.queue': 'q' },
    });
    expect(req!.env).toMatchObject({ EPOCHS: '3', PARAM_LR: '0.1' });
    expect(Object.fromEntries(req!.mounts.map((m) => [m.container, m.readOnly]))).toEqual({
      '/workspace': true,
      '/inputs': true,
      '/outputs': false,
      '/trainyard': true,
    });
    expect(hostPathOf(req!, '/workspace')).toBe(checkout);
    expect(r.exitCode).toBe(0);
    expect(r.outputs.model?.digest).toBe(sha256Bytes('weights\n'));
    expect(await readFile(store.blobPath(r.outputs.model!.digest), 'utf8')).toBe('weights\n');
    expect(r.host).toBe('test-host');
  });

  it("fails the step with the engine's exit code and the container's last line", async () => {
    const runtime = new ScriptedRuntime(async (req) => {
      req.onLine('stderr', 'CUDA out of memory');
      return { exitCode: 3 };
    });
    await expect(runWith(runtime, request())).rejects.toMatchObject({
      type: 'StepFailed',
      message: 'exited with code 3: CUDA out of memory',
    });
  });

  it('fails a step whose container wrote no declared output, and one the engine timed out', async () => {
    await expect(runWith(new ScriptedRuntime(async () => ({ exitCode: 0 })), request())).rejects.toMatchObject({
      type: 'StepFailed',
      message: 'declared output "model" was not written (expected /outputs/model)',
    });
    const timedOut = new ScriptedRuntime(async () => ({ exitCode: null, timedOut: true }));
    await expect(runWith(timedOut, request({ timeoutSeconds: 5 }))).rejects.toMatchObject({
      type: 'StepTimedOut',
      message: 'timed out after 5s; container killed',
    });
  });

  it('starts no container when the cancel came while the inputs were prepared (before the engine was asked)', async () => {
    const env = new MockActivityEnvironment();
    const runtime = new ScriptedRuntime(async (req) =>
      // As runContainer does: an aborted signal starts nothing.
      req.signal.aborted ? { exitCode: null, cancelled: true } : { exitCode: 0 },
    );
    runtime.ensureImage = async () => {
      env.cancel();
      return `sha256:${'0'.repeat(64)}`;
    };
    await expect(runWith(runtime, request(), env)).rejects.toMatchObject({ name: 'CancelledFailure' });
    expect(runtime.requests.map((r) => r.signal.aborted)).toEqual([true]);
  });
});
