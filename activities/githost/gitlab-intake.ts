// GitLab implementations of the intake ports, over gitbeaker. Like the GitHub ones, every
// write is idempotent: intake activities may be retried.
import { MAX_PIPELINE_BYTES } from '../../pipeline/parse.js';
import { PIPELINE_DIR } from '../../pipeline/load.js';
import type { SourceRef, StatusTarget } from '../../model/types.js';
import { gitlabStatus, type GitLabApi } from './gitlab-client.js';
import { postCommitStatus, upsertReportNote, type GitLabState } from './gitlab-publish.js';
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

export interface GitLabProjectInfo {
  projectId: number;
  pathWithNamespace: string;
  httpUrl: string;
  webUrl: string;
}

const VERDICT_STATE: Record<Verdict['conclusion'], GitLabState> = {
  success: 'success',
  neutral: 'success',
  failure: 'failed',
  action_required: 'failed',
};

export class GitLabRepoPort implements RepoPort {
  readonly host = 'gitlab' as const;
  readonly repoKey: string;
  readonly repoPath: string;

  constructor(
    private readonly api: GitLabApi,
    private readonly project: GitLabProjectInfo,
    private readonly records: GitHostRecords,
    /** A page for a verdict's full text (GitLab's status description holds 255 characters). */
    private readonly verdictUrl: (id: string) => string | undefined = () => undefined,
  ) {
    this.repoKey = String(project.projectId);
    this.repoPath = project.pathWithNamespace;
  }

  async readPipelineFiles(sha: string): Promise<PipelineFileText[]> {
    let tree: { name: string; path: string; type: string; mode: string }[];
    try {
      tree = await this.api.Repositories.allRepositoryTrees(this.project.projectId, {
        path: PIPELINE_DIR,
        ref: sha,
        perPage: 100,
        maxPages: 1,
      });
    } catch (err) {
      if (gitlabStatus(err) === 404) return [];
      throw err;
    }
    const entries = tree
      .filter((e) => e.type === 'blob' && /\.ya?ml$/.test(e.name))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .slice(0, MAX_PIPELINE_FILES);
    const out: PipelineFileText[] = [];
    for (const e of entries) {
      const file = `${PIPELINE_DIR}/${e.name}`;
      if (e.mode === '120000') {
        out.push({ file, text: null, problem: 'the file is a link; pipeline files must be regular files' });
        continue;
      }
      const data = await this.api.RepositoryFiles.show(this.project.projectId, e.path, sha);
      if (data.size > MAX_PIPELINE_BYTES) {
        out.push({ file, text: null });
        continue;
      }
      try {
        out.push({
          file,
          text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.from(data.content, 'base64')),
        });
      } catch {
        out.push({ file, text: null, problem: 'the file is not valid UTF-8 text' });
      }
    }
    return out;
  }

  source(sha: string): SourceRef {
    return {
      kind: 'remote',
      cloneUrl: this.project.httpUrl,
      commit: sha,
      subdir: '',
      host: 'gitlab',
      projectId: this.project.projectId,
    };
  }

  statusTarget(sha: string, pr?: number): StatusTarget {
    return {
      kind: 'gitlab',
      projectId: this.project.projectId,
      sha,
      ...(pr !== undefined ? { mergeRequestIid: pr } : {}),
    };
  }

  async postVerdict(pipeline: string, sha: string, externalId: string, verdict: Verdict, pr?: number): Promise<void> {
    const pageId = `verdict:gitlab:${this.repoKey}:${externalId}`;
    await this.records.putVerdict(pageId, { title: verdict.title, summary: verdict.summary });
    const targetUrl = this.verdictUrl(pageId);
    await postCommitStatus(this.api, this.project.projectId, sha, VERDICT_STATE[verdict.conclusion], {
      name: checkName(pipeline),
      description: verdict.title,
      ...(targetUrl ? { targetUrl } : {}),
    });
    if (pr !== undefined)
      await upsertReportNote(
        this.api,
        this.records,
        this.project.projectId,
        pr,
        pipeline,
        `### ${checkName(pipeline)}: ${verdict.title}\n\n${verdict.summary}`,
      );
  }
}

function levelOf(accessLevel: number): AccessLevel {
  if (accessLevel >= 50) return 'admin';
  if (accessLevel >= 40) return 'maintain';
  if (accessLevel >= 30) return 'write';
  if (accessLevel >= 10) return 'read';
  return 'none';
}

export class GitLabConversation implements ConversationPort {
  constructor(
    private readonly api: GitLabApi,
    private readonly records: GitHostRecords,
    private readonly project: GitLabProjectInfo,
    private readonly mrIid: number,
    private readonly noteId: number,
    private readonly userId: number,
    private readonly runUrl: (workflowId: string) => string | undefined,
  ) {}

  /** `user` is the username, for messages; the lookup uses the numeric id from the payload. */
  async accessLevel(_user: string): Promise<AccessLevel> {
    try {
      // members/all includes members inherited from groups.
      const member = await this.api.ProjectMembers.show(this.project.projectId, this.userId, {
        includeInherited: true,
      });
      return member.state === 'active' || member.state === undefined ? levelOf(member.access_level) : 'none';
    } catch (err) {
      if (gitlabStatus(err) === 404) return 'none';
      throw err;
    }
  }

  async acknowledge(): Promise<void> {
    await this.api.MergeRequestNoteAwardEmojis.award(this.project.projectId, this.mrIid, this.noteId, 'eyes');
  }

  /**
   * One reply per command note: a retried activity, or the same note delivered again under
   * another Idempotency-Key, finds its marker and posts nothing.
   * Replies echo user text (parameters, names, errors): neutralised here, once, for every reply.
   */
  async reply(markdown: string): Promise<void> {
    const marker = `<!-- trainyard:reply-to:${this.noteId} -->`;
    const notes = await this.api.MergeRequestNotes.all(this.project.projectId, this.mrIid, {
      perPage: 100,
      maxPages: 30,
    });
    if (notes.some((n) => typeof n.body === 'string' && n.body.includes(marker))) return;
    await this.api.MergeRequestNotes.create(
      this.project.projectId,
      this.mrIid,
      `${neutraliseBidi(markdown)}\n\n${marker}`,
    );
  }

  async pullRequest(): Promise<PullRequestInfo> {
    const mr = await this.api.MergeRequests.show(this.project.projectId, this.mrIid);
    // diff_refs.base_sha is the merge base GitLab computed for the MR's diff.
    const mergeBase = (mr.diff_refs as { base_sha?: string } | undefined)?.base_sha;
    return {
      number: mr.iid,
      headSha: mr.sha,
      fromFork: mr.source_project_id !== mr.target_project_id,
      ...(typeof mr.target_branch === 'string' ? { baseRef: mr.target_branch } : {}),
      ...(typeof mr.source_branch === 'string' ? { headRef: mr.source_branch } : {}),
      ...(mergeBase ? { mergeBaseSha: mergeBase } : {}),
    };
  }

  /**
   * The MR's report note for this pipeline says it is running; the final report replaces the
   * text. A run that has already published its final report (the same note delivered again
   * after the run closed) keeps it.
   */
  async announceRun(pipeline: string, workflowId: string, markdown: string): Promise<void> {
    if ((await this.records.getRun(workflowId))?.final) return;
    await upsertReportNote(
      this.api,
      this.records,
      this.project.projectId,
      this.mrIid,
      pipeline,
      `### ${checkName(pipeline)}: running\n\n${markdown}`,
    );
  }

  async statusLink(workflowId: string, sha: string): Promise<string | undefined> {
    return this.runUrl(workflowId) ?? `${this.project.webUrl}/-/commit/${sha}`;
  }
}

/** GitLab lists at most 20 commits in a push hook; beyond that, or for a new branch, compare decides. */
export function gitlabPayloadPaths(h: {
  before: string;
  commits?: { added?: string[]; modified?: string[]; removed?: string[] }[];
  total_commits_count?: number;
}): string[] | null {
  const commits = h.commits ?? [];
  if (/^0+$/.test(h.before) || commits.length === 0 || (h.total_commits_count ?? commits.length) > commits.length)
    return null;
  const paths = new Set<string>();
  for (const c of commits)
    for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])])
      if (typeof f === 'string') paths.add(f);
  return paths.size > 2000 ? null : [...paths];
}

/** The push's changed paths: the hook's list when it had one, else GitLab's compare; undefined when neither can say. */
export async function gitlabChangedPaths(
  api: GitLabApi,
  projectId: number,
  h: { before: string; after: string; defaultBranch?: string; paths: string[] | null },
): Promise<string[] | undefined> {
  if (h.paths) return h.paths;
  const from = /^0+$/.test(h.before) ? h.defaultBranch : h.before;
  if (!from) return undefined;
  try {
    const cmp = await api.Repositories.compare(projectId, from, h.after);
    if (cmp.compare_timeout || !cmp.diffs) return undefined;
    const paths = new Set<string>();
    for (const d of cmp.diffs) {
      paths.add(d.new_path);
      paths.add(d.old_path);
    }
    return [...paths];
  } catch (err) {
    if (gitlabStatus(err) === 404) return undefined;
    throw err;
  }
}
