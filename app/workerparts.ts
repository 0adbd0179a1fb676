// Optional pieces a long-running worker adds when their configuration is present:
// git-host publishing and remote sources (GitHub/GitLab env), EC2 compute (AWS env).
import type { Logger } from 'pino';
import type { ArtifactStore } from '../activities/store/types.js';
import type { SourceProvider } from '../activities/source/types.js';
import { gitHostWorkerParts } from './intake/workers.js';

type AnyActivity = (...args: never[]) => Promise<unknown>;

export async function workerParts(env: Record<string, string | undefined>, store: ArtifactStore, workRoot: string, log: Logger): Promise<{ extraActivities: Record<string, AnyActivity>; sourceProviders: { remote?: SourceProvider } }> {
  const git = gitHostWorkerParts(env, store, workRoot, log);
  return { extraActivities: { ...git.extraActivities }, sourceProviders: git.sourceProviders };
}
