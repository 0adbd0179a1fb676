// SHA-256 digests in the store's one spelling: `sha256:<64 lowercase hex>`.
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../../model/types.js';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/** Every digest that comes from outside is checked here, so it can never smuggle a path. */
export function assertDigest(value: unknown): asserts value is Digest {
  if (!isDigest(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value;
    throw new Error(`invalid digest ${shown}: expected "sha256:" followed by 64 lowercase hex characters`);
  }
}

/** The 64 hex characters of a (validated) digest. */
export function digestHex(digest: Digest): string {
  assertDigest(digest);
  return digest.slice('sha256:'.length);
}

/** Base64 of the raw digest bytes, the form S3's ChecksumSHA256 wants. */
export function digestBase64(digest: Digest): string {
  return Buffer.from(digestHex(digest), 'hex').toString('base64');
}

export function sha256Bytes(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Read a file that is about to be stored without following a symlink: one swapped in
 * after the directory walk checked the entry must not be stored in its place.
 */
export async function readNoFollow(path: string): Promise<Readable> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  return fh.createReadStream();
}

/** Hash of a file, read as a stream (constant memory whatever its size). */
export async function sha256File(path: string): Promise<{ digest: Digest; size: number }> {
  const tap = new HashingTap();
  await pipeline(await readNoFollow(path), tap, async function* (source) {
    for await (const _chunk of source) {
      // drain: the tap already saw the bytes
    }
  });
  return tap.result();
}

/**
 * Pass-through that hashes what flows through it. With `expect`, it fails the stream at
 * its end when the bytes were not the expected ones — before a consumer that waits for
 * the end (an upload, a rename) can commit them under the wrong digest.
 */
export class HashingTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private final: { digest: Digest; size: number } | undefined;

  constructor(private readonly expect?: { digest: Digest; size?: number; what: string }) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.final = { digest: `sha256:${this.hash.digest('hex')}`, size: this.bytes };
    const want = this.expect;
    if (want && (want.digest !== this.final.digest || (want.size !== undefined && want.size !== this.final.size))) {
      cb(
        new Error(
          `${want.what}: content does not match its digest ` +
            `(expected ${want.digest}${want.size === undefined ? '' : `, ${want.size} bytes`}; read ${this.final.digest}, ${this.final.size} bytes)`,
        ),
      );
      return;
    }
    cb();
  }

  /** Digest and size of everything that passed; only valid once the stream has ended. */
  result(): { digest: Digest; size: number } {
    if (!this.final) throw new Error('HashingTap.result() called before the stream ended');
    return this.final;
  }
}
