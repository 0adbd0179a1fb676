// Setup must leave a fresh clone clean: `npm ci` installs exactly the lock file and never
// rewrites it, which works only while the lock file is complete for package.json.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('setup', () => {
  it('installs with npm ci, and npm ci accepts the committed lock file as it is', () => {
    expect(readFileSync(join(root, 'setup.sh'), 'utf8')).toMatch(/^\s*npm ci\b/m);
    const dir = mkdtempSync(join(tmpdir(), 'trainyard-lock-'));
    try {
      copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
      copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'));
      const before = readFileSync(join(dir, 'package-lock.json'), 'utf8');
      // Throws (exit 1, "Missing: … from lock file") when the lock is out of sync.
      execFileSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: dir,
        stdio: 'pipe',
      });
      expect(readFileSync(join(dir, 'package-lock.json'), 'utf8')).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
