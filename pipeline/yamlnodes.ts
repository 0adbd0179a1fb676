// Reading a parsed YAML document node by node, so that every error can point at the exact
// key or value it is about. The document is never turned into plain JS (no toJS), so an
// alias is followed only where the pipeline format reads a value, never expanded blindly.
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Alias,
  type Document,
  type LineCounter,
  type Node,
  type Scalar,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import type { PipelineError } from './types.js';
import { quote } from './names.js';

export type Value = Scalar | YAMLMap | YAMLSeq;

/** One key of a mapping, after merge keys (`<<: *defaults`) are applied. */
export interface Entry {
  key: string;
  keyNode: Node;
  /** null when the key has no value (`image:`) or an explicit null. */
  value: Value | null;
  /** Where to point at the value: the value itself, or the key when the value is empty. */
  at: Node;
}

/** Stop collecting after this many: a broken file should give a readable list, not a wall. */
export const MAX_ERRORS = 100;

export class NodeReader {
  readonly errors: PipelineError[] = [];
  private readonly resolved = new Map<Alias, Value | null>();
  private truncated = false;

  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  position(node: Node | null | undefined): { line: number; column: number } {
    const offset = node?.range?.[0] ?? 0;
    const p = this.lines.linePos(offset);
    return { line: p.line, column: p.col };
  }

  line(node: Node | null | undefined): number {
    return this.position(node).line;
  }

  error(node: Node | null | undefined, message: string): void {
    if (this.errors.length >= MAX_ERRORS) {
      this.truncated = true;
      return;
    }
    this.errors.push({ file: this.file, ...this.position(node), message });
  }

  /** Errors sorted by position; a last line says when some were left out. */
  sortedErrors(): PipelineError[] {
    const sorted = [...this.errors].sort((a, b) => a.line - b.line || a.column - b.column);
    if (this.truncated) {
      const last = sorted[sorted.length - 1];
      sorted.push({
        file: this.file,
        line: last?.line ?? 1,
        column: last?.column ?? 1,
        message: `too many errors; only the first ${MAX_ERRORS} are shown`,
      });
    }
    return sorted;
  }

  /** Follows an alias to its anchored node; null for an absent value or an explicit null. */
  resolve(node: unknown): Value | null {
    let n: unknown = node;
    if (isAlias(n)) {
      const alias = n;
      if (!this.resolved.has(alias)) {
        const target = alias.resolve(this.doc);
        this.resolved.set(alias, target === undefined || isAlias(target) ? null : (target as Value));
      }
      n = this.resolved.get(alias);
    }
    if (n === null || n === undefined) return null;
    if (isScalar(n)) return n.value === null ? null : n;
    if (isMap(n) || isSeq(n)) return n;
    return null;
  }

  /**
   * The entries of a mapping in file order. Duplicate keys are errors; `<<: *anchor`
   * merges another mapping's keys under the explicit ones, as YAML 1.1 merge keys do.
   */
  entries(map: YAMLMap, scope: string): Entry[] {
    return this.collect(map, scope, new Set<YAMLMap>(), true);
  }

  private collect(map: YAMLMap, scope: string, visiting: Set<YAMLMap>, report: boolean): Entry[] {
    visiting.add(map);
    const explicit = new Map<string, Entry>();
    const merged: YAMLMap[] = [];
    for (const pair of map.items) {
      const keyNode = (pair.key ?? map) as Node;
      const key = this.resolve(pair.key);
      if (!isScalar(key) || typeof key.value === 'object') {
        if (report)
          this.error(
            keyNode,
            `keys ${scope} must be plain names, not ${key === null ? 'empty' : isMap(key) ? 'mappings' : 'lists'}`,
          );
        continue;
      }
      const name = String(key.value);
      if (name === '<<' && key.type === 'PLAIN' && !isAlias(pair.key)) {
        merged.push(...this.mergeSources(pair.value, keyNode, scope, report));
        continue;
      }
      const first = explicit.get(name);
      if (first !== undefined) {
        if (report)
          this.error(
            keyNode,
            `duplicate key ${quote(name)} ${scope} (first given on line ${this.line(first.keyNode)})`,
          );
        continue;
      }
      const value = this.resolve(pair.value);
      explicit.set(name, { key: name, keyNode, value, at: value ?? keyNode });
    }
    const result = [...explicit.values()];
    for (const source of merged) {
      if (visiting.has(source)) continue;
      for (const e of this.collect(source, scope, visiting, false)) {
        if (!explicit.has(e.key)) {
          explicit.set(e.key, e);
          result.push(e);
        }
      }
    }
    visiting.delete(map);
    return result;
  }

  private mergeSources(valueNode: unknown, keyNode: Node, scope: string, report: boolean): YAMLMap[] {
    const refs = isSeq(valueNode) ? valueNode.items : [valueNode];
    const maps: YAMLMap[] = [];
    for (const ref of refs) {
      const target = this.resolve(ref);
      if (isAlias(ref) && isMap(target)) maps.push(target);
      else if (report)
        this.error(keyNode, `the merge key "<<" ${scope} must name mappings by alias, like <<: *defaults`);
    }
    return maps;
  }
}

/** How a value looks, for "must be X, got Y" messages. */
export function describe(value: Value | null): string {
  if (value === null) return 'nothing';
  if (isMap(value)) return 'a mapping';
  if (isSeq(value)) return 'a list';
  const v = value.value;
  if (typeof v === 'string') return `the text ${quote(v, 40)}`;
  if (typeof v === 'number' || typeof v === 'bigint') return `the number ${value.source ?? String(v)}`;
  if (typeof v === 'boolean') return `the boolean ${String(v)}`;
  return 'a value of an unsupported kind';
}

/** The text a scalar stands for, as the user wrote it where that matters (`1e-3` stays `1e-3`). */
export function scalarText(value: Scalar): string | undefined {
  const v = value.value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint')
    return value.type === 'PLAIN' && value.source ? value.source : String(v);
  if (typeof v === 'boolean') return String(v);
  return undefined;
}
