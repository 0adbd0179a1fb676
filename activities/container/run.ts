// Runs one step container through a docker-compatible CLI and guarantees it is gone afterwards.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { pino } from 'pino';
import { pinoTextHooks } from '../usertext.js';
import { cliKind } from './cli.js';
import { makeEnvDir } from './envfile.js';
import { execQuiet, lastLine, type ExecResult } from './exec.js';
import { LineSplitter } from './lines.js';
import type { ContainerCliConfig, ContainerRunRequest, ContainerRunResult } from './types.js';

const log = pino({ name: 'trainyard.container', hooks: pinoTextHooks });

/** How long the CLI may take to notice its container was killed before we kill the CLI too. */
const CLI_EXIT_GRACE_MS = 5_000;
const HOUSEKEEPING_TIMEOUT_MS = 60_000;

export class ContainerRequestError extends Error {
  override name = 'ContainerRequestError';
}

export class ContainerImageError extends Error {
  override name = 'ContainerImageError';
  constructor(
    message: string,
    readonly image: string,
  ) {
    super(message);
  }
}

// Argument values that start with "-" would be read by the CLI as flags: refuse them.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IMAGE_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,511}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,255}$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,254}$/;

/** Variables the CLI process itself depends on; they can only reach a container through the env file. */
const CLI_OWN_ENV_RE =
  /^(PATH|HOME|TMPDIR|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|LC_.*|XDG_.*|DOCKER_.*|CONTAINERS_.*|CONTAINER_.*|PODMAN_.*|BUILDAH_.*|REGISTRY_.*|STORAGE_.*|LD_.*|NOTIFY_SOCKET|DBUS_.*|SSL_.*|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy)$/;

export function assertContainerName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ContainerRequestError(
      `container name ${JSON.stringify(name)} must be 1-128 of [A-Za-z0-9_.-], starting with a letter or digit`,
    );
  }
}

export function assertImageRef(image: string): void {
  if (!IMAGE_RE.test(image)) {
    throw new ContainerRequestError(
      `image reference ${JSON.stringify(image)} is not a valid image name (letters, digits and ._-/:@+ only, not starting with "-")`,
    );
  }
}

function assertLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY_RE.test(k))
      throw new ContainerRequestError(
        `label key ${JSON.stringify(k)} must be [A-Za-z0-9_.-/], starting with a letter or digit`,
      );
    if (/[\0\n\r]/.test(v)) throw new ContainerRequestError(`label ${k} has a value with a newline or NUL`);
  }
}

function assertMountPath(what: string, p: string): void {
  if (!isAbsolute(p)) throw new ContainerRequestError(`${what} ${JSON.stringify(p)} must be an absolute path`);
  // ":" separates -v fields; "," would split a --mount spec; both would let a path inject options.
  if (/[:,\0\n\r]/.test(p))
    throw new ContainerRequestError(`${what} ${JSON.stringify(p)} must not contain ":", ",", NUL or newlines`);
  if (p.split('/').includes('..'))
    throw new ContainerRequestError(`${what} ${JSON.stringify(p)} must not contain ".." segments`);
}

interface EnvPlan {
  /** KEY=VALUE lines for --env-file: values are taken literally up to the end of the line. */
  fileLines: string[];
  /** Values with line breaks cannot go in an env file; they pass as `--env KEY` from the CLI's own environment. */
  passthrough: Record<string, string>;
}

function planEnv(env: Record<string, string>): EnvPlan {
  const plan: EnvPlan = { fileLines: [], passthrough: {} };
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_KEY_RE.test(key))
      throw new ContainerRequestError(
        `environment variable name ${JSON.stringify(key)} must match [A-Za-z_][A-Za-z0-9_.-]*`,
      );
    if (typeof value !== 'string') throw new ContainerRequestError(`environment variable ${key} must be a string`);
    if (value.includes('\0'))
      throw new ContainerRequestError(
        `environment variable ${key} contains a NUL byte, which no process environment can hold`,
      );
    if (/[\r\n]/.test(value)) {
      if (CLI_OWN_ENV_RE.test(key)) {
        throw new ContainerRequestError(
          `environment variable ${key} cannot hold a multi-line value (the container CLI itself reads ${key})`,
        );
      }
      plan.passthrough[key] = value;
    } else {
      plan.fileLines.push(`${key}=${value}`);
    }
  }
  return plan;
}

export function gpuFlags(cli: ContainerCliConfig): string[] {
  // podman reaches NVIDIA GPUs through CDI (nvidia-ctk cdi generate); docker through its --gpus hook.
  return cliKind(cli) === 'podman' ? ['--device', 'nvidia.com/gpu=all'] : ['--gpus', 'all'];
}

function buildRunArgs(
  cli: ContainerCliConfig,
  req: ContainerRunRequest,
  envFile: string,
  passthrough: string[],
): string[] {
  const args = ['run', ...cli.runFlags, '--name', req.name, '--rm', '--pull', 'never'];
  for (const [k, v] of Object.entries(req.labels)) args.push('--label', `${k}=${v}`);
  args.push('--env-file', envFile);
  for (const k of passthrough) args.push('--env', k);
  for (const m of req.mounts) args.push('-v', `${m.host}:${m.container}${m.readOnly ? ':ro' : ''}`);
  args.push('-w', req.workdir);
  if (req.gpus) args.push(...gpuFlags(cli));
  args.push(req.image, ...req.command);
  return args;
}

function validate(req: ContainerRunRequest): EnvPlan {
  assertContainerName(req.name);
  assertImageRef(req.image);
  assertLabels(req.labels);
  if (!isAbsolute(req.workdir) || /[\0\n\r]/.test(req.workdir))
    throw new ContainerRequestError(`workdir ${JSON.stringify(req.workdir)} must be an absolute path`);
  for (const m of req.mounts) {
    assertMountPath('mount source', m.host);
    assertMountPath('mount target', m.container);
    if (!existsSync(m.host)) throw new ContainerRequestError(`mount source ${m.host} does not exist on this host`);
  }
  if (req.command.some((a) => a.includes('\0')))
    throw new ContainerRequestError('command arguments must not contain NUL bytes');
  if (!(req.timeoutMs > 0)) throw new ContainerRequestError(`timeoutMs must be positive, got ${req.timeoutMs}`);
  return planEnv(req.env);
}

/** Removes a container whatever its state; quiet when it is already gone. */
async function forceRemove(cli: ContainerCliConfig, name: string): Promise<void> {
  const r = await housekeeping(cli, ['rm', '-f', name]);
  if (
    r.code !== 0 &&
    !/no such container|no container with name|not found|removal of container .* is already in progress/i.test(r.stderr)
  ) {
    log.warn({ container: name, stderr: lastLine(r.stderr) }, 'could not remove container');
  }
}

/** SIGKILL first: `rm -f` alone would wait podman's 10 s stop timeout. */
async function killAndRemove(cli: ContainerCliConfig, name: string): Promise<void> {
  await housekeeping(cli, ['kill', name]);
  await forceRemove(cli, name);
}

/**
 * Images runContainer saw present, by CLI and name, until when (ms): one `image inspect` a
 * minute instead of one per step (a podman call costs 50-100 ms of CPU). An image removed
 * meanwhile is still reported as ContainerImageError, from the run's exit status 125.
 */
const presentImages = new Map<string, number>();
const IMAGE_PRESENT_FOR_MS = 60_000;

/** Containers runContainer started in this process and has not removed yet, by name. */
const liveContainers = new Map<string, { cli: ContainerCliConfig; labels: Record<string, string> }>();

/** Told of every container runContainer starts and removes in this process. */
export interface ContainerListener {
  started(name: string, cli: ContainerCliConfig): void;
  removed(name: string): void;
}
const listeners = new Set<ContainerListener>();

/**
 * Subscribes to this process's container starts and removals (e.g. a watchdog that must
 * remove them should the process be killed); returns the unsubscribe function.
 */
export function watchContainers(listener: ContainerListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Runs the container to completion, a timeout or an abort, streaming its output line by line.
 * The container is removed in every case. exitCode is null when it was timed out or cancelled.
 * Throws ContainerRequestError for an unsafe request and ContainerImageError when the image is not local.
 */
export async function runContainer(cli: ContainerCliConfig, req: ContainerRunRequest): Promise<ContainerRunResult> {
  const plan = validate(req);
  const started = Date.now();
  if (req.signal.aborted) return { exitCode: null, timedOut: false, cancelled: true, durationMs: 0 };
  const imageKey = `${cli.command}\n${req.image}`;
  const seenPresent = (presentImages.get(imageKey) ?? 0) > Date.now();
  const notPresent = () =>
    new ContainerImageError(
      `image ${req.image} is not present locally; call ensureImage first (or build it, e.g. examples/image/build.sh)`,
      req.image,
    );
  if (!seenPresent) {
    if (!(await imageId(cli, req.image))) throw notPresent();
    presentImages.set(imageKey, Date.now() + IMAGE_PRESENT_FOR_MS);
  }

  const dir = await makeEnvDir();
  let removed = false;
  liveContainers.set(req.name, { cli, labels: req.labels });
  for (const l of listeners) l.started(req.name, cli);
  try {
    const envFile = join(dir, 'env');
    await writeFile(envFile, plan.fileLines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    const args = buildRunArgs(cli, req, envFile, Object.keys(plan.passthrough));
    const result = await supervise(cli, req, args, { ...cli.env, ...plan.passthrough }, started);
    // `run --rm` ended with the container's own exit status: the CLI removed it before exiting.
    // 125 is the engine's own error (docker run and podman run alike), where it may be left.
    removed = result.exitCode !== null && result.exitCode < 125;
    if (result.exitCode === 125 && seenPresent) {
      // Removed since we last looked (`--pull never` refused it): say so as a first check would.
      presentImages.delete(imageKey);
      if (!(await imageId(cli, req.image))) throw notPresent();
    }
    return result;
  } finally {
    if (!removed) await forceRemove(cli, req.name);
    liveContainers.delete(req.name);
    for (const l of listeners) l.removed(req.name);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Kills and removes the containers this process started and has not removed yet — all, or
 * those carrying every label in `match` — for a process that must not leave them behind: a
 * second Ctrl-C, a runner stopping after its activities ended without their clean-up (a
 * step kept for a later attempt, Temporal gone). Returns their names; never throws.
 */
export async function removeStartedContainers(match: Record<string, string> = {}): Promise<string[]> {
  const chosen = [...liveContainers].filter(([, c]) => Object.entries(match).every(([k, v]) => c.labels[k] === v));
  await Promise.all(chosen.map(([name, c]) => killAndRemove(c.cli, name).catch(() => undefined)));
  return chosen.map(([name]) => name);
}

function supervise(
  cli: ContainerCliConfig,
  req: ContainerRunRequest,
  args: string[],
  env: NodeJS.ProcessEnv,
  started: number,
): Promise<ContainerRunResult> {
  return new Promise((resolve) => {
    // Aborted while the image was checked or the env file written: the 'abort' event is over,
    // and a listener added now would never fire (the container would run to its timeout).
    // From here to the listener nothing awaits, so no abort can fall in between.
    if (req.signal.aborted) {
      resolve({ exitCode: null, timedOut: false, cancelled: true, durationMs: Date.now() - started });
      return;
    }
    let timedOut = false;
    let cancelled = false;
    let stopping: Promise<void> | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let callbackFailed = false;

    const deliver = (stream: 'stdout' | 'stderr') => (line: string) => {
      try {
        req.onLine(stream, line);
      } catch (err) {
        if (!callbackFailed)
          log.warn({ err, container: req.name }, 'onLine callback threw; later lines still go to it');
        callbackFailed = true;
      }
    };
    const out = new LineSplitter(deliver('stdout'));
    const errLines = new LineSplitter(deliver('stderr'));

    // A process group of its own: a terminal's Ctrl-C goes to trainyard, which cancels the
    // step and stops the container itself; it must not reach the CLI, whose signal proxy
    // would hand SIGINT to the step and turn a cancellation into a failure.
    const child = spawn(cli.command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => errLines.push(b));

    const stop = (): void => {
      if (stopping) return;
      stopping = killAndRemove(cli, req.name).then(() => {
        // The CLI may still be creating the container (e.g. aborted at once): kill it so nothing starts later.
        graceTimer = setTimeout(() => child.kill('SIGKILL'), CLI_EXIT_GRACE_MS);
      });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, req.timeoutMs);
    const onAbort = (): void => {
      cancelled = true;
      stop();
    };
    req.signal.addEventListener('abort', onAbort, { once: true });

    let settled = false;
    const finish = (code: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
      out.end();
      errLines.end();
      void (stopping ?? Promise.resolve()).then(() => {
        if (graceTimer) clearTimeout(graceTimer);
        const stoppedByUs = timedOut || cancelled;
        resolve({ exitCode: stoppedByUs ? null : code, timedOut, cancelled, durationMs: Date.now() - started });
      });
    };
    child.on('error', (err) => {
      deliver('stderr')(`trainyard: could not start ${cli.command}: ${err.message}`);
      finish(null);
    });
    child.on('close', (code) => finish(code));
  });
}

export interface ContainerSummary {
  id: string;
  name: string;
  /** "running", "exited", "created", "paused", … */
  state: string;
  image: string;
}

function labelFilters(labels: Record<string, string>): string[] {
  assertLabels(labels);
  const entries = Object.entries(labels);
  // An empty selector would match every container on the host: never what a cleanup means.
  if (entries.length === 0) throw new ContainerRequestError('a label selector needs at least one label');
  return entries.flatMap(([k, v]) => ['--filter', `label=${k}=${v}`]);
}

/** `ps -a` rows of the containers carrying all of `labels`: id, name, state, image, then the `extra` Go-template columns. */
async function psRows(
  cli: ContainerCliConfig,
  labels: Record<string, string>,
  extra: string[] = [],
): Promise<string[][]> {
  const format = ['{{.ID}}', '{{.Names}}', '{{.State}}', '{{.Image}}', ...extra].join('\t');
  const r = await housekeeping(cli, ['ps', '-a', '--no-trunc', ...labelFilters(labels), '--format', format]);
  if (r.code !== 0) throw new Error(`${cli.command} ps failed: ${r.spawnError?.message ?? lastLine(r.stderr)}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => l.split('\t'));
}

/** Containers (running or not) carrying all of these labels. */
export async function listContainers(
  cli: ContainerCliConfig,
  labels: Record<string, string>,
): Promise<ContainerSummary[]> {
  return (await psRows(cli, labels)).map(([id = '', name = '', state = '', image = '']) => ({
    id,
    name,
    state: normaliseState(state),
    image,
  }));
}

/** Containers carrying all of `labels`, each with the value of the label `key` ('' when unset). */
export async function listContainersWithLabel(
  cli: ContainerCliConfig,
  labels: Record<string, string>,
  key: string,
): Promise<(ContainerSummary & { value: string })[]> {
  assertLabels({ [key]: '' });
  // podman's template sees Labels as a map; docker's as a string, with a Label method instead.
  const value = cliKind(cli) === 'podman' ? `{{index .Labels "${key}"}}` : `{{.Label "${key}"}}`;
  return (await psRows(cli, labels, [value])).map(([id = '', name = '', state = '', image = '', v = '']) => ({
    id,
    name,
    state: normaliseState(state),
    image,
    value: v === '<no value>' ? '' : v,
  }));
}

/** A housekeeping command of the container CLI (ps, rm, kill, inspect), in its environment, bounded in time. */
function housekeeping(cli: ContainerCliConfig, args: readonly string[]): Promise<ExecResult> {
  return execQuiet(cli.command, args, { env: cli.env, timeoutMs: HOUSEKEEPING_TIMEOUT_MS });
}

/** SIGKILL, then `rm -f`, for these containers by id. */
async function killAndRemoveIds(cli: ContainerCliConfig, found: ContainerSummary[]): Promise<void> {
  await housekeeping(cli, ['kill', ...found.map((c) => c.id)]);
  await housekeeping(cli, ['rm', '-f', ...found.map((c) => c.id)]);
}

/** Force-removes these containers (ids); throws when one is still there afterwards. */
export async function removeContainerIds(cli: ContainerCliConfig, found: ContainerSummary[]): Promise<void> {
  if (found.length === 0) return;
  await killAndRemoveIds(cli, found);
  const left = new Set(
    (await housekeeping(cli, ['ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').map((l) => l.trim()),
  );
  const stuck = found.filter((c) => left.has(c.id));
  if (stuck.length > 0) throw new Error(`could not remove containers: ${stuck.map((c) => c.name).join(', ')}`);
}

/** docker prints "running"/"exited"; podman 4 prints "Up 3 seconds"/"Exited (0) 2 seconds ago". */
function normaliseState(raw: string): string {
  const word = raw.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  return word === 'up' ? 'running' : word;
}

/** Force-removes every container with these labels (what a killed worker left behind); returns their names. */
export async function removeContainers(
  cli: ContainerCliConfig,
  labelSelector: Record<string, string>,
): Promise<string[]> {
  const found = await listContainers(cli, labelSelector);
  if (found.length === 0) return [];
  await killAndRemoveIds(cli, found);
  const left = await listContainers(cli, labelSelector);
  const leftIds = new Set(left.map((c) => c.id));
  const stuck = found.filter((c) => leftIds.has(c.id));
  if (stuck.length > 0) throw new Error(`could not remove containers: ${stuck.map((c) => c.name).join(', ')}`);
  return found.map((c) => c.name);
}

/** The local image id ("sha256:…"), or undefined when the image is not present. */
export async function imageId(cli: ContainerCliConfig, image: string): Promise<string | undefined> {
  assertImageRef(image);
  const r = await housekeeping(cli, ['image', 'inspect', '--format', '{{.Id}}', image]);
  if (r.spawnError) throw new Error(`could not run ${cli.command}: ${r.spawnError.message}`);
  if (r.code !== 0) return undefined;
  const id = r.stdout.trim().split('\n')[0]?.trim() ?? '';
  if (!id) return undefined;
  return id.startsWith('sha256:') ? id : `sha256:${id}`;
}

/** Makes sure the image is local, pulling it if needed; returns its id. */
export async function ensureImage(
  cli: ContainerCliConfig,
  image: string,
  opts: { pullTimeoutMs?: number } = {},
): Promise<string> {
  const present = await imageId(cli, image);
  if (present) return present;
  const r = await execQuiet(cli.command, ['pull', image], {
    env: cli.env,
    timeoutMs: opts.pullTimeoutMs ?? 30 * 60_000,
  });
  const after = r.code === 0 ? await imageId(cli, image) : undefined;
  if (after) return after;
  const detail =
    r.spawnError?.message ?? (lastLine(r.stderr) || (r.code === null ? 'the pull timed out' : `exit ${r.code}`));
  throw new ContainerImageError(
    `image ${image} is not present locally and could not be pulled: no registry could be reached or it does not have it (${detail}). ` +
      `Build it on this host instead (examples/image/build.sh makes localhost/trainyard-python:3 without a registry) ` +
      `or load it with \`${cli.command} load -i image.tar\`.`,
    image,
  );
}
