// A local HTTP stand-in for the GitLab REST API (v4), enough for the app. It records every
// call and checks each against the documented shape of its endpoint: method, path,
// PRIVATE-TOKEN, known query and body fields, commit-status states and the 255-character
// fields. Commit statuses follow GitLab's state machine (a repeat of the current state is
// refused with 400), and the first N status posts can be answered 409 to exercise retries.
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeServer } from './fake-server.js';
import { tarGz } from './tarball.js';

export interface GitLabCall {
  method: string;
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown> | undefined;
  status: number;
}

export interface CommitStatus {
  sha: string;
  name: string;
  state: string;
  description?: string;
  target_url?: string;
}

const STATES = ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'];
const FINAL = ['success', 'failed', 'canceled', 'skipped'];

export class FakeGitLab extends FakeServer {
  readonly calls: GitLabCall[] = [];
  /** Every status post that GitLab accepted, in order. */
  readonly statuses: CommitStatus[] = [];
  readonly notes = new Map<number, { id: number; mr: number; body: string; edits: number }>();
  readonly awards: { noteId: number; name: string }[] = [];
  /** user id → access level (30 Developer, 40 Maintainer). */
  readonly members = new Map<number, number>();
  readonly mergeRequests = new Map<number, { sha: string; sourceProjectId: number }>();
  conflictsToSend = 0;
  /**
   * GitLab's rate-limit headers (RateLimit-Limit, -Name, -Observed, -Remaining, -Reset) on
   * every answer, as GitLab sends them for requests under its user and IP rate limits: one
   * request of the window used per call. `rateLimitRemaining`: every value sent, in order.
   */
  readonly rateLimit = { limit: 2000, name: 'throttle_authenticated_api' };
  readonly rateLimitRemaining: number[] = [];
  /** Archives served instead of the commit's files (hostile archives in tests). */
  readonly archives = new Map<string, Buffer>();
  private readonly commits = new Map<string, Record<string, string>>();
  private nextId = 9000;
  /** Random per process: the Temporal server outlives test runs, and run ids derive from shas. */
  private readonly nonce = randomUUID();

  constructor(
    readonly token: string,
    readonly projectId: number,
  ) {
    super();
  }

  commit(files: Record<string, string>): string {
    const sha = createHash('sha1')
      .update(JSON.stringify(files) + this.commits.size + this.nonce)
      .digest('hex');
    this.commits.set(sha, { ...files });
    return sha;
  }

  latest(sha: string, name: string): CommitStatus | undefined {
    return this.statuses.filter((s) => s.sha === sha && s.name === name).at(-1);
  }

  protected async handle(req: IncomingMessage, res: ServerResponse, parsed: unknown, raw: string): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const body = (typeof parsed === 'string' ? Object.fromEntries(new URLSearchParams(raw)) : parsed) as
      Record<string, unknown> | undefined;
    const query = Object.fromEntries(url.searchParams);
    const call: GitLabCall = { method, path: url.pathname, query, body, status: 0 };
    this.calls.push(call);
    const send = (status: number, data?: unknown, type = 'application/json') => {
      call.status = status;
      const remaining = Math.max(0, this.rateLimit.limit - this.calls.length);
      this.rateLimitRemaining.push(remaining);
      const limits = {
        'ratelimit-limit': String(this.rateLimit.limit),
        'ratelimit-name': this.rateLimit.name,
        'ratelimit-observed': String(this.calls.length),
        'ratelimit-remaining': String(remaining),
        'ratelimit-reset': String(Math.ceil(Date.now() / 60_000) * 60),
      };
      if (Buffer.isBuffer(data)) {
        res.writeHead(status, { 'content-type': type, 'content-length': data.length, ...limits });
        res.end(data);
        return;
      }
      res.writeHead(status, { 'content-type': type, ...limits });
      res.end(data === undefined ? '' : JSON.stringify(data));
    };
    const problem = (text: string) => {
      this.violations.push(`${method} ${url.pathname}: ${text}`);
      send(400, { message: text });
    };
    if (method === 'GET' && url.pathname === '/api/v4/user') {
      // GitLab answers a wrong token here with 401, as every authenticated endpoint does.
      if (req.headers['private-token'] !== this.token) return send(401, { message: '401 Unauthorized' });
      return send(200, { id: 1, username: 'trainyard-bot', name: 'Trainyard bot', state: 'active' });
    }
    if (req.headers['private-token'] !== this.token) return problem('missing or wrong PRIVATE-TOKEN');
    const prefix = `/api/v4/projects/${this.projectId}`;
    if (!url.pathname.startsWith(prefix)) return problem(`not a path of project ${this.projectId}`);
    const rest = url.pathname.slice(prefix.length);
    const allow = (fields: Record<string, unknown> | undefined, known: string[], what: string) => {
      const extra = Object.keys(fields ?? {}).filter((k) => !known.includes(k));
      if (extra.length) this.violations.push(`${method} ${url.pathname}: unknown ${what} ${extra.join(', ')}`);
    };
    let m: RegExpExecArray | null;
    if (method === 'GET' && rest === '/repository/tree') {
      allow(
        query,
        [
          'path',
          'ref',
          'per_page',
          'page',
          'pagination',
          'recursive',
          'page_token',
          'order_by',
          'sort',
          'max_pages',
          'maxPages',
        ],
        'query parameter',
      );
      const files = this.commits.get(query.ref ?? '');
      if (!files) return send(404, { message: '404 Tree Not Found' });
      const dir = query.path ?? '';
      const entries = Object.keys(files).filter(
        (f) => f.startsWith(`${dir}/`) && !f.slice(dir.length + 1).includes('/'),
      );
      if (entries.length === 0) return send(404, { message: '404 Tree Not Found' });
      return send(
        200,
        entries.map((f) => ({
          id: createHash('sha1').update(files[f]!).digest('hex'),
          name: f.split('/').pop(),
          type: 'blob',
          path: f,
          mode: '100644',
        })),
      );
    }
    if (method === 'GET' && (m = /^\/repository\/files\/([^/]+)$/.exec(rest))) {
      allow(query, ['ref'], 'query parameter');
      const path = decodeURIComponent(m[1]!);
      const text = this.commits.get(query.ref ?? '')?.[path];
      if (text === undefined) return send(404, { message: '404 File Not Found' });
      return send(200, {
        file_name: path.split('/').pop(),
        file_path: path,
        size: Buffer.byteLength(text),
        encoding: 'base64',
        content: Buffer.from(text).toString('base64'),
        ref: query.ref,
      });
    }
    if (method === 'GET' && rest === '/repository/compare') {
      allow(query, ['from', 'to', 'straight', 'from_project_id', 'unidiff'], 'query parameter');
      const a =
        this.commits.get(query.from ?? '') ?? (query.from === 'master' ? [...this.commits.values()][0] : undefined);
      const b = this.commits.get(query.to ?? '');
      if (!a || !b) return send(404, { message: '404 Ref Not Found' });
      const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((n) => a[n] !== b[n]);
      return send(200, {
        commit: { id: query.to },
        commits: [],
        diffs: names.map((n) => ({ old_path: n, new_path: n, new_file: !(n in a), deleted_file: !(n in b) })),
        compare_timeout: false,
        compare_same_ref: false,
      });
    }
    if (method === 'GET' && rest === '/repository/archive.tar.gz') {
      allow(query, ['sha', 'path', 'include_lfs_blobs', 'exclude_paths'], 'query parameter');
      const raw = this.archives.get(query.sha ?? '');
      if (raw) return send(200, raw, 'application/octet-stream');
      const files = this.commits.get(query.sha ?? '');
      if (!files) return send(404, { message: '404 Not Found' });
      return send(200, tarGz(`project-${query.sha}`, files), 'application/octet-stream');
    }
    if (method === 'POST' && (m = /^\/statuses\/([0-9a-f]{40})$/.exec(rest))) {
      allow(body, ['state', 'name', 'target_url', 'description', 'ref', 'context', 'coverage', 'pipeline_id'], 'field');
      const state = String(body?.state ?? '');
      if (!STATES.includes(state)) return problem(`state ${JSON.stringify(state)} is not one of ${STATES.join(', ')}`);
      for (const f of ['description', 'target_url', 'name'] as const) {
        if (typeof body?.[f] === 'string' && [...(body[f] as string)].length > 255)
          return problem(`${f} is longer than 255 characters`);
      }
      if (this.conflictsToSend > 0) {
        this.conflictsToSend--;
        return send(409, { message: 'Commit status exists' });
      }
      const name = String(body?.name ?? 'default');
      const current = this.latest(m[1]!, name)?.state;
      if (current === state || (current && FINAL.includes(current) && state === 'running')) {
        return send(400, {
          message: `Cannot transition status via :${state === 'running' ? 'run' : state} from :${current}`,
        });
      }
      const status: CommitStatus = {
        sha: m[1]!,
        name,
        state,
        ...(body?.description ? { description: String(body.description) } : {}),
        ...(body?.target_url ? { target_url: String(body.target_url) } : {}),
      };
      this.statuses.push(status);
      return send(201, { id: this.nextId++, ...status, status: state });
    }
    if (method === 'GET' && (m = /^\/members\/all\/(\d+)$/.exec(rest))) {
      const level = this.members.get(Number(m[1]));
      if (level === undefined) return send(404, { message: '404 Not found' });
      return send(200, { id: Number(m[1]), username: `user${m[1]}`, access_level: level, state: 'active' });
    }
    if (method === 'GET' && (m = /^\/merge_requests\/(\d+)$/.exec(rest))) {
      const mr = this.mergeRequests.get(Number(m[1]));
      if (!mr) return send(404, { message: '404 Not found' });
      return send(200, {
        iid: Number(m[1]),
        sha: mr.sha,
        source_project_id: mr.sourceProjectId,
        target_project_id: this.projectId,
        state: 'opened',
      });
    }
    if (method === 'POST' && (m = /^\/merge_requests\/(\d+)\/notes$/.exec(rest))) {
      allow(body, ['body', 'internal', 'created_at', 'merge_request_diff_sha'], 'field');
      if (typeof body?.body !== 'string' || body.body === '') return problem('body is required');
      const note = { id: this.nextId++, mr: Number(m[1]), body: body.body, edits: 0 };
      this.notes.set(note.id, note);
      return send(201, { id: note.id, body: note.body, noteable_iid: note.mr });
    }
    if (method === 'GET' && (m = /^\/merge_requests\/(\d+)\/notes$/.exec(rest))) {
      allow(query, ['sort', 'order_by', 'per_page', 'page', 'pagination', 'max_pages', 'maxPages'], 'query parameter');
      const mr = Number(m[1]);
      return send(
        200,
        [...this.notes.values()]
          .filter((n) => n.mr === mr)
          .map((n) => ({ id: n.id, body: n.body, noteable_iid: n.mr, system: false })),
      );
    }
    if (method === 'PUT' && (m = /^\/merge_requests\/(\d+)\/notes\/(\d+)$/.exec(rest))) {
      allow(body, ['body', 'confidential', 'internal'], 'field');
      const note = this.notes.get(Number(m[2]));
      if (!note || note.mr !== Number(m[1])) return send(404, { message: '404 Note Not Found' });
      if (typeof body?.body !== 'string') return problem('body is required');
      note.body = body.body;
      note.edits++;
      return send(200, { id: note.id, body: note.body });
    }
    if (method === 'POST' && (m = /^\/merge_requests\/(\d+)\/notes\/(\d+)\/award_emoji$/.exec(rest))) {
      allow(body, ['name'], 'field');
      if (typeof body?.name !== 'string') return problem('name is required');
      this.awards.push({ noteId: Number(m[2]), name: body.name });
      return send(201, { id: this.nextId++, name: body.name });
    }
    return problem(`no such endpoint in the fake: ${method} ${rest}`);
  }
}
