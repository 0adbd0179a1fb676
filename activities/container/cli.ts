// Picks the docker-compatible CLI this host can use and the `run` flags it needs.
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { execQuiet, lastLine } from './exec.js';
import type { ContainerCliConfig } from './types.js';

/** runc on these hosts refuses ulimits above these, even when the hard limit is higher. */
const MAX_NOFILE = 65_536;
const MAX_NPROC = 16_384;

export const INSTALL_HINT =
  'Install one: on Debian/Ubuntu `apt-get install podman runc`, or Docker Engine (https://docs.docker.com/engine/install/). ' +
  'Or point TRAINYARD_CONTAINER_CLI at a docker-compatible CLI.';

export class ContainerCliUnavailableError extends Error {
  override name = 'ContainerCliUnavailableError';
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `name` is on env.PATH, or undefined. A name containing a slash is taken as a path. */
export async function findOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (name.includes('/')) return (await isExecutable(name)) ? name : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** `podman --version` says "podman version …"; docker's says "Docker version …". */
async function detectKind(command: string, env: NodeJS.ProcessEnv): Promise<'docker' | 'podman' | undefined> {
  const r = await execQuiet(command, ['--version'], { env, timeoutMs: 15_000 });
  if (r.code !== 0) return undefined;
  return /podman/i.test(r.stdout) ? 'podman' : 'docker';
}

async function dockerEngineAnswers(command: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await execQuiet(command, ['info'], { env, timeoutMs: 15_000 });
  return r.code === 0;
}

/** The caller's hard limit from /proc/self/limits; undefined when unlimited or unreadable. */
async function hardLimitFromProc(row: 'Max open files' | 'Max processes'): Promise<number | undefined> {
  try {
    const text = await readFile('/proc/self/limits', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith(row));
    const hard = line?.slice(row.length).trim().split(/\s+/)[1];
    const n = Number.parseInt(hard ?? '', 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Where /proc is missing: the shell's `ulimit` (dash names the process limit -p, bash -u). */
async function hardLimitFromShell(flags: string[]): Promise<number | undefined> {
  for (const flag of flags) {
    const r = await execQuiet('/bin/sh', ['-c', `ulimit -H${flag}`], { timeoutMs: 5_000 });
    const n = Number.parseInt(r.stdout.trim(), 10);
    if (r.code === 0 && Number.isFinite(n) && n > 0) return n;
  }
  return undefined;
}

async function hardLimit(kind: 'nofile' | 'nproc'): Promise<number | undefined> {
  return kind === 'nofile'
    ? ((await hardLimitFromProc('Max open files')) ?? (await hardLimitFromShell(['n'])))
    : ((await hardLimitFromProc('Max processes')) ?? (await hardLimitFromShell(['u', 'p'])));
}

async function podmanFlags(env: NodeJS.ProcessEnv): Promise<string[]> {
  const flags: string[] = [];
  // crun refuses this host's hybrid cgroup layout; runc copes.
  if (await findOnPath('runc', env)) flags.push('--runtime', 'runc');
  // podman's default ulimits exceed what an unprivileged caller may grant, and runc refuses them.
  const nofile = Math.min((await hardLimit('nofile')) ?? MAX_NOFILE, MAX_NOFILE);
  const nproc = Math.min((await hardLimit('nproc')) ?? MAX_NPROC, MAX_NPROC);
  flags.push('--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`);
  return flags;
}

function extraFlags(env: NodeJS.ProcessEnv): string[] {
  return (env.TRAINYARD_CONTAINER_RUN_FLAGS ?? '').split(/\s+/).filter((f) => f.length > 0);
}

/**
 * In `env` (app/ passes the process environment): TRAINYARD_CONTAINER_CLI picks the CLI
 * (docker, podman or a path); otherwise docker when a Docker engine answers `docker info`, else
 * podman when installed. The CLI later runs with `env`. Throws ContainerCliUnavailableError
 * saying how to install one.
 */
export async function resolveContainerCli(env: NodeJS.ProcessEnv): Promise<ContainerCliConfig> {
  const wanted = env.TRAINYARD_CONTAINER_CLI?.trim();
  let command: string | undefined;
  if (wanted) {
    command = await findOnPath(wanted, env);
    if (!command) {
      throw new ContainerCliUnavailableError(
        `TRAINYARD_CONTAINER_CLI=${JSON.stringify(wanted)} is not an executable on PATH or an executable file. ${INSTALL_HINT}`,
      );
    }
  } else {
    const docker = await findOnPath('docker', env);
    if (docker && (await dockerEngineAnswers(docker, env))) command = docker;
    else command = await findOnPath('podman', env);
    if (!command) {
      const why = docker
        ? 'the docker CLI is installed but no Docker engine answers `docker info`, and podman is not installed'
        : 'neither docker nor podman is installed';
      throw new ContainerCliUnavailableError(`No container CLI can run steps: ${why}. ${INSTALL_HINT}`);
    }
  }
  const kind = await detectKind(command, env);
  if (!kind) {
    const r = await execQuiet(command, ['--version'], { env, timeoutMs: 15_000 });
    const detail = r.spawnError?.message ?? lastLine(r.stderr);
    throw new ContainerCliUnavailableError(
      `${command} --version failed (${detail || `exit ${r.code}`}). ${INSTALL_HINT}`,
    );
  }
  const runFlags = [...(kind === 'podman' ? await podmanFlags(env) : []), ...extraFlags(env)];
  return { command, runFlags, kind, env };
}

/** The CLI's dialect: the resolved kind, else guessed from the executable's name. */
export function cliKind(cli: ContainerCliConfig): 'docker' | 'podman' {
  if (cli.kind) return cli.kind;
  return /podman/i.test(cli.command.split('/').pop() ?? '') ? 'podman' : 'docker';
}

export function describeContainerCli(cli: ContainerCliConfig): string {
  const flags = cli.runFlags.length > 0 ? cli.runFlags.join(' ') : '(none)';
  return `${cliKind(cli)} at ${cli.command}; run flags: ${flags}`;
}
