// What the shared intake needs from a git host. GitHub and GitLab each implement it; the
// decisions (which pipelines run, who may ask, what policy allows) live once in intake/.
import type { SourceRef, StatusTarget } from '../../model/types.js';
import type { HostKind, RepoKey } from './ids.js';

/** GitHub permission names; GitLab access levels map onto them (Developer=write, Maintainer=maintain, Owner=admin). */
export type AccessLevel = 'none' | 'read' | 'triage' | 'write' | 'maintain' | 'admin';

const RANK: Record<AccessLevel, number> = { none: 0, read: 1, triage: 2, write: 3, maintain: 4, admin: 5 };

export function atLeast(level: AccessLevel, needed: AccessLevel): boolean {
  return RANK[level] >= RANK[needed];
}

export interface Annotation {
  path: string;
  line: number;
  column?: number;
  level: 'failure' | 'warning' | 'notice';
  title?: string;
  message: string;
}

/** A check / commit status that ends without a run (results stand, invalid file, policy, refusal). */
export interface Verdict {
  conclusion: 'success' | 'failure' | 'action_required' | 'neutral';
  title: string;
  /** Markdown. */
  summary: string;
  annotations?: Annotation[];
}

export interface PipelineFileText {
  file: string;
  text: string | null;
  problem?: string;
}

export interface RepoPort {
  readonly host: HostKind;
  readonly repoKey: RepoKey;
  /** `owner/repo` or `group/project`: policy globs and messages use it. */
  readonly repoPath: string;
  /** `.trainyard/*.yaml|yml` at the commit, as text; `problem` (and no text) for a file that cannot be read as one. */
  readPipelineFiles(sha: string): Promise<PipelineFileText[]>;
  source(sha: string): SourceRef;
  /**
   * Where the run reports to. The check run / commit status itself is created by the run's
   * first status publication, so a webhook never waits on a rate-limited write before the start.
   */
  statusTarget(sha: string, pr?: number): StatusTarget;
  /**
   * A status that ends without a run. `externalId` makes it idempotent: when one with it
   * exists for this commit, nothing new is posted.
   */
  postVerdict(pipeline: string, sha: string, externalId: string, verdict: Verdict, pr?: number): Promise<void>;
}

export interface PullRequestInfo {
  number: number;
  headSha: string;
  fromFork: boolean;
  /** Base and head branch names (the head's in the fork, for a fork's pull request); the merge base of head and base when the host says (metrics are compared with its run). */
  baseRef?: string;
  headRef?: string;
  mergeBaseSha?: string;
}

export interface ConversationPort {
  accessLevel(user: string): Promise<AccessLevel>;
  /** Whether the user is an active member of the team (GitHub organisation teams; other hosts lack it). */
  teamMember?(org: string, team: string, user: string): Promise<boolean>;
  /** The 👀 reaction: we saw the command. */
  acknowledge(): Promise<void>;
  reply(markdown: string): Promise<void>;
  pullRequest(): Promise<PullRequestInfo>;
  /** Tells the conversation a run started (GitHub: a reply; GitLab: the MR's report note). */
  announceRun(pipeline: string, workflowId: string, markdown: string): Promise<void>;
  /** A link to the run's check or status, once it exists (waits a little for it). */
  statusLink(workflowId: string, sha: string): Promise<string | undefined>;
}
