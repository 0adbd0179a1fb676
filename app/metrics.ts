// GET /metrics: the process's Prometheus series (activities/metrics.ts) in the text
// exposition format, on `serve`'s port and on the health port of workers and agents.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { registry, webhookDeliveries, webhookLatency } from '../activities/metrics.js';

export const METRICS_PATH = '/metrics';

/** Answers GET /metrics with every series of this process. */
export async function serveMetrics(res: ServerResponse): Promise<void> {
  const text = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// Event names are sender-controlled and read before the signature is checked: only names
// Trainyard knows become label values, so a stranger cannot mint series.
const GITHUB_EVENTS = new Set([
  'push',
  'issue_comment',
  'pull_request',
  'check_run',
  'check_suite',
  'installation',
  'installation_repositories',
  'ping',
]);
const GITLAB_EVENTS = new Set(['Push Hook', 'Tag Push Hook', 'Note Hook', 'Merge Request Hook', 'System Hook']);

/**
 * Counts the delivery and times it once its answer is sent: source `github` or `gitlab`,
 * event from X-GitHub-Event / X-Gitlab-Event (`other` when not one Trainyard knows), outcome
 * the HTTP status code (`aborted` when the connection closed first).
 */
export function observeDelivery(source: 'github' | 'gitlab', req: IncomingMessage, res: ServerResponse): void {
  const started = process.hrtime.bigint();
  const raw = source === 'github' ? req.headers['x-github-event'] : req.headers['x-gitlab-event'];
  const name = Array.isArray(raw) ? raw[0] : raw;
  const event = name && (source === 'github' ? GITHUB_EVENTS : GITLAB_EVENTS).has(name) ? name : 'other';
  let done = false;
  const record = (outcome: string): void => {
    if (done) return;
    done = true;
    webhookDeliveries.inc({ source, event, outcome });
    webhookLatency.observe({ source, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
  };
  res.once('finish', () => record(String(res.statusCode)));
  res.once('close', () => record(res.writableFinished ? String(res.statusCode) : 'aborted'));
}
