// The GitLab API client (gitbeaker) for the configured instance and token.
import { Gitlab, GitbeakerRequestError, GitbeakerRetryError } from '@gitbeaker/rest';
import { gitHostCalls, gitHostRateLimitRemaining } from '../metrics.js';

export type GitLabApi = InstanceType<typeof Gitlab<false>>;

export interface GitLabCredentials {
  /** Instance root, e.g. https://gitlab.com. */
  url: string;
  token: string;
}

/** A client whose every API call is counted (`trainyard_githost_api_calls_total{host="gitlab"}`). */
export function createGitLab(creds: GitLabCredentials): GitLabApi {
  return countCalls(new Gitlab({ host: creds.url, token: creds.token, queryTimeout: 30_000 }));
}

/**
 * Counts one GitLab API response by HTTP status (0: none came, e.g. a timeout) and keeps the
 * budget GitLab reports in `RateLimit-Remaining`, labelled with `RateLimit-Name` (e.g.
 * `throttle_authenticated_api`; GitLab's user and IP rate limits, "Response headers"), when
 * the response carries it. `header` looks a header up by its lower-case name.
 */
export function countGitLabResponse(status: number, header: (name: string) => string | null | undefined): void {
  gitHostCalls.inc({ host: 'gitlab', status: String(status) });
  const remaining = header('ratelimit-remaining');
  if (remaining != null && /^\d+$/.test(remaining.trim())) {
    gitHostRateLimitRemaining.set({ host: 'gitlab', resource: header('ratelimit-name') ?? 'api' }, Number(remaining));
  }
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
type Requester = Record<
  (typeof METHODS)[number],
  (endpoint: string, options?: unknown) => Promise<{ status: number; headers: Record<string, string> }>
>;

/**
 * Wraps the requester of the client and of each of its resources (gitbeaker has no request
 * hook like Octokit's): a call is counted once, with its final status, after gitbeaker's own
 * retries of 429 and 502.
 */
function countCalls(api: GitLabApi): GitLabApi {
  const seen = new Set<object>();
  for (const resource of [api, ...Object.values(api)] as unknown[]) {
    const requester = (resource as { requester?: Requester } | null)?.requester;
    if (!requester || typeof requester.get !== 'function' || seen.has(requester)) continue;
    seen.add(requester);
    for (const m of METHODS) {
      const call = requester[m].bind(requester);
      requester[m] = async (endpoint, options) => {
        try {
          const res = await call(endpoint, options);
          countGitLabResponse(res.status, (n) => res.headers[n]);
          return res;
        } catch (err) {
          const response = err instanceof GitbeakerRequestError ? err.cause?.response : undefined;
          const retried =
            err instanceof GitbeakerRetryError ? /last status code: (\d+)/.exec(err.message)?.[1] : undefined;
          countGitLabResponse(response?.status ?? Number(retried ?? 0), (n) => response?.headers.get(n));
          throw err;
        }
      };
    }
  }
  return api;
}

/** HTTP status of a failed gitbeaker call, if it got that far. */
export function gitlabStatus(err: unknown): number | undefined {
  return err instanceof GitbeakerRequestError ? err.cause?.response.status : undefined;
}

/** What GitLab said about a failed call. */
export function gitlabMessage(err: unknown): string {
  return err instanceof GitbeakerRequestError ? (err.cause?.description ?? err.message) : (err as Error).message;
}

/** Runs `call`, retrying while GitLab answers 409 (a concurrent update of the same status). */
export async function retryOnConflict<T>(call: () => Promise<T>, tries = 5, baseDelayMs = 250): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (gitlabStatus(err) !== 409 || i >= tries) throw err;
      await new Promise((r) => setTimeout(r, baseDelayMs * 2 ** (i - 1)));
    }
  }
}
