/** Parsers for command-line values: each error names the flag, the value and what is allowed. */
import { InvalidArgumentError } from 'commander';

/** An integer in [min, max]. */
export function integerIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    }
    return parsed;
  };
}

/** Any safe integer (seeds). */
export function seedValue(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(parsed)) {
    throw new InvalidArgumentError(`expected an integer seed, got ${JSON.stringify(value)}.`);
  }
  return parsed;
}

/** A number in [min, max]. */
export function numberIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    }
    return parsed;
  };
}
