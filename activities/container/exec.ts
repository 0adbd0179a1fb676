// Runs a CLI with an argv array (never a shell string) and collects its output.
import { execFile } from 'node:child_process';

export interface ExecResult {
  /** Exit status; null when the process was killed (timeout) or could not start. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the executable could not be started at all (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException;
}

export interface ExecOptions {
  /** The command's whole environment; unset: this process's own (Node's default). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: string;
}

/** Resolves (never rejects) so callers decide what a failure means. */
export function execQuiet(command: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      [...args],
      {
        ...(opts.env ? { env: opts.env } : {}),
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        if (e && typeof e.code === 'string') {
          resolve({ code: null, stdout: String(stdout), stderr: String(stderr), spawnError: e });
          return;
        }
        const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** The last non-empty line of a CLI's stderr: usually the one that says what went wrong. */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines[lines.length - 1] ?? '';
}
