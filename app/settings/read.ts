// Reading settings from an environment through the schema: empty counts as unset, other
// names (older ones, Probot's) are accepted unless they contradict the canonical one, and a
// bad value throws SettingError naming the variable that holds it and what it expects.
import { SettingError } from './errors.js';
import { SETTINGS, type Setting, type SettingName, type SettingValue } from './schema.js';

export type Env = Record<string, string | undefined>;

function rawOf(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/**
 * The text of a setting and the variable it came from, or undefined when neither the name
 * nor any alias is set. Throws SettingError when an alias and the canonical name (or two
 * aliases) are both set to different values.
 */
export function rawSetting(env: Env, name: SettingName): { variable: string; text: string } | undefined {
  const spec: Setting = SETTINGS[name];
  const found = [name, ...(spec.aliases ?? []).map((a) => a.name)].flatMap((v) => {
    const text = rawOf(env, v);
    return text === undefined ? [] : [{ variable: v, text }];
  });
  const first = found[0];
  if (!first) return undefined;
  const other = found.find((f) => f.text !== first.text);
  if (other) {
    const alias = spec.aliases?.find((a) => a.name === other.variable);
    const values = spec.secret ? '' : ` (${other.text} vs ${first.text})`;
    throw new SettingError(
      other.variable,
      `is ${alias?.is ?? 'another name'} of ${name} and ${first.variable} says something else${values}; set one of them`,
    );
  }
  return first;
}

/** Whether the setting (or one of its other names) is set to something non-empty. */
export function isSet(env: Env, name: SettingName): boolean {
  return [name, ...((SETTINGS[name] as Setting).aliases?.map((a) => a.name) ?? [])].some(
    (v) => rawOf(env, v) !== undefined,
  );
}

/**
 * The parsed value of a setting, its default when unset (undefined when it has none).
 * Throws SettingError: `VARIABLE: must be <what it expects>, got "<text>"`.
 */
export function setting<N extends SettingName>(env: Env, name: N): SettingValue<N> {
  const spec: Setting = SETTINGS[name];
  const raw = rawSetting(env, name);
  if (!raw) return spec.default as SettingValue<N>;
  const r = spec.kind.schema.safeParse(raw.text);
  if (r.success) return r.data as SettingValue<N>;
  const shown = spec.secret ? `a value of ${raw.text.length} characters` : JSON.stringify(raw.text);
  const detail = r.error.issues.map((i) => (i.code === 'custom' && i.params?.detail ? i.message : '')).find(Boolean);
  throw new SettingError(raw.variable, `must be ${spec.kind.expects}, got ${shown}${detail ? ` (${detail})` : ''}`);
}

/** The variable a setting is read from in `env` (the alias when only that is set), for messages. */
export function variableOf(env: Env, name: SettingName): string {
  return rawSetting(env, name)?.variable ?? name;
}
