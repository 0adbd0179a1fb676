// The two store backends as test fixtures, so one behavioural suite runs against both.
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore } from '../../activities/store/local.js';
import { S3Store } from '../../activities/store/s3.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { s3ClientConfig } from '../setup/services.js';

export interface Backend {
  store: ArtifactStore;
  /** Changes whenever the stored object for this digest is written again. */
  fingerprint(digest: string): Promise<string>;
  /** Upload requests sent so far (S3 only: PutObject, UploadPart, CreateMultipartUpload). */
  uploadCalls(): number | undefined;
  /** Overwrites the stored record `key` with `text`, behind the store's back (a damaged record); returns where it is. */
  damageRecord(key: string, text: string): Promise<string>;
  cleanup(): Promise<void>;
}

export interface BackendKind {
  name: string;
  make(): Promise<Backend>;
}

export function scratchRoot(): string {
  return process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir();
}

export async function scratchDir(label: string): Promise<string> {
  return mkdtemp(join(scratchRoot(), `store-${label}-`));
}

export const localBackend: BackendKind = {
  name: 'local',
  async make() {
    const root = await scratchDir('local');
    const store = new LocalStore(join(root, 'store'));
    return {
      store,
      async fingerprint(digest) {
        // Not the mtime: a write that finds the blob stored re-dates it for gc (BlobStoreBase.freshen).
        const st = await stat(store.blobPath(digest));
        return `${st.ino}:${st.birthtimeMs}`;
      },
      uploadCalls: () => undefined,
      async damageRecord(key, text) {
        const path = `${join(root, 'store', 'records', ...key.split('/'))}.json`;
        await writeFile(path, text);
        return path;
      },
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
};

const UPLOAD_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand', 'CreateMultipartUploadCommand']);

/** A real S3Client against moto, with a middleware that counts upload requests. */
export async function countingS3Client(): Promise<{ client: S3Client; uploads: () => number }> {
  const client = new S3Client(s3ClientConfig());
  let uploads = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (UPLOAD_COMMANDS.has(context.commandName ?? '')) uploads += 1;
      return next(args);
    },
    { step: 'initialize', name: 'countUploads' },
  );
  return { client, uploads: () => uploads };
}

export async function createTestBucket(client: S3Client, label: string): Promise<string> {
  const bucket = `trainyard-${label}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Removes a test bucket with everything in it (objects and open multipart uploads). */
export async function deleteTestBucket(client: S3Client, bucket: string): Promise<void> {
  for (let token: string | undefined, first = true; first || token; first = false) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    token = page.NextContinuationToken;
  }
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? [])
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export const s3Backend: BackendKind = {
  name: 's3',
  async make() {
    const { client, uploads } = await countingS3Client();
    const bucket = await createTestBucket(client, 'store');
    const store = new S3Store({ bucket, prefix: `p-${randomUUID().slice(0, 6)}/store`, client });
    return {
      store,
      async fingerprint(digest) {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: store.blobKey(digest) }));
        return `${head.ETag}:${head.LastModified?.toISOString()}`;
      },
      uploadCalls: uploads,
      async damageRecord(key, text) {
        const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
        const objectKey = listed.Contents?.map((o) => o.Key!).find((k) => k.endsWith(`/records/${key}.json`));
        if (!objectKey) throw new Error(`no stored record ${key}`);
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body: text }));
        return `s3://${bucket}/${objectKey}`;
      },
      async cleanup() {
        await deleteTestBucket(client, bucket);
        client.destroy();
      },
    };
  },
};
