// GitHub implementations of the intake ports, over an installation's REST client. They run
// inside intake activities that Temporal may retry, so every write is idempotent: verdict
// checks by external id, replies by a marker naming the comment they answer.
import { MAX_PIPELINE_BYTES } from '../../pipeline/parse.js';
import { PIPELINE_DIR } from '../../pipeline/load.js';
import type { SourceRef, StatusTarget } from '../../model/types.js';
import { postVerdictCheck } from './github-checks.js';
import type { GitHubApi } from './github-client.js';
import type { GitHostRecords } from './records.js';
import { neutraliseBidi } from '../usertext.js';
import { checkName } from '../intake/ids.js';
import type {
  AccessLevel,
  ConversationPort,
  PipelineFileText,
  PullRequestInfo,
  RepoPort,
  Verdict,
} from '../intake/port.js';

const MAX_PIPELINE_FILES = 100;

/** The HTTP status of a failed Octokit request (its RequestError carries `status`). */
export function httpStatus(err: unknown): number | undefined {
  const status = typeof err === 'object' && err !== null ? (err as { status?: unknown }).status : undefined;
  return typeof status === 'number' ? status : undefined;
}

export interface GitHubRepoInfo {
  installationId: number;
  owner: string;
  repo: string;
  cloneUrl: string;
}

export class GitHubRepoPort implements RepoPort {
  readonly host = 'github' as const;
  readonly repoKey: string;
  readonly repoPath: string;

  constructor(
    private readonly api: GitHubApi,
    private readonly info: GitHubRepoInfo,
  ) {
    this.repoKey = `${info.owner}/${info.repo}`;
    this.repoPath = this.repoKey;
  }

  private get ref() {
    return { owner: this.info.owner, repo: this.info.repo };
  }

  async readPipelineFiles(sha: string): Promise<PipelineFileText[]> {
    let listing: unknown;
    try {
      listing = (await this.api.rest.repos.getContent({ ...this.ref, path: PIPELINE_DIR, ref: sha })).data;
    } catch (err) {
      if (httpStatus(err) === 404) return [];
      throw err;
    }
    if (!Array.isArray(listing)) return [];
    const entries = (listing as { name: string; path: string; type: string; size: number }[])
      .filter((e) => /\.ya?ml$/.test(e.name))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .slice(0, MAX_PIPELINE_FILES);
    const out: PipelineFileText[] = [];
    for (const e of entries) {
      const file = `${PIPELINE_DIR}/${e.name}`;
      if (e.type === 'symlink') {
        out.push({ file, text: null, problem: 'the file is a link; pipeline files must be regular files' });
      } else if (e.type !== 'file') {
        continue;
      } else if (e.size > MAX_PIPELINE_BYTES) {
        out.push({ file, text: null });
      } else {
        out.push({ file, ...(await this.readText(e.path, sha)) });
      }
    }
    return out;
  }

  private async readText(path: string, sha: string): Promise<{ text: string | null; problem?: string }> {
    const { data } = await this.api.rest.repos.getContent({ ...this.ref, path, ref: sha });
    if (Array.isArray(data) || data.type !== 'file' || !('content' in data))
      return { text: null, problem: 'this is not a regular file' };
    // Over 1 MB, GitHub's contents API leaves the content out (encoding "none").
    if (data.encoding === 'none')
      return { text: null, problem: 'the file is over 1 MB, more than GitHub returns through its contents API' };
    try {
      return {
        text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.from(data.content, 'base64')),
      };
    } catch {
      return { text: null, problem: 'the file is not valid UTF-8 text' };
    }
  }

  source(sha: string): SourceRef {
    return {
      kind: 'remote',
      cloneUrl: this.info.cloneUrl,
      commit: sha,
      subdir: '',
      host: 'github',
      installationId: this.info.installationId,
    };
  }

  statusTarget(sha: string): StatusTarget {
    return {
      kind: 'github',
      installationId: this.info.installationId,
      owner: this.info.owner,
      repo: this.info.repo,
      headSha: sha,
    };
  }

  async postVerdict(pipeline: string, sha: string, externalId: string, verdict: Verdict): Promise<void> {
    await postVerdictCheck(this.api, this.ref, checkName(pipeline), sha, externalId, verdict);
  }
}

/** Pages of 100 comments searched for an earlier reply (a thread longer than that is not expected). */
const MAX_REPLY_PAGES = 30;

/** Hidden in the rendered comment; says which command comment a reply answers. */
export const replyMarker = (commentId: number): string => `<!-- trainyard:reply-to:${commentId} -->`;

const ROLE: Record<string, AccessLevel> = {
  admin: 'admin',
  maintain: 'maintain',
  write: 'write',
  triage: 'triage',
  read: 'read',
  none: 'none',
};

export class GitHubConversation implements ConversationPort {
  constructor(
    private readonly api: GitHubApi,
    private readonly ref: { owner: string; repo: string },
    private readonly issueNumber: number,
    private readonly commentId: number,
    private readonly prUrl: string,
    private readonly records: GitHostRecords,
    private readonly linkWaitMs = 20_000,
  ) {}

  async accessLevel(user: string): Promise<AccessLevel> {
    try {
      const { data } = await this.api.rest.repos.getCollaboratorPermissionLevel({ ...this.ref, username: user });
      // role_name distinguishes maintain/triage, which `permission` folds into write/read.
      return ROLE[data.role_name] ?? ROLE[data.permission] ?? 'none';
    } catch (err) {
      if (httpStatus(err) === 404) return 'none';
      throw err;
    }
  }

  async teamMember(org: string, team: string, user: string): Promise<boolean> {
    try {
      const { data } = await this.api.rest.teams.getMembershipForUserInOrg({ org, team_slug: team, username: user });
      // A pending invitation is not membership yet.
      return data.state === 'active';
    } catch (err) {
      if (httpStatus(err) === 404) return false;
      if (httpStatus(err) === 403)
        throw new Error(
          `cannot read membership of ${org}/${team}: the GitHub App needs the organization permission "Members: read" for TRAINYARD_TRUSTED_TEAMS`,
        );
      throw err;
    }
  }

  async acknowledge(): Promise<void> {
    await this.api.rest.reactions.createForIssueComment({ ...this.ref, comment_id: this.commentId, content: 'eyes' });
  }

  /**
   * One reply per command comment: a retried activity, or the same comment delivered again
   * under another delivery id (after its run closed, when the run id no longer refuses it),
   * finds its marker and posts nothing.
   * Replies echo user text (parameters, names, errors): neutralised here, once, for every reply.
   */
  async reply(markdown: string): Promise<void> {
    const marker = replyMarker(this.commentId);
    if (await this.replied(marker)) return;
    await this.api.rest.issues.createComment({
      ...this.ref,
      issue_number: this.issueNumber,
      body: `${neutraliseBidi(markdown)}\n\n${marker}`,
    });
  }

  private async replied(marker: string): Promise<boolean> {
    let found = false;
    let pages = 0;
    for await (const page of this.api.paginate.iterator(this.api.rest.issues.listComments, {
      ...this.ref,
      issue_number: this.issueNumber,
      per_page: 100,
    })) {
      if (page.data.some((c) => c.body?.includes(marker))) found = true;
      if (found || ++pages >= MAX_REPLY_PAGES) break;
    }
    return found;
  }

  async pullRequest(): Promise<PullRequestInfo> {
    const { data } = await this.api.rest.pulls.get({ ...this.ref, pull_number: this.issueNumber });
    // A deleted fork has no head repo: it is certainly not this repository.
    const fromFork = !data.head.repo || data.head.repo.id !== data.base.repo.id;
    return {
      number: data.number,
      headSha: data.head.sha,
      fromFork,
      baseRef: data.base.ref,
      headRef: data.head.ref,
      ...(await this.mergeBase(data.base.sha, data.head.sha)),
    };
  }

  /** The merge base of the PR (GitHub's compare answers it as merge_base_commit); nothing when it cannot say. */
  private async mergeBase(base: string, head: string): Promise<{ mergeBaseSha?: string }> {
    try {
      const { data } = await this.api.rest.repos.compareCommitsWithBasehead({
        ...this.ref,
        basehead: `${base}...${head}`,
        per_page: 1,
      });
      return data.merge_base_commit?.sha ? { mergeBaseSha: data.merge_base_commit.sha } : {};
    } catch {
      return {};
    }
  }

  async announceRun(_pipeline: string, _workflowId: string, markdown: string): Promise<void> {
    await this.reply(markdown);
  }

  /** The check run is created by the run's first status publication, moments after the start. */
  async statusLink(workflowId: string): Promise<string | undefined> {
    const deadline = Date.now() + this.linkWaitMs;
    while (Date.now() < deadline) {
      const url = (await this.records.getRun(workflowId))?.checkUrl;
      if (url) return url;
      await new Promise((r) => setTimeout(r, 500));
    }
    return `${this.prUrl}/checks`;
  }
}
