// The kinds of value a setting can hold, each a zod schema over the variable's trimmed text
// plus the words used when it is wrong ("must be <expects>"). Every setting of a kind is
// parsed the same way: one boolean spelling, one port range, one URL rule.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';

/** A kind of value: `schema` parses the trimmed variable text; `expects` completes "must be …". */
export interface Kind<T> {
  schema: z.ZodType<T, string>;
  expects: string;
}

function kind<T>(expects: string, schema: z.ZodType<T, string>): Kind<T> {
  return { expects, schema };
}

/** A whole number from `min` to `max`, inclusive. */
export function int(min: number, max: number): Kind<number> {
  return kind(
    `a whole number from ${min} to ${max}`,
    z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max)),
  );
}

/** A non-negative decimal number. */
export function decimal(what: string): Kind<number> {
  return kind(
    `a non-negative number (${what})`,
    z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .transform(Number),
  );
}

export const port: Kind<number> = kind(
  'a port number from 1 to 65535',
  z
    .string()
    .regex(/^\d{1,5}$/)
    .transform(Number)
    .pipe(z.number().min(1).max(65535)),
);

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];
/** The one boolean spelling of every setting: 1/0, true/false, yes/no, on/off, any case. */
export const bool: Kind<boolean> = kind(
  'true or false (1/0, yes/no, on/off)',
  z
    .string()
    .toLowerCase()
    .pipe(z.enum([...TRUE, ...FALSE]))
    .transform((v) => TRUE.includes(v)),
);

export function oneOf<const V extends readonly [string, ...string[]]>(values: V): Kind<V[number]> {
  return kind(`one of ${values.join(', ')}`, z.enum(values) as unknown as z.ZodType<V[number], string>);
}

/** Any non-empty text. */
export function text(expects = 'a non-empty text'): Kind<string> {
  return kind(expects, z.string().min(1));
}

/** Text matching `re`. */
export function matching(re: RegExp, expects: string): Kind<string> {
  return kind(expects, z.string().regex(re));
}

/** An http(s) URL; trailing slashes are dropped. */
export const httpUrl: Kind<string> = kind(
  'an http(s) URL',
  z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
);

export const absPath: Kind<string> = kind(
  'an absolute path',
  z.string().refine((p) => isAbsolute(p)),
);

/**
 * A file read at start: an absolute or relative path that can be read now; the value is the
 * path and its bytes. A missing or unreadable file fails with the reason.
 */
export const readableFile: Kind<{ path: string; bytes: Buffer }> = kind(
  'a readable file',
  z.string().transform((path, ctx) => {
    try {
      return { path, bytes: readFileSync(path) };
    } catch (e) {
      ctx.issues.push({
        code: 'custom',
        message: (e as Error).message,
        input: path,
        params: { detail: (e as NodeJS.ErrnoException).code ?? (e as Error).message },
      });
      return z.NEVER;
    }
  }),
);

/** host:port of a gRPC frontend. */
export const hostPort: Kind<string> = matching(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'host:port');

/** A Temporal task queue name. */
export const queue: Kind<string> = matching(
  /^[A-Za-z0-9._:-]{1,200}$/,
  'a task queue name of letters, digits, . _ : - (at most 200)',
);

/** A comma-separated list whose every item matches `item`; empty items are dropped. */
export function list(item: RegExp, what: string): Kind<string[]> {
  return kind(
    `a comma-separated list of ${what}`,
    z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      )
      .pipe(z.array(z.string().regex(item))),
  );
}

/** Where the artifact store lives. */
export const storeLocation: Kind<string> = kind(
  'an absolute path, file:///path or s3://bucket/prefix',
  z.string().refine((s) => s.startsWith('s3://') || s.startsWith('file:') || isAbsolute(s)),
);

export const awsRegion: Kind<string> = matching(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region like us-east-1');

export const logLevel = oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const);
