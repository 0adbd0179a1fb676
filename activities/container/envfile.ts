// Where a step's environment file (`--env-file`: its variables and secret values) lives for the
// moment between being written and the container CLI reading it. In memory when the host has
// /dev/shm, so secret values never reach a disk; in a folder named after the runner's pid, so
// the runner that starts next on this host can remove what a killed one (SIGKILL, OOM) left.
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'trainyard-env-';
const SHM = '/dev/shm';

/**
 * Whether process `pid` exists on this host (signal 0 probes without sending anything).
 * EPERM means a process of another user holds the pid: alive.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** /dev/shm (tmpfs: memory only, emptied at reboot) when it is a writable folder, else the OS temp folder. */
export async function envFileRoot(): Promise<string> {
  try {
    await access(SHM, constants.W_OK | constants.X_OK);
    if ((await stat(SHM)).isDirectory()) return SHM;
  } catch {
    // no /dev/shm (macOS, some containers): the temp folder it is
  }
  return tmpdir();
}

/** A new private folder (mode 0700, mkdtemp) for one container's env file: `<root>/trainyard-env-<pid>-XXXXXX`. */
export async function makeEnvDir(root?: string): Promise<string> {
  return mkdtemp(join(root ?? (await envFileRoot()), `${PREFIX}${process.pid}-`));
}

/**
 * Removes this process's own env folders under `root` (default envFileRoot()): for a process
 * that leaves at once (a second Ctrl-C) while a container start still holds one, whose values
 * (secrets among them) must not stay until the next runner's clean-up. Returns the paths removed;
 * never throws.
 */
export async function removeOwnEnvDirs(root?: string): Promise<string[]> {
  const dir = root ?? (await envFileRoot());
  const mine = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(`${PREFIX}${process.pid}-`));
  const removed: string[] = [];
  for (const name of mine)
    await rm(join(dir, name), { recursive: true, force: true }).then(
      () => removed.push(join(dir, name)),
      () => undefined,
    );
  return removed;
}

/**
 * Removes the env folders under `root` (default envFileRoot()) whose runner process no longer
 * exists, left when a runner was killed between writing one and removing it; folders of live
 * processes, and any younger than `minAgeMs` (a process in another pid namespace sharing the
 * folder may be about to hand its file to the CLI), stay. Returns the paths removed; never throws.
 */
export async function removeOrphanedEnvDirs(root?: string, minAgeMs = 10 * 60_000): Promise<string[]> {
  const dir = root ?? (await envFileRoot());
  const removed: string[] = [];
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const m = /^trainyard-env-(\d+)-/.exec(name);
    const pid = m ? Number(m[1]) : NaN;
    if (!Number.isSafeInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isDirectory() || Date.now() - st.mtimeMs < minAgeMs) continue;
    await rm(path, { recursive: true, force: true }).then(
      () => removed.push(path),
      () => undefined,
    );
  }
  return removed;
}
