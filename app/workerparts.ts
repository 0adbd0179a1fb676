// Optional pieces a long-running worker adds when their configuration is present:
// git-host publishing, the webhook intake and remote sources (GitHub/GitLab env), EC2
// compute (AWS env).
import type { Logger } from 'pino';
import type { ArtifactStore } from '../activities/store/types.js';
import type { RunOptions } from '../model/types.js';
import { githubConfig, gitlabConfig, linkSettings, loadPolicy } from './intake/config.js';
import { gitHostWorkerParts, type GitHostWorkerParts } from './intake/workers.js';

/**
 * Throws ConfigError naming the variable at fault. A worker apart from `serve` must share
 * its run-page settings: with a git host configured it needs TRAINYARD_PUBLIC_URL (or
 * `none`) and, with a public URL, TRAINYARD_LINK_SECRET.
 */
export function workerParts(
  env: Record<string, string | undefined>,
  store: ArtifactStore,
  workRoot: string,
  log: Logger,
  runOptions: () => RunOptions,
): GitHostWorkerParts {
  const hasGitHost = githubConfig(env) !== null || gitlabConfig(env) !== null;
  const links = linkSettings(env, { split: true, requireUrl: hasGitHost });
  return gitHostWorkerParts(env, store, workRoot, log, { links, policy: loadPolicy(env), runOptions });
}
