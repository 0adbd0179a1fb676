// A .tar.gz of files under one top folder, as both hosts' archive endpoints return.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function tarGz(top: string, files: Record<string, string>): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'fake-host-tar-'));
  try {
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, top, p)), { recursive: true });
      writeFileSync(join(dir, top, p), text);
    }
    return execFileSync('tar', ['-czf', '-', '-C', dir, top]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
