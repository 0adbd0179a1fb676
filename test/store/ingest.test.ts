// Inputs from s3:// URIs enter the store once per object version (bucket, key, ETag).
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ingestRecordKey, ingestUri } from '../../activities/store/ingest.js';
import { LocalStore } from '../../activities/store/local.js';
import { s3ClientConfig } from '../setup/services.js';
import { countingS3Client, createTestBucket, deleteTestBucket, scratchDir } from './backends.js';

describe('ingestUri', () => {
  let client: S3Client;
  let bucket: string;
  let work: string;
  const savedTmp = process.env.TMPDIR;

  beforeAll(async () => {
    ({ client } = await countingS3Client());
    bucket = await createTestBucket(client, 'ingest');
    work = await scratchDir('ingest');
  });
  afterEach(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  });
  afterAll(async () => {
    if (bucket) await deleteTestBucket(client, bucket);
    client?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('downloads, stores and remembers an object; the same version is not downloaded again', async () => {
    const store = new LocalStore(join(work, 'store-a'));
    const body = 'pixel,label\n0,7\n1,2\n';
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'mnist/raw.csv', Body: body }));
    const tmp = join(work, 'tmp-a');
    await mkdir(tmp);
    process.env.TMPDIR = tmp;

    const uri = `s3://${bucket}/mnist/raw.csv`;
    const ref = await ingestUri(store, uri, s3ClientConfig());
    expect(ref.digest).toBe(`sha256:${createHash('sha256').update(body).digest('hex')}`);
    expect(ref.kind).toBe('file');
    expect(ref.size).toBe(Buffer.byteLength(body));
    expect((await store.getBytes(ref.digest)).toString()).toBe(body);
    expect(await readdir(tmp)).toEqual([]); // download folder removed
    expect(await store.listRecords('ingest/s3/')).toHaveLength(1);

    // Known version: answered from the record, without a download (which would need a temp dir).
    process.env.TMPDIR = join(work, 'no-such-dir');
    expect(await ingestUri(store, uri, s3ClientConfig())).toEqual(ref);

    // A new version of the object (new ETag) is a new record and a new digest.
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'mnist/raw.csv', Body: `${body}2,9\n` }));
    process.env.TMPDIR = tmp;
    const ref2 = await ingestUri(store, uri, s3ClientConfig());
    expect(ref2.digest).not.toBe(ref.digest);
    expect(await store.listRecords('ingest/s3/')).toHaveLength(2);
  });

  it('downloads again when the record points at a blob the store no longer has', async () => {
    const store = new LocalStore(join(work, 'store-b'));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'gone.bin', Body: 'will be deleted' }));
    const uri = `s3://${bucket}/gone.bin`;
    const ref = await ingestUri(store, uri, s3ClientConfig());
    await rm(store.blobPath(ref.digest), { force: true });
    expect(await store.has(ref.digest)).toBe(false);
    expect(await ingestUri(store, uri, s3ClientConfig())).toEqual(ref);
    expect(await store.has(ref.digest)).toBe(true);
  });

  it('removes its temp files when storing fails', async () => {
    await writeFile(join(work, 'not-a-dir'), 'x');
    const broken = new LocalStore(join(work, 'not-a-dir', 'store')); // its folder cannot be created
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'fails.bin', Body: 'abc' }));
    const tmp = join(work, 'tmp-c');
    await mkdir(tmp);
    process.env.TMPDIR = tmp;
    await expect(ingestUri(broken, `s3://${bucket}/fails.bin`, s3ClientConfig())).rejects.toThrow(/ENOTDIR/);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('says clearly what it cannot ingest', async () => {
    const store = new LocalStore(join(work, 'store-d'));
    for (const uri of ['https://example.com/data.csv', '/etc/passwd', 'file:///etc/passwd', 'gs://b/k']) {
      await expect(ingestUri(store, uri, s3ClientConfig())).rejects.toThrow('only s3:// inputs are supported');
    }
    await expect(ingestUri(store, `s3://${bucket}/missing/object`, s3ClientConfig())).rejects.toThrow(/does not exist/);
    await expect(ingestUri(store, `s3://${bucket}/folder/`, s3ClientConfig())).rejects.toThrow(/names a folder/);
    await expect(ingestUri(store, 's3://../etc', s3ClientConfig())).rejects.toThrow(/invalid S3 bucket name/);
  });

  it('keys records by bucket, key and ETag', () => {
    const a = ingestRecordKey('b', 'k', '"e1"');
    expect(a).toMatch(/^ingest\/s3\/[0-9a-f]{64}$/);
    expect(ingestRecordKey('b', 'k', '"e2"')).not.toBe(a);
    expect(ingestRecordKey('b', 'k2', '"e1"')).not.toBe(a);
  });
});
