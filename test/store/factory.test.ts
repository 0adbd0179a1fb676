// Location strings → stores; digests and keys validated at the edge.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { S3Client } from '@aws-sdk/client-s3';
import { assertDigest, sha256Bytes } from '../../activities/store/digest.js';
import { createStore } from '../../activities/store/factory.js';
import { loadEngineConfig, storeSetting } from '../../app/config.js';
import { openStore } from '../../app/store.js';
import { LocalStore } from '../../activities/store/local.js';
import { S3Store } from '../../activities/store/s3.js';
import { s3ClientConfig } from '../setup/services.js';
import { createTestBucket, deleteTestBucket, scratchDir } from './backends.js';

const ENV_KEYS = ['HOME', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

describe('createStore', () => {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  let work: string;
  beforeAll(async () => {
    work = await scratchDir('factory');
  });
  afterEach(() => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('opens a local folder from an absolute path or a file:// URL', async () => {
    const a = createStore(join(work, 'a'));
    expect(a).toBeInstanceOf(LocalStore);
    expect(a.location).toBe(`file://${join(work, 'a')}`);
    const b = createStore(`file://${join(work, 'b')}`);
    expect((b as LocalStore).root).toBe(join(work, 'b'));
    const ref = await b.putBytes('factory');
    expect((await createStore(join(work, 'b')).getBytes(ref.digest)).toString()).toBe('factory');
  });

  it('opens an S3 store from s3://bucket/prefix, endpoint from options or TRAINYARD_S3_ENDPOINT', async () => {
    const cfg = s3ClientConfig();
    const admin = new S3Client(cfg);
    const bucket = await createTestBucket(admin, 'factory');
    onTestFinished(async () => {
      await deleteTestBucket(admin, bucket);
      admin.destroy();
    });

    const viaOpts = createStore(`s3://${bucket}/runs/x`, { s3: cfg });
    expect(viaOpts).toBeInstanceOf(S3Store);
    expect(viaOpts.location).toBe(`s3://${bucket}/runs/x`);
    const ref = await viaOpts.putBytes('via options');

    // The app's settings: the endpoint from TRAINYARD_S3_ENDPOINT, region and keys from the SDK's own chain.
    process.env.AWS_REGION = 'eu-west-1';
    process.env.AWS_ACCESS_KEY_ID = cfg.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = cfg.credentials.secretAccessKey;
    const settings = loadEngineConfig({
      TRAINYARD_S3_ENDPOINT: cfg.endpoint,
      TRAINYARD_STORE: `s3://${bucket}/runs/x`,
    });
    const viaEnv = openStore(settings) as S3Store;
    expect(viaEnv.client.config.forcePathStyle).toBe(true);
    expect(await viaEnv.client.config.region()).toBe('eu-west-1');
    expect((await viaEnv.getBytes(ref.digest)).toString()).toBe('via options');
  });

  it('refuses locations it cannot use', () => {
    expect(() => createStore('relative/store')).toThrow(/unsupported store location/);
    expect(() => createStore('https://example.com/store')).toThrow(/unsupported store location/);
    expect(() => createStore('s3://Not_A_Bucket/x')).toThrow(/invalid S3 bucket name/);
    expect(() => createStore('file://remotehost/x')).toThrow(/invalid store location/);
  });

  it('defaults to $TRAINYARD_STORE, then $XDG_DATA_HOME/trainyard/store, then ~/.local/share/trainyard/store', () => {
    expect(storeSetting({ TRAINYARD_STORE: 's3://team-bucket/trainyard' })).toBe('s3://team-bucket/trainyard');
    expect(storeSetting({ XDG_DATA_HOME: '/data/xdg' })).toBe('/data/xdg/trainyard/store');
    process.env.HOME = '/home/someone'; // os.homedir() reads it
    expect(storeSetting({ XDG_DATA_HOME: 'relative/ignored' })).toBe('/home/someone/.local/share/trainyard/store');
  });
});

describe('digests', () => {
  it('accepts only sha256:<64 lowercase hex>', () => {
    const d = sha256Bytes('abc');
    expect(() => assertDigest(d)).not.toThrow();
    // FIPS 180-2 test vector for "abc"
    expect(d).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (const bad of [
      d.toUpperCase(),
      d.slice(0, -1),
      `${d}0`,
      d.replace('sha256:', 'sha512:'),
      `${d.slice(0, 20)}/../x`,
      42,
      null,
    ]) {
      expect(() => assertDigest(bad)).toThrow(/invalid digest/);
    }
  });
});
