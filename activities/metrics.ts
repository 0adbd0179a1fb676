// Trainyard's Prometheus series (prom-client), one registry per process. Each process exposes
// what it does itself: `serve` the webhook deliveries, control workers runs, steps, cache
// decisions, EC2 and git-host calls, runner agents the artifacts they store. Series names
// follow Prometheus' naming practice (a `trainyard_` prefix, base units, `_total` counters).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The process's registry; app/metrics.ts serves it at /metrics. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'trainyard_' });

export const webhookDeliveries = new Counter({
  name: 'trainyard_webhook_deliveries_total',
  help: 'Webhook deliveries answered, by source (github, gitlab), event and outcome (the HTTP status code)',
  labelNames: ['source', 'event', 'outcome'] as const,
  registers: [registry],
});

export const webhookLatency = new Histogram({
  name: 'trainyard_webhook_delivery_seconds',
  help: 'Time from a delivery arriving to its answer being sent (GitHub gives up after 10 s)',
  labelNames: ['source', 'outcome'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

export const runsStarted = new Counter({
  name: 'trainyard_runs_started_total',
  help: 'Pipeline runs started, by trigger (cli, push, comment, rerun)',
  labelNames: ['trigger'] as const,
  registers: [registry],
});

export const runsFinished = new Counter({
  name: 'trainyard_runs_finished_total',
  help: 'Pipeline runs finished (their lineage recorded), by trigger and conclusion',
  labelNames: ['trigger', 'conclusion'] as const,
  registers: [registry],
});

export const stepDuration = new Histogram({
  name: 'trainyard_step_duration_seconds',
  help: 'Wall time of finished steps in runs, by final state (succeeded, cached, failed, cancelled, skipped)',
  labelNames: ['state'] as const,
  buckets: [0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600],
  registers: [registry],
});

export const cacheLookups = new Counter({
  name: 'trainyard_cache_lookups_total',
  help: 'Cache decisions of the steps of finished runs: hit, miss (with its reason), joined (another run was executing the key), disabled',
  labelNames: ['decision', 'reason'] as const,
  registers: [registry],
});

export const artifactsStored = new Counter({
  name: 'trainyard_artifacts_stored_total',
  help: 'Blobs written to the artifact store (a digest already stored is not written again and not counted)',
  registers: [registry],
});

export const artifactBytesStored = new Counter({
  name: 'trainyard_artifact_bytes_stored_total',
  help: 'Bytes of the blobs written to the artifact store',
  registers: [registry],
});

export const ec2Instances = new Gauge({
  name: 'trainyard_ec2_instances',
  help: 'Live EC2 instances of this deployment at the last inventory, by state (pending, running) and machine class',
  labelNames: ['state', 'class'] as const,
  registers: [registry],
});

export const ec2Launches = new Counter({
  name: 'trainyard_ec2_instances_launched_total',
  help: 'EC2 instances launched, by machine class and market (spot, on-demand)',
  labelNames: ['class', 'market'] as const,
  registers: [registry],
});

export const gitHostCalls = new Counter({
  name: 'trainyard_githost_api_calls_total',
  help: 'Git host API requests, by host (github) and HTTP status',
  labelNames: ['host', 'status'] as const,
  registers: [registry],
});

export const gitHostRateLimitRemaining = new Gauge({
  name: 'trainyard_githost_rate_limit_remaining',
  help: 'Requests left in the current rate-limit window (x-ratelimit-remaining of the latest response), by host and resource',
  labelNames: ['host', 'resource'] as const,
  registers: [registry],
});

/** `ran: code changed (src/x.py)` → `code`; the reason kind, never the free text (bounded label values). */
export function missReason(reason: string | undefined): string {
  const r = (reason ?? '').replace(/^ran: /, '');
  const m =
    /^(first execution|code|parameter|input|image|command|env|cache_version|outputs|cache disabled|--no-cache)/.exec(r);
  return m ? m[1]!.replace(' ', '_') : 'other';
}
