// Links to a run's page on this server (check `details_url`, commit status `target_url`).
// Reports of private repositories must not be readable by guessing ids, so each link
// carries an HMAC of the workflow id under a server secret.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export class RunLinks {
  constructor(
    private readonly publicUrl: string | null,
    private readonly secret: string,
  ) {}

  sign(workflowId: string): string {
    return createHmac('sha256', this.secret).update(`run:${workflowId}`).digest('base64url').slice(0, 32);
  }

  verify(workflowId: string, sig: string): boolean {
    const want = Buffer.from(this.sign(workflowId));
    const got = Buffer.from(sig);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  runUrl(workflowId: string): string | undefined {
    if (!this.publicUrl) return undefined;
    return `${this.publicUrl}/runs/${encodeURIComponent(workflowId)}?sig=${this.sign(workflowId)}`;
  }
}

/** The key of run-page links: TRAINYARD_LINK_SECRET, else derived from the webhook secrets (same on every replica). */
export function linkSecretFrom(env: Record<string, string | undefined>): string {
  const explicit = env.TRAINYARD_LINK_SECRET?.trim();
  if (explicit) return explicit;
  return createHash('sha256')
    .update(
      `trainyard-run-links\n${env.GITHUB_WEBHOOK_SECRET?.trim() ?? ''}\n${env.GITLAB_WEBHOOK_SECRET?.trim() ?? ''}`,
    )
    .digest('hex');
}
