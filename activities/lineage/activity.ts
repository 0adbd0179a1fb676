// The activity the pipeline workflow calls once a run ends: lineage document, indexes and
// report, all in the artifact store. Register with a worker as
// `activities: { ...createLineageActivities({ store }) }`.
import type { ArtifactStore } from '../store/types.js';
import type { RunInput, RunStatus } from '../../workflows/types.js';
import { buildLineage, type LineageConclusion } from './document.js';
import { loadMetricSummaries, lookupSourceSteps, saveLineage } from './index.js';
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
      const saved = await saveLineage(deps.store, doc, { detailsUrl: args.detailsUrl, maxBytes: args.maxBytes });
      runsFinished.inc({ trigger: args.input.trigger.kind, conclusion: doc.conclusion });
      for (const s of doc.steps) {
        if (s.durationMs !== null) stepDuration.observe({ state: s.state }, s.durationMs / 1000);
        if (s.cache) cacheLookups.inc({ decision: s.cache.decision, reason: s.cache.decision === 'miss' ? missReason(s.cache.reason) : '' });
      }
      const t = doc.totals;
      const title = `${doc.pipeline.name} ${doc.conclusion}: ${t.ran} ran, ${t.cached} cached, ${t.failed} failed, ${t.skipped} skipped`;
      const failed = doc.steps.find((s) => s.state === 'failed');
      const failedStep = failed ? { name: failed.name, ...(failed.logDigest ? { logDigest: failed.logDigest } : {}) } : undefined;
      return { ...saved, conclusion: doc.conclusion, title, ...(failedStep ? { failedStep } : {}) };
    },
  };
}
