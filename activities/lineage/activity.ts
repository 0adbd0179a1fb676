// The activity the pipeline workflow calls once a run ends: lineage document, indexes and
// report, all in the artifact store. Register with a worker as
// `activities: { ...createLineageActivities({ store }) }`.
import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../store/types.js';
import type { RunInput, RunStatus } from '../../model/types.js';
import { buildLineage, type LineageConclusion, type LineageDoc } from './document.js';
import { diffMarkdown, findBaseRun, metricsDiff } from './compare.js';
import { loadLineage, loadMetricSummaries, lookupSourceSteps, saveLineage } from './storage.js';
import { cacheLookups, missReason, runsFinished, stepDuration } from '../metrics.js';

export interface RecordLineageArgs {
  input: RunInput;
  status: RunStatus;
  /** Link to the run page / check run, shown in the report. */
  detailsUrl?: string;
  /** Report size bound; GitHub's check-run summary limit by default. */
  maxBytes?: number;
}

export interface RecordedLineage {
  lineageKey: string;
  reportKey: string;
  reportMarkdown: string;
  conclusion: LineageConclusion;
  /** One line for a check run title or a commit status description. */
  title: string;
  /** The first failed step and its log, for the check run's "what broke" pointer. */
  failedStep?: { name: string; logDigest?: string };
  /** Metrics against the base run (compare.ts), when there is one: the report's section, for the PR comment too. */
  comparison?: { baseRunId: string; markdown: string };
  /** `sha256:<hex>` of the lineage document's JSON as stored at `lineageKey`: what `trainyard runs` lists to pin a run's record. */
  lineageDigest?: string;
  /** The run's compute cost in USD (lineage totals); absent when nothing was priced. */
  costUsd?: number;
}

export function createLineageActivities(deps: { store: ArtifactStore; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return {
    async recordRunLineage(args: RecordLineageArgs): Promise<RecordedLineage> {
      const sourceSteps = await lookupSourceSteps(deps.store, args.status);
      const metricSummaries = await loadMetricSummaries(deps.store, args.status);
      const doc = buildLineage(args.input, args.status, {
        pipelineFileDigest: args.input.pipeline.digest,
        finishedAt: now().toISOString(),
        sourceSteps,
        metricSummaries,
      });
      const comparison = await compareWithBase(deps.store, doc);
      const saved = await saveLineage(deps.store, doc, {
        detailsUrl: args.detailsUrl,
        maxBytes: args.maxBytes,
        ...(comparison ? { comparison: comparison.lines } : {}),
      });
      runsFinished.inc({ trigger: args.input.trigger.kind, conclusion: doc.conclusion });
      for (const s of doc.steps) {
        if (s.durationMs !== null) stepDuration.observe({ state: s.state }, s.durationMs / 1000);
        if (s.cache)
          cacheLookups.inc({
            decision: s.cache.decision,
            reason: s.cache.decision === 'miss' ? missReason(s.cache.reason) : '',
          });
      }
      const t = doc.totals;
      const title = `${doc.pipeline.name} ${doc.conclusion}: ${t.ran} ran, ${t.cached} cached, ${t.failed} failed, ${t.skipped} skipped`;
      const failed = doc.steps.find((s) => s.state === 'failed');
      const failedStep = failed
        ? { name: failed.name, ...(failed.logDigest ? { logDigest: failed.logDigest } : {}) }
        : undefined;
      // The same serialisation the stores write (putRecord: JSON.stringify), so the digest can be checked against the record.
      const lineageDigest = `sha256:${createHash('sha256').update(JSON.stringify(doc)).digest('hex')}`;
      return {
        ...saved,
        conclusion: doc.conclusion,
        title,
        ...(failedStep ? { failedStep } : {}),
        lineageDigest,
        ...(t.costUsd !== null ? { costUsd: t.costUsd } : {}),
        ...(comparison
          ? { comparison: { baseRunId: comparison.baseRunId, markdown: comparison.lines.join('\n') } }
          : {}),
      };
    },
  };
}

/**
 * The run's metrics against its base run (compare.ts findBaseRun). A comparison that cannot
 * be made (no base, an unreadable document) leaves the report without the section; it
 * never fails the run's lineage.
 */
async function compareWithBase(
  store: ArtifactStore,
  doc: LineageDoc,
): Promise<{ baseRunId: string; lines: string[] } | undefined> {
  try {
    const base = await findBaseRun(store, doc);
    const baseDoc = base ? await loadLineage(store, base.runId) : undefined;
    if (!base || !baseDoc) return undefined;
    return { baseRunId: base.runId, lines: diffMarkdown(metricsDiff(doc, baseDoc), base) };
  } catch {
    return undefined;
  }
}
