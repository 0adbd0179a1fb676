// `.trainyard/<name>.yaml` → Pipeline, or every mistake in the file with its line and
// column. Pure: no I/O, no Temporal, so the app, the CLI and activities can all use it.
import { createHash } from 'node:crypto';
import {
  LineCounter,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
  visit,
  type Alias,
  type Document,
  type Node,
} from 'yaml';
import type {
  Ec2MachineSpec,
  KubernetesMachineSpec,
  MachineSpec,
  ParamSpec,
  ParamType,
  ParamValue,
  Pipeline,
  PipelineError,
  PushTrigger,
  StepSpec,
  Triggers,
} from './types.js';
import {
  ENV_NAME,
  NAME,
  NAME_RULE,
  PIPELINE_NAME,
  PIPELINE_NAME_RULE,
  RESERVED_ENV_PREFIX,
  SECRET_NAME,
  SECRET_NAME_RULE,
  didYouMean,
  paramEnvName,
  quote,
} from './names.js';
import { NodeReader, describe, scalarText, type Entry, type Value } from './yamlnodes.js';
import { DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, formatDuration, parseDuration } from './duration.js';
import { parseInput, repoPath } from './inputs.js';
import { compileFilterPattern } from './filters.js';
import { findCycles, topologicalOrder } from './graph.js';
import { describeParamType, paramValueError } from './paramtypes.js';
import { groupProblems, type ConcurrencySpec } from './concurrency.js';

/**
 * The largest pipeline file, bytes: 1 MiB, the most GitHub's contents API returns inline
 * (larger files come back without content; docs.github.com, "Get repository content").
 * Enough for 10,000 one-line steps; parsing one that size takes about a second.
 */
export const MAX_PIPELINE_BYTES = 1024 * 1024;
export const MAX_YAML_ALIASES = 16;

export const TOP_KEYS = ['name', 'on', 'concurrency', 'params', 'machines', 'steps'] as const;
export const CONCURRENCY_KEYS = ['group', 'cancel-in-progress'] as const;
export const ON_KEYS = ['push', 'comment'] as const;
export const PUSH_KEYS = ['branches', 'branches-ignore', 'tags', 'tags-ignore', 'paths', 'paths-ignore'] as const;
export const PARAM_KEYS = ['type', 'default', 'min', 'max', 'values', 'description'] as const;
export const PARAM_TYPES: readonly ParamType[] = ['integer', 'number', 'string', 'boolean', 'enum'];
export const MACHINE_KEYS = ['instance', 'kubernetes', 'gpus', 'spot', 'on_demand_fallback', 'disk_gb', 'ami'] as const;
/** The keys of an EC2 machine that a `kubernetes:` machine may not have. */
const EC2_ONLY_KEYS = ['instance', 'spot', 'on_demand_fallback', 'disk_gb', 'ami'] as const;
export const STEP_KEYS = [
  'image',
  'run',
  'code',
  'env',
  'secrets',
  'inputs',
  'outputs',
  'needs',
  'machine',
  'timeout',
  'retries',
  'cache',
  'cache_version',
  'params',
] as const;

const MAX_RETRIES = 10;
const MAX_GPUS = 64;
const MAX_DISK_GB = 16384;
const DEFAULT_DISK_GB = 50;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$/;
const AMI = /^(ami-[0-9a-f]{8}([0-9a-f]{9})?|\/[A-Za-z0-9_.\/-]{1,1000})$/;
// The distribution reference grammar (registry/name:tag@digest), length-capped before use.
const IMAGE_REF =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$/;

export function formatPipelineError(e: PipelineError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.message}`;
}

/** Where a field sits, for messages: `"image" of step "train"`, `unknown key … in step "train"`. */
interface Scope {
  /** `step "train"`, or `the pipeline` at the top level. */
  subject: string;
  /** ` of step "train"`, or empty at the top level. */
  of: string;
  /** `in step "train"`, or `at the top level`. */
  in: string;
}

const TOP: Scope = { subject: 'the pipeline', of: '', in: 'at the top level' };
function scope(subject: string): Scope {
  return { subject, of: ` of ${subject}`, in: `in ${subject}` };
}

/** A reference to check once every section is read. */
interface Reference {
  from: string;
  node: Node;
  kind: 'needs' | 'input' | 'machine' | 'param';
  target: string;
  /** For machines: where the step's `secrets` key is, when it has one (not on Kubernetes yet). */
  secretsNode?: Node;
  /** For inputs: the input's name and the output it wants. */
  input?: string;
  output?: string;
}

export function parsePipeline(text: string, file: string): { pipeline?: Pipeline; errors: PipelineError[] } {
  const bytes = new TextEncoder().encode(text);
  const refuse = (message: string, line = 1, column = 1) => ({ errors: [{ file, line, column, message }] });
  if (bytes.length > MAX_PIPELINE_BYTES) {
    return refuse(
      `the file is ${Math.ceil(bytes.length / 1024)} KiB; pipeline files may be at most ${MAX_PIPELINE_BYTES / 1024} KiB`,
    );
  }

  const lines = new LineCounter();
  let docs: Document.Parsed[];
  try {
    const parsed = parseAllDocuments(text, {
      lineCounter: lines,
      uniqueKeys: false,
      prettyErrors: true,
      version: '1.2',
      schema: 'core',
    });
    docs = Array.isArray(parsed) ? parsed : [];
  } catch (e) {
    // The YAML composer recurses per nesting level; thousands of `[[[[` exhaust the stack.
    return refuse(
      `the file could not be read as YAML (${e instanceof RangeError ? 'it is nested too deeply' : String(e)})`,
    );
  }
  if (docs.length === 0) return refuse('the file is empty; a pipeline needs at least "name" and "steps"');
  if (docs.length > 1) {
    const p = lines.linePos(docs[1]!.range[0]);
    return refuse(
      'the file holds more than one YAML document ("---"); put each pipeline in a file of its own',
      p.line,
      p.col,
    );
  }
  const doc = docs[0]!;
  if (doc.errors.length > 0) {
    const overflow = doc.errors.find((e) => e.message.includes('Maximum call stack'));
    if (overflow !== undefined) {
      // The composer recurses per nesting level and reports running out of stack as an error;
      // what follows it is noise.
      const pos = overflow.linePos?.[0] ?? lines.linePos(overflow.pos[0]);
      return refuse('the file is nested too deeply to read', pos.line, pos.col);
    }
    return {
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { file, line: pos.line, column: pos.col, message: `YAML syntax error: ${first}` };
      }),
    };
  }

  const aliases: Alias[] = [];
  let tooMany: Node | undefined;
  try {
    visit(doc, {
      Alias(_, node) {
        aliases.push(node);
        if (aliases.length > MAX_YAML_ALIASES) {
          tooMany = node;
          return visit.BREAK;
        }
        return undefined;
      },
    });
  } catch (e) {
    return refuse(
      `the file could not be read as YAML (${e instanceof RangeError ? 'it is nested too deeply' : String(e)})`,
    );
  }
  if (tooMany !== undefined) {
    const p = lines.linePos(tooMany.range?.[0] ?? 0);
    return refuse(
      `the file uses more than ${MAX_YAML_ALIASES} YAML aliases (*name); Trainyard refuses it to guard against alias bombs`,
      p.line,
      p.col,
    );
  }

  const r = new NodeReader(doc, lines, file);
  // The YAML library leaves an alias to a missing anchor unresolved without complaint.
  for (const alias of aliases) {
    if (alias.resolve(doc) === undefined)
      r.error(alias, `the alias *${alias.source} refers to no anchor &${alias.source} defined before it`);
  }
  if (r.errors.length > 0) return { errors: r.sortedErrors() };
  const top = r.resolve(doc.contents);
  if (!isMap(top)) {
    r.error(
      doc.contents ?? null,
      `the top level of a pipeline file must be a mapping with "name" and "steps", got ${describe(top)}`,
    );
    return { errors: r.sortedErrors() };
  }
  const pipeline = new PipelineReader(r, file).read(top, bytes);
  const errors = r.sortedErrors();
  return errors.length > 0 || pipeline === undefined ? { errors } : { pipeline, errors: [] };
}

class PipelineReader {
  private readonly refs: Reference[] = [];
  /** `PARAM_X` → the parameter that arrives in it. */
  private readonly paramEnv = new Map<string, string>();

  constructor(
    private readonly r: NodeReader,
    private readonly file: string,
  ) {}

  read(top: Value, bytes: Uint8Array): Pipeline | undefined {
    const f = this.fields(top, top, top, TOP, TOP_KEYS, ['name', 'steps']);
    if (f === undefined) return undefined;
    const name = this.pipelineName(f.get('name'));
    const on = this.triggers(f.get('on'));
    const concurrency = this.concurrency(f.get('concurrency'));
    const params = this.params(f.get('params'));
    const machines = this.machines(f.get('machines'));
    const steps = this.steps(f.get('steps'));
    if (steps === undefined) return undefined;
    this.checkReferences(steps, params, machines);
    const order = this.order(steps);
    if (
      name === undefined ||
      on === undefined ||
      concurrency === null ||
      params === undefined ||
      machines === undefined ||
      order === undefined
    )
      return undefined;
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    return {
      name,
      file: this.file,
      digest,
      on,
      params,
      machines,
      ...(concurrency ? { concurrency } : {}),
      steps: Object.fromEntries(steps.map((s) => [s.spec.name, s.spec])),
      order,
    };
  }

  // ── generic readers ────────────────────────────────────────────────────────────────

  /** Reads a mapping's keys, reporting unknown and missing ones. */
  private fields(
    value: Value | null,
    at: Node,
    owner: Node,
    s: Scope,
    allowed: readonly string[],
    required: readonly string[],
    expected = 'a mapping',
  ): Map<string, Entry> | undefined {
    if (!isMap(value)) {
      this.r.error(
        at,
        `${s.subject === TOP.subject ? 'the pipeline' : s.subject} must be ${expected}, got ${describe(value)}`,
      );
      return undefined;
    }
    const out = new Map<string, Entry>();
    for (const e of this.r.entries(value, s.in)) {
      if (!allowed.includes(e.key)) {
        const hint = didYouMean(e.key, allowed) || `; the keys allowed here are ${allowed.join(', ')}`;
        this.r.error(e.keyNode, `unknown key ${quote(e.key)} ${s.in}${hint}`);
        continue;
      }
      out.set(e.key, e);
    }
    for (const k of required) {
      if (!out.has(k) && !this.hasKey(value, k)) this.r.error(owner, `${s.subject} is missing the required key "${k}"`);
    }
    return out;
  }

  /** True when the key is present but was refused (a duplicate), so "missing" would mislead. */
  private hasKey(map: Value, key: string): boolean {
    return isMap(map) && map.items.some((p) => isScalar(p.key) && String(p.key.value) === key);
  }

  private label(key: string, s: Scope): string {
    return `"${key}"${s.of}`;
  }

  private string(e: Entry | undefined, s: Scope, opts: { allowEmpty?: boolean } = {}): string | undefined {
    if (e === undefined) return undefined;
    if (!isScalar(e.value) || typeof e.value.value !== 'string') {
      this.r.error(e.at, `${this.label(e.key, s)} must be a string, got ${describe(e.value)}`);
      return undefined;
    }
    return this.checkText(e.value.value, e.at, this.label(e.key, s), opts.allowEmpty ?? false);
  }

  private checkText(text: string, at: Node, what: string, allowEmpty: boolean): string | undefined {
    if (text.includes('\0')) {
      this.r.error(at, `${what} must not contain a NUL character`);
      return undefined;
    }
    if (!allowEmpty && text.trim() === '') {
      this.r.error(at, `${what} must not be empty`);
      return undefined;
    }
    return text;
  }

  private boolean(e: Entry | undefined, s: Scope): boolean | undefined {
    if (e === undefined) return undefined;
    if (!isScalar(e.value) || typeof e.value.value !== 'boolean') {
      const text = isScalar(e.value) && typeof e.value.value === 'string' ? e.value.value.toLowerCase() : '';
      const hint = ['yes', 'no', 'on', 'off', 'y', 'n'].includes(text) ? ' (YAML 1.2 reads it as text)' : '';
      this.r.error(e.at, `${this.label(e.key, s)} must be true or false, got ${describe(e.value)}${hint}`);
      return undefined;
    }
    return e.value.value;
  }

  private integer(e: Entry | undefined, s: Scope, min: number, max: number): number | undefined {
    if (e === undefined) return undefined;
    const v = isScalar(e.value) ? e.value.value : undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      this.r.error(
        e.at,
        `${this.label(e.key, s)} must be a whole number between ${min} and ${max}, got ${describe(e.value)}`,
      );
      return undefined;
    }
    return v;
  }

  /** A list of strings; `single` also accepts one string for the list of one. */
  private stringList(
    e: Entry | undefined,
    s: Scope,
    opts: { single?: boolean; nonEmpty?: boolean; item?: string } = {},
  ): { text: string; node: Node }[] | undefined {
    if (e === undefined) return undefined;
    const what = this.label(e.key, s);
    if (opts.single && isScalar(e.value) && typeof e.value.value === 'string') {
      const t = this.checkText(e.value.value, e.at, what, false);
      return t === undefined ? undefined : [{ text: t, node: e.at }];
    }
    if (!isSeq(e.value)) {
      this.r.error(
        e.at,
        `${what} must be a list${opts.single ? ' or a string' : ''}${opts.item ? ` of ${opts.item}` : ''}, got ${describe(e.value)}`,
      );
      return undefined;
    }
    if (opts.nonEmpty && e.value.items.length === 0) {
      this.r.error(e.at, `${what} must not be an empty list`);
      return undefined;
    }
    const out: { text: string; node: Node }[] = [];
    let ok = true;
    for (const raw of e.value.items) {
      const item = this.r.resolve(raw);
      const node = (item ?? raw ?? e.at) as Node;
      if (!isScalar(item) || typeof item.value !== 'string') {
        this.r.error(node, `each entry of ${what} must be a string, got ${describe(item)}`);
        ok = false;
        continue;
      }
      const t = this.checkText(item.value, node, `an entry of ${what}`, false);
      if (t === undefined) ok = false;
      else out.push({ text: t, node });
    }
    return ok ? out : undefined;
  }

  /** Names that must follow NAME and not repeat. */
  private nameList(
    e: Entry | undefined,
    s: Scope,
    kind: string,
    opts: { single?: boolean } = {},
  ): { text: string; node: Node }[] | undefined {
    const list = this.stringList(e, s, { single: opts.single, item: `${kind} names` });
    if (list === undefined) return undefined;
    const seen = new Set<string>();
    let ok = true;
    for (const item of list) {
      if (!NAME.test(item.text)) {
        this.r.error(
          item.node,
          `${kind} name ${quote(item.text)} in ${this.label(e!.key, s)} is not allowed; ${NAME_RULE}`,
        );
        ok = false;
      } else if (seen.has(item.text)) {
        this.r.error(item.node, `${kind} ${quote(item.text)} is listed twice in ${this.label(e!.key, s)}`);
        ok = false;
      }
      seen.add(item.text);
    }
    return ok ? list : undefined;
  }

  /**
   * Input and output names become file names in one folder; on the case-insensitive file
   * systems of macOS and Windows hosts (Docker Desktop bind mounts) `Model` and `model` are one
   * file. Reports item `i` when it differs from an earlier item only in case; false then.
   */
  private caseClash(
    items: readonly { text: string; node: Node }[],
    i: number,
    kind: string,
    s: Scope,
    folder: string,
  ): boolean {
    const item = items[i]!;
    const lower = item.text.toLowerCase();
    const earlier = items.slice(0, i).find((o) => o.text !== item.text && o.text.toLowerCase() === lower);
    if (earlier === undefined) return true;
    this.r.error(
      item.node,
      `${kind} ${quote(item.text)}${s.of} and ${kind} ${quote(earlier.text)} (${this.where(earlier.node)}) differ only in case, and ${folder}/${earlier.text} and ${folder}/${item.text} are one file where names ignore case (macOS, Windows); rename one of them`,
    );
    return false;
  }

  private checkName(name: string, node: Node, kind: string): boolean {
    if (NAME.test(name)) return true;
    this.r.error(node, `${kind} name ${quote(name)} is not allowed; ${NAME_RULE}`);
    return false;
  }

  // ── sections ───────────────────────────────────────────────────────────────────────

  private pipelineName(e: Entry | undefined): string | undefined {
    // `name: 2024` is a number to YAML but a fine name for 2024.yaml.
    const numeric =
      e !== undefined && isScalar(e.value) && typeof e.value.value === 'number' ? scalarText(e.value) : undefined;
    const name = numeric ?? this.string(e, TOP);
    if (name === undefined || e === undefined) return undefined;
    if (!PIPELINE_NAME.test(name)) {
      this.r.error(e.at, `pipeline name ${quote(name)} is not allowed; ${PIPELINE_NAME_RULE}`);
      return undefined;
    }
    const base = this.file.split('/').pop() ?? this.file;
    const stem = base.replace(/\.ya?ml$/, '');
    if (stem !== name) {
      this.r.error(
        e.at,
        `pipeline name ${quote(name)} does not match its file name ${quote(base)}; the name must be the file name without .yaml`,
      );
      return undefined;
    }
    return name;
  }

  private triggers(e: Entry | undefined): Triggers | undefined {
    if (e === undefined) return { push: {}, comment: true };
    const s = scope('"on"');
    const f = this.fields(e.value, e.at, e.keyNode, s, ON_KEYS, [], 'a mapping like { push: true, comment: true }');
    if (f === undefined) return undefined;
    const comment = f.has('comment') ? this.boolean(f.get('comment'), s) : true;
    let push: Triggers['push'] | undefined = null;
    const p = f.get('push');
    if (p !== undefined) {
      if (p.value === null || (isScalar(p.value) && p.value.value === true)) push = {};
      else if (isScalar(p.value) && p.value.value === false) push = null;
      else if (isMap(p.value)) {
        const ps = scope('"on.push"');
        const pf = this.fields(p.value, p.at, p.keyNode, ps, PUSH_KEYS, []);
        push = pf === undefined ? undefined : this.pushFilters(pf, ps);
      } else {
        this.r.error(
          p.at,
          `"push" of "on" must be true, false, or a mapping of filters (branches, tags, paths and their -ignore forms), got ${describe(p.value)}`,
        );
        push = undefined;
      }
    }
    if (comment === undefined || push === undefined) return undefined;
    return { push, comment };
  }

  /**
   * `on.push` filters as GitHub Actions reads them, refusing what GitHub refuses: a filter
   * together with its `-ignore` form, and a list of only `!` patterns (which selects nothing).
   */
  private pushFilters(pf: Map<string, Entry>, ps: Scope): Triggers['push'] | undefined {
    const kinds = [
      { key: 'branches', ignore: 'branches-ignore', what: 'branch', field: 'branches', ignoreField: 'branchesIgnore' },
      { key: 'tags', ignore: 'tags-ignore', what: 'tag', field: 'tags', ignoreField: 'tagsIgnore' },
      { key: 'paths', ignore: 'paths-ignore', what: 'path', field: 'paths', ignoreField: 'pathsIgnore' },
    ] as const;
    const push: PushTrigger = {};
    let ok = true;
    for (const k of kinds) {
      const select = pf.get(k.key);
      const ignore = pf.get(k.ignore);
      if (select !== undefined && ignore !== undefined) {
        this.r.error(
          ignore.keyNode,
          `"${k.ignore}"${ps.of} cannot be used together with "${k.key}" (${this.where(select.keyNode)}), as on GitHub; to leave some ${k.key} out, list them in "${k.key}" with a leading "!"`,
        );
        ok = false;
        continue;
      }
      for (const [entry, field, isIgnore] of [
        [select, k.field, false],
        [ignore, k.ignoreField, true],
      ] as const) {
        if (entry === undefined) continue;
        const list = this.stringList(entry, ps, { single: true, nonEmpty: true, item: `${k.what} patterns` });
        if (list === undefined) {
          ok = false;
          continue;
        }
        let patternsOk = true;
        for (const item of list) {
          try {
            compileFilterPattern(item.text);
          } catch (err) {
            this.r.error(
              item.node,
              `pattern ${quote(item.text)} in ${this.label(entry.key, ps)} ${(err as Error).message}`,
            );
            patternsOk = false;
          }
        }
        if (!patternsOk) {
          ok = false;
          continue;
        }
        if (!isIgnore && list.every((item) => item.text.startsWith('!'))) {
          this.r.error(
            entry.at,
            `${this.label(entry.key, ps)} has only "!" patterns, which leave out ${k.key} but select none, so no push would match (GitHub refuses it too); to run on every ${k.what} but these, use "${k.ignore}" with the same patterns without the "!"`,
          );
          ok = false;
          continue;
        }
        push[field] = list.map((item) => item.text);
      }
    }
    return ok ? push : undefined;
  }

  /** `concurrency: { group, cancel-in-progress }`; undefined when absent, null when broken. */
  private concurrency(e: Entry | undefined): ConcurrencySpec | undefined | null {
    if (e === undefined) return undefined;
    const s = scope('"concurrency"');
    const f = this.fields(
      e.value,
      e.at,
      e.keyNode,
      s,
      CONCURRENCY_KEYS,
      ['group'],
      'a mapping like { group: "{{pipeline}}-{{branch}}", cancel-in-progress: true }',
    );
    if (f === undefined) return null;
    const ge = f.get('group');
    const group = this.string(ge, s);
    let ok = group !== undefined;
    for (const problem of group === undefined ? [] : groupProblems(group)) {
      this.r.error(ge!.at, `"group"${s.of} ${problem}`);
      ok = false;
    }
    const cancel = f.has('cancel-in-progress') ? this.boolean(f.get('cancel-in-progress'), s) : false;
    if (!ok || cancel === undefined) return null;
    return { group: group!, cancelInProgress: cancel };
  }

  private params(e: Entry | undefined): Record<string, ParamSpec> | undefined {
    const params = this.declarations(
      e,
      'params',
      'parameter',
      (pe) => this.param(pe),
      (pe, first) => {
        const env = paramEnvName(pe.key);
        if (paramEnvName(first.key) !== env) return undefined;
        return `parameter ${quote(pe.key)} and parameter ${quote(first.key)} (${this.where(first.keyNode)}) both arrive in the container as ${env}; rename one of them`;
      },
    );
    if (params !== undefined) for (const name of Object.keys(params)) this.paramEnv.set(paramEnvName(name), name);
    return params;
  }

  /** `line 3, column 5`, for messages that point at a second place in the file. */
  private where(node: Node): string {
    const p = this.r.position(node);
    return `line ${p.line}, column ${p.column}`;
  }

  /**
   * A `params` or `machines` section: names checked, each declaration read by `one`. `clash`
   * says why an entry cannot sit beside an earlier one (undefined when it can).
   */
  private declarations<T>(
    e: Entry | undefined,
    section: string,
    kind: string,
    one: (entry: Entry) => T | undefined,
    clash?: (entry: Entry, earlier: Entry) => string | undefined,
  ): Record<string, T> | undefined {
    if (e === undefined) return {};
    if (!isMap(e.value)) {
      this.r.error(
        e.at,
        `"${section}" must be a mapping of ${kind} names to their declarations, got ${describe(e.value)}`,
      );
      return undefined;
    }
    const out: Record<string, T> = {};
    const named: Entry[] = [];
    let ok = true;
    for (const entry of this.r.entries(e.value, `in "${section}"`)) {
      if (!this.checkName(entry.key, entry.keyNode, kind)) {
        ok = false;
        continue;
      }
      const problem =
        clash === undefined ? undefined : named.map((earlier) => clash(entry, earlier)).find((m) => m !== undefined);
      named.push(entry);
      if (problem !== undefined) {
        this.r.error(entry.keyNode, problem);
        ok = false;
      }
      const spec = one(entry);
      if (spec === undefined) ok = false;
      else out[entry.key] = spec;
    }
    return ok ? out : undefined;
  }

  private param(pe: Entry): ParamSpec | undefined {
    const s = scope(`parameter "${pe.key}"`);
    const f = this.fields(
      pe.value,
      pe.at,
      pe.keyNode,
      s,
      PARAM_KEYS,
      ['type'],
      'a mapping like { type: integer, default: 3 }',
    );
    if (f === undefined) return undefined;
    const typeEntry = f.get('type');
    const typeText = this.string(typeEntry, s);
    if (typeText === undefined) return undefined;
    if (!(PARAM_TYPES as readonly string[]).includes(typeText)) {
      const hint = didYouMean(typeText, PARAM_TYPES);
      this.r.error(
        typeEntry!.at,
        `"type"${s.of} must be one of ${PARAM_TYPES.join(', ')}, got ${quote(typeText)}${hint}`,
      );
      return undefined;
    }
    const type = typeText as ParamType;
    const spec: ParamSpec = { type };
    let ok = true;
    const numeric = type === 'integer' || type === 'number';
    for (const bound of ['min', 'max'] as const) {
      const be = f.get(bound);
      if (be === undefined) continue;
      if (!numeric) {
        this.r.error(
          be.keyNode,
          `"${bound}" only applies to integer and number parameters; ${s.subject} is ${type === 'enum' ? 'an' : 'a'} ${type}`,
        );
        ok = false;
        continue;
      }
      const v = isScalar(be.value) ? be.value.value : undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || (type === 'integer' && !Number.isSafeInteger(v))) {
        this.r.error(
          be.at,
          `"${bound}"${s.of} must be ${type === 'integer' ? 'an integer' : 'a number'}, got ${describe(be.value)}`,
        );
        ok = false;
        continue;
      }
      spec[bound] = v;
    }
    if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
      this.r.error(f.get('max')!.at, `"max" (${spec.max})${s.of} is less than its "min" (${spec.min})`);
      ok = false;
    }
    const ve = f.get('values');
    if (type === 'enum') {
      if (ve === undefined) {
        this.r.error(pe.keyNode, `enum ${s.subject} needs "values", the list of allowed values`);
        ok = false;
      } else {
        const values = this.enumValues(ve, s);
        if (values === undefined) ok = false;
        else spec.values = values;
      }
    } else if (ve !== undefined) {
      this.r.error(
        ve.keyNode,
        `"values" only applies to enum parameters; ${s.subject} is ${type === 'integer' ? 'an' : 'a'} ${type}`,
      );
      ok = false;
    }
    const de = f.get('description');
    if (de !== undefined) {
      const d = this.string(de, s, { allowEmpty: true });
      if (d === undefined) ok = false;
      else spec.description = d;
    }
    const dv = f.get('default');
    if (dv !== undefined && ok) {
      const v = this.defaultValue(dv, spec, s);
      if (v === undefined) ok = false;
      else spec.default = v;
    }
    return ok ? spec : undefined;
  }

  private enumValues(ve: Entry, s: Scope): string[] | undefined {
    if (!isSeq(ve.value) || ve.value.items.length === 0) {
      this.r.error(ve.at, `"values"${s.of} must be a non-empty list of allowed values, got ${describe(ve.value)}`);
      return undefined;
    }
    const out: string[] = [];
    let ok = true;
    for (const raw of ve.value.items) {
      const item = this.r.resolve(raw);
      const node = (item ?? raw ?? ve.at) as Node;
      const text = isScalar(item) ? scalarText(item) : undefined;
      if (text === undefined || text.includes('\0') || text === '') {
        this.r.error(
          node,
          `each entry of "values"${s.of} must be a non-empty string, number or boolean, got ${describe(item)}`,
        );
        ok = false;
      } else if (out.includes(text)) {
        this.r.error(node, `${quote(text)} is listed twice in "values"${s.of}`);
        ok = false;
      } else out.push(text);
    }
    return ok ? out : undefined;
  }

  private defaultValue(dv: Entry, spec: ParamSpec, s: Scope): ParamValue | undefined {
    const v = dv.value;
    let value: ParamValue | undefined;
    if (isScalar(v)) {
      const raw = v.value;
      if (spec.type === 'enum') value = scalarText(v);
      else if (spec.type === 'string' && typeof raw === 'string') value = raw;
      else if (spec.type === 'boolean' && typeof raw === 'boolean') value = raw;
      else if ((spec.type === 'integer' || spec.type === 'number') && typeof raw === 'number') value = raw;
    }
    const problem = value === undefined ? 'wrong type' : paramValueError(spec, value);
    if (problem !== undefined) {
      const hint = spec.type === 'string' && isScalar(v) && v.value !== null ? '; put it in quotes' : '';
      this.r.error(dv.at, `"default"${s.of} must be ${describeParamType(spec)}, got ${describe(v)}${hint}`);
      return undefined;
    }
    return value;
  }

  private machines(e: Entry | undefined): Record<string, MachineSpec> | undefined {
    return this.declarations(e, 'machines', 'machine', (me) => this.machine(me));
  }

  private machine(me: Entry): MachineSpec | undefined {
    const s = scope(`machine "${me.key}"`);
    const f = this.fields(
      me.value,
      me.at,
      me.keyNode,
      s,
      MACHINE_KEYS,
      [],
      'a mapping like { instance: g5.xlarge, gpus: 1 } or { kubernetes: a100, gpus: 1 }',
    );
    if (f === undefined) return undefined;
    if (f.has('kubernetes')) return this.kubernetesMachine(f, s);
    if (!f.has('instance')) {
      this.r.error(
        me.keyNode,
        `${s.subject} needs "instance" (EC2 instance types) or "kubernetes" (a Kubernetes machine class of this server)`,
      );
      return undefined;
    }
    return this.ec2Machine(f, s);
  }

  /** `{ kubernetes: <class>, gpus: N }`: the class itself is server-side (checked against policy later). */
  private kubernetesMachine(f: Map<string, Entry>, s: Scope): KubernetesMachineSpec | undefined {
    let ok = true;
    for (const k of EC2_ONLY_KEYS) {
      const e = f.get(k);
      if (e === undefined) continue;
      const what =
        k === 'instance'
          ? '"instance" and "kubernetes" exclude each other: a machine is either EC2 or Kubernetes'
          : `"${k}" only applies to EC2 machines (instance:); ${s.subject} is a Kubernetes machine`;
      this.r.error(e.keyNode, what);
      ok = false;
    }
    const ke = f.get('kubernetes')!;
    const cls = this.string(ke, s);
    if (cls !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(cls)) {
      this.r.error(
        ke.at,
        `"kubernetes"${s.of} must name a Kubernetes machine class of this server (lower-case letters, digits and "-"), got ${quote(cls)}`,
      );
      ok = false;
    }
    const ge = f.get('gpus');
    const gpus = ge === undefined ? 0 : this.integer(ge, s, 0, MAX_GPUS);
    if (!ok || cls === undefined || gpus === undefined) return undefined;
    return { kubernetes: cls, gpus };
  }

  private ec2Machine(f: Map<string, Entry>, s: Scope): Ec2MachineSpec | undefined {
    let ok = true;
    const instances = this.stringList(f.get('instance'), s, {
      single: true,
      nonEmpty: true,
      item: 'EC2 instance types',
    });
    if (instances === undefined) ok = false;
    for (const i of instances ?? []) {
      if (!INSTANCE_TYPE.test(i.text) || i.text.length > 64) {
        this.r.error(i.node, `${quote(i.text)} in "instance"${s.of} is not an EC2 instance type like g5.xlarge`);
        ok = false;
      }
    }
    const read = <T>(key: string, fn: (e: Entry) => T | undefined, fallback: T): T => {
      const entry = f.get(key);
      if (entry === undefined) return fallback;
      const v = fn(entry);
      if (v === undefined) {
        ok = false;
        return fallback;
      }
      return v;
    };
    const gpus = read('gpus', (x) => this.integer(x, s, 0, MAX_GPUS), 0);
    const spot = read('spot', (x) => this.boolean(x, s), false);
    const onDemandFallback = read('on_demand_fallback', (x) => this.boolean(x, s), true);
    const diskGb = read('disk_gb', (x) => this.integer(x, s, 1, MAX_DISK_GB), DEFAULT_DISK_GB);
    const ami = read<string | undefined>(
      'ami',
      (x) => {
        const t = this.string(x, s);
        if (t !== undefined && !AMI.test(t)) {
          this.r.error(
            x.at,
            `"ami"${s.of} must be an AMI id like ami-0123456789abcdef0 or an SSM parameter name like /aws/service/…, got ${quote(t)}`,
          );
          return undefined;
        }
        return t;
      },
      undefined,
    );
    if (!ok || instances === undefined) return undefined;
    const spec: Ec2MachineSpec = {
      instance: instances.map((i) => i.text),
      gpus,
      spot,
      on_demand_fallback: onDemandFallback,
      disk_gb: diskGb,
    };
    if (ami !== undefined) spec.ami = ami;
    return spec;
  }

  private steps(e: Entry | undefined): { spec: StepSpec; keyNode: Node; outputsOk: boolean }[] | undefined {
    if (e === undefined) return undefined;
    if (!isMap(e.value)) {
      this.r.error(e.at, `"steps" must be a mapping of step names to steps, got ${describe(e.value)}`);
      return undefined;
    }
    if (e.value.items.length === 0) {
      this.r.error(e.at, `"steps" is empty; a pipeline needs at least one step`);
      return undefined;
    }
    const out: { spec: StepSpec; keyNode: Node; outputsOk: boolean }[] = [];
    for (const se of this.r.entries(e.value, 'in "steps"')) {
      if (!this.checkName(se.key, se.keyNode, 'step')) continue;
      const step = this.step(se);
      if (step !== undefined) out.push(step);
    }
    return out;
  }

  /** A step with what could be read of it; a broken field is reported and left at its default
   * so that references to this step are still checked. */
  private step(se: Entry): { spec: StepSpec; keyNode: Node; outputsOk: boolean } | undefined {
    const s = scope(`step "${se.key}"`);
    const f = this.fields(
      se.value,
      se.at,
      se.keyNode,
      s,
      STEP_KEYS,
      ['image', 'run'],
      'a mapping with at least "image" and "run"',
    );
    const spec: StepSpec = {
      name: se.key,
      image: '',
      run: '',
      env: {},
      inputs: {},
      outputs: [],
      needs: [],
      timeoutSeconds: DEFAULT_TIMEOUT_SECONDS,
      retries: 0,
      cache: true,
      line: this.r.line(se.keyNode),
    };
    if (f === undefined) return { spec, keyNode: se.keyNode, outputsOk: false };

    const image = this.string(f.get('image'), s);
    if (image !== undefined) {
      if (image.length > 512 || !IMAGE_REF.test(image)) {
        this.r.error(
          f.get('image')!.at,
          `"image"${s.of} is not a container image reference like python:3.12-slim or ghcr.io/org/image@sha256:…; got ${quote(image)}`,
        );
      } else spec.image = image;
    }
    const runEntry = f.get('run');
    if (runEntry !== undefined) {
      if (isScalar(runEntry.value) && typeof runEntry.value.value === 'string') {
        spec.run = this.checkText(runEntry.value.value, runEntry.at, this.label('run', s), false) ?? '';
      } else if (isSeq(runEntry.value)) {
        spec.run = (this.stringList(runEntry, s, { nonEmpty: true }) ?? []).map((x) => x.text);
      } else {
        this.r.error(
          runEntry.at,
          `"run"${s.of} must be a command string or a list of arguments, got ${describe(runEntry.value)}`,
        );
      }
    }
    const code = this.stringList(f.get('code'), s, { item: 'repository paths' });
    if (code !== undefined) {
      spec.code = [];
      for (const c of code) {
        const p = repoPath(c.text);
        if (p.ok) spec.code.push(p.path);
        else this.r.error(c.node, `path ${quote(c.text)} in "code"${s.of} ${p.problem}`);
      }
    }
    this.env(f.get('env'), s, spec);
    this.secrets(f.get('secrets'), s, spec);
    this.inputs(f.get('inputs'), s, spec);
    const outputs = this.nameList(f.get('outputs'), s, 'output');
    const outputsOk =
      outputs !== undefined &&
      outputs.map((_, i) => this.caseClash(outputs, i, 'output', s, '/outputs')).every(Boolean);
    if (outputsOk) spec.outputs = outputs.map((o) => o.text);
    for (const n of this.nameList(f.get('needs'), s, 'step', { single: true }) ?? []) {
      spec.needs.push(n.text);
      this.refs.push({ from: se.key, node: n.node, kind: 'needs', target: n.text });
    }
    const me = f.get('machine');
    const machine = this.string(me, s);
    if (machine !== undefined) {
      spec.machine = machine;
      const secretsKey = f.get('secrets')?.keyNode;
      this.refs.push({
        from: se.key,
        node: me!.at,
        kind: 'machine',
        target: machine,
        ...(secretsKey ? { secretsNode: secretsKey } : {}),
      });
    }
    this.timeout(f.get('timeout'), s, spec);
    spec.retries = this.integer(f.get('retries'), s, 0, MAX_RETRIES) ?? 0;
    spec.cache = this.boolean(f.get('cache'), s) ?? true;
    const cv = f.get('cache_version');
    if (cv !== undefined) {
      const text = isScalar(cv.value) ? scalarText(cv.value) : undefined;
      if (text === undefined || text.includes('\0'))
        this.r.error(cv.at, `"cache_version"${s.of} must be a string or a number, got ${describe(cv.value)}`);
      else spec.cacheVersion = text;
    }
    const params = this.nameList(f.get('params'), s, 'parameter');
    if (params !== undefined) {
      spec.params = params.map((p) => p.text);
      for (const p of params) this.refs.push({ from: se.key, node: p.node, kind: 'param', target: p.text });
    }
    return { spec, keyNode: se.keyNode, outputsOk: !f.has('outputs') || outputsOk };
  }

  private env(e: Entry | undefined, s: Scope, spec: StepSpec): void {
    if (e === undefined) return;
    if (!isMap(e.value)) {
      this.r.error(e.at, `"env"${s.of} must be a mapping of variable names to values, got ${describe(e.value)}`);
      return;
    }
    for (const ve of this.r.entries(e.value, `in "env"${s.of}`)) {
      if (!ENV_NAME.test(ve.key)) {
        this.r.error(
          ve.keyNode,
          `environment variable name ${quote(ve.key)}${s.of} is not allowed; use letters, digits and "_", not starting with a digit`,
        );
        continue;
      }
      // Trainyard sets these after the step's own env, so the step's value would be lost silently.
      if (ve.key.startsWith(RESERVED_ENV_PREFIX)) {
        this.r.error(
          ve.keyNode,
          `environment variable ${quote(ve.key)}${s.of} is not allowed; Trainyard sets the ${RESERVED_ENV_PREFIX}* variables itself`,
        );
        continue;
      }
      const param = this.paramEnv.get(ve.key);
      if (param !== undefined) {
        this.r.error(
          ve.keyNode,
          `environment variable ${quote(ve.key)}${s.of} is where parameter ${quote(param)} arrives; the parameter's value would replace it, so rename the variable or the parameter`,
        );
        continue;
      }
      const text = isScalar(ve.value) ? scalarText(ve.value) : undefined;
      if (text === undefined) {
        const hint = ve.value === null ? '; write "" for an empty value' : '';
        this.r.error(
          ve.at,
          `environment variable "${ve.key}"${s.of} must be a string, number or boolean, got ${describe(ve.value)}${hint}`,
        );
      } else if (text.includes('\0')) {
        this.r.error(ve.at, `environment variable "${ve.key}"${s.of} must not contain a NUL character`);
      } else spec.env[ve.key] = text;
    }
  }

  /**
   * `secrets: [HF_TOKEN, WANDB_API_KEY]`: names only, each arriving as the environment variable
   * of that name, so one may not also be in `env`, nor be Trainyard's own (TRAINYARD_*) or a
   * parameter's (PARAM_*) variable.
   */
  private secrets(e: Entry | undefined, s: Scope, spec: StepSpec): void {
    const list = this.stringList(e, s, { item: 'secret names' });
    if (list === undefined || e === undefined) return;
    const names: string[] = [];
    for (const item of list) {
      if (!SECRET_NAME.test(item.text)) {
        this.r.error(item.node, `secret name ${quote(item.text)}${s.of} is not allowed; ${SECRET_NAME_RULE}`);
      } else if (names.includes(item.text)) {
        this.r.error(item.node, `secret ${quote(item.text)} is listed twice in "secrets"${s.of}`);
      } else if (Object.hasOwn(spec.env, item.text)) {
        this.r.error(
          item.node,
          `secret ${quote(item.text)}${s.of} is also set in "env"; the secret arrives in the environment variable of its name, so remove one of them`,
        );
      } else names.push(item.text);
    }
    if (names.length === list.length && names.length > 0) spec.secrets = names;
  }

  private inputs(e: Entry | undefined, s: Scope, spec: StepSpec): void {
    if (e === undefined) return;
    if (!isMap(e.value)) {
      this.r.error(e.at, `"inputs"${s.of} must be a mapping of input names to sources, got ${describe(e.value)}`);
      return;
    }
    const named: { text: string; node: Node }[] = [];
    for (const ie of this.r.entries(e.value, `in "inputs"${s.of}`)) {
      if (!this.checkName(ie.key, ie.keyNode, 'input')) continue;
      named.push({ text: ie.key, node: ie.keyNode });
      if (!this.caseClash(named, named.length - 1, 'input', s, '/inputs')) continue;
      if (!isScalar(ie.value) || typeof ie.value.value !== 'string') {
        this.r.error(
          ie.at,
          `input "${ie.key}"${s.of} must be a string (steps.<step>.outputs.<output>, s3://bucket/key, or a repository path), got ${describe(ie.value)}`,
        );
        continue;
      }
      const parsed = parseInput(ie.value.value);
      if (!parsed.ok) {
        this.r.error(ie.at, `input "${ie.key}"${s.of}: ${quote(ie.value.value)} ${parsed.problem}`);
        continue;
      }
      spec.inputs[ie.key] = parsed.source;
      if (parsed.source.kind === 'step') {
        this.refs.push({
          from: spec.name,
          node: ie.at,
          kind: 'input',
          target: parsed.source.step,
          input: ie.key,
          output: parsed.source.output,
        });
      }
    }
  }

  private timeout(e: Entry | undefined, s: Scope, spec: StepSpec): void {
    if (e === undefined) return;
    const v = isScalar(e.value) ? e.value.value : undefined;
    const seconds =
      typeof v === 'number'
        ? Number.isSafeInteger(v)
          ? v
          : undefined
        : typeof v === 'string'
          ? parseDuration(v)
          : undefined;
    if (seconds === undefined) {
      this.r.error(
        e.at,
        `"timeout"${s.of} must be a duration like 90s, 30m, 2h or 1h30m, or a number of seconds; got ${describe(e.value)}`,
      );
    } else if (seconds <= 0 || seconds > MAX_TIMEOUT_SECONDS) {
      this.r.error(
        e.at,
        `"timeout"${s.of} must be more than 0 and at most ${formatDuration(MAX_TIMEOUT_SECONDS)}; got ${describe(e.value)}`,
      );
    } else spec.timeoutSeconds = seconds;
  }

  // ── whole-file checks ──────────────────────────────────────────────────────────────

  private checkReferences(
    steps: { spec: StepSpec; outputsOk: boolean }[],
    params: Record<string, ParamSpec> | undefined,
    machines: Record<string, MachineSpec> | undefined,
  ): void {
    const byName = new Map(steps.map((s) => [s.spec.name, s]));
    const stepNames = [...byName.keys()];
    for (const ref of this.refs) {
      const where = `step "${ref.from}"`;
      switch (ref.kind) {
        case 'machine':
          if (machines !== undefined && !Object.hasOwn(machines, ref.target)) {
            const names = Object.keys(machines);
            const hint =
              didYouMean(ref.target, names) ||
              (names.length === 0 ? '; declare it under "machines"' : `; the machines are ${names.join(', ')}`);
            this.r.error(ref.node, `${where} uses machine ${quote(ref.target)}, which is not declared${hint}`);
          } else if (machines !== undefined && ref.secretsNode !== undefined && 'kubernetes' in machines[ref.target]!) {
            this.r.error(
              ref.secretsNode,
              `${where} runs on Kubernetes machine ${quote(ref.target)}, where "secrets" are not supported yet; run the step on this host or an EC2 machine, or give the pod a Secret through the server's Kubernetes class (pod template patch)`,
            );
          }
          break;
        case 'param':
          if (params !== undefined && !Object.hasOwn(params, ref.target)) {
            const names = Object.keys(params);
            const hint =
              didYouMean(ref.target, names) ||
              (names.length === 0 ? '; declare it under "params"' : `; the parameters are ${names.join(', ')}`);
            this.r.error(ref.node, `${where} lists parameter ${quote(ref.target)}, which is not declared${hint}`);
          }
          break;
        case 'needs':
        case 'input': {
          const subject =
            ref.kind === 'needs'
              ? `${where} needs step ${quote(ref.target)}`
              : `input "${ref.input}" of ${where} refers to step ${quote(ref.target)}`;
          if (ref.target === ref.from) {
            this.r.error(
              ref.node,
              ref.kind === 'needs'
                ? `${where} lists itself in "needs"; a step cannot wait for itself`
                : `input "${ref.input}" of ${where} refers to the step itself; a step cannot use its own outputs`,
            );
            break;
          }
          const target = byName.get(ref.target);
          if (target === undefined) {
            const hint = didYouMean(
              ref.target,
              stepNames.filter((n) => n !== ref.from),
            );
            this.r.error(ref.node, `${subject}, which does not exist${hint}`);
            break;
          }
          if (ref.kind === 'input' && target.outputsOk && !target.spec.outputs.includes(ref.output!)) {
            const outs = target.spec.outputs;
            const hint =
              didYouMean(ref.output!, outs) ||
              (outs.length === 0
                ? `; step "${ref.target}" declares no outputs`
                : `; its outputs are ${outs.join(', ')}`);
            this.r.error(
              ref.node,
              `input "${ref.input}" of ${where} wants output ${quote(ref.output!)} of step "${ref.target}", which that step does not declare${hint}`,
            );
          }
        }
      }
    }
  }

  private order(steps: { spec: StepSpec; keyNode: Node }[]): string[] | undefined {
    const names = steps.map((s) => s.spec.name);
    const deps = new Map<string, string[]>(names.map((n) => [n, []]));
    const edgeNode = new Map<string, Node>();
    for (const ref of this.refs) {
      const d = deps.get(ref.from);
      if (d === undefined || (ref.kind !== 'needs' && ref.kind !== 'input')) continue;
      if (!d.includes(ref.target)) d.push(ref.target);
      const key = `${ref.from}\0${ref.target}`;
      if (!edgeNode.has(key)) edgeNode.set(key, ref.node);
    }
    const cycles = findCycles(names, deps);
    for (const c of cycles) {
      this.r.error(
        edgeNode.get(`${c[0]}\0${c[1]}`),
        `cycle: ${c.join(' → ')} (each step needs the one after it, so none can start)`,
      );
    }
    return cycles.length > 0 ? undefined : topologicalOrder(names, deps);
  }
}

/** Exposed for the schema test: the parser's own notion of each level's keys. */
export const PIPELINE_KEYS = {
  top: TOP_KEYS,
  on: ON_KEYS,
  concurrency: CONCURRENCY_KEYS,
  push: PUSH_KEYS,
  param: PARAM_KEYS,
  machine: MACHINE_KEYS,
  step: STEP_KEYS,
} as const;
