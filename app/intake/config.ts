// `trainyard serve` configuration, read once from the environment at start. Every
// mistake names the variable at fault, so a misconfigured deployment fails at boot with
// a sentence instead of at the first webhook.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { linkSecretFrom } from '../../activities/githost/links.js';
import { defaultStoreLocation } from '../../activities/store/location.js';
import { EnvError, loadServiceSettings, type ServiceSettings } from '../config.js';
import { ComputeConfigError, loadComputeConfig, type ComputeConfig } from '../compute/config.js';
import type { ServerPolicy, TrustedTeam } from './policy.js';

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

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

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function url(env: Env, name: string, fallback: string | null): string | null {
  const raw = str(env, name) ?? fallback;
  if (raw === null) return null;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(name, `must be an http(s) URL, got ${JSON.stringify(raw)}`);
  }
  return raw.replace(/\/+$/, '');
}

function flag(env: Env, name: string): boolean {
  const raw = str(env, name);
  if (raw === undefined) return false;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be 1/0, true/false, yes/no or on/off, got ${JSON.stringify(raw)}`);
}

export function githubConfig(env: Env): GithubConfig | null {
  const names = ['GITHUB_APP_ID', 'GITHUB_PRIVATE_KEY', 'GITHUB_PRIVATE_KEY_FILE', 'GITHUB_WEBHOOK_SECRET'];
  if (!names.some((n) => str(env, n) !== undefined)) return null;
  const appId = str(env, 'GITHUB_APP_ID');
  if (!appId || !/^\d+$/.test(appId)) throw new ConfigError('GITHUB_APP_ID', 'must be the numeric id of the GitHub App');
  const keyFile = str(env, 'GITHUB_PRIVATE_KEY_FILE');
  let privateKey = str(env, 'GITHUB_PRIVATE_KEY')?.replace(/\\n/g, '\n');
  if (!privateKey && keyFile) {
    try {
      privateKey = readFileSync(keyFile, 'utf8');
    } catch (e) {
      throw new ConfigError('GITHUB_PRIVATE_KEY_FILE', `cannot read ${keyFile}: ${(e as Error).message}`);
    }
  }
  const keyVar = keyFile && !str(env, 'GITHUB_PRIVATE_KEY') ? 'GITHUB_PRIVATE_KEY_FILE' : 'GITHUB_PRIVATE_KEY';
  if (!privateKey) throw new ConfigError('GITHUB_PRIVATE_KEY', 'set it (PEM text) or GITHUB_PRIVATE_KEY_FILE (a path)');
  if (!/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----/.test(privateKey)) {
    throw new ConfigError(keyVar, 'is not a PEM private key (the .pem file GitHub generated for the app)');
  }
  const webhookSecret = str(env, 'GITHUB_WEBHOOK_SECRET');
  if (!webhookSecret) throw new ConfigError('GITHUB_WEBHOOK_SECRET', 'must be set to the GitHub App webhook secret');
  return { appId: Number(appId), privateKey, webhookSecret, apiUrl: url(env, 'GITHUB_API_URL', 'https://api.github.com')! };
}

export function gitlabConfig(env: Env): GitlabConfig | null {
  if (!['GITLAB_TOKEN', 'GITLAB_WEBHOOK_SECRET'].some((n) => str(env, n) !== undefined)) return null;
  const token = str(env, 'GITLAB_TOKEN');
  if (!token) throw new ConfigError('GITLAB_TOKEN', 'must be set to a token with the api scope (a project, group or bot user token)');
  const webhookSecret = str(env, 'GITLAB_WEBHOOK_SECRET');
  if (!webhookSecret) throw new ConfigError('GITLAB_WEBHOOK_SECRET', 'must be set to the secret token of the GitLab webhook');
  return { url: url(env, 'GITLAB_URL', 'https://gitlab.com')!, token, webhookSecret };
}

/** Repositories from TRAINYARD_ALLOWED_REPOS; machines, GPUs and cost from the compute configuration. */
export function loadPolicy(env: Env): ServerPolicy {
  const repos = str(env, 'TRAINYARD_ALLOWED_REPOS')?.split(',').map((s) => s.trim()).filter(Boolean);
  if (repos?.some((r) => !/^[A-Za-z0-9_.*?{}\[\]!/-]+$/.test(r))) {
    throw new ConfigError('TRAINYARD_ALLOWED_REPOS', 'must be a comma-separated list of owner/repo globs such as acme/*');
  }
  let compute: ComputeConfig;
  try {
    compute = loadComputeConfig(env);
  } catch (e) {
    if (!(e instanceof ComputeConfigError)) throw e;
    const first = e.problems[0] ?? '';
    throw new ConfigError(/^([A-Z0-9_]+):/.exec(first)?.[1] ?? 'compute configuration', e.problems.map((p) => p.replace(/^[A-Z0-9_]+: /, '')).join('; '));
  }
  return { allowedRepos: repos ?? null, compute, trustedTeams: trustedTeams(env) };
}

/** TRAINYARD_TRUSTED_TEAMS: comma-separated GitHub `org/team-slug`. */
export function trustedTeams(env: Env): TrustedTeam[] {
  const entries = str(env, 'TRAINYARD_TRUSTED_TEAMS')?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  return entries.map((entry) => {
    const m = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9_-][A-Za-z0-9._-]{0,99})$/.exec(entry);
    if (!m) {
      throw new ConfigError('TRAINYARD_TRUSTED_TEAMS', `must be a comma-separated list of GitHub org/team-slug such as acme/ml-team, got ${JSON.stringify(entry)}`);
    }
    return { org: m[1]!, team: m[2]! };
  });
}

function dataHome(env: Env): string {
  const xdg = str(env, 'XDG_DATA_HOME');
  return xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
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
export function linkSettings(env: Env, opts: { split: boolean; requireUrl?: boolean }): { publicUrl: string | null; secret: string } {
  const rawUrl = str(env, 'TRAINYARD_PUBLIC_URL');
  if (rawUrl === undefined && opts.requireUrl) {
    throw new ConfigError('TRAINYARD_PUBLIC_URL', 'must be set on a worker that publishes to GitHub/GitLab: the URL where `trainyard serve` is reachable (the check runs link their run pages there), or `none` for no run pages');
  }
  const publicUrl = rawUrl === 'none' ? null : url(env, 'TRAINYARD_PUBLIC_URL', null);
  const explicit = str(env, 'TRAINYARD_LINK_SECRET');
  if (explicit !== undefined && explicit.length < 16) throw new ConfigError('TRAINYARD_LINK_SECRET', 'must be at least 16 characters (a random string, e.g. `openssl rand -hex 32`)');
  if (explicit === undefined && opts.split && publicUrl !== null) {
    throw new ConfigError('TRAINYARD_LINK_SECRET', 'must be set, to the same value on every serve replica and worker, when they run as separate processes: workers sign the run-page links that replicas verify');
  }
  return { publicUrl, secret: explicit ?? linkSecretFrom(env) };
}

function serviceSettings(env: Env): ServiceSettings {
  try {
    return loadServiceSettings(env);
  } catch (e) {
    if (e instanceof EnvError) throw new ConfigError(e.variable, e.message.slice(e.variable.length + 2));
    throw e;
  }
}

export function loadServeConfig(env: Env = process.env): ServeConfig {
  const workers = str(env, 'TRAINYARD_WORKERS') ?? 'in-process';
  if (workers !== 'in-process' && workers !== 'none') {
    throw new ConfigError('TRAINYARD_WORKERS', `must be "in-process" or "none", got ${JSON.stringify(workers)}`);
  }
  const links = linkSettings(env, { split: workers === 'none' });
  const cfg: ServeConfig = {
    ...serviceSettings(env),
    port: int(env, 'TRAINYARD_PORT', 3000, 0, 65535),
    bind: str(env, 'TRAINYARD_BIND') ?? '0.0.0.0',
    publicUrl: links.publicUrl,
    linkSecret: links.secret,
    temporalAddress: str(env, 'TEMPORAL_ADDRESS') ?? '127.0.0.1:7233',
    temporalNamespace: str(env, 'TEMPORAL_NAMESPACE') ?? 'default',
    store: str(env, 'TRAINYARD_STORE') ?? defaultStoreLocation(),
    workRoot: resolve(str(env, 'TRAINYARD_WORK_ROOT') ?? join(dataHome(env), 'trainyard', 'work')),
    workers,
    ackOnly: flag(env, 'TRAINYARD_ACK_ONLY'),
    // At least one delivery of GitHub's largest size must fit.
    unverifiedBodyBytes: int(env, 'TRAINYARD_UNVERIFIED_BODY_MB', 64, 26, 16_384) * 1024 * 1024,
    logLevel: str(env, 'TRAINYARD_LOG_LEVEL') ?? 'info',
    github: githubConfig(env),
    gitlab: gitlabConfig(env),
    policy: loadPolicy(env),
  };
  if (!/^(trace|debug|info|warn|error|fatal|silent)$/.test(cfg.logLevel)) {
    throw new ConfigError('TRAINYARD_LOG_LEVEL', 'must be one of trace, debug, info, warn, error, fatal, silent');
  }
  if (!cfg.github && !cfg.gitlab) {
    throw new ConfigError(
      'GITHUB_APP_ID',
      'no git host configured: set GITHUB_APP_ID, GITHUB_PRIVATE_KEY(_FILE) and GITHUB_WEBHOOK_SECRET for GitHub, ' +
        'and/or GITLAB_TOKEN and GITLAB_WEBHOOK_SECRET for GitLab',
    );
  }
  return cfg;
}
