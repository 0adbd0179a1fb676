// X-Hub-Signature-256 check before the payload reaches Probot, so that a missing or
// wrong signature is answered 401 (Probot's middleware would say 400) and never parsed.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signatureValid(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header || !header.startsWith('sha256=')) return false;
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}
