/**
 * Validation at the boundary: every options object the library accepts is parsed once with a
 * zod schema, and failures become one LatentBlendError that names each bad key, the value given
 * and what is allowed.
 */
import { z } from 'zod';
import { LatentBlendError } from '../errors.ts';

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return typeof value;
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** Formats a key path as `keyframes[3].seed`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) => (typeof key === 'number' ? `[${key}]` : index === 0 ? String(key) : `.${String(key)}`))
    .join('');
}

/**
 * Parses `input` with `schema`; on failure throws a LatentBlendError listing every problem as
 * `<key path>: <what is allowed>, got <value>`.
 */
export function parseOptions<Schema extends z.ZodType>(schema: Schema, input: unknown, what = 'options'): z.output<Schema> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const where = issue.path.length > 0 ? formatPath(issue.path as PropertyKey[]) : what;
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
    }
    return `${where}: ${issue.message}, got ${describeValue(valueAt(input, issue.path as PropertyKey[]))}`;
  });
  throw new LatentBlendError(`Invalid ${what}:\n  ${lines.join('\n  ')}`);
}

/** An integer seed: any safe integer. */
export const seedSchema = z
  .number({ error: 'expected an integer seed' })
  .int({ error: 'expected an integer seed' })
  .refine(Number.isSafeInteger, { error: 'expected a safe integer seed (|seed| < 2^53)' });

/** A number in [min, max] with a message naming the range. */
export function rangeSchema(min: number, max: number, kind: 'number' | 'integer' = 'number') {
  const message = `expected ${kind === 'integer' ? 'an integer' : 'a number'} from ${min} to ${max}`;
  let schema = z.number({ error: message });
  if (kind === 'integer') schema = schema.int({ error: message });
  return schema.min(min, { error: message }).max(max, { error: message });
}
