// Kubernetes API clients from a kubeconfig (KUBECONFIG, ~/.kube/config) or, inside a cluster,
// the pod's service account — @kubernetes/client-node's own loading rules.
import { BatchV1Api, CoreV1Api, KubeConfig, Log } from '@kubernetes/client-node';

export interface KubeClients {
  kc: KubeConfig;
  batch: BatchV1Api;
  core: CoreV1Api;
  log: Log;
}

/** Clients for `context` (default: the current context, or in-cluster). */
export function createKubeClients(opts: { context?: string; kubeconfig?: KubeConfig } = {}): KubeClients {
  const kc = opts.kubeconfig ?? new KubeConfig();
  if (!opts.kubeconfig) kc.loadFromDefault();
  if (opts.context) kc.setCurrentContext(opts.context);
  return { kc, batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api), log: new Log(kc) };
}

/** HTTP status of a failed API call (404, 409 …), or undefined for other errors. */
export function apiStatus(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own sentence for a failed call. */
export function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      // not JSON
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string')
    return (body as { message: string }).message;
  return e instanceof Error ? e.message : String(e);
}
