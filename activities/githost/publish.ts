// The `publishStatus` activity: the workflow's live status and final report, sent to
// wherever the run's StatusTarget points. Local runs (target none) publish nothing.
import type { Logger } from 'pino';
import type { PublishRequest } from '../../model/types.js';
import type { ArtifactStore } from '../store/types.js';
import type { GitHubClients } from './github-client.js';
import { GitHubPublisher } from './github-publish.js';
import type { GitLabApi } from './gitlab-client.js';
import { GitLabPublisher } from './gitlab-publish.js';
import type { RunLinks } from './links.js';
import { WriteBudget } from './ratelimit.js';
import { GitHostRecords } from './records.js';

export interface PublishDeps {
  store: ArtifactStore;
  links: RunLinks;
  log: Logger;
  github?: GitHubClients;
  gitlab?: GitLabApi;
  budget?: WriteBudget;
}

export type PublishStatus = (req: PublishRequest) => Promise<void>;

export function createPublishStatus(deps: PublishDeps): PublishStatus {
  const records = new GitHostRecords(deps.store);
  const github = deps.github
    ? new GitHubPublisher(deps.github, records, deps.store, deps.links, deps.budget ?? new WriteBudget(), deps.log)
    : undefined;
  const gitlab = deps.gitlab ? new GitLabPublisher(deps.gitlab, records, deps.links, deps.log) : undefined;
  return async function publishStatus(req: PublishRequest): Promise<void> {
    const target = req.target;
    switch (target.kind) {
      case 'none':
        return;
      case 'github':
        if (!github)
          throw new Error(
            'publishStatus: this worker has no GitHub App configured (GITHUB_APP_ID, GITHUB_PRIVATE_KEY)',
          );
        return github.publish(req, target);
      case 'gitlab':
        if (!gitlab) throw new Error('publishStatus: this worker has no GitLab configured (GITLAB_URL, GITLAB_TOKEN)');
        return gitlab.publish(req, target);
    }
  };
}
