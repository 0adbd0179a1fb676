// The one configuration schema: defaults, the one error wording naming the setting, other
// names (older ones, Probot's, the older Temporal CLI's) and their conflicts, the Temporal
// TLS options every command connects with, and a bad setting stopping each command.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadEngineConfig,
  loadServiceSettings,
  loadTemporalSecurity,
  temporalConnectOptions,
} from '../../app/config.js';
import { githubConfig, loadServeConfig } from '../../app/intake/config.js';
import { SettingError } from '../../app/settings/errors.js';
import { setting } from '../../app/settings/read.js';
import { SETTINGS } from '../../app/settings/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'trainyard-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const PEM_KEY = '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n';
const gitlab = { GITLAB_TOKEN: 't', GITLAB_WEBHOOK_SECRET: 's' };

function thrown(f: () => unknown): SettingError {
  try {
    f();
  } catch (e) {
    if (e instanceof SettingError) return e;
    throw e;
  }
  throw new Error('nothing thrown');
}

describe('defaults', () => {
  it('every command gets the same defaults from the schema', () => {
    const engine = loadEngineConfig({ HOME: '/home/u', XDG_DATA_HOME: '/data' });
    expect(engine).toMatchObject({
      temporalAddress: null,
      temporalNamespace: 'default',
      parallelism: 4,
      heartbeatTimeoutMs: 30_000,
      controlQueue: 'trainyard',
      localQueue: 'trainyard-local',
      statusIntervalMs: 10_000,
      shutdownGraceMs: 20_000,
      temporalTls: false,
      workRoot: '/data/trainyard/work',
    });
    const serve = loadServeConfig({ ...gitlab, XDG_DATA_HOME: '/data' });
    expect(serve).toMatchObject({
      port: 3000,
      bind: '0.0.0.0',
      temporalAddress: '127.0.0.1:7233',
      workers: 'in-process',
      ackOnly: false,
      logLevel: 'info',
      workRoot: '/data/trainyard/work',
      parallelism: 4,
    });
    expect(serve.temporalTlsConfig).toBeUndefined();
  });

  it('every setting has a description, the commands that read it and a default to show', () => {
    for (const [name, s] of Object.entries(SETTINGS)) {
      expect(s.description.length, name).toBeGreaterThan(5);
      expect(s.commands.length, name).toBeGreaterThan(0);
      expect(s.defaultText, name).not.toBe('');
    }
  });
});

describe('one error wording, naming the setting and what it expects', () => {
  it.each([
    ['TRAINYARD_PARALLELISM', 'lots', /^TRAINYARD_PARALLELISM: must be a whole number from 1 to 1024, got "lots"$/],
    ['TEMPORAL_TLS', 'maybe', /^TEMPORAL_TLS: must be true or false \(1\/0, yes\/no, on\/off\), got "maybe"$/],
    ['TEMPORAL_ADDRESS', 'temporal', /^TEMPORAL_ADDRESS: must be host:port, got "temporal"$/],
    ['TRAINYARD_WORK_DIR', 'work', /^TRAINYARD_WORK_DIR: must be an absolute path, got "work"$/],
    [
      'TRAINYARD_LOG_LEVEL',
      'loud',
      /^TRAINYARD_LOG_LEVEL: must be one of trace, debug, info, warn, error, fatal, silent, got "loud"$/,
    ],
    [
      'TRAINYARD_STORE',
      'store',
      /^TRAINYARD_STORE: must be an absolute path, file:\/\/\/path or s3:\/\/bucket\/prefix, got "store"$/,
    ],
    [
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      '/nonexistent/client.pem',
      /^TEMPORAL_TLS_CLIENT_CERT_PATH: must be a readable file, got "\/nonexistent\/client.pem" \(ENOENT/,
    ],
  ])('%s=%j', (name, value, message) => {
    const e = thrown(() => loadEngineConfig({ [name]: value }));
    expect(e.variable).toBe(name);
    expect(e.message).toMatch(message);
  });

  it('booleans are parsed one way everywhere', () => {
    for (const v of ['1', 'true', 'YES', 'on']) {
      expect(loadServeConfig({ ...gitlab, TRAINYARD_ACK_ONLY: v }).ackOnly).toBe(true);
      expect(loadEngineConfig({ TEMPORAL_TLS: v }).temporalTls).toBe(true);
    }
    for (const v of ['0', 'false', 'No', 'off']) {
      expect(loadServeConfig({ ...gitlab, TRAINYARD_ACK_ONLY: v }).ackOnly).toBe(false);
      expect(loadEngineConfig({ TEMPORAL_TLS: v, TEMPORAL_API_KEY: 'k' }).temporalTls).toBe(false);
    }
  });

  it('never echoes a secret', () => {
    const e = thrown(() => loadServeConfig({ ...gitlab, TRAINYARD_LINK_SECRET: 'short-secret' }));
    expect(e.message).toBe(
      'TRAINYARD_LINK_SECRET: must be at least 16 characters (a random string, e.g. `openssl rand -hex 32`), got a value of 12 characters',
    );
  });
});

describe('one work folder, older and other names', () => {
  it('TRAINYARD_WORK_DIR for every command; TRAINYARD_WORK_ROOT is its older name', () => {
    expect(loadEngineConfig({ TRAINYARD_WORK_DIR: '/w' }).workRoot).toBe('/w');
    expect(loadServeConfig({ ...gitlab, TRAINYARD_WORK_DIR: '/w' }).workRoot).toBe('/w');
    expect(loadEngineConfig({ TRAINYARD_WORK_ROOT: '/old' }).workRoot).toBe('/old');
    expect(loadServeConfig({ ...gitlab, TRAINYARD_WORK_ROOT: '/old' }).workRoot).toBe('/old');
    expect(loadEngineConfig({ TRAINYARD_WORK_DIR: '/w', TRAINYARD_WORK_ROOT: '/w' }).workRoot).toBe('/w');
  });

  it.each([
    [
      { TRAINYARD_WORK_DIR: '/a', TRAINYARD_WORK_ROOT: '/b' },
      'TRAINYARD_WORK_ROOT: is the older name of TRAINYARD_WORK_DIR and TRAINYARD_WORK_DIR says something else (/b vs /a); set one of them',
    ],
    [
      { TRAINYARD_LOCAL_QUEUE: 'a', TRAINYARD_HOST_QUEUE: 'b' },
      'TRAINYARD_HOST_QUEUE: is the older name of TRAINYARD_LOCAL_QUEUE and TRAINYARD_LOCAL_QUEUE says something else (b vs a); set one of them',
    ],
    [
      { TEMPORAL_TLS_CLIENT_CERT_PATH: '/a.pem', TEMPORAL_TLS_CERT: '/b.pem' },
      "TEMPORAL_TLS_CERT: is the older Temporal CLI's name of TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_CERT_PATH says something else (/b.pem vs /a.pem); set one of them",
    ],
    [
      { AWS_ENDPOINT_URL_S3: 'http://a:9000', TRAINYARD_S3_ENDPOINT: 'http://b:9000' },
      'TRAINYARD_S3_ENDPOINT: is the older name of AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_S3 says something else (http://b:9000 vs http://a:9000); set one of them',
    ],
  ])('both names set and different is refused, naming both: %j', (env, message) => {
    const e = thrown(() => {
      loadEngineConfig(env);
      setting(env, 'AWS_ENDPOINT_URL_S3');
    });
    expect(e.message).toBe(message);
  });

  it("accepts Probot's names for the GitHub App, and refuses them when they contradict Trainyard's", () => {
    const key = file('app.pem', PEM_KEY);
    const probot = { APP_ID: '42', PRIVATE_KEY_PATH: key, WEBHOOK_SECRET: 'hook', GHE_HOST: 'ghe.example.com' };
    expect(githubConfig(probot)).toEqual({
      appId: 42,
      privateKey: PEM_KEY,
      webhookSecret: 'hook',
      apiUrl: 'https://ghe.example.com/api/v3',
    });
    expect(
      githubConfig({ APP_ID: '42', PRIVATE_KEY: PEM_KEY.replace(/\n/g, '\\n'), WEBHOOK_SECRET: 'hook' }),
    ).toMatchObject({ privateKey: PEM_KEY, apiUrl: 'https://api.github.com' });
    expect(thrown(() => githubConfig({ ...probot, GITHUB_APP_ID: '43' })).message).toBe(
      "APP_ID: is Probot's name of GITHUB_APP_ID and GITHUB_APP_ID says something else (42 vs 43); set one of them",
    );
    expect(thrown(() => githubConfig({ ...probot, GITHUB_WEBHOOK_SECRET: 'other' })).message).toBe(
      "WEBHOOK_SECRET: is Probot's name of GITHUB_WEBHOOK_SECRET and GITHUB_WEBHOOK_SECRET says something else; set one of them",
    );
    expect(thrown(() => githubConfig({ ...probot, GITHUB_API_URL: 'https://api.github.com' })).message).toBe(
      "GHE_HOST: is Probot's name for GITHUB_API_URL=https://ghe.example.com/api/v3 and GITHUB_API_URL says something else (https://api.github.com); set one of them",
    );
    expect(thrown(() => githubConfig({ ...probot, APP_ID: 'my-app' })).message).toBe(
      'APP_ID: must be the numeric id of the GitHub App, got "my-app"',
    );
    expect(thrown(() => githubConfig({ ...probot, PRIVATE_KEY_PATH: file('not-a-key.pem', 'hello') })).variable).toBe(
      'PRIVATE_KEY_PATH',
    );
  });
});

describe('Temporal TLS, API key and mTLS certificates', () => {
  it('the connection options carry the client certificate pair, the server CA and the server name', () => {
    const env = {
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem', 'CERT'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key', 'KEY'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem', 'CA'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      TEMPORAL_API_KEY: 'secret-key',
    };
    for (const cfg of [loadServiceSettings(env), loadEngineConfig(env), loadServeConfig({ ...gitlab, ...env })]) {
      const opts = temporalConnectOptions(cfg, 'temporal.internal:7233');
      expect(opts).toEqual({
        address: 'temporal.internal:7233',
        apiKey: 'secret-key',
        tls: {
          clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') },
          serverRootCACertificate: Buffer.from('CA'),
          serverNameOverride: 'temporal.internal',
        },
      });
    }
  });

  it('the older Temporal CLI names work; TLS is on with an API key or a certificate, off by default', () => {
    const older = loadTemporalSecurity({ TEMPORAL_TLS_CA: file('ca2.pem', 'CA2') });
    expect(temporalConnectOptions(older, 'h:1')).toEqual({
      address: 'h:1',
      tls: { serverRootCACertificate: Buffer.from('CA2') },
    });
    expect(temporalConnectOptions(loadTemporalSecurity({ TEMPORAL_API_KEY: 'k' }), 'h:1')).toEqual({
      address: 'h:1',
      tls: true,
      apiKey: 'k',
    });
    expect(temporalConnectOptions(loadTemporalSecurity({}), 'h:1')).toEqual({ address: 'h:1' });
  });

  it('a certificate without its key, or TLS off with certificates, is refused', () => {
    expect(thrown(() => loadTemporalSecurity({ TEMPORAL_TLS_CLIENT_CERT_PATH: file('c.pem', 'C') })).variable).toBe(
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
    );
    expect(thrown(() => loadTemporalSecurity({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_NAME: 'x' })).variable).toBe(
      'TEMPORAL_TLS',
    );
  });

  it.each([['run'], ['worker'], ['agent'], ['serve']])(
    '`trainyard %s` given a certificate path that does not exist stops, naming the variable',
    (cmd) => {
      const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'trainyard.js'), cmd], {
        encoding: 'utf8',
        timeout: 60_000,
        cwd: dir,
        env: {
          ...process.env,
          ...gitlab,
          TEMPORAL_ADDRESS: '127.0.0.1:1',
          TRAINYARD_HOME: dir,
          TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'missing.pem'),
          TEMPORAL_TLS_CLIENT_KEY_PATH: join(dir, 'missing.key'),
        },
      });
      expect(r.stderr).toContain(
        `TEMPORAL_TLS_CLIENT_CERT_PATH: must be a readable file, got "${join(dir, 'missing.pem')}" (ENOENT`,
      );
      expect(r.status).toBe(2);
    },
  );
});
