// Where a command's wall time goes, for bench/: with TRAINYARD_PHASES_FILE set, each phase
// mark (ms since the process started, performance.now()) is written there as JSON at exit,
// with the process's start time and peak RSS. Nothing is recorded without the variable.
import { writeFileSync } from 'node:fs';

/** What the file holds: `timeOrigin` (ms since the epoch), marks in order, `maxRssKb`. */
export interface PhaseFile {
  timeOrigin: number;
  marks: Array<{ name: string; ms: number }>;
  maxRssKb: number;
}

const file = process.env.TRAINYARD_PHASES_FILE;
const marks: PhaseFile['marks'] = [];
if (file) {
  process.on('exit', () => {
    const out: PhaseFile = { timeOrigin: performance.timeOrigin, marks, maxRssKb: process.resourceUsage().maxRSS };
    try {
      writeFileSync(file, JSON.stringify(out));
    } catch {
      // A benchmark aid: never the reason a command fails.
    }
  });
}

/** Records that `name` is reached now (a no-op unless TRAINYARD_PHASES_FILE is set). */
export function phase(name: string): void {
  if (file) marks.push({ name, ms: performance.now() });
}
