// Turning `key=value` strings (CLI arguments, a `/train` comment) into typed parameter
// values, checked against the pipeline's declarations, with defaults applied.
import type { ParamSpec, ParamValue, Pipeline } from './types.js';
import { NAME_RULE, didYouMean, isName, quote } from './names.js';
import { describeParamType, paramValueError } from './paramtypes.js';

/** Long enough for any real value; a cap keeps a hostile comment out of env vars and logs. */
export const MAX_PARAM_VALUE_LENGTH = 4096;

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseValue(spec: ParamSpec, text: string): ParamValue | undefined {
  switch (spec.type) {
    case 'integer':
      return INTEGER.test(text) ? Number(text) : undefined;
    case 'number':
      return NUMBER.test(text) ? Number(text) : undefined;
    case 'boolean': {
      const t = text.toLowerCase();
      return t === 'true' ? true : t === 'false' ? false : undefined;
    }
    case 'enum':
    case 'string':
      return text;
  }
}

export function resolveParams(
  pipeline: Pipeline,
  given: Record<string, string>,
): { values: Record<string, ParamValue>; errors: string[] } {
  const values: Record<string, ParamValue> = {};
  const errors: string[] = [];
  const declared = Object.keys(pipeline.params);
  for (const [name, text] of Object.entries(given)) {
    const spec = Object.hasOwn(pipeline.params, name) ? pipeline.params[name] : undefined;
    if (spec === undefined) {
      const hint =
        didYouMean(name, declared) ||
        (declared.length === 0
          ? `; pipeline "${pipeline.name}" declares no parameters`
          : `; its parameters are ${declared.join(', ')}`);
      errors.push(`unknown parameter ${quote(name)} for pipeline "${pipeline.name}"${hint}`);
      continue;
    }
    if (text.length > MAX_PARAM_VALUE_LENGTH) {
      errors.push(
        `parameter "${name}" is ${text.length} characters long; values may be at most ${MAX_PARAM_VALUE_LENGTH}`,
      );
      continue;
    }
    const value = parseValue(spec, text.trim() === text || spec.type === 'string' ? text : text.trim());
    if (value === undefined || paramValueError(spec, value) !== undefined) {
      errors.push(`parameter "${name}" must be ${describeParamType(spec)}, got ${quote(text)}`);
      continue;
    }
    values[name] = value;
  }
  for (const [name, spec] of Object.entries(pipeline.params)) {
    if (Object.hasOwn(values, name) || Object.hasOwn(given, name)) continue;
    if (spec.default !== undefined) values[name] = spec.default;
    else
      errors.push(
        `parameter "${name}" (${describeParamType(spec)}) has no default and must be given, like ${name}=<value>`,
      );
  }
  return { values, errors };
}

/**
 * `["epochs=20", "lr=3e-4"]` → `{ epochs: "20", lr: "3e-4" }`; split at the first `=`. Names
 * follow the same grammar as in the pipeline file (pipeline/names.ts), as in `/train` comments.
 */
export function parseParamArgs(args: string[]): { given: Record<string, string>; errors: string[] } {
  const given: Record<string, string> = {};
  const errors: string[] = [];
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      errors.push(`${quote(arg)} is not a parameter assignment; write name=value`);
      continue;
    }
    const name = arg.slice(0, eq);
    if (!isName(name)) {
      errors.push(`${quote(name)} is not a parameter name; ${NAME_RULE}`);
      continue;
    }
    if (Object.hasOwn(given, name)) {
      errors.push(`parameter "${name}" is given twice`);
      continue;
    }
    // defineProperty: a plain assignment to `__proto__` would be swallowed instead of reported as unknown.
    Object.defineProperty(given, name, {
      value: arg.slice(eq + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { given, errors };
}
