/** Output files that are never half-written and never overwritten by accident. */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LatentBlendError } from '../errors.ts';

/** Throws when `path` exists and `force` is not set; creates its folder otherwise. */
export function prepareOutput(path: string, force: boolean): void {
  if (existsSync(path) && !force) {
    throw new LatentBlendError(`${path} already exists; use --force to overwrite it.`, 'exists');
  }
  mkdirSync(dirname(path) || '.', { recursive: true });
}

/** A temporary path beside `path` (same folder, so the final rename is atomic). */
export function temporarySibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.partial`);
}

/**
 * Writes `path` atomically: `write` fills a temporary sibling, which is renamed over `path` only
 * when it completed; on failure the temporary file is removed and nothing else changes.
 */
export async function writeAtomically(path: string, force: boolean, write: (temporaryPath: string) => Promise<void> | void): Promise<void> {
  prepareOutput(path, force);
  const temporary = temporarySibling(path);
  try {
    await write(temporary);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Writes bytes atomically. */
export async function writeFileAtomically(path: string, data: Uint8Array | string, force: boolean): Promise<void> {
  await writeAtomically(path, force, (temporary) => writeFileSync(temporary, data));
}
