// Small HTTP helpers for the server's own routes, and the one way a webhook body is read:
// size checked before reading (Content-Length) and while reading (chunked bodies), bytes of
// requests not yet authenticated counted against a server-wide budget, reading paused and
// the connection closed on refusal so a refused sender costs neither memory nor bandwidth.
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * GitHub caps webhook payloads at 25 MB ("Payloads are capped at 25 MB", docs.github.com,
 * Webhook events and payloads); nothing legitimate is larger. GitLab's are smaller.
 */
export const MAX_BODY_BYTES = 25 * 1024 * 1024;

/** Seconds a sender refused for a full budget is asked to wait (Retry-After). */
export const RETRY_AFTER_SECONDS = 10;

/**
 * Bytes held at once by request bodies that are not yet authenticated, across all requests
 * of the process. A request reserves before it holds; when the budget is spent it is refused
 * (503) instead of growing the process.
 */
export class ByteBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  /** Reserves n bytes; false (nothing reserved) when that would pass the limit. */
  tryReserve(n: number): boolean {
    if (n < 0 || this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  release(n: number): void {
    this.held = Math.max(0, this.held - n);
  }

  get inUse(): number {
    return this.held;
  }
}

/** A request header's (first) value. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The request's Content-Length, or undefined for a chunked body. Node's parser has refused malformed ones (400). */
export function declaredLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export type BodyResult =
  | { kind: 'ok'; body: Buffer }
  /** Past the limit: declared (nothing was read) or while reading a chunked body. */
  | { kind: 'too-large' }
  /** The budget of unauthenticated bytes is spent. */
  | { kind: 'busy' }
  /** The sender went away or the stream failed. */
  | { kind: 'aborted' };

export interface ReadOptions {
  /** The response, to send `100 Continue` to a sender that waits for it (Expect: 100-continue) once the body is wanted. */
  res?: ServerResponse;
  /** Most bytes of this body (MAX_BODY_BYTES by default). */
  limit?: number;
  /** Counts the body while it is read; released before this returns, whatever the outcome. */
  budget?: ByteBudget;
  /** Sees every chunk as it arrives (a streaming HMAC). */
  onChunk?: (chunk: Buffer) => void;
}

/**
 * Reads a whole body within the limit and the budget. A declared Content-Length over the
 * limit is refused before a byte is read; a body declared within it reserves that much up
 * front; a chunked body reserves as it grows. On refusal reading stops (the request stays
 * paused): answer with `refuse`, which closes the connection.
 */
export function readBodyWithin(req: IncomingMessage, opts: ReadOptions = {}): Promise<BodyResult> {
  const limit = opts.limit ?? MAX_BODY_BYTES;
  const declared = declaredLength(req);
  if (declared !== undefined && declared > limit) return Promise.resolve({ kind: 'too-large' });
  let reserved = 0;
  if (declared !== undefined && opts.budget) {
    if (!opts.budget.tryReserve(declared)) return Promise.resolve({ kind: 'busy' });
    reserved = declared;
  }
  // A sender that asked first gets its go-ahead only now: a refused one never sends the body.
  if (opts.res && /100-continue/i.test(req.headers.expect ?? '')) opts.res.writeContinue();
  return new Promise<BodyResult>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (r: BodyResult): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (r.kind !== 'ok') {
        req.pause();
        chunks.length = 0;
      }
      opts.budget?.release(reserved);
      reserved = 0;
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return finish({ kind: 'too-large' });
      if (opts.budget && size > reserved) {
        if (!opts.budget.tryReserve(size - reserved)) return finish({ kind: 'busy' });
        reserved = size;
      }
      opts.onChunk?.(chunk);
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ kind: 'ok', body: Buffer.concat(chunks, size) });
    const onError = (): void => finish({ kind: 'aborted' });
    const onClose = (): void =>
      finish(req.complete ? { kind: 'ok', body: Buffer.concat(chunks, size) } : { kind: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Reads a whole body within MAX_BODY_BYTES (no budget); throws when it is larger or the sender went away. */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const r = await readBodyWithin(req, { limit });
  if (r.kind === 'ok') return r.body;
  throw new Error(r.kind === 'too-large' ? `request body larger than ${limit} bytes` : 'request body not read');
}

/**
 * Answers a request whose body is not (or no longer) wanted, and closes the connection once
 * the answer is out, so the rest of the body is never read.
 */
export function refuse(res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify({ error });
  res.shouldKeepAlive = false;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    connection: 'close',
    ...headers,
  });
  res.end(text, () => lingeringClose(res));
}

/** How long, and for how many more body bytes, a refused request's connection stays open. */
const LINGER = { ms: 1000, bytes: 4 * 1024 * 1024 } as const;

/**
 * Closes a refused request's connection without losing the answer: destroying a socket with
 * unread incoming bytes makes the kernel send a RST, and a client still writing its body then
 * loses the answer it had not read yet (nginx's lingering_close solves the same). The rest of
 * the body is read and dropped for at most LINGER.ms and LINGER.bytes, then the socket goes.
 */
function lingeringClose(res: ServerResponse): void {
  const socket = res.req.socket;
  if (!socket || socket.destroyed) return;
  let dropped = 0;
  const done = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(done, LINGER.ms);
  timer.unref();
  res.req.on('data', (d: Buffer) => {
    dropped += d.length;
    if (dropped > LINGER.bytes) done();
  });
  res.req.on('end', done);
  res.req.on('error', done);
  res.req.resume();
  socket.end();
}

/** The answer to a BodyResult that is not ok. */
export function refuseBody(res: ServerResponse, r: Exclude<BodyResult, { kind: 'ok' }>, limit = MAX_BODY_BYTES): void {
  switch (r.kind) {
    case 'too-large':
      return refuse(res, 413, `payload larger than ${limit} bytes`);
    case 'busy':
      return refuse(res, 503, 'too many webhook bodies are being read; retry later', {
        'retry-after': String(RETRY_AFTER_SECONDS),
      });
    case 'aborted':
      res.destroy();
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}
