// Installation-authenticated GitHub clients, one per installation, shared by the webhook
// intake and the status activity. Probot's Octokit brings token caching, retries and the
// throttling plugin; keying the throttle by installation spaces writes per account (the
// unit GitHub's secondary limits count) instead of serialising the whole process.
import { ProbotOctokit } from 'probot';
import type { Logger } from 'pino';
import { gitHostCalls, gitHostRateLimitRemaining } from '../metrics.js';

export type GitHubApi = InstanceType<typeof ProbotOctokit>;

export interface GitHubAppCredentials {
  appId: number;
  privateKey: string;
  apiUrl: string;
}

export class GitHubClients {
  private readonly clients = new Map<number, GitHubApi>();

  constructor(
    readonly creds: GitHubAppCredentials,
    private readonly log: Logger,
  ) {}

  installation(installationId: number): GitHubApi {
    let client = this.clients.get(installationId);
    if (!client) {
      const log = this.log.child({ installationId });
      client = new ProbotOctokit({
        auth: { appId: this.creds.appId, privateKey: this.creds.privateKey, installationId },
        baseUrl: this.creds.apiUrl,
        log: { debug: () => {}, info: () => {}, warn: (m: string) => log.warn(m), error: (m: string) => log.error(m) },
        throttle: {
          id: `installation-${installationId}`,
          onRateLimit: (
            retryAfter: number,
            options: { method: string; url: string; request: { retryCount: number } },
          ) => {
            log.warn({ retryAfter, route: `${options.method} ${options.url}` }, 'GitHub rate limit');
            return options.request.retryCount < 2;
          },
          onSecondaryRateLimit: (
            retryAfter: number,
            options: { method: string; url: string; request: { retryCount: number } },
          ) => {
            log.warn({ retryAfter, route: `${options.method} ${options.url}` }, 'GitHub secondary rate limit');
            return options.request.retryCount < 2;
          },
        },
      });
      countRequests(client);
      this.clients.set(installationId, client);
    }
    return client;
  }
}

/** Counts every API response by status and keeps the rate-limit budget GitHub reports (x-ratelimit-* headers). */
function countRequests(client: GitHubApi): void {
  const seen = (status: number, headers: Record<string, string | number | undefined> | undefined): void => {
    gitHostCalls.inc({ host: 'github', status: String(status) });
    const remaining = Number(headers?.['x-ratelimit-remaining']);
    if (Number.isFinite(remaining))
      gitHostRateLimitRemaining.set(
        { host: 'github', resource: String(headers?.['x-ratelimit-resource'] ?? 'core') },
        remaining,
      );
  };
  client.hook.after('request', (response) => seen(response.status, response.headers));
  client.hook.error('request', (error) => {
    const e = error as { status?: number; response?: { headers?: Record<string, string | number | undefined> } };
    seen(e.status ?? 0, e.response?.headers);
    throw error;
  });
}

/** `https://github.com/o/r.git` (or a GHES URL) → { owner, repo }. */
export function ownerRepoFromCloneUrl(cloneUrl: string): { owner: string; repo: string } {
  const parts = new URL(cloneUrl).pathname
    .replace(/\.git$/, '')
    .split('/')
    .filter(Boolean);
  const owner = parts.at(-2);
  const repo = parts.at(-1);
  if (!owner || !repo) throw new Error(`cannot tell owner and repository from clone URL ${cloneUrl}`);
  return { owner, repo };
}
