// `trainyard doctor` on a namespace without the run search attributes, as an operator meets it
// on a fresh Temporal: FAIL naming `trainyard setup-temporal`; after that command, ok.
// Without the check, runs start without their attributes and `trainyard runs` lists none.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { afterAll, expect, it } from 'vitest';
import { temporalAddress } from '../setup/services.js';

const scratch = mkdtempSync(join(tmpdir(), 'trainyard-doctor-sa-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function trainyard(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(import.meta.dirname, '..', '..', 'bin', 'trainyard.js'), ...args],
      {
        encoding: 'utf8',
        timeout: 120_000,
        cwd: scratch,
        env: { PATH: process.env.PATH, HOME: scratch, ...env },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

it('fails the Temporal check of a namespace without the run search attributes, and passes after setup-temporal', async () => {
  const namespace = `doctor-sa-${randomUUID().slice(0, 8)}`;
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    // A new namespace reaches the frontend's namespace cache within seconds.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await connection.operatorService.listSearchAttributes({ namespace });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await connection.close();
  }
  const env = {
    TEMPORAL_ADDRESS: temporalAddress(),
    TEMPORAL_NAMESPACE: namespace,
    TRAINYARD_STORE: join(scratch, 'store'),
  };

  const before = await trainyard(['doctor'], env);
  expect(before.stdout).toMatch(
    new RegExp(
      `^FAIL\\s+Temporal: connected, but namespace ${namespace} lacks the run search attributes TrainyardRepository, .*TrainyardConclusion: .*run \`trainyard setup-temporal\``,
      'm',
    ),
  );
  expect(before.code).toBe(1);

  const setup = await trainyard(['setup-temporal'], env);
  expect(setup.stdout, setup.stderr).toMatch(`registered in namespace ${namespace}: TrainyardRepository`);
  const after = await trainyard(['doctor'], env);
  expect(after.stdout).toMatch(
    new RegExp(`^ok\\s+Temporal: ${temporalAddress().replace(/\./g, '\\.')}, namespace ${namespace}$`, 'm'),
  );
  expect(after.code, after.stdout + after.stderr).toBe(0);
}, 300_000);
