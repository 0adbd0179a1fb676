// What only the S3 backend promises: an upload whose bytes are not the hashed ones leaves
// neither an object under the digest nor an open multipart upload.
import { HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Bytes, sha256File } from '../../activities/store/digest.js';
import { S3Store } from '../../activities/store/s3.js';
import { countingS3Client, createTestBucket, deleteTestBucket, scratchDir } from './backends.js';

describe('S3 store', () => {
  let client: S3Client;
  let bucket: string;
  let work: string;
  beforeAll(async () => {
    ({ client } = await countingS3Client());
    bucket = await createTestBucket(client, 's3only');
    work = await scratchDir('s3only');
  });
  afterAll(async () => {
    if (bucket) await deleteTestBucket(client, bucket);
    client?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function objectExists(key: string): Promise<boolean> {
    return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
      () => true,
      () => false,
    );
  }

  it.each([
    ['single PUT', 1024 * 1024],
    ['multipart', 20 * 1024 * 1024],
  ])('a file whose bytes are not the hashed ones is not stored (%s)', async (_label, size) => {
    const store = new S3Store({ bucket, prefix: 'guard', client });
    const src = join(work, `changed-${size}.bin`);
    execFileSync('dd', ['if=/dev/urandom', `of=${src}`, `bs=${size}`, 'count=1', 'status=none']);
    // What the hash pass would have seen had the file been different when it was hashed.
    const claimed = { digest: sha256Bytes(`not the file ${size}`), size };
    await expect(store.uploadFile(src, claimed)).rejects.toThrow(
      /changed while being uploaded.*does not match its digest/,
    );
    expect(await objectExists(store.blobKey(claimed.digest))).toBe(false);
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'guard/' }));
    expect(open.Uploads ?? []).toEqual([]);

    // The real digest still goes in afterwards.
    const real = await sha256File(src);
    const ref = await store.putPath(src);
    expect(ref.digest).toBe(real.digest);
    expect(await objectExists(store.blobKey(real.digest))).toBe(true);
  });

  it('names its location and blob URIs from bucket and prefix', async () => {
    const store = new S3Store({ bucket, prefix: '/team/a/', client });
    expect(store.location).toBe(`s3://${bucket}/team/a`);
    const ref = await store.putBytes('where am I');
    const hex = ref.digest.slice(7);
    expect(ref.uri).toBe(`s3://${bucket}/team/a/blobs/sha256/${hex.slice(0, 2)}/${hex}`);
    expect(await objectExists(`team/a/blobs/sha256/${hex.slice(0, 2)}/${hex}`)).toBe(true);
    expect(() => new S3Store({ bucket, prefix: 'a/../b', client })).toThrow(/invalid S3 store prefix/);
  });

  it('lists more records than one ListObjectsV2 page holds', async () => {
    const store = new S3Store({ bucket, prefix: 'paging', client });
    const n = 1005;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) =>
          store.putRecord(`many/r-${String(i + j).padStart(4, '0')}`, { i: i + j }),
        ),
      );
    }
    const keys = await store.listRecords('many/');
    expect(keys).toHaveLength(n);
    expect(keys[0]).toBe('many/r-0000');
    expect(keys[n - 1]).toBe('many/r-1004');
  });
});
