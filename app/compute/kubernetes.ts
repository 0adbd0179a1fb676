// The server's Kubernetes settings and machine classes, read once at start from the YAML
// file TRAINYARD_K8S_CONFIG names. Every problem is reported at once as file:line:column.
// Nothing here can be set from a repository.
import { LineCounter, isMap, isSeq, parseDocument, type Node } from 'yaml';
import { SettingError } from '../settings/errors.js';
import { setting } from '../settings/read.js';
import type { KubeToleration, KubernetesClass, KubernetesSettings } from '../../activities/k8s/types.js';

/** A DNS-1123 label (namespace, class name). */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** A DNS-1123 subdomain (service account, secret, priority class names). */
const DNS_SUBDOMAIN = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** A qualified name: optional DNS prefix and `/`, then a name (label keys, resource names). */
const QUALIFIED = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][A-Za-z0-9_.-]{0,61})?[A-Za-z0-9])?$/;
/** A Kubernetes resource quantity (`500m`, `2`, `16Gi`, `1e3`). */
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE]\d+)?$/;
/** http(s) URL whose only braces are the {hostIP} / {node} placeholders. */
const DCGM_URL = /^https?:\/\/([^\s{}]|\{hostIP\}|\{node\})+$/;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,511}$/;

const TOP_KEYS = [
  'context',
  'agentImage',
  'agentImagePullPolicy',
  'agentResources',
  'store',
  's3Endpoint',
  's3Region',
  'storeSecret',
  'deployment',
  'classes',
];
const CLASS_KEYS = [
  'namespace',
  'nodeSelector',
  'tolerations',
  'gpu',
  'resources',
  'serviceAccountName',
  'imagePullSecrets',
  'priorityClassName',
  'terminationGracePeriodSeconds',
  'uploadGraceSeconds',
  'unschedulableTimeoutSeconds',
  'podTemplatePatch',
  'hourlyRateUsd',
  'gpuHourlyRateUsd',
  'dcgmExporterUrl',
  'dcgmScrapeSeconds',
];
const TOLERATION_KEYS = ['key', 'operator', 'value', 'effect', 'tolerationSeconds'];

type Env = Record<string, string | undefined>;
type Path = (string | number)[];

/**
 * Reads TRAINYARD_K8S_CONFIG; null when it is not set (Kubernetes compute off). Problems are
 * pushed to `problems` as `file:line:column: sentence` (or naming the variable).
 */
export function loadKubernetesSettings(env: Env, problems: string[]): KubernetesSettings | null {
  let file: { path: string; bytes: Buffer } | undefined;
  try {
    file = setting(env, 'TRAINYARD_K8S_CONFIG');
  } catch (e) {
    if (!(e instanceof SettingError)) throw e;
    problems.push(e.message);
    return null;
  }
  if (!file) return null;
  return parseKubernetesSettings(file.bytes.toString('utf8'), file.path, env, problems);
}

/** The settings in `text` (the file's contents); see loadKubernetesSettings. */
export function parseKubernetesSettings(
  text: string,
  file: string,
  env: Env,
  problems: string[],
): KubernetesSettings | null {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const p = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
      problems.push(`${file}:${p.line}:${p.col}: YAML syntax error: ${e.message.split('\n')[0]}`);
    }
    return null;
  }
  const at = (path: Path, onKey = false): string => {
    let node = doc.contents as Node | null;
    let point: Node | null = node;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === part);
        if (!pair) break;
        point = (onKey && part === path[path.length - 1] ? null : (pair.value as Node | null)) ?? (pair.key as Node);
        node = pair.value as Node | null;
      } else if (isSeq(node) && typeof part === 'number') {
        node = (node.items[part] as Node | undefined) ?? null;
        if (!node) break;
        point = node;
      } else break;
    }
    const p = lines.linePos(point?.range?.[0] ?? 0);
    return `${file}:${p.line}:${p.col}`;
  };
  const before = problems.length;
  const v = new Checker(problems, at);
  const top = v.object(doc.toJS({ maxAliasCount: 16 }) as unknown, [], TOP_KEYS, 'the Kubernetes settings');
  if (!top) return null;

  const store = v.str(top, ['store'], { optional: true }) ?? env.TRAINYARD_STORE;
  if (!store || !/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9._\-/]*)?$/.test(store)) {
    problems.push(
      `${at(['store'])}: "store" must be an s3://bucket/prefix artifact store (default TRAINYARD_STORE${store ? `, which is ${store}` : ', not set'}): pods cannot read a folder on this machine`,
    );
  }
  const s3Endpoint =
    v.str(top, ['s3Endpoint'], {
      optional: true,
      pattern: /^https?:\/\/[^\s]+$/,
      what: 'an http(s) URL the pods can reach',
    }) ?? s3EndpointOf(env, problems);
  const classesRaw = v.object(top.classes, ['classes'], undefined, '"classes" (a mapping of class names to classes)');
  const classes: Record<string, KubernetesClass> = {};
  for (const [name, raw] of Object.entries(classesRaw ?? {})) {
    if (!DNS_LABEL.test(name)) {
      problems.push(
        `${at(['classes', name], true)}: class name "${name}" must be lower-case letters, digits and "-" (a DNS label), so pipelines can name it`,
      );
      continue;
    }
    const c = readClass(v, raw, ['classes', name], name);
    if (c) classes[name] = c;
  }
  if (classesRaw && Object.keys(classesRaw).length === 0)
    problems.push(`${at(['classes'])}: "classes" is empty; define at least one class`);
  const agentImage = v.str(top, ['agentImage'], { pattern: IMAGE, what: 'an image reference' });
  const settings: KubernetesSettings = {
    source: file,
    ...opt('context', v.str(top, ['context'], { optional: true })),
    agentImage: agentImage ?? '',
    agentImagePullPolicy: (v.oneOf(top, ['agentImagePullPolicy'], ['Always', 'IfNotPresent', 'Never']) ??
      'IfNotPresent') as KubernetesSettings['agentImagePullPolicy'],
    agentResources: v.resources(top.agentResources, ['agentResources']) ?? {
      requests: { cpu: '50m', memory: '128Mi' },
      limits: { memory: '512Mi' },
    },
    store: store ?? '',
    ...opt('s3Endpoint', s3Endpoint),
    s3Region: v.str(top, ['s3Region'], { optional: true }) ?? env.AWS_REGION ?? 'us-east-1',
    ...opt(
      'storeSecret',
      v.str(top, ['storeSecret'], { optional: true, pattern: DNS_SUBDOMAIN, what: 'a Secret name' }),
    ),
    deployment:
      v.str(top, ['deployment'], {
        optional: true,
        pattern: LABEL_VALUE,
        what: 'a label value (1-63 of A-Z a-z 0-9 _ . -)',
      }) ?? 'default',
    classes,
  };
  return problems.length > before ? null : settings;
}

function opt<K extends string, T>(key: K, value: T | undefined): { [k in K]?: T } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: T };
}

function readClass(v: Checker, raw: unknown, path: Path, name: string): KubernetesClass | undefined {
  const c = v.object(raw, path, CLASS_KEYS, `class "${name}"`);
  if (!c) return undefined;
  const namespace = v.str(c, [...path, 'namespace'], { pattern: DNS_LABEL, what: 'a namespace name' });
  const gpuRaw =
    c.gpu === undefined ? {} : v.object(c.gpu, [...path, 'gpu'], ['resource', 'count'], `"gpu" of class "${name}"`);
  const tolerations: KubeToleration[] = [];
  if (c.tolerations !== undefined) {
    if (!Array.isArray(c.tolerations))
      v.problem([...path, 'tolerations'], `"tolerations" of class "${name}" must be a list of tolerations`);
    else {
      c.tolerations.forEach((t, i) => {
        const tp = [...path, 'tolerations', i];
        const o = v.object(t, tp, TOLERATION_KEYS, 'a toleration');
        if (!o) return;
        const tol: KubeToleration = {};
        const key = v.str(o, [...tp, 'key'], { optional: true, pattern: QUALIFIED, what: 'a taint key' });
        if (key !== undefined) tol.key = key;
        const op = v.oneOf(o, [...tp, 'operator'], ['Exists', 'Equal']);
        if (op) tol.operator = op as KubeToleration['operator'];
        const value = v.str(o, [...tp, 'value'], { optional: true, pattern: LABEL_VALUE, what: 'a taint value' });
        if (value !== undefined) tol.value = value;
        const effect = v.oneOf(o, [...tp, 'effect'], ['NoSchedule', 'PreferNoSchedule', 'NoExecute']);
        if (effect) tol.effect = effect as KubeToleration['effect'];
        const secs = v.int(o, [...tp, 'tolerationSeconds'], undefined, 0);
        if (secs !== undefined) tol.tolerationSeconds = secs;
        tolerations.push(tol);
      });
    }
  }
  const nodeSelector: Record<string, string> = {};
  const ns =
    c.nodeSelector === undefined
      ? {}
      : v.object(c.nodeSelector, [...path, 'nodeSelector'], undefined, `"nodeSelector" of class "${name}"`);
  for (const [k, val] of Object.entries(ns ?? {})) {
    if (!QUALIFIED.test(k)) v.problem([...path, 'nodeSelector', k], `node label key "${k}" is not a valid label key`);
    else if (typeof val !== 'string' || !LABEL_VALUE.test(val))
      v.problem(
        [...path, 'nodeSelector', k],
        `node label "${k}" must have a label value (a string of at most 63 of A-Z a-z 0-9 _ . -)`,
      );
    else nodeSelector[k] = val;
  }
  const patch =
    c.podTemplatePatch === undefined
      ? undefined
      : v.object(c.podTemplatePatch, [...path, 'podTemplatePatch'], undefined, `"podTemplatePatch" of class "${name}"`);
  return {
    name,
    namespace: namespace ?? '',
    nodeSelector,
    tolerations,
    gpu: {
      resource:
        (gpuRaw &&
          v.str(gpuRaw, [...path, 'gpu', 'resource'], {
            optional: true,
            pattern: QUALIFIED,
            what: 'an extended resource name like nvidia.com/gpu',
          })) ??
        'nvidia.com/gpu',
      count: (gpuRaw && v.int(gpuRaw, [...path, 'gpu', 'count'], 0, 0, 64)) ?? 0,
    },
    resources: v.resources(c.resources, [...path, 'resources']) ?? { requests: {}, limits: {} },
    ...opt(
      'serviceAccountName',
      v.str(c, [...path, 'serviceAccountName'], {
        optional: true,
        pattern: DNS_SUBDOMAIN,
        what: 'a service account name',
      }),
    ),
    imagePullSecrets: v.strList(c, [...path, 'imagePullSecrets'], DNS_SUBDOMAIN, 'a Secret name'),
    ...opt(
      'priorityClassName',
      v.str(c, [...path, 'priorityClassName'], {
        optional: true,
        pattern: DNS_SUBDOMAIN,
        what: 'a priority class name',
      }),
    ),
    terminationGracePeriodSeconds: v.int(c, [...path, 'terminationGracePeriodSeconds'], 5, 0, 3600) ?? 5,
    uploadGraceSeconds: v.int(c, [...path, 'uploadGraceSeconds'], 600, 10, 86400) ?? 600,
    unschedulableTimeoutSeconds: v.int(c, [...path, 'unschedulableTimeoutSeconds'], 600, 1, 7 * 86400) ?? 600,
    ...opt('podTemplatePatch', patch),
    hourlyRateUsd: v.num(c, [...path, 'hourlyRateUsd']) ?? 0,
    gpuHourlyRateUsd: v.num(c, [...path, 'gpuHourlyRateUsd']) ?? 0,
    ...opt(
      'dcgmExporterUrl',
      v.str(c, [...path, 'dcgmExporterUrl'], {
        optional: true,
        pattern: DCGM_URL,
        what: "an http(s) URL of the dcgm-exporter metrics, where {hostIP} and {node} stand for the pod's node (e.g. http://{hostIP}:9400/metrics)",
      }),
    ),
    ...opt(
      'dcgmScrapeSeconds',
      c.dcgmScrapeSeconds === undefined ? undefined : v.int(c, [...path, 'dcgmScrapeSeconds'], 5, 1, 300),
    ),
  };
}

type Obj = Record<string, unknown>;

class Checker {
  constructor(
    private readonly problems: string[],
    private readonly at: (path: Path, onKey?: boolean) => string,
  ) {}

  problem(path: Path, message: string, onKey = false): void {
    this.problems.push(`${this.at(path, onKey)}: ${message}`);
  }

  object(raw: unknown, path: Path, keys: string[] | undefined, what: string): Obj | undefined {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.problem(path, `${what} must be a mapping`);
      return undefined;
    }
    if (keys) {
      for (const k of Object.keys(raw)) {
        if (!keys.includes(k))
          this.problem(
            [...path, k],
            `unknown key "${k}" in ${what}; the keys allowed here are ${keys.join(', ')}`,
            true,
          );
      }
    }
    return raw as Obj;
  }

  str(o: Obj, path: Path, opts: { optional?: boolean; pattern?: RegExp; what?: string } = {}): string | undefined {
    const key = String(path[path.length - 1]);
    const raw = o[key];
    if (raw === undefined || raw === null) {
      if (!opts.optional) this.problem(path, `"${key}" is required${opts.what ? ` (${opts.what})` : ''}`);
      return undefined;
    }
    if (typeof raw !== 'string' || raw.trim() === '') {
      this.problem(path, `"${key}" must be a non-empty string${opts.what ? ` (${opts.what})` : ''}`);
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(raw)) {
      this.problem(path, `"${key}" must be ${opts.what ?? `like ${opts.pattern.source}`}, got "${raw}"`);
      return undefined;
    }
    return raw;
  }

  strList(o: Obj, path: Path, pattern: RegExp, what: string): string[] {
    const key = String(path[path.length - 1]);
    const raw = o[key];
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) {
      this.problem(path, `"${key}" must be a list of names (${what})`);
      return [];
    }
    const out: string[] = [];
    raw.forEach((x, i) => {
      if (typeof x !== 'string' || !pattern.test(x))
        this.problem([...path, i], `each entry of "${key}" must be ${what}, got ${JSON.stringify(x)}`);
      else out.push(x);
    });
    return out;
  }

  oneOf(o: Obj, path: Path, values: string[]): string | undefined {
    const key = String(path[path.length - 1]);
    const raw = o[key];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string' || !values.includes(raw)) {
      this.problem(path, `"${key}" must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
      return undefined;
    }
    return raw;
  }

  int(
    o: Obj,
    path: Path,
    fallback: number | undefined,
    min: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number | undefined {
    const key = String(path[path.length - 1]);
    const raw = o[key];
    if (raw === undefined) return fallback;
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min || raw > max) {
      this.problem(path, `"${key}" must be a whole number between ${min} and ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return raw;
  }

  num(o: Obj, path: Path): number | undefined {
    const key = String(path[path.length - 1]);
    const raw = o[key];
    if (raw === undefined) return undefined;
    if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < 0) {
      this.problem(path, `"${key}" must be a non-negative number (USD per hour), got ${JSON.stringify(raw)}`);
      return undefined;
    }
    return raw;
  }

  resources(
    raw: unknown,
    path: Path,
  ): { requests: Record<string, string>; limits: Record<string, string> } | undefined {
    if (raw === undefined) return undefined;
    const r = this.object(raw, path, ['requests', 'limits'], '"resources"');
    if (!r) return undefined;
    const out = { requests: {} as Record<string, string>, limits: {} as Record<string, string> };
    for (const kind of ['requests', 'limits'] as const) {
      if (r[kind] === undefined) continue;
      const m = this.object(r[kind], [...path, kind], undefined, `"${kind}"`);
      for (const [res, q] of Object.entries(m ?? {})) {
        const text = typeof q === 'number' ? String(q) : q;
        if (!QUALIFIED.test(res))
          this.problem([...path, kind, res], `"${res}" is not a resource name like cpu, memory or nvidia.com/gpu`);
        else if (typeof text !== 'string' || !QUANTITY.test(text))
          this.problem(
            [...path, kind, res],
            `${kind} of ${res} must be a Kubernetes quantity like 500m, 4 or 16Gi, got ${JSON.stringify(q)}`,
          );
        else out[kind][res] = text;
      }
    }
    return out;
  }
}

/** The workers' S3 endpoint (AWS_ENDPOINT_URL_S3, older TRAINYARD_S3_ENDPOINT) as the pods' default. */
function s3EndpointOf(env: Env, problems: string[]): string | undefined {
  try {
    return setting(env, 'AWS_ENDPOINT_URL_S3');
  } catch (e) {
    if (!(e instanceof SettingError)) throw e;
    problems.push(e.message);
    return undefined;
  }
}
