// `trainyard diff [RUN_A] [RUN_B]`: the metrics-against-the-base table of the check run and
// PR comment, printed locally from the lineage documents in the store.
import {
  diffText,
  findBaseRun,
  metricsDiff,
  runsOnBranch,
  type MetricsDiff,
} from '../../activities/lineage/compare.js';
import type { LineageDoc } from '../../activities/lineage/document.js';
import { loadLineage } from '../../activities/lineage/storage.js';
import { openStore } from '../store.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { terminalText } from '../../activities/usertext.js';
import { loadPipelines } from '../../pipeline/load.js';
import { loadEngineConfig } from '../config.js';
import { currentBranch, defaultBranch } from './branch.js';
import { findProject } from './project.js';
import { UsageError } from './errors.js';

export interface DiffOptions {
  dir: string;
  pipeline?: string;
  json: boolean;
}

async function mustLoad(store: ArtifactStore, runId: string): Promise<LineageDoc> {
  const doc = await loadLineage(store, runId);
  if (!doc)
    throw new UsageError(
      `no run ${JSON.stringify(runId)} in ${store.location} (finished runs only; trainyard runs lists them)`,
    );
  return doc;
}

/**
 * Which two runs to compare:
 * - RUN_A RUN_B: those two (A is "this run", B the base);
 * - RUN_A: A and its base (a PR run: the base branch's run at the merge base, else the
 *   newest there; otherwise the previous successful run on A's branch);
 * - nothing: this checkout's newest run on its branch, against the newest successful run on
 *   the default branch (origin's HEAD, main or master), or against the previous successful run
 *   when the checkout is on the default branch.
 */
async function pickRuns(
  store: ArtifactStore,
  runs: string[],
  opts: DiffOptions,
): Promise<{ head: LineageDoc; base: LineageDoc }> {
  if (runs.length === 2) return { head: await mustLoad(store, runs[0]!), base: await mustLoad(store, runs[1]!) };
  if (runs.length === 1) {
    const head = await mustLoad(store, runs[0]!);
    const base = await findBaseRun(store, head);
    if (!base)
      throw new UsageError(
        `run ${runs[0]} has no base run in ${store.location} (no earlier successful run of ${head.pipeline.name} on its branch or base branch): name one, trainyard diff ${runs[0]} RUN_B`,
      );
    return { head, base: await mustLoad(store, base.runId) };
  }
  const project = await findProject(opts.dir);
  const { pipelines } = await loadPipelines(project.projectRoot);
  const names = pipelines.map((p) => p.name);
  const pipeline = opts.pipeline ?? (names.length === 1 ? names[0] : undefined);
  if (!pipeline)
    throw new UsageError(
      names.length
        ? `several pipelines here (${names.join(', ')}): choose one with --pipeline NAME`
        : 'no valid pipeline in .trainyard/ here',
    );
  const branch = await currentBranch(project.repoPath);
  if (!branch) throw new UsageError('this checkout is on a detached HEAD: name the runs, trainyard diff RUN_A RUN_B');
  const mine = await runsOnBranch(store, project.repoPath, pipeline, branch);
  if (!mine[0])
    throw new UsageError(
      `no run of ${pipeline} on branch ${branch} of this checkout in ${store.location}: trainyard run first`,
    );
  const main = await defaultBranch(project.repoPath);
  const onBase =
    main && main !== branch
      ? (await runsOnBranch(store, project.repoPath, pipeline, main)).find((r) => r.conclusion === 'succeeded')
      : mine.slice(1).find((r) => r.conclusion === 'succeeded');
  if (!onBase) {
    throw new UsageError(
      main && main !== branch
        ? `no successful run of ${pipeline} on ${main} of this checkout in ${store.location}: run it there (git switch ${main} && trainyard run), or name the runs`
        : `no earlier successful run of ${pipeline} on ${branch} in ${store.location} to compare with`,
    );
  }
  return { head: await mustLoad(store, mine[0].runId), base: await mustLoad(store, onBase.runId) };
}

/** Prints the table (or the MetricsDiff as JSON); returns the exit code. Throws UsageError when a run is missing. */
export async function diffCommand(
  runs: string[],
  opts: DiffOptions,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const store = openStore(loadEngineConfig());
  const { head, base } = await pickRuns(store, runs, opts);
  const diff: MetricsDiff = metricsDiff(head, base);
  out.write(opts.json ? `${JSON.stringify(diff, null, 2)}\n` : diffText(diff, terminalText));
  return 0;
}
