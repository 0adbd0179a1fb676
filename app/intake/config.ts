// `trainyard serve` configuration, read once from the environment at start. Every
// mistake names the variable at fault, so a misconfigured deployment fails at boot with
// a sentence instead of at the first webhook.
import { resolve } from 'node:path';
import { linkSecretFrom } from '../../activities/githost/links.js';
import { loadServiceSettings, storeSetting, workDir, type ServiceSettings } from '../config.js';
import { loadComputeConfig, type ComputeConfig } from '../compute/config.js';
import { SettingError as ConfigError } from '../settings/errors.js';
import { isSet, setting, variableOf, type Env } from '../settings/read.js';
import { SETTINGS } from '../settings/schema.js';
import type { ServerPolicy, TrustedTeam } from './policy.js';

/** The one configuration error (see SettingError); the name `ConfigError` is kept for its callers. */
export { SettingError as ConfigError } from '../settings/errors.js';

export interface GithubConfig {
  appId: number;
  privateKey: string;
  webhookSecret: string;
  /** REST API root: https://api.github.com, or https://HOST/api/v3 on GitHub Enterprise Server. */
  apiUrl: string;
}

export interface GitlabConfig {
  /** Instance root, e.g. https://gitlab.com or a self-managed https://gitlab.example.com. */
  url: string;
  token: string;
  webhookSecret: string;
}

export interface ServeConfig extends ServiceSettings {
  port: number;
  bind: string;
  /** Where this server is reachable from browsers; run pages are linked from checks when set. */
  publicUrl: string | null;
  /** Key of the run-page link signatures; the same on every replica and worker (see linkSettings). */
  linkSecret: string;
  temporalAddress: string;
  temporalNamespace: string;
  store: string;
  workRoot: string;
  /** Run the control worker and this host's runner agent inside the server process. */
  workers: 'in-process' | 'none';
  /** Verify and acknowledge webhooks but start nothing (benchmark baseline). */
  ackOnly: boolean;
  /** Most bytes of webhook bodies held at once before their signature is checked (TRAINYARD_UNVERIFIED_BODY_MB). */
  unverifiedBodyBytes: number;
  logLevel: string;
  github: GithubConfig | null;
  gitlab: GitlabConfig | null;
  policy: ServerPolicy;
}

/**
 * The GitHub App, or null when none of its settings is set. Probot's names are accepted
 * beside Trainyard's (APP_ID, PRIVATE_KEY, PRIVATE_KEY_PATH, WEBHOOK_SECRET, GHE_HOST);
 * both set to different values is refused naming both. Throws ConfigError naming the
 * variable when the App is half configured or a value is malformed.
 */
export function githubConfig(env: Env): GithubConfig | null {
  const names = ['GITHUB_APP_ID', 'GITHUB_PRIVATE_KEY', 'GITHUB_PRIVATE_KEY_FILE', 'GITHUB_WEBHOOK_SECRET'] as const;
  if (!names.some((n) => isSet(env, n))) return null;
  const appId = setting(env, 'GITHUB_APP_ID');
  if (!appId)
    throw new ConfigError('GITHUB_APP_ID', "must be the numeric id of the GitHub App (APP_ID in Probot's terms)");
  const keyText = setting(env, 'GITHUB_PRIVATE_KEY')?.replace(/\\n/g, '\n');
  const keyFile = keyText === undefined ? setting(env, 'GITHUB_PRIVATE_KEY_FILE') : undefined;
  const privateKey = keyText ?? keyFile?.bytes.toString('utf8');
  if (!privateKey)
    throw new ConfigError(
      'GITHUB_PRIVATE_KEY',
      'must be set (PEM text), or GITHUB_PRIVATE_KEY_FILE (a path to the .pem file)',
    );
  if (!/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(privateKey)) {
    const keyVar = variableOf(env, keyText === undefined ? 'GITHUB_PRIVATE_KEY_FILE' : 'GITHUB_PRIVATE_KEY');
    throw new ConfigError(keyVar, 'must be a PEM private key (the .pem file GitHub generated for the app)');
  }
  const webhookSecret = setting(env, 'GITHUB_WEBHOOK_SECRET');
  if (!webhookSecret) throw new ConfigError('GITHUB_WEBHOOK_SECRET', 'must be set to the GitHub App webhook secret');
  return { appId: Number(appId), privateKey, webhookSecret, apiUrl: githubApiUrl(env) };
}

/** GITHUB_API_URL, or Probot's GHE_HOST as https://HOST/api/v3; both set and different is refused. */
function githubApiUrl(env: Env): string {
  const host = setting(env, 'GHE_HOST');
  const fromHost = host ? `https://${host}/api/v3` : undefined;
  if (fromHost && isSet(env, 'GITHUB_API_URL') && setting(env, 'GITHUB_API_URL') !== fromHost) {
    throw new ConfigError(
      'GHE_HOST',
      `is Probot's name for GITHUB_API_URL=${fromHost} and GITHUB_API_URL says something else (${setting(env, 'GITHUB_API_URL')}); set one of them`,
    );
  }
  return fromHost ?? setting(env, 'GITHUB_API_URL');
}

export function gitlabConfig(env: Env): GitlabConfig | null {
  if (!isSet(env, 'GITLAB_TOKEN') && !isSet(env, 'GITLAB_WEBHOOK_SECRET')) return null;
  const token = setting(env, 'GITLAB_TOKEN');
  if (!token)
    throw new ConfigError(
      'GITLAB_TOKEN',
      'must be set to a token with the api scope (a project, group or bot user token)',
    );
  const webhookSecret = setting(env, 'GITLAB_WEBHOOK_SECRET');
  if (!webhookSecret)
    throw new ConfigError('GITLAB_WEBHOOK_SECRET', 'must be set to the secret token of the GitLab webhook');
  return { url: setting(env, 'GITLAB_URL'), token, webhookSecret };
}

/** Repositories from TRAINYARD_ALLOWED_REPOS; machines, GPUs and cost from the compute configuration. */
export function loadPolicy(env: Env): ServerPolicy {
  const repos = setting(env, 'TRAINYARD_ALLOWED_REPOS');
  const compute: ComputeConfig = loadComputeConfig(env);
  return {
    allowedRepos: repos ?? null,
    compute,
    trustedTeams: trustedTeams(env),
    forkSecrets: setting(env, 'TRAINYARD_FORK_SECRETS') === 'allow',
  };
}

/** TRAINYARD_TRUSTED_TEAMS: comma-separated GitHub `org/team-slug`. */
export function trustedTeams(env: Env): TrustedTeam[] {
  return (setting(env, 'TRAINYARD_TRUSTED_TEAMS') ?? []).map((entry) => {
    const [org, team] = entry.split('/');
    return { org: org!, team: team! };
  });
}

/**
 * Run-page links (check `details_url`, status `target_url`) are signed by whichever worker
 * publishes the status and verified by whichever replica serves the page, so with separate
 * processes both need the same TRAINYARD_PUBLIC_URL and TRAINYARD_LINK_SECRET. `split` says
 * this process is one part of such a topology (serve with TRAINYARD_WORKERS=none, or
 * `trainyard worker`): then a missing secret is an error instead of the fallback derived
 * from the webhook secrets, and `requireUrl` makes a missing public URL one too (a worker
 * that publishes to a git host; `none` says on purpose that there are no run pages).
 */
export function linkSettings(
  env: Env,
  opts: { split: boolean; requireUrl?: boolean },
): { publicUrl: string | null; secret: string } {
  const rawUrl = setting(env, 'TRAINYARD_PUBLIC_URL');
  if (rawUrl === undefined && opts.requireUrl) {
    throw new ConfigError(
      'TRAINYARD_PUBLIC_URL',
      'must be set on a worker that publishes to GitHub/GitLab: the URL where `trainyard serve` is reachable (the check runs link their run pages there), or `none` for no run pages',
    );
  }
  const publicUrl = rawUrl === undefined || rawUrl === 'none' ? null : publicUrlOf(rawUrl);
  const explicit = setting(env, 'TRAINYARD_LINK_SECRET');
  if (explicit === undefined && opts.split && publicUrl !== null) {
    throw new ConfigError(
      'TRAINYARD_LINK_SECRET',
      'must be set, to the same value on every serve replica and worker, when they run as separate processes: workers sign the run-page links that replicas verify',
    );
  }
  // The derived secret uses the webhook secrets whichever names (Trainyard's, Probot's) carry them.
  return {
    publicUrl,
    secret:
      explicit ??
      linkSecretFrom({
        GITHUB_WEBHOOK_SECRET: setting(env, 'GITHUB_WEBHOOK_SECRET'),
        GITLAB_WEBHOOK_SECRET: setting(env, 'GITLAB_WEBHOOK_SECRET'),
      }),
  };
}

function publicUrlOf(raw: string): string {
  const r = SETTINGS.GITHUB_API_URL.kind.schema.safeParse(raw);
  if (!r.success)
    throw new ConfigError('TRAINYARD_PUBLIC_URL', `must be an http(s) URL or none, got ${JSON.stringify(raw)}`);
  return r.data;
}

/** The settings of `trainyard serve`. Throws ConfigError naming the variable at fault. */
export function loadServeConfig(env: Env = process.env): ServeConfig {
  const workers = setting(env, 'TRAINYARD_WORKERS');
  const links = linkSettings(env, { split: workers === 'none' });
  const github = githubConfig(env);
  const gitlab = gitlabConfig(env);
  if (!github && !gitlab) {
    throw new ConfigError(
      'GITHUB_APP_ID',
      'no git host configured: set GITHUB_APP_ID, GITHUB_PRIVATE_KEY(_FILE) and GITHUB_WEBHOOK_SECRET for GitHub, ' +
        'and/or GITLAB_TOKEN and GITLAB_WEBHOOK_SECRET for GitLab',
    );
  }
  return {
    ...loadServiceSettings(env),
    port: setting(env, 'TRAINYARD_PORT'),
    bind: setting(env, 'TRAINYARD_BIND'),
    publicUrl: links.publicUrl,
    linkSecret: links.secret,
    temporalAddress: setting(env, 'TEMPORAL_ADDRESS') ?? '127.0.0.1:7233',
    temporalNamespace: setting(env, 'TEMPORAL_NAMESPACE'),
    store: storeSetting(env),
    workRoot: resolve(workDir(env)),
    workers,
    ackOnly: setting(env, 'TRAINYARD_ACK_ONLY'),
    // At least one delivery of GitHub's largest size must fit.
    unverifiedBodyBytes: setting(env, 'TRAINYARD_UNVERIFIED_BODY_MB') * 1024 * 1024,
    logLevel: setting(env, 'TRAINYARD_LOG_LEVEL'),
    github,
    gitlab,
    policy: loadPolicy(env),
  };
}
