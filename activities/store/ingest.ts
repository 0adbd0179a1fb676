// Bringing an external input (s3://bucket/key) into the store, once per object version.
import { GetObjectCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactRef } from '../../model/types.js';
import { isDigest } from './digest.js';
import { parseS3Uri, resolveS3Config } from './s3config.js';
import type { ArtifactStore } from './types.js';

/** What the store remembers about one ingested object version. */
export interface IngestRecord {
  uri: string;
  bucket: string;
  key: string;
  etag: string;
  size: number;
  artifact: ArtifactRef;
  ingestedAt: string;
}

/** Record key of an object version: the same bucket, key and ETag are never downloaded twice. */
export function ingestRecordKey(bucket: string, key: string, etag: string): string {
  return `ingest/s3/${createHash('sha256').update(`${bucket}/${key}/${etag}`).digest('hex')}`;
}

/**
 * Store the object at `uri` (s3://bucket/key) and return its artifact. The object's ETag
 * names its version: a known version is answered from the store's record without a download.
 */
export async function ingestUri(store: ArtifactStore, uri: string, s3Config?: S3ClientConfig): Promise<ArtifactRef> {
  if (!uri.startsWith('s3://')) {
    throw new Error(`unsupported input ${JSON.stringify(uri)}: only s3:// inputs are supported`);
  }
  const { bucket, key } = parseS3Uri(uri);
  if (key === '' || key.endsWith('/')) {
    throw new Error(`input ${uri} names a folder, not an object: give the key of one object`);
  }
  const client = new S3Client(resolveS3Config(s3Config));
  try {
    let head;
    try {
      head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
        throw new Error(`input ${uri} does not exist`);
      }
      throw err;
    }
    const etag = head.ETag;
    if (!etag) throw new Error(`input ${uri}: S3 returned no ETag`);
    const recordKey = ingestRecordKey(bucket, key, etag);
    const known = await store.getRecord<IngestRecord>(recordKey);
    if (known && isDigest(known.artifact?.digest) && (await store.has(known.artifact.digest))) {
      return { ...known.artifact, uri: store.uriOf(known.artifact.digest) };
    }

    const dir = await mkdtemp(join(tmpdir(), 'trainyard-ingest-'));
    try {
      const file = join(dir, 'object');
      // IfMatch: the bytes must be the version whose ETag keys the record.
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }));
      if (!(res.Body instanceof Readable)) throw new Error(`input ${uri}: S3 returned no readable body`);
      await pipeline(res.Body, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
      const size = (await stat(file)).size;
      if (head.ContentLength !== undefined && size !== head.ContentLength) {
        throw new Error(`input ${uri}: downloaded ${size} bytes, expected ${head.ContentLength}`);
      }
      const artifact = await store.putPath(file);
      const record: IngestRecord = { uri, bucket, key, etag, size, artifact, ingestedAt: new Date().toISOString() };
      await store.putRecord(recordKey, record);
      return artifact;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    client.destroy();
  }
}
