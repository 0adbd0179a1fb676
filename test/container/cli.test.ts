// Which container CLI a host gets, and the flags podman needs here. Every CLI is a fake in a
// PATH of its own, so the answers do not depend on what this host has installed.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ContainerCliUnavailableError,
  describeContainerCli,
  resolveContainerCli,
} from '../../activities/container/cli.js';

const scratch = mkdtempSync(join(tmpdir(), 'trainyard-cli-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What each fake answers: `--version` like the real CLI, `info` as an engine that answers or not. */
const FAKES = {
  podman: '#!/bin/sh\n[ "$1" = --version ] && echo "podman version 4.3.1" && exit 0\nexit 0\n',
  runc: '#!/bin/sh\necho "runc version 1.1.5"\n',
  'docker-with-engine':
    '#!/bin/sh\ncase "$1" in --version) echo "Docker version 27.3.1, build ce12230";; info) echo "Server Version: 27.3.1";; esac\nexit 0\n',
  'docker-without-engine':
    '#!/bin/sh\ncase "$1" in --version) echo "Docker version 27.3.1, build ce12230"; exit 0;; info) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1;; esac\nexit 0\n',
} as const;
type Fake = keyof typeof FAKES;

/** A PATH holding only the named fakes (a docker-* fake is installed as `docker`). */
function pathWith(...fakes: Fake[]): string {
  const dir = mkdtempSync(join(scratch, 'bin-'));
  for (const fake of fakes) {
    const file = join(dir, fake.startsWith('docker') ? 'docker' : fake);
    writeFileSync(file, FAKES[fake]);
    chmodSync(file, 0o755);
  }
  return dir;
}

const hard = (flag: string): number => {
  const v = execFileSync('bash', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).trim();
  return v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v);
};

describe('resolveContainerCli', () => {
  it('gives podman runc and ulimits no higher than the caller may grant', async () => {
    const path = pathWith('podman', 'runc');
    const cli = await resolveContainerCli({ PATH: path, TRAINYARD_CONTAINER_CLI: 'podman' });
    expect(cli.kind).toBe('podman');
    expect(cli.command).toBe(join(path, 'podman'));
    const n = Math.min(hard('n'), 65536);
    const u = Math.min(hard('u'), 16384);
    expect(cli.runFlags).toEqual(['--runtime', 'runc', '--ulimit', `nofile=${n}:${n}`, '--ulimit', `nproc=${u}:${u}`]);
    expect(describeContainerCli(cli)).toContain(`podman at ${cli.command}; run flags: --runtime runc`);
  });

  it('leaves the runtime to podman when runc is not installed, and appends TRAINYARD_CONTAINER_RUN_FLAGS', async () => {
    const cli = await resolveContainerCli({
      PATH: pathWith('podman'),
      TRAINYARD_CONTAINER_RUN_FLAGS: '  --network none\t--cap-drop ALL ',
    });
    expect(cli.kind).toBe('podman');
    expect(cli.runFlags).not.toContain('--runtime');
    expect(cli.runFlags.slice(-4)).toEqual(['--network', 'none', '--cap-drop', 'ALL']);
  });

  it('prefers docker when a Docker engine answers `docker info`, without podman flags', async () => {
    const path = pathWith('docker-with-engine', 'podman', 'runc');
    const cli = await resolveContainerCli({ PATH: path });
    expect(cli).toEqual({ kind: 'docker', command: join(path, 'docker'), runFlags: [], env: { PATH: path } });
  });

  it('falls back to podman when the docker CLI has no engine behind it', async () => {
    const path = pathWith('docker-without-engine', 'podman');
    const cli = await resolveContainerCli({ PATH: path });
    expect(cli.kind).toBe('podman');
    expect(cli.command).toBe(join(path, 'podman'));
  });

  it('says how to install one when no CLI is usable', async () => {
    const empty = mkdtempSync(join(scratch, 'empty-'));
    await expect(resolveContainerCli({ PATH: empty })).rejects.toThrow(ContainerCliUnavailableError);
    await expect(resolveContainerCli({ PATH: empty })).rejects.toThrow(
      /neither docker nor podman is installed.*apt-get install podman runc.*Docker Engine/,
    );
    await expect(resolveContainerCli({ PATH: empty, TRAINYARD_CONTAINER_CLI: '/nonexistent/podman' })).rejects.toThrow(
      /TRAINYARD_CONTAINER_CLI="\/nonexistent\/podman" is not an executable.*apt-get install podman runc/,
    );
  });

  it('names the engine problem when only a docker CLI without engine is installed', async () => {
    await expect(resolveContainerCli({ PATH: pathWith('docker-without-engine') })).rejects.toThrow(
      /no Docker engine answers `docker info`.*apt-get install podman runc/,
    );
  });
});
