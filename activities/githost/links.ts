// Links to a run's page on this server (check `details_url`, commit status `target_url`).
// Reports of private repositories must not be readable by guessing ids, so each link
// carries an HMAC of the workflow id under a server secret.
import { createHmac, timingSafeEqual } from 'node:crypto';

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
