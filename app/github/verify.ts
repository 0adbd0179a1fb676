// X-Hub-Signature-256 (HMAC-SHA256 of the body with the webhook secret, GitHub's
// "Validating webhook deliveries") checked before the payload reaches Probot, so that a
// missing or wrong signature is answered 401 (Probot's middleware would say 400) and never
// parsed. The HMAC is computed while the body streams in: a header that cannot be a
// signature is refused before a byte is read, and the bytes of a body not yet verified
// count against the server's ByteBudget.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBodyWithin, type BodyResult, type ByteBudget } from '../intake/http.js';

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;

/** True when the header has the only form GitHub sends: `sha256=` and 64 lowercase hex digits. */
export const signatureWellFormed = (header: string | undefined): header is string =>
  header !== undefined && SIGNATURE.test(header);

export function signatureValid(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!signatureWellFormed(header)) return false;
  return digestMatches(createHmac('sha256', secret).update(body).digest(), header);
}

function digestMatches(mac: Buffer, header: string): boolean {
  const want = Buffer.from(`sha256=${mac.toString('hex')}`);
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

export type SignedBody = BodyResult | { kind: 'bad-signature' };

/**
 * Reads the body of a delivery whose header is well-formed (check signatureWellFormed
 * first), HMAC-ing it as it arrives; `ok` only when the signature matches.
 */
export async function readSignedBody(
  req: IncomingMessage,
  secret: string,
  header: string,
  opts: { budget: ByteBudget; limit?: number; res?: ServerResponse },
): Promise<SignedBody> {
  const hmac = createHmac('sha256', secret);
  const r = await readBodyWithin(req, { ...opts, onChunk: (c) => hmac.update(c) });
  if (r.kind !== 'ok') return r;
  return digestMatches(hmac.digest(), header) ? r : { kind: 'bad-signature' };
}
