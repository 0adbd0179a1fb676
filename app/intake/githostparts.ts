// What a control worker needs from the git-host side: the publishStatus activity, the
// intake activity that acts on recorded deliveries, and the SourceProvider for remote
// commits. `trainyard serve` uses it for its in-process workers; `trainyard worker` with
// the same environment; `trainyard agent` takes only the sources (gitHostSources).
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { ArtifactStore } from '../../activities/store/types.js';
import type { SourceProvider } from '../../activities/source/types.js';
import { GitHubClients } from '../../activities/githost/github-client.js';
import { createGitLab } from '../../activities/githost/gitlab-client.js';
import { RunLinks } from '../../activities/githost/links.js';
import { createPublishStatus, type PublishStatus } from '../../activities/githost/publish.js';
import { GitHostRecords } from '../../activities/githost/records.js';
import { RemoteSourceProvider } from '../../activities/githost/source.js';
import { createIntakeActivities, type IntakeActivities } from '../../activities/intake/activities.js';
import { temporalStarter } from '../../activities/intake/temporalstarter.js';
import type { RunOptions } from '../../model/types.js';
import { githubConfig, gitlabConfig, linkSettings, loadPolicy } from './config.js';
import { intakePolicy, type ServerPolicy } from './policy.js';

export type GitHostActivities = { publishStatus: PublishStatus; handleDelivery: IntakeActivities['handleDelivery'] };

export interface GitHostWorkerParts {
  /** Built once the worker's Temporal client exists (the intake starts runs with it). */
  extraActivities: (client: Client) => GitHostActivities;
  sourceProviders: { remote: SourceProvider };
}

export interface GitHostWorkerOptions {
  /** Clients already built by the caller (serve shares them). */
  github?: GitHubClients;
  links: { publicUrl: string | null; secret: string };
  policy: ServerPolicy;
  /** Options of the runs the intake starts (queues, status interval, parallelism). */
  runOptions: () => RunOptions;
}

/**
 * The git-host parts of a `trainyard worker` apart from `serve`, all settings read from `env`.
 * Throws ConfigError naming the variable at fault: such a worker must share its run-page
 * settings, so with a git host configured it needs TRAINYARD_PUBLIC_URL (or `none`) and, with a
 * public URL, TRAINYARD_LINK_SECRET.
 */
export function gitHostWorkerPartsFromEnv(
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

/** Throws ConfigError (naming the variable) when GitHub or GitLab settings are half set. */
export function gitHostWorkerParts(
  env: Record<string, string | undefined>,
  store: ArtifactStore,
  workRoot: string,
  log: Logger,
  opts: GitHostWorkerOptions,
): GitHostWorkerParts {
  const gh = githubConfig(env);
  const gl = gitlabConfig(env);
  const github = opts.github ?? (gh ? new GitHubClients(gh, log) : undefined);
  const gitlab = gl ? createGitLab(gl) : undefined;
  const links = new RunLinks(opts.links.publicUrl, opts.links.secret);
  const publishStatus = createPublishStatus({
    store,
    links,
    log,
    ...(github ? { github } : {}),
    ...(gitlab ? { gitlab } : {}),
  });
  const remote = new RemoteSourceProvider({
    cacheRoot: join(workRoot, 'remote-sources'),
    ...(github ? { github } : {}),
    ...(gl ? { gitlab: gl } : {}),
  });
  const policy = intakePolicy(opts.policy);
  return {
    extraActivities: (client) => ({
      publishStatus,
      ...createIntakeActivities({
        starter: temporalStarter(client),
        records: new GitHostRecords(store),
        policy,
        log,
        runOptions: opts.runOptions,
        runUrl: (id) => links.runUrl(id),
        ...(github ? { github } : {}),
        ...(gitlab ? { gitlab } : {}),
      }),
    }),
    sourceProviders: { remote },
  };
}

/** Remote sources for a runner agent: the commit archives of GitHub/GitLab when configured. */
export function gitHostSources(
  env: Record<string, string | undefined>,
  workRoot: string,
  log: Logger,
): { remote: SourceProvider } | undefined {
  const gh = githubConfig(env);
  const gl = gitlabConfig(env);
  if (!gh && !gl) return undefined;
  return {
    remote: new RemoteSourceProvider({
      cacheRoot: join(workRoot, 'remote-sources'),
      ...(gh ? { github: new GitHubClients(gh, log) } : {}),
      ...(gl ? { gitlab: gl } : {}),
    }),
  };
}
