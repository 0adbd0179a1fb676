// GPU utilisation of a Kubernetes step's pod, read from NVIDIA's dcgm-exporter (the DaemonSet
// GPU clusters run; GPU Operator installs it) instead of nvidia-smi inside the pod. The
// exporter speaks the Prometheus text format; with its Kubernetes pod mapping on (the default
// in the GPU Operator), each GPU's series carry the `namespace`, `pod` and `container` that hold
// the GPU. Only the three series Trainyard needs are read, by a strict line parser: the labels
// come from the node and are not trusted (bounded sizes, malformed lines ignored).
// Series and labels: github.com/NVIDIA/dcgm-exporter, etc/default-counters.csv and README.
import { isIP } from 'node:net';
import { GpuSampler, type GpuSample, type GpuSummary } from '../container/gpu.js';

export const DCGM_SERIES = {
  /** GPU utilisation, percent (gauge). */
  util: 'DCGM_FI_DEV_GPU_UTIL',
  /** Framebuffer memory used, MiB (gauge). */
  fbUsed: 'DCGM_FI_DEV_FB_USED',
  /** Framebuffer memory free, MiB (gauge). */
  fbFree: 'DCGM_FI_DEV_FB_FREE',
} as const;

/** A scrape larger than this is refused (an 8-GPU node with every profiling field is ~200 KiB). */
export const MAX_SCRAPE_BYTES = 4 * 1024 * 1024;
/** Lines longer than this are skipped unread. */
const MAX_LINE_CHARS = 8192;
/** A label value longer than this makes the line malformed. */
const MAX_LABEL_VALUE_CHARS = 512;
const MAX_LABELS = 64;
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** The pod whose GPUs are wanted. */
export interface DcgmTarget {
  namespace: string;
  pod: string;
}

/** One series line: its name, labels and value (NaN for `NaN`/`±Inf`, which count as no reading). */
export interface PromLine {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses one line of the Prometheus text exposition format
 * (prometheus.io/docs/instrumenting/exposition_formats: `name{label="value",...} value [timestamp]`),
 * or undefined when it is a comment, blank, too long or malformed.
 */
export function parsePromLine(line: string): PromLine | undefined {
  if (line.length > MAX_LINE_CHARS) return undefined;
  const m = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
  if (!m) return undefined;
  const name = m[1]!;
  let i = name.length;
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  if (line[i] === '{') {
    i++;
    let count = 0;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const eq = line.indexOf('=', i);
      if (eq < 0) return undefined;
      const key = line.slice(i, eq).trim();
      if (!LABEL_NAME.test(key) || line[eq + 1] !== '"' || key in labels || ++count > MAX_LABELS) return undefined;
      let value = '';
      let j = eq + 2;
      for (; ; j++) {
        const c = line[j];
        if (c === undefined) return undefined;
        if (c === '"') break;
        if (c === '\\') {
          const n = line[++j];
          if (n === 'n') value += '\n';
          else if (n === '\\' || n === '"') value += n;
          else return undefined;
        } else value += c;
        if (value.length > MAX_LABEL_VALUE_CHARS) return undefined;
      }
      labels[key] = value;
      i = j + 1;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return undefined;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2 || !rest[0]) return undefined;
  if (rest[1] !== undefined && !/^-?\d{1,20}$/.test(rest[1])) return undefined;
  const v = rest[0];
  if (/^[+-]?(Inf|NaN)$/.test(v)) return { name, labels, value: NaN };
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) return undefined;
  return { name, labels, value: Number(v) };
}

/**
 * The readings of `target`'s GPUs in one scrape: one GpuSample per GPU (`gpu` label, the device
 * index on the node) that reports DCGM_FI_DEV_GPU_UTIL, with memory used / total (used + free)
 * in MiB when reported. Series of other pods, other namespaces or without pod mapping are ignored;
 * a GPU without a utilisation reading is left out (not measured, never 0).
 */
export function dcgmSamples(text: string, target: DcgmTarget): GpuSample[] {
  const gpus = new Map<number, { util?: number; used?: number; free?: number }>();
  const wanted = Object.values(DCGM_SERIES) as string[];
  for (const raw of text.split('\n')) {
    // Cheap test first: a node exports hundreds of series this does not read.
    if (!raw.startsWith('DCGM_FI_DEV_')) continue;
    const l = parsePromLine(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (!l || !wanted.includes(l.name)) continue;
    if (l.labels.namespace !== target.namespace || l.labels.pod !== target.pod) continue;
    const idx = l.labels.gpu;
    if (idx === undefined || !/^\d{1,3}$/.test(idx) || !Number.isFinite(l.value) || l.value < 0) continue;
    const g = gpus.get(Number(idx)) ?? {};
    if (l.name === DCGM_SERIES.util) g.util = Math.min(100, l.value);
    else if (l.name === DCGM_SERIES.fbUsed) g.used = l.value;
    else g.free = l.value;
    gpus.set(Number(idx), g);
  }
  return [...gpus.entries()]
    .filter(([, g]) => g.util !== undefined)
    .sort(([a], [b]) => a - b)
    .map(([index, g]) => ({
      index,
      utilisationPercent: g.util!,
      memoryUsedMiB: g.used ?? null,
      memoryTotalMiB: g.used !== undefined && g.free !== undefined ? g.used + g.free : null,
    }));
}

/**
 * The exporter's URL for the node the pod runs on: `{hostIP}` and `{node}` in `template` are
 * replaced by the pod's status.hostIP and spec.nodeName (the exporter is a DaemonSet: a Service in
 * front of it would answer from any node). Undefined while a placeholder has no valid value yet.
 */
export function exporterUrl(template: string, pod: { hostIP?: string; node?: string }): string | undefined {
  let url = template;
  if (url.includes('{hostIP}')) {
    const ip = pod.hostIP;
    if (!ip || !isIP(ip)) return undefined;
    url = url.replaceAll('{hostIP}', isIP(ip) === 6 ? `[${ip}]` : ip);
  }
  if (url.includes('{node}')) {
    if (!pod.node || !DNS_SUBDOMAIN.test(pod.node)) return undefined;
    url = url.replaceAll('{node}', pod.node);
  }
  return url;
}

/**
 * One scrape of `url` within `timeoutMs`: the target pod's GPU readings. Throws on a network
 * error, a timeout, a non-2xx status or a body over MAX_SCRAPE_BYTES.
 */
export async function scrapeDcgm(url: string, target: DcgmTarget, timeoutMs: number): Promise<GpuSample[]> {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error',
    headers: { accept: 'text/plain' },
  });
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`HTTP ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > MAX_SCRAPE_BYTES) {
      await res.body.cancel().catch(() => undefined);
      throw new Error(`response larger than ${MAX_SCRAPE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return dcgmSamples(Buffer.concat(chunks).toString('utf8'), target);
}

export interface DcgmSamplerOptions {
  /** Exporter URL template (see exporterUrl). */
  urlTemplate: string;
  target: DcgmTarget;
  /** The pod's node: status.hostIP and spec.nodeName. */
  node: { hostIP?: string; node?: string };
  /** Seconds between scrapes. */
  intervalSeconds: number;
  /** Called once, on the first failing scrape (the step goes on; later failures are silent). */
  onFirstError: (error: string, url: string) => void;
}

/**
 * Scrapes the exporter every `intervalSeconds` while the step container runs; each request is
 * cut off after 5 to 10 s (the interval, within those bounds) and never overlaps the next. A failing scrape is reported
 * once and never fails the step. `stop()` gives the GpuSummary of the pod's readings, or
 * undefined when none matched (utilisation not measured).
 */
export function startDcgmSampler(o: DcgmSamplerOptions): { stop: () => Promise<GpuSummary | undefined> } {
  const url = exporterUrl(o.urlTemplate, o.node);
  const intervalMs = Math.max(1, o.intervalSeconds) * 1000;
  let reported = false;
  const sampler = new GpuSampler(async () => {
    if (!url) return [];
    try {
      return await scrapeDcgm(url, o.target, Math.min(10_000, Math.max(5000, intervalMs)));
    } catch (e) {
      if (!reported)
        o.onFirstError(
          e instanceof Error ? `${e.name === 'TimeoutError' ? 'timed out: ' : ''}${e.message}` : String(e),
          url,
        );
      reported = true;
      return [];
    }
  });
  if (!url) {
    reported = true;
    o.onFirstError(
      `the pod's node (hostIP ${o.node.hostIP ?? 'unknown'}, node ${o.node.node ?? 'unknown'}) cannot fill the URL`,
      o.urlTemplate,
    );
  } else sampler.start(intervalMs);
  return { stop: () => sampler.stop() };
}
