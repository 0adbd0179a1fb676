// The Trainyard checks of one check suite, for "Re-run all checks".
import type { GitHubApi } from './github-client.js';
import type { SuiteCheck } from '../intake/rerun.js';

/** Pipeline checks only: `trainyard/approval` is the fork gate, not a pipeline. */
const isPipelineCheck = (name: string) => name.startsWith('trainyard/') && name !== 'trainyard/approval';

/**
 * The latest check run of each Trainyard pipeline in the suite. A suite belongs to one app,
 * so another app's check that happens to be named `trainyard/…` is never picked up.
 */
export async function trainyardChecksOfSuite(
  api: GitHubApi,
  ref: { owner: string; repo: string },
  suiteId: number,
): Promise<SuiteCheck[]> {
  const runs = await api.paginate(api.rest.checks.listForSuite, {
    ...ref,
    check_suite_id: suiteId,
    filter: 'latest',
    per_page: 100,
  });
  const latest = new Map<string, SuiteCheck>();
  for (const r of runs) {
    if (!isPipelineCheck(r.name)) continue;
    const seen = latest.get(r.name);
    if (!seen || r.id > seen.checkRunId)
      latest.set(r.name, { checkRunId: r.id, name: r.name, externalId: r.external_id ?? '' });
  }
  return [...latest.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}
