// What a parameter accepts, in words, and whether a value fits: shared by the parser
// (checking defaults) and by resolveParams (checking `key=value` from the CLI or a comment).
import type { ParamSpec, ParamValue } from './types.js';

function range(spec: ParamSpec): string {
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  if (min !== undefined) return ` of at least ${min}`;
  if (max !== undefined) return ` of at most ${max}`;
  return '';
}

/** `an integer between 1 and 100`, `one of small, large`, `true or false`. */
export function describeParamType(spec: ParamSpec): string {
  switch (spec.type) {
    case 'integer':
      return `an integer${range(spec)}`;
    case 'number':
      return `a number${range(spec)}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${(spec.values ?? []).join(', ')}`;
    case 'string':
      return 'a string';
  }
}

/** Why `value` does not fit `spec`, or undefined when it does. */
export function paramValueError(spec: ParamSpec, value: ParamValue): string | undefined {
  switch (spec.type) {
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'not a number';
      if (spec.type === 'integer' && !Number.isSafeInteger(value)) return 'not an integer';
      if (spec.min !== undefined && value < spec.min) return 'too small';
      if (spec.max !== undefined && value > spec.max) return 'too large';
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'not a boolean';
    case 'enum':
      return typeof value === 'string' && (spec.values ?? []).includes(value) ? undefined : 'not an allowed value';
    case 'string':
      if (typeof value !== 'string') return 'not a string';
      return value.includes('\0') ? 'contains a NUL character' : undefined;
  }
}
