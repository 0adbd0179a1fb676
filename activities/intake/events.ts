// What a delivery workflow carries: a compact, bounded extract of a verified webhook, never
// the raw payload. GitHub payloads reach 25 MB and Temporal refuses a payload over 2 MB
// (its blob size limit), so the receiving replica keeps only what the intake needs — ids,
// refs, the command line of a comment, the changed paths when the payload lists few enough
// (else the activity asks the compare API) — and MAX_DELIVERY_CHARS bounds the whole.
import type { GitHubRepoInfo } from '../githost/github-intake.js';
import type { GitLabProjectInfo } from '../githost/gitlab-intake.js';
import type { HostKind } from './ids.js';

/** A `/train` or `/ok-to-train` command, parsed where the webhook arrived (app/intake/command.ts). */
export type CommentCommand =
  | { kind: 'train'; pipeline?: string; params: Record<string, string> }
  | { kind: 'ok-to-train' }
  | { kind: 'invalid'; message: string };

export interface GitHubRepo extends GitHubRepoInfo {
  defaultBranch?: string;
}

export type IntakeEvent =
  | {
      kind: 'github-push';
      repo: GitHubRepo;
      /** `refs/heads/…` or `refs/tags/…`. */
      ref: string;
      before: string;
      after: string;
      /** The commit to run: `after` for a branch, the commit a tag points at for a tag (see app/github/events.ts). */
      sha: string;
      created: boolean;
      actor: string;
      /** The paths the payload's commits list; null when the compare API must tell. */
      paths: string[] | null;
    }
  | {
      kind: 'github-comment';
      repo: GitHubRepo;
      issue: number;
      /** The pull request's page (a fallback link to its checks). */
      issueUrl: string;
      commentId: number;
      commentUrl?: string;
      author: string;
      command: CommentCommand;
    }
  | {
      kind: 'github-check-run';
      repo: GitHubRepo;
      action: 'rerun' | 'cancel';
      checkRunId: number;
      /** `trainyard/<pipeline>`. */
      checkName: string;
      headSha: string;
      /** The check's external id: the workflow id of the run it reported on, or a verdict id. */
      externalId: string;
      actor: string;
    }
  | { kind: 'github-check-suite'; repo: GitHubRepo; suiteId: number; headSha: string; actor: string }
  | {
      kind: 'gitlab-push';
      project: GitLabProjectInfo & { defaultBranch?: string };
      /** `refs/heads/…` or `refs/tags/…`. */
      ref: string;
      before: string;
      after: string;
      /** The commit to run: `after` for a branch, `checkout_sha` for a tag. */
      sha: string;
      actor: string;
      /** As for GitHub: null when the compare API must tell. */
      paths: string[] | null;
    }
  | {
      kind: 'gitlab-note';
      project: GitLabProjectInfo;
      mrIid: number;
      noteId: number;
      noteUrl?: string;
      userId: number;
      author: string;
      command: CommentCommand;
    };

export interface Delivery {
  host: HostKind;
  /** X-GitHub-Delivery / GitLab's Idempotency-Key, or the body digest when absent (see deliveryIdFrom). */
  deliveryId: string;
  /** ISO time the replica verified it. */
  receivedAt: string;
  event: IntakeEvent;
}

/** What the delivery workflow reports when its activity is done (visible in Temporal). */
export interface DeliveryOutcome {
  kind: IntakeEvent['kind'];
  /** Workflow ids of the runs this delivery started (or found started by an earlier attempt). */
  runs: string[];
  /** One line on what happened: the outcome of the push, comment or check action. */
  summary: string;
}

/** The JSON size a delivery may have; far below Temporal's 2 MB blob limit. */
export const MAX_DELIVERY_CHARS = 256 * 1024;
