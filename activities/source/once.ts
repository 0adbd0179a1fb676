import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';

// Checkouts are unpacked once per commit and shared: concurrent requests for the same
// folder wait for the one extraction in flight.
export class OncePerKey {
  private readonly inFlight = new Map<string, Promise<string>>();

  run(key: string, work: () => Promise<string>): Promise<string> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = work().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }
}

/** A full git commit id (SHA-1 or SHA-256), so it can never be read as a path or option. */
export const COMMIT_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/**
 * Makes `dir` once: fills a temporary sibling folder, then renames it into place, so a
 * crash never leaves a half-filled checkout under its final name. Returns `dir`.
 */
export async function fillOnce(dir: string, fill: (tmp: string) => Promise<void>): Promise<string> {
  if (await exists(dir)) return dir;
  const tmp = `${dir}.tmp-${randomUUID()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another process filled the same folder first; its copy is as good as ours.
      if (!(await exists(dir))) throw err;
    }
    return dir;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
