// The GitLab API client (gitbeaker) for the configured instance and token.
import { Gitlab, GitbeakerRequestError } from '@gitbeaker/rest';

export type GitLabApi = InstanceType<typeof Gitlab<false>>;

export interface GitLabCredentials {
  /** Instance root, e.g. https://gitlab.com. */
  url: string;
  token: string;
}

export function createGitLab(creds: GitLabCredentials): GitLabApi {
  return new Gitlab({ host: creds.url, token: creds.token, queryTimeout: 30_000 });
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
