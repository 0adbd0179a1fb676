// Custom search attributes of a pipeline run (Temporal visibility), for `trainyard runs`. All
// Keyword: exact-match filters. Registered by `trainyard setup-temporal` (app/visibility.ts),
// the CLI's embedded dev server and the test setup; set when a run starts, the conclusion when
// it ends. Types only from elsewhere: this file is part of the workflow bundle.
import type { RunInput, SourceRef } from './types.js';

export const SEARCH_ATTRIBUTES = {
  repository: 'TrainyardRepository',
  commit: 'TrainyardCommit',
  branch: 'TrainyardBranch',
  pipeline: 'TrainyardPipeline',
  trigger: 'TrainyardTrigger',
  requester: 'TrainyardRequester',
  conclusion: 'TrainyardConclusion',
} as const;

/**
 * The attributes a run starts with (the conclusion is added when it ends): repository as
 * `owner/repo` (GitHub/GitLab) or the local repository's path, the full commit SHA, the branch
 * (a push's branch, a PR's head branch, a local run's checked-out branch; absent when unknown), the pipeline name, the trigger kind and who
 * asked (push actor, commenter, CLI user).
 */
export function runSearchAttributes(input: RunInput): Record<string, string[]> {
  const s = input.source;
  const repository = repositoryOf(s);
  const t = input.trigger;
  const branch =
    t.kind === 'push'
      ? t.ref.startsWith('refs/heads/')
        ? t.ref.slice('refs/heads/'.length)
        : undefined
      : t.kind === 'cli'
        ? t.branch
        : t.kind === 'comment'
          ? t.headRef
          : undefined;
  const requester = t.kind === 'cli' ? t.user : t.actor;
  const out: Record<string, string[]> = {
    [SEARCH_ATTRIBUTES.repository]: [repository],
    [SEARCH_ATTRIBUTES.commit]: [s.commit],
    [SEARCH_ATTRIBUTES.pipeline]: [input.pipeline.name],
    [SEARCH_ATTRIBUTES.trigger]: [t.kind],
    [SEARCH_ATTRIBUTES.requester]: [requester],
  };
  if (branch) out[SEARCH_ATTRIBUTES.branch] = [branch];
  return out;
}

/** `owner/repo` from a git host's clone URL, or the local repository's path. */
export function repositoryOf(s: SourceRef): string {
  return s.kind === 'remote' ? s.cloneUrl.replace(/\.git$/, '').replace(/^[a-z]+:\/\/[^/]+\//, '') : s.repoPath;
}
