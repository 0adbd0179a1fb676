import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../pipeline/parse.js';
import type { Pipeline } from '../../pipeline/types.js';
import { ConfigError, loadPolicy, loadServeConfig } from '../../app/intake/config.js';
import { estimateCost, openPolicy, policyViolations } from '../../app/intake/policy.js';

function pipeline(machines: string, timeout = '2h'): Pipeline {
  const text = `name: p
machines:
${machines}
steps:
  prep:
    image: busybox
    run: echo hi
  train:
    image: busybox
    machine: gpu
    run: echo train
    timeout: ${timeout}
`;
  const r = parsePipeline(text, '.trainyard/p.yaml');
  if (!r.pipeline) throw new Error(JSON.stringify(r.errors));
  return r.pipeline;
}

describe('server policy', () => {
  const gpu = pipeline('  gpu: { instance: [g5.xlarge, p3.2xlarge], gpus: 2 }');

  it('allows everything when open', () => {
    expect(policyViolations(openPolicy(), 'any/repo', gpu)).toEqual([]);
  });

  it('estimates cost from the most expensive instance over the step timeout; local steps are free', () => {
    expect(estimateCost(gpu, openPolicy().prices)).toEqual({ usd: 6.12, unpriced: [] }); // 2h × $3.06
  });

  it('names every breach: repo, instance type, GPUs, cost', () => {
    const policy = { ...openPolicy(), allowedRepos: ['acme/*'], allowedInstanceTypes: ['g5.*'], maxGpus: 1, maxCostUsd: 5 };
    const v = policyViolations(policy, 'evil/repo', gpu);
    expect(v).toHaveLength(4);
    expect(v[0]).toContain('evil/repo');
    expect(v[1]).toContain('p3.2xlarge');
    expect(v[2]).toContain('2 GPUs');
    expect(v[3]).toContain('$6.12');
    expect(policyViolations(policy, 'acme/models', pipeline('  gpu: { instance: [g5.xlarge], gpus: 1 }'))).toEqual([]);
  });

  it('refuses to guess the cost of an instance type without a price', () => {
    const p = pipeline('  gpu: { instance: [x9.weird], gpus: 1 }');
    const v = policyViolations({ ...openPolicy(), maxCostUsd: 100 }, 'a/b', p);
    expect(v).toHaveLength(1);
    expect(v[0]).toContain('x9.weird');
  });
});

describe('serve configuration', () => {
  const key = '-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n';
  const github = { GITHUB_APP_ID: '12', GITHUB_PRIVATE_KEY: key, GITHUB_WEBHOOK_SECRET: 's' };

  function failure(env: Record<string, string>): string {
    try {
      loadServeConfig(env);
    } catch (e) {
      if (e instanceof ConfigError) return e.variable;
      throw e;
    }
    return 'no error';
  }

  it('names the variable at fault', () => {
    expect(failure({})).toBe('GITHUB_APP_ID');
    expect(failure({ ...github, GITHUB_APP_ID: 'twelve' })).toBe('GITHUB_APP_ID');
    expect(failure({ ...github, GITHUB_PRIVATE_KEY: 'not a key' })).toBe('GITHUB_PRIVATE_KEY');
    expect(failure({ GITHUB_APP_ID: '1', GITHUB_PRIVATE_KEY_FILE: '/nonexistent/key.pem', GITHUB_WEBHOOK_SECRET: 's' })).toBe('GITHUB_PRIVATE_KEY_FILE');
    expect(failure({ ...github, GITHUB_WEBHOOK_SECRET: '' })).toBe('GITHUB_WEBHOOK_SECRET');
    expect(failure({ ...github, GITHUB_API_URL: 'ftp://x' })).toBe('GITHUB_API_URL');
    expect(failure({ ...github, TRAINYARD_PORT: '99999' })).toBe('TRAINYARD_PORT');
    expect(failure({ ...github, TRAINYARD_MAX_GPUS: 'lots' })).toBe('TRAINYARD_MAX_GPUS');
    expect(failure({ ...github, TRAINYARD_WORKERS: 'some' })).toBe('TRAINYARD_WORKERS');
    expect(failure({ GITLAB_TOKEN: 't' })).toBe('GITLAB_WEBHOOK_SECRET');
  });

  it('reads a GitHub + GitLab setup with a policy file and env overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'allowedRepos: ["acme/*"]\nmaxGpus: 4\nprices: { x9.weird: 2.5 }\n');
    const cfg = loadServeConfig({
      ...github, GITHUB_API_URL: 'https://ghe.example.com/api/v3/', GITLAB_TOKEN: 't', GITLAB_WEBHOOK_SECRET: 'w',
      GITLAB_URL: 'https://gitlab.example.com', TRAINYARD_POLICY_FILE: file, TRAINYARD_MAX_GPUS: '1', TRAINYARD_PORT: '0',
      TRAINYARD_STORE: '/tmp/store',
    });
    expect(cfg.github?.apiUrl).toBe('https://ghe.example.com/api/v3');
    expect(cfg.gitlab?.url).toBe('https://gitlab.example.com');
    expect(cfg.policy.allowedRepos).toEqual(['acme/*']);
    expect(cfg.policy.maxGpus).toBe(1);
    expect(cfg.policy.prices['x9.weird']).toBe(2.5);
    expect(cfg.port).toBe(0);
  });

  it('rejects unknown policy keys, naming the file and key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ maxGPUs: 2 }));
    expect(() => loadPolicy({ TRAINYARD_POLICY_FILE: file })).toThrow(/maxGPUs/);
  });
});
