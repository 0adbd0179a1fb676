// The container CLI runs in the environment app/ resolved it in (ContainerCliConfig.env), not in
// whatever this process's environment happens to hold: activities/ reads no process.env.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runContainer } from '../../activities/container/run.js';
import type { ContainerCliConfig } from '../../activities/container/types.js';

const scratch = mkdtempSync(join(tmpdir(), 'trainyard-cli-env-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A docker-compatible CLI stand-in: every image is present; `run` writes what it sees of TRAINYARD_TEST_MARKER. */
function fakeCli(): string {
  const file = join(scratch, 'fake-cli');
  writeFileSync(
    file,
    [
      '#!/bin/sh',
      'case "$1" in',
      '  image) echo sha256:0123456789abcdef; exit 0 ;;',
      '  run) printf "%s" "${TRAINYARD_TEST_MARKER:-unset}" > "$MARKER_FILE"; exit 0 ;;',
      '  *) exit 0 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(file, 0o755);
  return file;
}

describe('the container CLI environment', () => {
  it('runs `run` with the environment the CLI was resolved in, not the process environment', async () => {
    const marker = join(scratch, 'marker');
    process.env.TRAINYARD_TEST_MARKER = 'from-process-env';
    try {
      const cli: ContainerCliConfig = {
        command: fakeCli(),
        runFlags: [],
        kind: 'podman',
        env: { PATH: process.env.PATH, TRAINYARD_TEST_MARKER: 'from-resolved-env', MARKER_FILE: marker },
      };
      const result = await runContainer(cli, {
        name: 'trainyard-cli-env-test',
        labels: { 'trainyard.exec': 'cli-env-test' },
        image: 'example.test/image:1',
        command: ['true'],
        env: {},
        mounts: [],
        workdir: '/work',
        gpus: false,
        timeoutMs: 30_000,
        onLine: () => undefined,
        signal: new AbortController().signal,
      });
      expect(result.exitCode).toBe(0);
      expect(readFileSync(marker, 'utf8')).toBe('from-resolved-env');
    } finally {
      delete process.env.TRAINYARD_TEST_MARKER;
    }
  });
});
