// The user data a host boots with, and its on-host scripts run for real against a fake
// IMDSv2 endpoint, a fake container CLI and a fake poweroff.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { USER_DATA_LIMIT, renderUserData } from '../../activities/ec2/userdata.js';
import type { AgentSettings } from '../../activities/ec2/types.js';

const run = promisify(execFile);
const dirs: string[] = [];
const scratch = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'trainyard-ud-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const agent: AgentSettings = {
  temporalAddress: 'temporal.internal.example:7233',
  temporalNamespace: 'ml-prod',
  temporalTls: true,
  temporalApiKeySsmParameter: '/trainyard/temporal-api-key',
  storeLocation: 's3://ml-artifacts/trainyard',
  agentPackage:
    's3://ml-artifacts/trainyard/blobs/sha256/1d/1d06007da983c0b9a7a9e18c0e3c9d8971a167abfb6ad9ca712c607edb43d06b',
  agentPackageSha256: '1d06007da983c0b9a7a9e18c0e3c9d8971a167abfb6ad9ca712c607edb43d06b',
  nodeVersion: 'v20.18.1',
  idlePoweroffSeconds: 1800,
  spotPollSeconds: 5,
};

interface CloudConfig {
  write_files: { path: string; permissions: string; content: string }[];
  runcmd: string[][];
}

function rendered(queue = 'trainyard-host-0badf00d-gpu-1'): {
  text: string;
  doc: CloudConfig;
  file: (p: string) => string;
} {
  const text = renderUserData({ queue, region: 'eu-west-1', agent });
  const doc = parse(text) as CloudConfig;
  const file = (p: string): string => {
    const f = doc.write_files.find((w) => w.path === p);
    if (!f) throw new Error(`no ${p} in user data`);
    return f.content;
  };
  return { text, doc, file };
}

describe('user data', () => {
  it('is cloud-config under 16 KB that installs and starts the agent on its own queue, the watches first', () => {
    const { text, doc, file } = rendered();
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    expect(Buffer.byteLength(text)).toBeLessThan(USER_DATA_LIMIT);
    const env = file('/etc/trainyard/agent.env');
    expect(env).toContain('TRAINYARD_AGENT_QUEUE=trainyard-host-0badf00d-gpu-1\n');
    expect(env).toContain('TEMPORAL_ADDRESS=temporal.internal.example:7233\n');
    expect(env).toContain('TEMPORAL_NAMESPACE=ml-prod\n');
    expect(env).toContain('TRAINYARD_STORE=s3://ml-artifacts/trainyard\n');
    expect(env).toContain('TRAINYARD_TEMPORAL_API_KEY_SSM=/trainyard/temporal-api-key\n');
    expect(env).toContain(
      'TRAINYARD_AGENT_PACKAGE_SHA256=1d06007da983c0b9a7a9e18c0e3c9d8971a167abfb6ad9ca712c607edb43d06b\n',
    );
    expect(file('/opt/trainyard/run-agent.sh')).toContain(
      'exec /opt/trainyard/agent/bin/trainyard agent --queue "$TRAINYARD_AGENT_QUEUE"',
    );
    expect(file('/etc/systemd/system/trainyard-agent.service')).toContain('ExecStart=/opt/trainyard/run-agent.sh');
    const enable = doc.runcmd.find((c) => c[1] === 'enable')!;
    expect(enable.indexOf('trainyard-idle-watch.service')).toBeLessThan(enable.indexOf('trainyard-agent.service'));
    for (const f of doc.write_files.filter((w) => w.path.endsWith('.sh'))) expect(f.permissions).toBe('0755');
  });

  it('carries no credentials: the API key is only named, to be read through the instance profile', () => {
    const { text } = rendered();
    expect(text).not.toMatch(
      /AKIA[0-9A-Z]{16}|aws_secret_access_key|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|BEGIN [A-Z ]*PRIVATE KEY/,
    );
    // Only ever assigned from the SSM lookup on the host, never a literal.
    expect(text).not.toMatch(/TEMPORAL_API_KEY=(?!\$\(aws ssm get-parameter)/);
  });

  it("names the server's SSM secret source for step secrets, never a value; without one, none", () => {
    const withSecrets = renderUserData({
      queue: 'q',
      region: 'eu-west-1',
      agent: {
        ...agent,
        secretsSsm: {
          prefix: '/trainyard/secrets/',
          region: 'eu-central-1',
          endpoint: 'https://ssm.eu-central-1.amazonaws.com',
        },
      },
    });
    const env = (parse(withSecrets) as CloudConfig).write_files.find(
      (f) => f.path === '/etc/trainyard/agent.env',
    )!.content;
    expect(env).toContain('TRAINYARD_SECRETS_SSM_PREFIX=/trainyard/secrets/\n');
    expect(env).toContain('TRAINYARD_SECRETS_SSM_REGION=eu-central-1\n');
    expect(env).toContain('TRAINYARD_SECRETS_SSM_ENDPOINT=https://ssm.eu-central-1.amazonaws.com\n');
    expect(env).not.toContain('TRAINYARD_SECRETS_FROM_ENV');
    expect(rendered().text).not.toContain('TRAINYARD_SECRETS_');
    expect(() =>
      renderUserData({
        queue: 'q',
        region: 'eu-west-1',
        agent: { ...agent, secretsSsm: { prefix: '/x/$(id)/', region: 'eu-west-1' } },
      }),
    ).toThrow(/TRAINYARD_SECRETS_SSM_PREFIX value/);
  });

  it('refuses values that could break out of the environment file or the shell', () => {
    for (const queue of ['q; rm -rf /', 'q$(reboot)', 'q\nTEMPORAL_ADDRESS=evil:1', 'q`id`', "q'x", 'q"x', 'q x']) {
      expect(() => renderUserData({ queue, region: 'eu-west-1', agent })).toThrow(
        /TRAINYARD_AGENT_QUEUE value .* has characters outside/,
      );
    }
    expect(() =>
      renderUserData({
        queue: 'q',
        region: 'eu-west-1',
        agent: { ...agent, agentPackage: 'trainyard@1 && curl evil' },
      }),
    ).toThrow(/TRAINYARD_AGENT_PACKAGE/);
    expect(() =>
      renderUserData({ queue: 'q', region: 'eu-west-1', agent: { ...agent, nodeVersion: 'latest' } }),
    ).toThrow(/Node.js version/);
    expect(() =>
      renderUserData({ queue: 'q', region: 'eu-west-1', agent: { ...agent, agentPackageSha256: 'ab$(id)' } }),
    ).toThrow(/SHA256 .* is not 64 hex/);
  });

  it('is not rendered before the agent package is resolved', () => {
    expect(() => renderUserData({ queue: 'q', region: 'eu-west-1', agent: { ...agent, agentPackage: '' } })).toThrow(
      /agent package is not resolved/,
    );
    const { agentPackageSha256: _, ...noSum } = agent;
    expect(() => renderUserData({ queue: 'q', region: 'eu-west-1', agent: noSum })).toThrow(
      /agent package is not resolved/,
    );
  });

  it('has shell scripts that parse', async () => {
    const { doc } = rendered();
    const dir = scratch();
    for (const f of doc.write_files.filter((w) => w.path.endsWith('.sh'))) {
      const p = join(dir, f.path.split('/').pop()!);
      writeFileSync(p, f.content);
      await expect(run('sh', ['-n', p])).resolves.toBeDefined();
    }
  });
});

/** A fake IMDSv2: PUT /latest/api/token, token-checked GETs; the notice appears after `quietPolls` polls. */
function fakeImds(quietPolls: number): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const token = 'imds-token-123';
  let polls = 0;
  const server = createServer((req, res) => {
    seen.push(
      `${req.method} ${req.url} ttl=${req.headers['x-aws-ec2-metadata-token-ttl-seconds'] ?? ''} token=${req.headers['x-aws-ec2-metadata-token'] ?? ''}`,
    );
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      res.end(token);
      return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== token) {
      res.statusCode = 401;
      res.end();
      return;
    }
    if (req.url === '/latest/meta-data/instance-id') {
      res.end('i-0abc123def4567890');
      return;
    }
    if (req.url === '/latest/meta-data/spot/instance-action') {
      polls += 1;
      if (polls <= quietPolls) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader('content-type', 'text/plain');
      res.end('{"action": "terminate", "time": "2026-11-23T12:02:00Z"}');
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, seen });
    }),
  );
}

function runScript(
  path: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', [path], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

describe('spot interruption watch', () => {
  it('polls IMDSv2 with a session token and, on a notice, records it and tags the instance', async () => {
    const { file } = rendered();
    const dir = scratch();
    const script = join(dir, 'spot-watch.sh');
    writeFileSync(script, file('/opt/trainyard/spot-watch.sh'));
    const bin = join(dir, 'bin');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(bin);
    // A stand-in for the AWS CLI that records its argv.
    writeFileSync(join(bin, 'aws'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${JSON.stringify(join(dir, 'aws-args'))}\n`);
    chmodSync(join(bin, 'aws'), 0o755);
    const imds = await fakeImds(2);
    try {
      const r = await runScript(
        script,
        {
          TRAINYARD_IMDS_ENDPOINT: imds.url,
          TRAINYARD_STATE_DIR: join(dir, 'state'),
          TRAINYARD_SPOT_POLL_SECONDS: '1',
          TRAINYARD_REGION: 'eu-west-1',
          PATH: `${bin}:${process.env.PATH}`,
        },
        20_000,
      );
      expect(r.code).toBe(0);
      expect(r.out).toContain('spot interruption notice: terminate at 2026-11-23T12:02:00Z');
      expect(JSON.parse(readFileSync(join(dir, 'state', 'interruption.json'), 'utf8'))).toEqual({
        action: 'terminate',
        time: '2026-11-23T12:02:00Z',
      });
      const args = readFileSync(join(dir, 'aws-args'), 'utf8').trim().split('\n');
      expect(args).toEqual([
        'ec2',
        'create-tags',
        '--region',
        'eu-west-1',
        '--resources',
        'i-0abc123def4567890',
        '--tags',
        'Key=trainyard:interruption,Value=terminate@2026-11-23T12:02:00Z',
      ]);
      // IMDSv2: a token was asked for with a TTL, and every read carried it.
      expect(imds.seen[0]).toMatch(/^PUT \/latest\/api\/token ttl=21600/);
      const reads = imds.seen.filter((s) => s.startsWith('GET'));
      expect(reads.length).toBeGreaterThanOrEqual(4);
      expect(reads.every((s) => s.endsWith('token=imds-token-123'))).toBe(true);
    } finally {
      imds.server.close();
    }
  });
});

describe('idle deadline', () => {
  it('powers off only after no step container ran for the deadline', async () => {
    const { file } = rendered();
    const dir = scratch();
    const script = join(dir, 'idle-watch.sh');
    writeFileSync(script, file('/opt/trainyard/idle-watch.sh'));
    // Container CLI stand-in: lists a step container for its first three calls, then none; it
    // checks the label filter and logs each answer with the time it gave it.
    const cli = join(dir, 'fake-docker');
    const calls = join(dir, 'calls');
    writeFileSync(
      cli,
      [
        '#!/bin/sh',
        '[ "$1 $2 $3 $4" = "ps -q --filter label=trainyard.exec" ] || exit 2',
        `n=$(( $(cat ${JSON.stringify(calls)} 2>/dev/null | wc -l) + 1 ))`,
        `if [ "$n" -le 3 ]; then echo "$(date +%s) busy" >> ${JSON.stringify(calls)}; echo 3f2a1b; else echo "$(date +%s) idle" >> ${JSON.stringify(calls)}; fi`,
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(cli, 0o755);
    const off = join(dir, 'fake-poweroff');
    const marker = join(dir, 'powered-off');
    writeFileSync(off, `#!/bin/sh\ndate +%s > ${JSON.stringify(marker)}\n`);
    chmodSync(off, 0o755);
    const r = await runScript(
      script,
      {
        TRAINYARD_STATE_DIR: join(dir, 'state'),
        TRAINYARD_IDLE_POWEROFF_SECONDS: '3',
        TRAINYARD_IDLE_POLL_SECONDS: '1',
        TRAINYARD_CONTAINER_CLI: cli,
        TRAINYARD_POWEROFF_COMMAND: off,
      },
      30_000,
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('no step container for 3s: powering off');
    const answers = readFileSync(calls, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(answers.slice(0, 3).map(([, a]) => a)).toEqual(['busy', 'busy', 'busy']);
    expect(answers.slice(3).every(([, a]) => a === 'idle')).toBe(true);
    // On the script's own clock: the last time it saw a container, and when it powered off.
    const lastBusy = Number(readFileSync(join(dir, 'state', 'last-busy'), 'utf8'));
    const poweredOff = Number(readFileSync(marker, 'utf8'));
    expect(lastBusy).toBeGreaterThanOrEqual(Number(answers[2]![0]) - 1);
    expect(poweredOff - lastBusy).toBeGreaterThanOrEqual(3);
  });
});
