/**
 * Parsers for command-line values: each error names the flag, the value and what is allowed.
 * Numbers are decimal only ("12", "-3", "0.5", "1e-3"): JavaScript's Number() also takes "0x10",
 * "0b11", "0o7", "Infinity" and surrounding spaces, forms a user would not mean.
 */
import { InvalidArgumentError } from 'commander';

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const DECIMAL_INTEGER = /^[+-]?\d+$/;

/** `text` as a number when it is written in decimal, else NaN. */
export function decimalNumber(text: string): number {
  return DECIMAL.test(text) ? Number(text) : Number.NaN;
}

/** `text` as an integer when it is a plain decimal integer ("42", "-7"), else NaN. */
export function decimalInteger(text: string): number {
  return DECIMAL_INTEGER.test(text) ? Number(text) : Number.NaN;
}

/** An integer in [min, max]. */
export function integerIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = decimalInteger(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    }
    return parsed;
  };
}

/** Any safe integer (seeds). */
export function seedValue(value: string): number {
  const parsed = decimalInteger(value);
  if (!Number.isSafeInteger(parsed)) {
    throw new InvalidArgumentError(`expected an integer seed, got ${JSON.stringify(value)}.`);
  }
  return parsed;
}

/** A number in [min, max]. */
export function numberIn(min: number, max: number) {
  return (value: string): number => {
    const parsed = decimalNumber(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
    }
    return parsed;
  };
}
