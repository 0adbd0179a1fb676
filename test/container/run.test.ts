// Real containers through the host's CLI (podman here): what a step author would see.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { parseMetricLine } from '../../activities/container/metrics.js';
import {
  ContainerImageError,
  ContainerRequestError,
  ensureImage,
  imageId,
  listContainers,
  removeContainers,
  runContainer,
} from '../../activities/container/run.js';
import type { ContainerCliConfig, ContainerRunRequest } from '../../activities/container/types.js';
import { BUSYBOX_IMAGE, PYTHON_IMAGE, ensureTestImages } from '../fixtures/images/images.js';

const exec = promisify(execFile);
let cli: ContainerCliConfig;
const runLabel = `t${randomBytes(6).toString('hex')}`;
const scratch = mkdtempSync(join(tmpdir(), 'trainyard-container-test-'));

beforeAll(async () => {
  cli = await resolveContainerCli(process.env);
  await ensureTestImages();
});

afterAll(async () => {
  if (cli) await removeContainers(cli, { 'trainyard.test': runLabel });
  rmSync(scratch, { recursive: true, force: true });
});

interface Captured {
  stdout: string[];
  stderr: string[];
}

function request(
  overrides: Partial<ContainerRunRequest>,
  captured: Captured = { stdout: [], stderr: [] },
): ContainerRunRequest {
  const name = `ty-test-${randomBytes(5).toString('hex')}`;
  return {
    name,
    labels: { 'trainyard.test': runLabel, 'trainyard.exec': name },
    image: BUSYBOX_IMAGE,
    command: ['true'],
    env: {},
    mounts: [],
    workdir: '/workspace',
    gpus: false,
    timeoutMs: 60_000,
    onLine: (stream, line) => captured[stream].push(line),
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** Names of containers with this exec label, asked of the CLI directly (not through our code). */
async function containersLabelled(name: string): Promise<string[]> {
  const { stdout } = await exec(cli.command, [
    'ps',
    '-a',
    '--filter',
    `label=trainyard.exec=${name}`,
    '--format',
    '{{.Names}}',
  ]);
  return stdout.split('\n').filter((l) => l.trim());
}

describe('runContainer', () => {
  it('reports the exit code and removes the container', async () => {
    const ok = request({ command: ['sh', '-c', 'exit 0'] });
    const failed = request({ command: ['sh', '-c', 'echo bye; exit 7'] });
    expect((await runContainer(cli, ok)).exitCode).toBe(0);
    const r = await runContainer(cli, failed);
    expect(r).toMatchObject({ exitCode: 7, timedOut: false, cancelled: false });
    expect(await containersLabelled(ok.name)).toEqual([]);
    expect(await containersLabelled(failed.name)).toEqual([]);
  });

  it('delivers environment values literally, with nothing spliced into a shell', async () => {
    const marker = join('/tmp', `pwned-${randomBytes(6).toString('hex')}`);
    const env = {
      QUOTES: `it's "quoted" \\ back\\slash`,
      SUBST: `$(touch ${marker})`,
      BACKTICKS: `\`touch ${marker}\``,
      SEMI: `a; touch ${marker}; b && c | d`,
      NEWLINES: `line one\nline two\n$(touch ${marker})\n`,
      SPACES: '  padded  ',
      HASH: '#not a comment',
      EQUALS: 'a=b=c',
      EMPTY: '',
      UNICODE: 'naïve ✓ 日本',
    };
    const captured: Captured = { stdout: [], stderr: [] };
    const req = request(
      {
        image: PYTHON_IMAGE,
        env,
        command: [
          'python3',
          '-c',
          `import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))`,
          ...Object.keys(env),
        ],
      },
      captured,
    );
    const r = await runContainer(cli, req);
    expect(r.exitCode, captured.stderr.join('\n')).toBe(0);
    expect(JSON.parse(captured.stdout.at(-1) ?? 'null')).toEqual(env);
    expect(existsSync(marker)).toBe(false);
  });

  it('passes command arguments literally', async () => {
    const captured: Captured = { stdout: [], stderr: [] };
    const arg = `$(echo spliced) \`echo ticks\` ; echo semi`;
    const r = await runContainer(cli, request({ command: ['printf', '%s\n', arg] }, captured));
    expect(r.exitCode).toBe(0);
    expect(captured.stdout).toEqual([arg]);
  });

  it('mounts read-only and read-write folders', async () => {
    const ro = mkdtempSync(join(scratch, 'ro-'));
    const rw = mkdtempSync(join(scratch, 'rw-'));
    writeFileSync(join(ro, 'in.txt'), 'input data\n');
    const captured: Captured = { stdout: [], stderr: [] };
    const r = await runContainer(
      cli,
      request(
        {
          mounts: [
            { host: ro, container: '/inputs/data', readOnly: true },
            { host: rw, container: '/outputs/model', readOnly: false },
          ],
          command: [
            'sh',
            '-c',
            'cat /inputs/data/in.txt; if echo x > /inputs/data/in.txt; then echo WROTE_RO; else echo ro-refused; fi; ' +
              'cat /inputs/data/in.txt > /outputs/model/out.txt; echo done >> /outputs/model/out.txt',
          ],
        },
        captured,
      ),
    );
    expect(r.exitCode, captured.stderr.join('\n')).toBe(0);
    expect(captured.stdout).toEqual(['input data', 'ro-refused']);
    expect(readFileSync(join(ro, 'in.txt'), 'utf8')).toBe('input data\n');
    expect(readFileSync(join(rw, 'out.txt'), 'utf8')).toBe('input data\ndone\n');
  });

  it('streams stdout and stderr line by line, each in order, joining partial writes', async () => {
    const captured: Captured = { stdout: [], stderr: [] };
    const script =
      'i=1; while [ $i -le 150 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; ' +
      "printf 'part'; sleep 0.3; printf 'ial\\r\\n'; printf '\\n'; printf 'no newline at end'";
    const r = await runContainer(cli, request({ command: ['sh', '-c', script] }, captured));
    expect(r.exitCode).toBe(0);
    const expectOut = Array.from({ length: 150 }, (_, i) => `out${i + 1}`);
    expect(captured.stdout).toEqual([...expectOut, 'partial', '', 'no newline at end']);
    expect(captured.stderr).toEqual(Array.from({ length: 150 }, (_, i) => `err${i + 1}`));
  });

  it('caps a very long line at 64 KiB and keeps the lines after it', async () => {
    const captured: Captured = { stdout: [], stderr: [] };
    const r = await runContainer(
      cli,
      request({ image: PYTHON_IMAGE, command: ['python3', '-c', "print('x' * 300000); print('after')"] }, captured),
    );
    expect(r.exitCode).toBe(0);
    expect(captured.stdout.map((l) => l.length)).toEqual([64 * 1024, 5]);
    expect(captured.stdout[1]).toBe('after');
  });

  it('turns JSON-object stdout lines into metrics samples', async () => {
    const captured: Captured = { stdout: [], stderr: [] };
    const program = [
      'import json',
      'print("epoch 1 starting")',
      'for epoch in range(1, 4):',
      '    print(json.dumps({"epoch": epoch, "loss": round(1 / epoch, 4), "phase": "train", "best": epoch == 3}))',
      'print(json.dumps({"nested": {"no": 1}}))',
      'print("[1, 2]")',
    ].join('\n');
    const r = await runContainer(cli, request({ image: PYTHON_IMAGE, command: ['python3', '-c', program] }, captured));
    expect(r.exitCode).toBe(0);
    const samples = captured.stdout.map(parseMetricLine).filter((s) => s !== undefined);
    expect(samples).toEqual([
      { epoch: 1, loss: 1, phase: 'train', best: false },
      { epoch: 2, loss: 0.5, phase: 'train', best: false },
      { epoch: 3, loss: 0.3333, phase: 'train', best: true },
    ]);
  });

  // How soon a timed-out or aborted container is gone is measured by bench/latency.ts; here,
  // a container that was not killed would live to print "finished".
  it('kills a container that runs past its timeout and leaves none behind', async () => {
    const captured: Captured = { stdout: [], stderr: [] };
    // The timeout counts from the CLI's start: 5 s leaves a loaded machine time to start the
    // container (with 1 s, a CI machine under load killed it before it printed a line).
    const req = request({ command: ['sh', '-c', 'echo started; sleep 60; echo finished'], timeoutMs: 5_000 }, captured);
    const r = await runContainer(cli, req);
    expect(r).toMatchObject({ timedOut: true, cancelled: false, exitCode: null });
    expect(captured.stdout).toEqual(['started']);
    expect(await containersLabelled(req.name)).toEqual([]);
  });

  it('kills the container on abort, resolves, and leaves no container behind', async () => {
    const controller = new AbortController();
    const captured: Captured = { stdout: [], stderr: [] };
    const req = request(
      { command: ['sh', '-c', 'echo started; sleep 30; echo finished'], signal: controller.signal },
      captured,
    );
    req.onLine = (stream, line) => {
      captured[stream].push(line);
      if (line === 'started') controller.abort();
    };
    const r = await runContainer(cli, req);
    expect(r).toMatchObject({ cancelled: true, timedOut: false, exitCode: null });
    expect(captured.stdout).toEqual(['started']);
    expect(await containersLabelled(req.name)).toEqual([]);
  });

  // A cancel can reach the runner while the CLI is still creating the container (a run
  // superseded the moment its step started): `kill` then finds nothing, and the CLI goes on to
  // start the container. Aborts spread over the CLI's first moments (about 100-250 ms here to
  // create and start a container) must all end cancelled with nothing left running.
  it('an abort at any moment while the CLI creates the container leaves no container behind', async () => {
    for (const afterMs of [0, 40, 80, 120, 160, 200, 260, 350, 500]) {
      const controller = new AbortController();
      const req = request({ command: ['sh', '-c', 'echo started; sleep 60'], signal: controller.signal });
      const running = runContainer(cli, req);
      setTimeout(() => controller.abort(), afterMs);
      expect(await running, `aborted after ${afterMs} ms`).toMatchObject({ cancelled: true, exitCode: null });
      expect(await containersLabelled(req.name), `aborted after ${afterMs} ms`).toEqual([]);
    }
  }, 120_000);

  it('starts nothing when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const req = request({ command: ['sh', '-c', 'sleep 30'], signal: controller.signal });
    expect(await runContainer(cli, req)).toMatchObject({ cancelled: true, exitCode: null });
    expect(await containersLabelled(req.name)).toEqual([]);
  });

  it('refuses a missing image with a clear error', async () => {
    const req = request({ image: 'localhost/trainyard-no-such-image:1' });
    await expect(runContainer(cli, req)).rejects.toThrow(ContainerImageError);
    await expect(runContainer(cli, req)).rejects.toThrow(/localhost\/trainyard-no-such-image:1 is not present locally/);
  });

  it('still says an image is missing when it was removed after a run that used it, and leaves no container either time', async () => {
    // A tag of our own: removing it leaves the shared test image alone.
    const image = `localhost/trainyard-gone-${randomBytes(4).toString('hex')}:1`;
    await exec(cli.command, ['tag', BUSYBOX_IMAGE, image]);
    try {
      const first = request({ image, command: ['sh', '-c', 'exit 3'] });
      expect(await runContainer(cli, first)).toMatchObject({ exitCode: 3 });
      expect(await containersLabelled(first.name)).toEqual([]);
    } finally {
      await exec(cli.command, ['rmi', image]);
    }
    const again = request({ image });
    await expect(runContainer(cli, again)).rejects.toThrow(
      new RegExp(`${image.replace(/[.:/-]/g, '\\$&')} is not present locally`),
    );
    expect(await containersLabelled(again.name)).toEqual([]);
  });

  it('refuses requests that would inject CLI flags or options', async () => {
    await expect(runContainer(cli, request({ image: '--privileged' }))).rejects.toThrow(ContainerRequestError);
    await expect(runContainer(cli, request({ name: '--rm' }))).rejects.toThrow(ContainerRequestError);
    await expect(
      runContainer(cli, request({ mounts: [{ host: `${scratch}:/etc`, container: '/x', readOnly: true }] })),
    ).rejects.toThrow(/must not contain ":"/);
    await expect(runContainer(cli, request({ env: { 'A=B': 'x' } }))).rejects.toThrow(ContainerRequestError);
  });
});

describe('removeContainers', () => {
  it('removes a container left running by a killed process', async () => {
    const name = `ty-orphan-${randomBytes(5).toString('hex')}`;
    const worker = spawn(
      cli.command,
      [
        'run',
        ...cli.runFlags,
        '--name',
        name,
        '--label',
        `trainyard.test=${runLabel}`,
        '--label',
        'trainyard.worker=w1',
        BUSYBOX_IMAGE,
        'sleep',
        '300',
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 30_000;
    while (
      !(await listContainers(cli, { 'trainyard.test': runLabel, 'trainyard.worker': 'w1' })).some(
        (c) => c.name === name && c.state === 'running',
      )
    ) {
      if (Date.now() > deadline) throw new Error('orphan container never started');
      await new Promise((r) => setTimeout(r, 200));
    }
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    const before = await listContainers(cli, { 'trainyard.test': runLabel, 'trainyard.worker': 'w1' });
    expect(before.map((c) => [c.name, c.state])).toEqual([[name, 'running']]);

    expect(await removeContainers(cli, { 'trainyard.test': runLabel, 'trainyard.worker': 'w1' })).toEqual([name]);
    const { stdout } = await exec(cli.command, ['ps', '-a', '--filter', `name=${name}`, '--format', '{{.Names}}']);
    expect(stdout.trim()).toBe('');
  });

  it('refuses an empty selector, which would match every container', async () => {
    await expect(removeContainers(cli, {})).rejects.toThrow(/at least one label/);
  });
});

describe('images', () => {
  it('gives the local image id and undefined for an absent image', async () => {
    const { stdout } = await exec(cli.command, ['image', 'inspect', '--format', '{{.Id}}', BUSYBOX_IMAGE]);
    const id = await imageId(cli, BUSYBOX_IMAGE);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(id?.endsWith(stdout.trim().replace(/^sha256:/, ''))).toBe(true);
    expect(await imageId(cli, 'localhost/trainyard-no-such-image:1')).toBeUndefined();
    expect(await ensureImage(cli, BUSYBOX_IMAGE)).toBe(id);
  });

  it('says no registry could be reached and how to build the image when a pull fails', async () => {
    const image = 'localhost/trainyard-no-such-image:2';
    const err = await ensureImage(cli, image).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ContainerImageError);
    expect(String(err)).toMatch(
      /image localhost\/trainyard-no-such-image:2 is not present locally and could not be pulled/,
    );
    expect(String(err)).toMatch(/no registry could be reached/);
    expect(String(err)).toMatch(/examples\/image\/build\.sh/);
  });
});
