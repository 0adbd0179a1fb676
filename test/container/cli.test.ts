// Which container CLI a host gets, and the flags podman needs here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ContainerCliUnavailableError, describeContainerCli, findOnPath, resolveContainerCli } from '../../activities/container/cli.js';

const scratch = mkdtempSync(join(tmpdir(), 'trainyard-cli-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A PATH holding only the named real executables from this host. */
async function pathWith(...names: string[]): Promise<string> {
  const dir = mkdtempSync(join(scratch, 'bin-'));
  for (const name of names) {
    const real = await findOnPath(name, process.env);
    if (!real) throw new Error(`${name} is not installed on this host`);
    symlinkSync(real, join(dir, name));
  }
  return dir;
}

const hard = (flag: string): number => {
  const v = execFileSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).trim();
  return v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v);
};

describe('resolveContainerCli', () => {
  it('gives podman runc and ulimits no higher than the caller may grant', async () => {
    const cli = await resolveContainerCli({ PATH: await pathWith('podman', 'runc'), TRAINYARD_CONTAINER_CLI: 'podman' });
    expect(cli.kind).toBe('podman');
    expect(cli.command.endsWith('/podman')).toBe(true);
    const n = Math.min(hard('n'), 65536);
    const u = Math.min(hard('u'), 16384);
    expect(cli.runFlags).toEqual(['--runtime', 'runc', '--ulimit', `nofile=${n}:${n}`, '--ulimit', `nproc=${u}:${u}`]);
    expect(describeContainerCli(cli)).toContain(`podman at ${cli.command}; run flags: --runtime runc`);
  });

  it('leaves the runtime to podman when runc is not installed, and appends TRAINYARD_CONTAINER_RUN_FLAGS', async () => {
    const cli = await resolveContainerCli({
      PATH: await pathWith('podman'),
      TRAINYARD_CONTAINER_RUN_FLAGS: '  --network none\t--cap-drop ALL ',
    });
    expect(cli.runFlags).not.toContain('--runtime');
    expect(cli.runFlags.slice(-4)).toEqual(['--network', 'none', '--cap-drop', 'ALL']);
  });

  it('falls back to podman when the docker CLI has no engine behind it', async () => {
    const path = await pathWith('docker', 'podman');
    let engine = true;
    try {
      execFileSync(join(path, 'docker'), ['info'], { stdio: 'ignore', timeout: 15_000 });
    } catch {
      engine = false;
    }
    const cli = await resolveContainerCli({ PATH: path });
    expect(cli.kind).toBe(engine ? 'docker' : 'podman');
  });

  it('says how to install one when no CLI is usable', async () => {
    const empty = mkdtempSync(join(scratch, 'empty-'));
    await expect(resolveContainerCli({ PATH: empty })).rejects.toThrow(ContainerCliUnavailableError);
    await expect(resolveContainerCli({ PATH: empty })).rejects.toThrow(/neither docker nor podman is installed.*apt-get install podman runc.*Docker Engine/);
    await expect(resolveContainerCli({ PATH: empty, TRAINYARD_CONTAINER_CLI: '/nonexistent/podman' })).rejects.toThrow(
      /TRAINYARD_CONTAINER_CLI="\/nonexistent\/podman" is not an executable.*apt-get install podman runc/,
    );
  });

  it('names the engine problem when only a docker CLI without engine is installed', async () => {
    const path = await pathWith('docker');
    let engine = true;
    try {
      execFileSync(join(path, 'docker'), ['info'], { stdio: 'ignore', timeout: 15_000 });
    } catch {
      engine = false;
    }
    if (engine) return; // a real Docker engine answers here: nothing to refuse
    await expect(resolveContainerCli({ PATH: path })).rejects.toThrow(/no Docker engine answers `docker info`.*apt-get install podman runc/);
  });
});
