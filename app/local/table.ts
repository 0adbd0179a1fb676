// The live step table of `trainyard run`: redrawn in place on a terminal, one line per
// change otherwise (CI logs).
import { humanDuration } from '../../activities/report/markdown.js';
import { reasonBeside, stepDetail, stepElapsedMs } from '../../activities/report/statetext.js';
import { terminalText } from '../../activities/usertext.js';
import type { RunStatus, StepStatus } from '../../model/types.js';

const ICON: Record<StepStatus['state'], string> = {
  pending: '·',
  running: '▶',
  succeeded: '✔',
  cached: '↺',
  failed: '✖',
  skipped: '−',
  cancelled: '■',
};

function duration(s: StepStatus, now: number): string {
  const ms = stepElapsedMs(s, now);
  return ms === null ? '' : humanDuration(ms);
}

/** Step messages can quote the step's own output: one plain line, whatever it printed. */
function why(s: StepStatus): string {
  if (s.state === 'failed' || s.state === 'skipped' || s.state === 'cancelled')
    return terminalText(stepDetail(s.state, s.message));
  return terminalText(s.cache ? reasonBeside(s.state, s.cache.reason) : stepDetail(s.state, s.message));
}

export function renderTable(status: RunStatus, width = 120): string[] {
  const now = Date.now();
  const nameW = Math.min(28, Math.max(4, ...status.steps.map((s) => s.name.length)));
  const lines = [`${'STEP'.padEnd(nameW)}  ${'STATE'.padEnd(12)}  ${'TIME'.padStart(7)}  WHY`];
  for (const s of status.steps) {
    const line = `${terminalText(s.name).slice(0, nameW).padEnd(nameW)}  ${`${ICON[s.state]} ${s.state}`.padEnd(12)}  ${duration(s, now).padStart(7)}  ${why(s)}`;
    lines.push(line.length > width ? `${line.slice(0, width - 1)}…` : line);
  }
  const counts = status.steps.reduce<Record<string, number>>((a, s) => ((a[s.state] = (a[s.state] ?? 0) + 1), a), {});
  lines.push(
    `run ${status.runId}: ${status.state} — ${Object.entries(counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}`,
  );
  return lines;
}

export class LiveTable {
  private drawn = 0;
  private lastStates = new Map<string, string>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly maxRows = 40,
  ) {}

  update(status: RunStatus): void {
    if (this.out.isTTY) {
      let lines = renderTable(status, this.out.columns || 120);
      if (lines.length > this.maxRows + 2) {
        // Big DAGs: show what is moving, then the summary.
        const active = status.steps.filter((s) => s.state === 'running' || s.state === 'failed');
        lines = renderTable({ ...status, steps: active.slice(0, this.maxRows) }, this.out.columns || 120);
      }
      const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
      this.out.write(up + lines.map((l) => `\x1b[2K${l}\n`).join(''));
      this.drawn = lines.length;
      return;
    }
    for (const s of status.steps) {
      const key = `${s.state}`;
      if (this.lastStates.get(s.name) === key) continue;
      this.lastStates.set(s.name, key);
      if (s.state === 'pending') continue;
      const w = why(s);
      this.out.write(
        `${new Date().toISOString().slice(11, 19)} ${terminalText(s.name)}: ${s.state}${w ? ` — ${w}` : ''}\n`,
      );
    }
  }
}
