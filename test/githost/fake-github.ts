// A local HTTP stand-in for the GitHub REST API, enough for the app: installation tokens
// (the app's JWT is verified with its public key), repository contents and tarballs at
// commits, compare, check runs, comments, reactions, collaborator permissions, pulls.
// Every request is recorded and checked against GitHub's OpenAPI description; a request
// that does not fit is answered 422 and listed in `violations`.
import { createHash, createPublicKey, randomUUID, verify } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeServer } from './fake-server.js';
import { GitHubOpenApi } from './openapi.js';
import { tarGz } from './tarball.js';

export interface RecordedCall {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  operation?: string;
  at: number;
}

export interface CheckRunState {
  id: number;
  /** `owner/name` of the repository it was created in. */
  repo: string;
  name: string;
  head_sha: string;
  external_id: string | null;
  status: string;
  conclusion: string | null;
  details_url: string | null;
  output: { title?: string; summary?: string; text?: string; annotations_count: number };
  annotations: { path: string; start_line: number; annotation_level: string; message: string; title?: string }[];
  actions: { label: string; identifier: string }[];
  /** Every status this check run went through, in order. */
  statuses: string[];
}

export interface FakeRepo {
  id: number;
  owner: string;
  name: string;
}

/** The installation token this fake hands out and accepts. */
export const TOKEN = 'ghs_faketoken0123456789';
const RUN_NONCE = randomUUID();
let openapi: GitHubOpenApi | undefined;

function fakeSha(seed: string): string {
  return createHash('sha1').update(seed).digest('hex');
}

export class FakeGitHub extends FakeServer {
  readonly calls: RecordedCall[] = [];
  readonly checkRuns = new Map<number, CheckRunState>();
  /** `edits`: how many times the comment was edited (PATCH). */
  readonly comments: { id: number; issue: number; body: string; repo: string; edits?: number }[] = [];
  readonly reactions: { commentId: number; content: string }[] = [];
  private readonly reactionIds = new Map<string, number>();
  /** username → role_name */
  readonly roles = new Map<string, string>();
  /** PR number → head commit and repository; base branch (main) and its commit, head branch (feature) when given. */
  readonly pulls = new Map<
    number,
    { headSha: string; headRepoId: number; baseRef?: string; baseSha?: string; headRef?: string }
  >();
  /** `org/team-slug` → username → membership state (`active` or `pending`). */
  readonly teams = new Map<string, Map<string, string>>();
  /** One check suite per head commit: this fake serves one app. */
  private readonly suites = new Map<string, number>();
  private readonly commits = new Map<string, Record<string, string>>();
  private nextId = 5000;
  /** Every repository served: `repo` and those added with addRepo. */
  readonly repos: FakeRepo[];

  constructor(
    readonly appId: number,
    private readonly publicKeyPem: string,
    readonly repo: FakeRepo,
    readonly installationId: number,
  ) {
    super();
    openapi ??= new GitHubOpenApi();
    this.repos = [repo];
  }

  /** Serves one more repository of the same installation (commits, checks and pulls are shared by sha and number). */
  addRepo(repo: FakeRepo): void {
    this.repos.push(repo);
  }

  /** Adds a commit with these files (path → text); returns its sha. */
  commit(files: Record<string, string>): string {
    // Random per process: the Temporal server outlives test runs, and run ids derive from shas.
    const sha = fakeSha(JSON.stringify(files) + this.commits.size + RUN_NONCE);
    this.commits.set(sha, { ...files });
    return sha;
  }

  /** The id of the check suite that holds the check runs on this commit. */
  suiteOf(sha: string): number {
    let id = this.suites.get(sha);
    if (id === undefined) this.suites.set(sha, (id = this.nextId++));
    return id;
  }

  checkRunsFor(sha: string, name?: string): CheckRunState[] {
    return [...this.checkRuns.values()].filter((c) => c.head_sha === sha && (name === undefined || c.name === name));
  }

  protected async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const call: RecordedCall = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      status: 0,
      at: Date.now(),
    };
    this.calls.push(call);
    const send = (status: number, data?: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(data === undefined ? '' : JSON.stringify(data));
    };
    if (url.pathname.startsWith('/_codeload/')) return this.codeload(url.pathname, res, call);
    const checked = openapi!.check(method, req.url ?? '/', body);
    call.operation = checked.operationId;
    if (checked.problems.length) {
      this.violations.push(...checked.problems);
      return send(422, {
        message: 'Validation Failed (fake: request does not fit the OpenAPI description)',
        errors: checked.problems,
      });
    }
    if (checked.template === '/app') {
      const problem = this.verifyJwt(req.headers.authorization);
      if (problem) return send(401, { message: problem });
      return send(200, {
        id: this.appId,
        slug: 'trainyard-test',
        name: 'Trainyard test',
        owner: null,
        node_id: 'A_1',
        description: null,
        external_url: this.url,
        html_url: `${this.url}/apps/trainyard-test`,
        created_at: '2026-01-01T00:00:00Z',
        updated_at: '2026-01-01T00:00:00Z',
        permissions: { checks: 'write' },
        events: ['push'],
      });
    }
    if (checked.template === '/app/installations/{installation_id}/access_tokens') {
      const problem = this.verifyJwt(req.headers.authorization);
      if (problem) {
        this.violations.push(problem);
        return send(401, { message: problem });
      }
      return send(201, {
        token: TOKEN,
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        permissions: { checks: 'write' },
        repository_selection: 'all',
      });
    }
    if (req.headers.authorization !== `token ${TOKEN}`) {
      this.violations.push(
        `${method} ${url.pathname} without the installation token (${req.headers.authorization ?? 'none'})`,
      );
      return send(401, { message: 'Bad credentials' });
    }
    if (checked.template === '/orgs/{org}/teams/{team_slug}/memberships/{username}') {
      const [, org, team, user] = /^\/orgs\/([^/]+)\/teams\/([^/]+)\/memberships\/([^/]+)$/.exec(
        decodeURIComponent(url.pathname),
      )!;
      const state = this.teams.get(`${org}/${team}`.toLowerCase())?.get(user!);
      if (!state) return send(404, { message: 'Not Found' });
      return send(200, { url: `${this.url}${url.pathname}`, role: 'member', state });
    }
    const repo = this.repos.find((r) => url.pathname.startsWith(`/repos/${r.owner}/${r.name}/`));
    if (!repo) return send(404, { message: 'Not Found' });
    const rest = url.pathname.slice(`/repos/${repo.owner}/${repo.name}`.length);
    const route = `${method} ${checked.template!.replace('/repos/{owner}/{repo}', '')}`;
    const m = (re: RegExp) => re.exec(decodeURIComponent(rest));
    switch (route) {
      case 'GET /contents/{path}':
        return this.contents(m(/^\/contents\/(.+)$/)![1]!, url.searchParams.get('ref') ?? '', send);
      case 'GET /tarball/{ref}': {
        const ref = m(/^\/tarball\/(.+)$/)![1]!;
        if (!this.commits.has(ref)) return send(404, { message: 'Not Found' });
        return send(302, undefined, { location: `${this.url}/_codeload/${repo.owner}/${repo.name}/${ref}.tar.gz` });
      }
      // GitHub's description has both templates for the one endpoint; either may match.
      case 'GET /compare/{base}...{head}':
      case 'GET /compare/{basehead}': {
        const [base, head] = m(/^\/compare\/(.+)$/)![1]!.split('...') as [string, string];
        const a =
          this.commits.get(base) ?? (base === 'main' ? this.commits.get([...this.commits.keys()][0]!) : undefined);
        const b = this.commits.get(head);
        if (!a || !b) return send(404, { message: 'Not Found' });
        const names = new Set([...Object.keys(a), ...Object.keys(b)]);
        const files = [...names]
          .filter((n) => a[n] !== b[n])
          .map((filename) => ({
            filename,
            status: !(filename in a) ? 'added' : !(filename in b) ? 'removed' : 'modified',
          }));
        // This fake keeps no history: the base commit stands for the merge base.
        const mergeBase = this.commits.has(base) ? base : [...this.commits.keys()][0]!;
        return send(200, {
          status: 'ahead',
          ahead_by: 1,
          behind_by: 0,
          total_commits: 1,
          commits: [],
          files,
          merge_base_commit: { sha: mergeBase },
        });
      }
      case 'POST /check-runs':
        return send(201, this.createCheckRun(body as Record<string, unknown>, `${repo.owner}/${repo.name}`));
      case 'PATCH /check-runs/{check_run_id}': {
        const run = this.checkRuns.get(Number(m(/^\/check-runs\/(\d+)$/)![1]));
        if (!run) return send(404, { message: 'Not Found' });
        this.applyCheckRun(run, body as Record<string, unknown>);
        return send(200, this.checkRunJson(run));
      }
      case 'GET /commits/{ref}/check-runs': {
        const ref = m(/^\/commits\/([^/]+)\/check-runs$/)![1]!;
        const runs = this.checkRunsFor(ref, url.searchParams.get('check_name') ?? undefined);
        return send(200, { total_count: runs.length, check_runs: runs.map((r) => this.checkRunJson(r)) });
      }
      case 'GET /check-suites/{check_suite_id}/check-runs': {
        const suiteId = Number(m(/^\/check-suites\/(\d+)\/check-runs$/)![1]);
        const sha = [...this.suites].find(([, id]) => id === suiteId)?.[0];
        if (!sha) return send(404, { message: 'Not Found' });
        const runs = this.checkRunsFor(sha);
        return send(200, { total_count: runs.length, check_runs: runs.map((r) => this.checkRunJson(r)) });
      }
      case 'GET /collaborators/{username}/permission': {
        const user = m(/^\/collaborators\/([^/]+)\/permission$/)![1]!;
        const role = this.roles.get(user) ?? 'read';
        const permission = role === 'maintain' ? 'write' : role === 'triage' ? 'read' : role;
        return send(200, { permission, role_name: role, user: { login: user, id: 1, type: 'User' } });
      }
      case 'POST /issues/comments/{comment_id}/reactions': {
        const commentId = Number(m(/^\/issues\/comments\/(\d+)\/reactions$/)![1]);
        const content = (body as { content: string }).content;
        // GitHub keeps one reaction per user and content: a repeat answers 200 with the existing one.
        const seen = this.reactionIds.get(`${commentId}:${content}`);
        if (seen !== undefined) return send(200, { id: seen, content, created_at: new Date().toISOString() });
        const id = this.nextId++;
        this.reactionIds.set(`${commentId}:${content}`, id);
        this.reactions.push({ commentId, content });
        return send(201, { id, content, created_at: new Date().toISOString() });
      }
      case 'POST /issues/{issue_number}/comments': {
        const issue = Number(m(/^\/issues\/(\d+)\/comments$/)![1]);
        const id = this.nextId++;
        this.comments.push({ id, issue, body: (body as { body: string }).body, repo: `${repo.owner}/${repo.name}` });
        return send(201, {
          id,
          body: (body as { body: string }).body,
          html_url: `${this.url}/${repo.owner}/${repo.name}/pull/${issue}#issuecomment-${id}`,
        });
      }
      case 'PATCH /issues/comments/{comment_id}': {
        const c = this.comments.find(
          (x) => x.id === Number(m(/^\/issues\/comments\/(\d+)$/)![1]) && x.repo === `${repo.owner}/${repo.name}`,
        );
        if (!c) return send(404, { message: 'Not Found' });
        c.body = (body as { body: string }).body;
        c.edits = (c.edits ?? 0) + 1;
        return send(200, {
          id: c.id,
          body: c.body,
          html_url: `${this.url}/${repo.owner}/${repo.name}/pull/${c.issue}#issuecomment-${c.id}`,
        });
      }
      case 'GET /issues/{issue_number}/comments': {
        const issue = Number(m(/^\/issues\/(\d+)\/comments$/)![1]);
        const all = this.comments.filter((c) => c.issue === issue && c.repo === `${repo.owner}/${repo.name}`);
        const perPage = Math.min(100, Number(url.searchParams.get('per_page') ?? 30));
        const page = Number(url.searchParams.get('page') ?? 1);
        const slice = all.slice((page - 1) * perPage, page * perPage);
        const next: Record<string, string> =
          page * perPage < all.length
            ? { link: `<${this.url}${url.pathname}?per_page=${perPage}&page=${page + 1}>; rel="next"` }
            : {};
        return send(
          200,
          slice.map((c) => ({
            id: c.id,
            body: c.body,
            html_url: `${this.url}/${repo.owner}/${repo.name}/pull/${issue}#issuecomment-${c.id}`,
          })),
          next,
        );
      }
      case 'GET /pulls/{pull_number}': {
        const n = Number(m(/^\/pulls\/(\d+)$/)![1]);
        const pr = this.pulls.get(n);
        if (!pr) return send(404, { message: 'Not Found' });
        const repoJson = (id: number) => ({
          id,
          full_name: id === repo.id ? `${repo.owner}/${repo.name}` : `fork-${id}/${repo.name}`,
        });
        return send(200, {
          number: n,
          state: 'open',
          head: { sha: pr.headSha, ref: pr.headRef ?? 'feature', repo: repoJson(pr.headRepoId) },
          base: { sha: pr.baseSha ?? fakeSha('base'), ref: pr.baseRef ?? 'main', repo: repoJson(repo.id) },
        });
      }
      default:
        return send(404, { message: `fake GitHub does not serve ${route}` });
    }
  }

  private verifyJwt(auth: string | undefined): string | undefined {
    const token = auth?.replace(/^bearer /i, '');
    const parts = token?.split('.');
    if (!parts || parts.length !== 3) return 'access token request without a JWT';
    const ok = verify(
      'RSA-SHA256',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      createPublicKey(this.publicKeyPem),
      Buffer.from(parts[2]!, 'base64url'),
    );
    if (!ok) return 'app JWT signature does not verify with the app public key';
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as { iss: number | string; exp: number };
    if (String(claims.iss) !== String(this.appId))
      return `app JWT issued for app ${claims.iss}, expected ${this.appId}`;
    if (claims.exp * 1000 < Date.now()) return 'app JWT expired';
    return undefined;
  }

  private contents(path: string, ref: string, send: (s: number, d?: unknown) => void): void {
    const files = this.commits.get(ref);
    if (!files) return send(404, { message: 'No commit found for the ref' });
    if (path in files) {
      const content = Buffer.from(files[path]!).toString('base64');
      return send(200, {
        type: 'file',
        encoding: 'base64',
        size: Buffer.byteLength(files[path]!),
        name: path.split('/').pop(),
        path,
        content,
        sha: fakeSha(files[path]!),
      });
    }
    const under = Object.keys(files).filter((f) => f.startsWith(`${path}/`) && !f.slice(path.length + 1).includes('/'));
    if (under.length === 0) return send(404, { message: 'Not Found' });
    return send(
      200,
      under.map((f) => ({
        type: 'file',
        size: Buffer.byteLength(files[f]!),
        name: f.split('/').pop(),
        path: f,
        sha: fakeSha(files[f]!),
      })),
    );
  }

  private codeload(pathname: string, res: ServerResponse, call: RecordedCall): void {
    const sha = /\/([0-9a-f]{40})\.tar\.gz$/.exec(pathname)?.[1];
    const files = sha ? this.commits.get(sha) : undefined;
    if (!files || !sha) {
      call.status = 404;
      res.writeHead(404).end();
      return;
    }
    const [, owner = '', name = ''] = /^\/_codeload\/([^/]+)\/([^/]+)\//.exec(pathname) ?? [];
    const tgz = tarGz(`${owner}-${name}-${sha.slice(0, 7)}`, files);
    call.status = 200;
    res.writeHead(200, { 'content-type': 'application/x-gzip', 'content-length': tgz.length });
    res.end(tgz);
  }

  private createCheckRun(body: Record<string, unknown>, repo: string): unknown {
    const run: CheckRunState = {
      id: this.nextId++,
      repo,
      name: String(body.name),
      head_sha: String(body.head_sha),
      external_id: (body.external_id as string) ?? null,
      status: 'queued',
      conclusion: null,
      details_url: null,
      output: { annotations_count: 0 },
      annotations: [],
      actions: [],
      statuses: [],
    };
    this.checkRuns.set(run.id, run);
    this.applyCheckRun(run, body);
    return this.checkRunJson(run);
  }

  private applyCheckRun(run: CheckRunState, body: Record<string, unknown>): void {
    if (typeof body.conclusion === 'string') {
      run.conclusion = body.conclusion;
      run.status = 'completed';
    }
    if (typeof body.status === 'string') run.status = body.status;
    if (run.statuses.at(-1) !== run.status) run.statuses.push(run.status);
    if (typeof body.details_url === 'string') run.details_url = body.details_url;
    if (Array.isArray(body.actions)) run.actions = body.actions as CheckRunState['actions'];
    const output = body.output as
      { title?: string; summary?: string; text?: string; annotations?: CheckRunState['annotations'] } | undefined;
    if (output) {
      run.output = {
        ...run.output,
        ...(output.title ? { title: output.title } : {}),
        ...(output.summary ? { summary: output.summary } : {}),
        ...(output.text ? { text: output.text } : {}),
      };
      if (output.annotations) {
        if (output.annotations.length > 50)
          this.violations.push(
            `check run ${run.id}: ${output.annotations.length} annotations in one request (GitHub takes 50)`,
          );
        run.annotations.push(...output.annotations);
        run.output.annotations_count = run.annotations.length;
      }
      for (const [k, v] of Object.entries({ summary: output.summary, text: output.text })) {
        if (v && Buffer.byteLength(v) > 65535)
          this.violations.push(`check run ${run.id}: output.${k} is ${Buffer.byteLength(v)} bytes (limit 65535)`);
      }
    }
  }

  private checkRunJson(run: CheckRunState): unknown {
    return {
      id: run.id,
      name: run.name,
      head_sha: run.head_sha,
      external_id: run.external_id,
      status: run.status,
      conclusion: run.conclusion,
      details_url: run.details_url,
      check_suite: { id: this.suiteOf(run.head_sha) },
      html_url: `${this.url}/${run.repo}/runs/${run.id}`,
      output: {
        title: run.output.title ?? null,
        summary: run.output.summary ?? null,
        text: run.output.text ?? null,
        annotations_count: run.output.annotations_count,
      },
    };
  }
}
