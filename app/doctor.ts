// `trainyard doctor`: checks this environment the way the commands will use it — the settings,
// Temporal, the artifact store, the git hosts, AWS and Kubernetes when configured — and says
// in plain words what is wrong. One line per check; exit 1 when any check fails.
import { randomUUID } from 'node:crypto';
import { DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { Connection } from '@temporalio/client';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { ProbotOctokit } from 'probot';
import { createAwsClients } from '../activities/ec2/client.js';
import { createKubeClients } from '../activities/k8s/client.js';
import { openStore } from './store.js';
import { SEARCH_ATTRIBUTES } from '../model/searchattributes.js';
import { loadComputeConfig, type ComputeConfig } from './compute/config.js';
import { loadEngineConfig, temporalConnectOptions, type EngineConfig } from './config.js';
import { githubConfig, gitlabConfig, type GithubConfig, type GitlabConfig } from './intake/config.js';
import type { Env } from './settings/read.js';

/** The outcome of one check: `skip` when what it checks is not configured. */
export interface CheckResult {
  name: string;
  status: 'ok' | 'FAIL' | 'skip';
  detail: string;
}

/** How long one network check may take before it counts as failed, ms. */
const CHECK_TIMEOUT_MS = 15_000;

function withTimeout<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from ${what} within ${CHECK_TIMEOUT_MS / 1000} s`)),
      CHECK_TIMEOUT_MS,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function reason(e: unknown): string {
  const err = e as { message?: string; status?: number; name?: string };
  return (err.message ?? String(e)).split('\n')[0]!;
}

async function check(name: string, run: () => Promise<string>): Promise<CheckResult> {
  try {
    return { name, status: 'ok', detail: await run() };
  } catch (e) {
    return { name, status: 'FAIL', detail: reason(e) };
  }
}

async function temporalCheck(cfg: EngineConfig): Promise<CheckResult> {
  if (!cfg.temporalAddress)
    return {
      name: 'Temporal',
      status: 'skip',
      detail:
        'TEMPORAL_ADDRESS is not set (`trainyard run` starts a dev server itself; worker, agent and serve need it)',
    };
  const address = cfg.temporalAddress;
  return check('Temporal', async () => {
    let connection: Connection | undefined;
    try {
      connection = await withTimeout(
        `Temporal at ${address}`,
        Connection.connect({ ...temporalConnectOptions(cfg, address), connectTimeout: 5_000 }),
      );
      const conn = connection;
      await withTimeout(
        `Temporal at ${address}`,
        conn.workflowService.describeNamespace({ namespace: cfg.temporalNamespace }),
      ).catch((e: unknown) => {
        throw new Error(
          `connected to ${address}, but namespace ${cfg.temporalNamespace} cannot be described: ${reason(e)}`,
        );
      });
      const attributes = await searchAttributesNote(conn, cfg.temporalNamespace);
      return `${address}, namespace ${cfg.temporalNamespace}${cfg.temporalTls ? ', TLS' : ''}${cfg.temporalApiKey ? ', API key' : ''}${attributes}`;
    } catch (e) {
      if (reason(e).startsWith('connected')) throw e;
      throw new Error(`cannot reach ${address} (TEMPORAL_ADDRESS): ${reason(e)}`);
    } finally {
      await connection?.close();
    }
  });
}

/**
 * '' when the namespace has the run search attributes; throws when it lacks some (runs then
 * start without them and `trainyard runs` cannot list them: docs/operations.md, *Audit view*);
 * a note when the server does not let this key list them (ListSearchAttributes refused).
 */
async function searchAttributesNote(conn: Connection, namespace: string): Promise<string> {
  let have: Set<string>;
  try {
    const listed = await withTimeout('Temporal', conn.operatorService.listSearchAttributes({ namespace }));
    have = new Set(Object.keys(listed.customAttributes ?? {}));
  } catch (e) {
    return ` (run search attributes not checked: ${reason(e)})`;
  }
  const missing = Object.values(SEARCH_ATTRIBUTES).filter((n) => !have.has(n));
  if (missing.length === 0) return '';
  throw new Error(
    `connected, but namespace ${namespace} lacks the run search attributes ${missing.join(', ')}: runs start without them and \`trainyard runs\` does not list them; run \`trainyard setup-temporal\` once (Temporal Cloud: add them as Keyword in the web UI or with tcld)`,
  );
}

async function storeCheck(cfg: EngineConfig): Promise<CheckResult> {
  return check('store', async () => {
    const store = openStore(cfg);
    // One fixed key, overwritten by every doctor run: the store keeps no debris of checks.
    const key = 'doctor/probe';
    const nonce = randomUUID();
    let back: { nonce: string } | undefined;
    try {
      await withTimeout(`the store ${store.location}`, store.putRecord(key, { nonce, at: new Date().toISOString() }));
      back = await withTimeout(`the store ${store.location}`, store.getRecord<{ nonce: string }>(key));
    } catch (e) {
      throw new Error(`${store.location} (TRAINYARD_STORE): ${reason(e)}`);
    }
    if (back?.nonce !== nonce)
      throw new Error(`${store.location} (TRAINYARD_STORE): a record written could not be read back`);
    return `${store.location}: wrote and read back a record`;
  });
}

async function githubCheck(gh: GithubConfig): Promise<CheckResult> {
  return check('GitHub App', async () => {
    const octokit = new ProbotOctokit({
      auth: { appId: gh.appId, privateKey: gh.privateKey },
      baseUrl: gh.apiUrl,
      retry: { enabled: false },
      throttle: { enabled: false },
    });
    try {
      const { data } = await withTimeout(`GitHub at ${gh.apiUrl}`, octokit.request('GET /app'));
      return `app ${data?.slug ?? gh.appId} (id ${gh.appId}) at ${gh.apiUrl}`;
    } catch (e) {
      const status = (e as { status?: number }).status;
      if (status === 401)
        throw new Error(
          `${gh.apiUrl} refused the App's token (401): GITHUB_APP_ID ${gh.appId} and the private key do not belong together, or the machine clock is off`,
        );
      if (status === 404)
        throw new Error(`${gh.apiUrl} has no app ${gh.appId} (404): check GITHUB_APP_ID and GITHUB_API_URL`);
      throw new Error(`cannot reach ${gh.apiUrl} (GITHUB_API_URL): ${reason(e)}`);
    }
  });
}

async function gitlabCheck(gl: GitlabConfig): Promise<CheckResult> {
  return check('GitLab', async () => {
    let res: Response;
    try {
      res = await withTimeout(
        `GitLab at ${gl.url}`,
        fetch(`${gl.url}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': gl.token } }),
      );
    } catch (e) {
      throw new Error(`cannot reach ${gl.url} (GITLAB_URL): ${reason(e)}`);
    }
    if (res.status === 401)
      throw new Error(`${gl.url} refused GITLAB_TOKEN (401): the token is wrong, expired or revoked`);
    if (!res.ok) throw new Error(`${gl.url}/api/v4/user answered ${res.status}: check GITLAB_URL and GITLAB_TOKEN`);
    const user = (await res.json()) as { username?: string };
    return `token of ${user.username ?? 'a user'} at ${gl.url}`;
  });
}

async function awsCheck(compute: ComputeConfig): Promise<CheckResult> {
  const ec2 = compute.ec2;
  if (!ec2) return { name: 'AWS EC2', status: 'skip', detail: 'EC2 is not configured (TRAINYARD_EC2_SUBNETS unset)' };
  return check('AWS EC2', async () => {
    const clients = createAwsClients({ region: ec2.region, ...(ec2.endpoint ? { endpoint: ec2.endpoint } : {}) });
    try {
      const r = await withTimeout(
        'AWS EC2',
        clients.ec2.send(new DescribeRegionsCommand({ RegionNames: [ec2.region] })),
      );
      if (!r.Regions?.length) throw new Error(`region ${ec2.region} is not available to these credentials`);
      return `region ${ec2.region}, credentials accepted`;
    } catch (e) {
      throw new Error(
        `EC2 in ${ec2.region}: ${reason(e)} (credentials come from the AWS chain: AWS_ACCESS_KEY_ID…, AWS_PROFILE, the instance or pod role)`,
      );
    } finally {
      clients.ec2.destroy();
      clients.ec2Launch.destroy();
      clients.ssm.destroy();
    }
  });
}

async function kubernetesCheck(compute: ComputeConfig): Promise<CheckResult> {
  const k8s = compute.kubernetes;
  if (!k8s) return { name: 'Kubernetes', status: 'skip', detail: 'TRAINYARD_K8S_CONFIG is not set' };
  return check('Kubernetes', async () => {
    const { kc } = createKubeClients(k8s.context ? { context: k8s.context } : {});
    const auth = kc.makeApiClient(AuthorizationV1Api);
    const namespaces = [...new Set(Object.values(k8s.classes).map((c) => c.namespace))];
    const denied: string[] = [];
    for (const namespace of namespaces) {
      const r = await withTimeout(
        `Kubernetes at ${kc.getCurrentCluster()?.server ?? 'the cluster'}`,
        auth.createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace, verb: 'create', group: 'batch', resource: 'jobs' } },
          },
        }),
      );
      if (!r.status?.allowed) denied.push(namespace);
    }
    if (denied.length)
      throw new Error(
        `may not create Jobs in namespace(s) ${denied.join(', ')} (${k8s.source}): grant the RBAC in deploy/k8s`,
      );
    return `${kc.getCurrentCluster()?.server ?? 'cluster'}: may create Jobs in ${namespaces.join(', ') || 'no namespace (no classes)'}`;
  });
}

/**
 * Runs every check against `env` and returns the results in order: configuration, Temporal
 * (connect, DescribeNamespace and the run search attributes), store (write and read a probe record), GitHub App
 * (GET /app with the App's JWT), GitLab (GET /user), AWS EC2 (DescribeRegions) and
 * Kubernetes (SelfSubjectAccessReview for creating Jobs) — the last four when configured.
 */
export async function runDoctor(env: Env): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let cfg: EngineConfig | undefined;
  let gh: GithubConfig | null = null;
  let gl: GitlabConfig | null = null;
  let compute: ComputeConfig | undefined;
  const problems: string[] = [];
  const attempt = (f: () => void) => {
    try {
      f();
    } catch (e) {
      problems.push(reason(e));
    }
  };
  attempt(() => (cfg = loadEngineConfig(env)));
  attempt(() => (gh = githubConfig(env)));
  attempt(() => (gl = gitlabConfig(env)));
  attempt(() => (compute = loadComputeConfig(env)));
  results.push(
    problems.length
      ? { name: 'configuration', status: 'FAIL', detail: problems.join('; ') }
      : { name: 'configuration', status: 'ok', detail: 'every setting is valid' },
  );
  const skipped = (name: string) => ({
    name,
    status: 'skip' as const,
    detail: 'not checked: its configuration is wrong (above)',
  });
  results.push(cfg ? await temporalCheck(cfg) : skipped('Temporal'));
  results.push(cfg ? await storeCheck(cfg) : skipped('store'));
  const github = gh as GithubConfig | null;
  const gitlab = gl as GitlabConfig | null;
  results.push(
    github
      ? await githubCheck(github)
      : { name: 'GitHub App', status: 'skip', detail: 'not configured (GITHUB_APP_ID unset)' },
  );
  results.push(
    gitlab
      ? await gitlabCheck(gitlab)
      : { name: 'GitLab', status: 'skip', detail: 'not configured (GITLAB_TOKEN unset)' },
  );
  results.push(compute ? await awsCheck(compute) : skipped('AWS EC2'));
  results.push(compute ? await kubernetesCheck(compute) : skipped('Kubernetes'));
  return results;
}

/** One line per check. */
export function formatResults(results: CheckResult[]): string {
  return results.map((r) => `${r.status.padEnd(4)}  ${r.name}: ${r.detail}\n`).join('');
}

/**
 * `trainyard doctor [--json]`: prints the checks, one line each, or with `json` one object
 * `{ ok, checks: [{ name, status: 'ok'|'FAIL'|'skip', ok, message }] }` (`ok` is false only
 * for FAIL: a skipped check is one not configured). Returns 0 when none failed, 1 otherwise.
 */
export async function doctorCommand(
  env: Env = process.env,
  out: NodeJS.WritableStream = process.stdout,
  opts: { json?: boolean } = {},
): Promise<number> {
  const results = await runDoctor(env);
  if (opts.json) {
    const checks = results.map((r) => ({ name: r.name, status: r.status, ok: r.status !== 'FAIL', message: r.detail }));
    out.write(`${JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2)}\n`);
  } else out.write(formatResults(results));
  return results.some((r) => r.status === 'FAIL') ? 1 : 0;
}
