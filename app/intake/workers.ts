// What a control worker needs from the git-host side: the publishStatus activity and the
// SourceProvider for remote commits. `trainyard serve` uses it for its in-process workers;
// a separate `trainyard worker` process can use it with the same environment.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ArtifactStore } from '../../activities/store/types.js';
import type { SourceProvider } from '../../activities/source/types.js';
import { GitHubClients } from '../../activities/githost/github-client.js';
import { createGitLab } from '../../activities/githost/gitlab-client.js';
import { RunLinks, linkSecretFrom } from '../../activities/githost/links.js';
import { createPublishStatus, type PublishStatus } from '../../activities/githost/publish.js';
import { RemoteSourceProvider } from '../../activities/githost/source.js';
import { githubConfig, gitlabConfig } from './config.js';

export interface GitHostWorkerParts {
  extraActivities: { publishStatus: PublishStatus };
  sourceProviders: { remote: SourceProvider };
}

/** Throws ConfigError (naming the variable) when GitHub or GitLab settings are half set. */
export function gitHostWorkerParts(env: Record<string, string | undefined>, store: ArtifactStore, workRoot: string, log: Logger, shared?: { github?: GitHubClients }): GitHostWorkerParts {
  const gh = githubConfig(env);
  const gl = gitlabConfig(env);
  const github = shared?.github ?? (gh ? new GitHubClients(gh, log) : undefined);
  const publicUrl = env.TRAINYARD_PUBLIC_URL?.trim().replace(/\/+$/, '') || null;
  const links = new RunLinks(publicUrl, linkSecretFrom(env));
  const publishStatus = createPublishStatus({ store, links, log, ...(github ? { github } : {}), ...(gl ? { gitlab: createGitLab(gl) } : {}) });
  const remote = new RemoteSourceProvider({ cacheRoot: join(workRoot, 'remote-sources'), ...(github ? { github } : {}), ...(gl ? { gitlab: gl } : {}) });
  return { extraActivities: { publishStatus }, sourceProviders: { remote } };
}
