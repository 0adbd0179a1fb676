// The words next to a step's state, shared by every place that shows one (the report's step
// table, the CLI's live table, the check run's progress table, `trainyard lineage`), so that
// none of them says a state twice: not `❌ failed (failed)`, not `skipped — skipped: …`.
import type { RunStatus, StepState, StepStatus } from '../../model/types.js';

/** The emoji of each step state, as GitHub renders it in check runs, comments and the report. */
export const STATE_EMOJI: Readonly<Record<StepState, string>> = {
  succeeded: '✅',
  cached: '♻️',
  failed: '❌',
  skipped: '⏭️',
  cancelled: '🚫',
  pending: '⏳',
  running: '🏃',
};

/** How long a step has run (until `now`, epoch ms, while it runs), in ms; null before it started. */
export function stepElapsedMs(step: Pick<StepStatus, 'startedAt' | 'finishedAt'>, now: number): number | null {
  if (!step.startedAt) return null;
  const end = step.finishedAt ? Date.parse(step.finishedAt) : now;
  return Math.max(0, end - Date.parse(step.startedAt));
}

/**
 * A step's message as shown beside its state: the message without a leading `<state>:`
 * (`skipped: prepare failed` beside `skipped` → `prepare failed`), and nothing when the
 * message is only the state's own word. Returns '' for an absent message.
 */
export function stepDetail(state: StepState | string, message: string | null | undefined): string {
  const text = (message ?? '').trim();
  const word = state.toLowerCase();
  const lower = text.toLowerCase();
  if (lower === word || lower === word.replace('_', ' ')) return '';
  if (lower.startsWith(`${word}:`)) return text.slice(word.length + 1).trim();
  return text;
}

/**
 * What ended the last attempt, when it adds to the state: `(timed out)`, `(host lost)` beside
 * `failed`; nothing for an attempt outcome that is the state itself (`failed`).
 */
export function outcomeNote(state: StepState, outcome: string | undefined): string {
  if (outcome === undefined) return '';
  const words = outcome.replace(/_/g, ' ');
  return words === state ? '' : `(${words})`;
}

/**
 * A cache decision's reason beside a state: `ran: code changed (x)` reads `code changed (x)`
 * beside `running`, so a live table never says `running — ran: …`.
 */
export function reasonBeside(state: StepState | string, reason: string): string {
  return state === 'running' && reason.startsWith('ran: ') ? reason.slice('ran: '.length) : reason;
}

/**
 * What ended a cancelled run when a newer run of its concurrency group replaced it:
 * `Superseded by 1a2b3c4d5e6f` (the newer run's commit, 12 characters as GitHub shows it);
 * undefined for a run that was not superseded.
 */
export function supersededText(status: Pick<RunStatus, 'supersededBy'>): string | undefined {
  const by = status.supersededBy;
  return by ? `Superseded by ${by.sha.slice(0, 12)}` : undefined;
}

/** A sentence for the check's summary of a superseded run, naming the newer run; '' otherwise. */
export function supersededSummary(status: Pick<RunStatus, 'supersededBy'>): string {
  const by = status.supersededBy;
  if (!by) return '';
  return `**${supersededText(status)}**: run \`${by.runId}\` of commit \`${by.sha}\` is newer in this run's concurrency group, so this run was cancelled (its containers and machines cleaned up as on a Cancel).\n\n`;
}
