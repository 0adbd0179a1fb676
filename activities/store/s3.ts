// The S3 backend. Blobs at <prefix>/blobs/sha256/<2 hex>/<64 hex>, records at
// <prefix>/records/<key>.json. A file is hashed first (streaming), then uploaded straight
// to its digest key only if that key is absent. S3 makes an object visible only when its
// PutObject / CompleteMultipartUpload succeeds, so a failed upload never leaves a partial
// object under a digest; lib-storage's Upload aborts the multipart upload on failure
// (a crashed process leaves parts behind: give the bucket an AbortIncompleteMultipartUpload
// lifecycle rule).
import {
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline, Readable } from 'node:stream';
import type { Digest } from '../../model/types.js';
import { artifactBytesStored, artifactsStored } from '../metrics.js';
import { BlobStoreBase } from './base.js';
import { digestBase64, digestHex, HashingTap, readNoFollow, sha256File } from './digest.js';
import { assertRecordKey, assertRecordPrefix, parseRecord } from './keys.js';

export interface S3StoreConfig {
  bucket: string;
  /** Key prefix inside the bucket ('' = bucket root). */
  prefix?: string;
  /** Client settings (endpoint, region, forcePathStyle, credentials); omitted credentials = default AWS chain. */
  clientConfig?: S3ClientConfig;
  /** An already-built client (shares connections; lets callers add middleware). Wins over clientConfig. */
  client?: S3Client;
}

/**
 * Tag that says when a stored blob was last relied on by a write that found it stored
 * (milliseconds since the epoch); `trainyard gc` counts a blob's age from the later of it and
 * LastModified. A tag, not a copy onto itself: CopyObject cannot copy objects over 5 GiB.
 */
export const USED_TAG = 'trainyard-used';
/** A blob written this recently is not tagged (gc's grace period, at least this long, covers it). */
export const FRESHEN_AFTER_MS = 60 * 60 * 1000;

/** Multipart part size floor; with QUEUE_SIZE parts in flight this bounds upload memory. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
const MAX_PARTS = 10_000;

interface AwsError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

function isNotFound(err: unknown): boolean {
  const e = err as AwsError;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

function normalisePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  if (trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid S3 store prefix ${JSON.stringify(prefix)}: no empty, "." or ".." segments`);
  }
  return trimmed;
}

export class S3Store extends BlobStoreBase {
  readonly bucket: string;
  readonly prefix: string;
  readonly location: string;
  readonly client: S3Client;

  constructor(config: S3StoreConfig) {
    super();
    if (!config.bucket) throw new Error('S3 store: bucket is required');
    this.bucket = config.bucket;
    this.prefix = normalisePrefix(config.prefix);
    this.location = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
    this.client = config.client ?? new S3Client(config.clientConfig ?? {});
  }

  private key(rel: string): string {
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }

  blobKey(digest: Digest): string {
    const hex = digestHex(digest);
    return this.key(`blobs/sha256/${hex.slice(0, 2)}/${hex}`);
  }

  private recordKey(key: string): string {
    assertRecordKey(key);
    return this.key(`records/${key}.json`);
  }

  uriOf(digest: Digest): string {
    return `s3://${this.bucket}/${this.blobKey(digest)}`;
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  protected override async freshen(digest: Digest): Promise<boolean> {
    let modified: number;
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      modified = head.LastModified?.getTime() ?? 0;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    if (Date.now() - modified < FRESHEN_AFTER_MS) return true;
    try {
      await this.client.send(
        new PutObjectTaggingCommand({
          Bucket: this.bucket,
          Key: this.blobKey(digest),
          Tagging: { TagSet: [{ Key: USED_TAG, Value: String(Date.now()) }] },
        }),
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async openRead(digest: Digest): Promise<Readable> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      if (!(res.Body instanceof Readable)) throw new Error(`S3 returned no readable body for ${this.uriOf(digest)}`);
      return res.Body;
    } catch (err) {
      if (isNotFound(err)) throw new Error(`artifact ${digest} is not in store ${this.location}`);
      throw err;
    }
  }

  protected async storeFile(path: string): Promise<{ digest: Digest; size: number }> {
    const hashed = await sha256File(path);
    if (!(await this.freshen(hashed.digest))) await this.uploadFile(path, hashed);
    return hashed;
  }

  /**
   * Upload a file to the key of `hashed`, streaming (at most QUEUE_SIZE parts in memory).
   * Fails, leaving no object and no open multipart upload, when the bytes read are not
   * the ones hashed (the file changed in between).
   */
  async uploadFile(path: string, hashed: { digest: Digest; size: number }): Promise<void> {
    const partSize = Math.max(PART_SIZE, Math.ceil(hashed.size / (MAX_PARTS - 1)));
    // The file is read a second time for the upload; the tap fails the body stream at its
    // end if those bytes differ from the ones hashed, which is before Upload can send the
    // single PUT or CompleteMultipartUpload (it only does so once the stream has ended).
    const tap = new HashingTap({ ...hashed, what: `${path} (changed while being uploaded)` });
    const body = pipeline(await readNoFollow(path), tap, () => undefined);
    const single = hashed.size <= partSize; // Upload sends one PutObject exactly then
    const upload = new Upload({
      client: this.client,
      partSize,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: this.blobKey(hashed.digest),
        Body: body,
        ContentLength: hashed.size,
        // ChecksumSHA256 makes real S3 verify the body against our digest. moto (5.2) accepts
        // the header but does not verify it, so tests cannot show the check; the tap above
        // is what they exercise. Multipart objects get per-part SHA-256 checksums instead
        // (S3 has no whole-object SHA-256 for multipart uploads).
        ...(single ? { ChecksumSHA256: digestBase64(hashed.digest) } : { ChecksumAlgorithm: 'SHA256' as const }),
      },
    });
    try {
      await upload.done();
      artifactsStored.inc();
      artifactBytesStored.inc(hashed.size);
    } finally {
      body.destroy(); // closes the file when Upload failed before reading it all
    }
  }

  protected async storeBytes(data: Buffer, digest: Digest): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.blobKey(digest),
        Body: data,
        ChecksumSHA256: digestBase64(digest),
      }),
    );
    artifactsStored.inc();
    artifactBytesStored.inc(data.length);
  }

  async putRecord(key: string, value: unknown): Promise<void> {
    const objectKey = this.recordKey(key);
    const body = JSON.stringify(value);
    if (body === undefined) throw new Error(`record ${key}: value is not JSON-serialisable`);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: body, ContentType: 'application/json' }),
    );
  }

  async getRecord<T>(key: string): Promise<T | undefined> {
    const objectKey = this.recordKey(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      if (!res.Body) return undefined;
      return parseRecord<T>(await res.Body.transformToString('utf8'), key, `s3://${this.bucket}/${objectKey}`);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async listRecords(prefix: string): Promise<string[]> {
    assertRecordPrefix(prefix);
    const root = this.key('records/');
    const keys: string[] = [];
    const pages = paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: root + prefix });
    for await (const page of pages) {
      for (const obj of page.Contents ?? []) {
        if (!obj.Key?.endsWith('.json')) continue;
        keys.push(obj.Key.slice(root.length, -'.json'.length));
      }
    }
    return keys.sort();
  }
}
