// GET /runs/<id>/artifacts/<digest>?sig=… : one output of the run, streamed from the store.
// Only digests the run's own steps produced are served (the signed run link is the
// capability), the bytes are hashed as they go out and a blob whose SHA-256 is not its
// digest ends the response with an error instead of a clean end, and the file name offered
// to the browser is the output's name reduced to a safe set of characters.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactStore } from '../../activities/store/types.js';

/**
 * A Content-Disposition filename that cannot name a path, close the quoted string or carry
 * control characters (RFC 6266 §4.3: recipients must not trust path information): letters,
 * digits, `.`, `_`, `-`; no leading dot; at most 100 characters; `fallback` when nothing is left.
 */
export function safeFilename(name: string, fallback: string): string {
  const s = name
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 100);
  return s === '' ? fallback : s;
}

/**
 * Passes bytes through and fails the stream when they are not `size` bytes with this SHA-256.
 * The last chunk is held back until the hash is known: with Content-Length set, a client
 * that got every byte would take a damaged file for a whole one.
 */
class Verify extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;
  private held: Buffer | null = null;
  constructor(
    private readonly digest: string,
    private readonly size: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.size)
      return done(new Error(`blob ${this.digest} is longer than its recorded ${this.size} bytes`));
    this.hash.update(chunk);
    const out = this.held;
    this.held = chunk;
    done(null, out ?? undefined);
  }
  override _flush(done: TransformCallback): void {
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.digest || this.seen !== this.size)
      return done(new Error(`blob ${this.digest} does not match its digest (got ${got}, ${this.seen} bytes)`));
    if (this.held) this.push(this.held);
    done();
  }
}

/**
 * Streams the file blob `digest` (size in bytes as recorded) as an attachment named after
 * the output. Resolves when sent; a damaged blob destroys the response (the client sees a
 * transfer cut short of Content-Length) and rejects with the reason.
 */
export async function sendArtifact(
  res: ServerResponse,
  store: ArtifactStore,
  art: { digest: string; size: number; name: string },
): Promise<void> {
  const body = await store.openRead(art.digest);
  const file = safeFilename(art.name, art.digest.slice('sha256:'.length, 'sha256:'.length + 12));
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': art.size,
    'content-disposition': `attachment; filename="${file}"`,
    'x-content-type-options': 'nosniff',
    'cache-control': 'private, max-age=31536000, immutable',
  });
  await pipeline(body, new Verify(art.digest, art.size), res);
}
