/**
 * Output files that are never half-written and never overwritten by accident.
 *
 * Every writer goes through here, so that file-system failures (full disk, a file where a folder
 * is needed, a read-only or special file system) become one clear error naming the user's path
 * (see fileSystemError), nothing half-written stays behind, and leftovers of a killed run
 * (`.<name>.<pid>-<random>.partial`) are removed by the next run that writes the same output.
 */
import { accessSync, constants, closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, basename, join, resolve, parse, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LatentBlendError, fileSystemError } from '../errors.ts';

/**
 * Creates `dir` and its missing parents one at a time, stopping at the first failure (Node's
 * recursive mkdir retries forever on some special file systems such as /proc). Throws a
 * LatentBlendError naming the first part of the path that cannot be a folder.
 */
export function ensureFolder(dir: string): void {
  const absolute = resolve(dir);
  const { root } = parse(absolute);
  const parts = absolute.slice(root.length).split(sep).filter((part) => part !== '');
  let current = root;
  for (const part of parts) {
    current = join(current, part);
    let isFolder: boolean | undefined;
    try {
      isFolder = statSync(current).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileSystemError(error, current, 'write');
    }
    if (isFolder === true) continue;
    if (isFolder === false) {
      throw new LatentBlendError(`cannot write into ${dir}: ${current} is a file, not a folder (ENOTDIR); remove or rename that file, or choose another path.`, 'file_system');
    }
    try {
      mkdirSync(current);
    } catch (error) {
      // Another process made it in the meantime: fine when it is a folder now.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(current, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw fileSystemError(error, current, 'write');
    }
  }
}

/**
 * Checks, without creating anything, that the folder `dir` exists and takes new files, or can be
 * created: its deepest existing ancestor must be a writable folder. Throws like ensureFolder.
 */
export function checkFolderCreatable(dir: string): void {
  let current = resolve(dir);
  for (;;) {
    let stat: ReturnType<typeof statSync> | undefined;
    try {
      stat = statSync(current, { throwIfNoEntry: false });
    } catch (error) {
      // ENOTDIR: a part above is a file; it is found (and named) further up.
      if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw fileSystemError(error, current, 'write');
    }
    if (stat !== undefined) {
      if (!stat.isDirectory()) {
        throw new LatentBlendError(`cannot write into ${dir}: ${current} is a file, not a folder (ENOTDIR); remove or rename that file, or choose another path.`, 'file_system');
      }
      try {
        accessSync(current, constants.W_OK);
      } catch (error) {
        throw fileSystemError(error, current, 'write');
      }
      return;
    }
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/** Whether a process with this id runs (a leftover of a live process is still being written). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Removes the temporary siblings of `path` (files or folders) that a killed run left behind:
 * `.<name>.<pid>-<hex>.partial` whose process is gone (and the older `.<name>.<hex>.partial`).
 * Returns the names removed. Never throws: a leftover that cannot be removed is left alone.
 */
export function cleanLeftovers(path: string): string[] {
  const folder = dirname(path) || '.';
  const pattern = new RegExp(`^\\.${escapeRegExp(basename(path))}\\.(?:(\\d+)-)?[0-9a-f]{8}\\.partial(?:\\.old)?$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = pattern.exec(name);
    if (match === null) continue;
    if (match[1] !== undefined && processAlive(Number(match[1]))) continue;
    try {
      rmSync(join(folder, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // Not ours to fix here; the write itself reports real problems.
    }
  }
  return removed;
}

/** Checks that files can be created in `dir` (the folder of `path`) by creating and removing one. */
function checkWritable(dir: string, path: string): void {
  const probe = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.partial`);
  try {
    closeSync(openSync(probe, 'wx'));
    unlinkSync(probe);
  } catch (error) {
    throw fileSystemError(error, path, 'write');
  }
}

/**
 * Throws when `path` exists and `force` is not set; otherwise creates its folder, checks that
 * files can be written there (before any computing) and removes leftovers of killed runs.
 */
export function prepareOutput(path: string, force: boolean): void {
  if (existsSync(path) && !force) {
    throw new LatentBlendError(`${path} already exists; use --force to overwrite it.`, 'exists');
  }
  const dir = dirname(path) || '.';
  ensureFolder(dir);
  checkWritable(dir, path);
  cleanLeftovers(path);
}

/** A temporary path beside `path` (same folder, so the final rename is atomic), naming this process. */
export function temporarySibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.partial`);
}

/**
 * Writes `path` atomically: `write` fills a temporary sibling, which is renamed over `path` only
 * when it completed; on failure the temporary file is removed and nothing else changes.
 * File-system failures are reported by fileSystemError, naming `path`.
 */
export async function writeAtomically(path: string, force: boolean, write: (temporaryPath: string) => Promise<void> | void): Promise<void> {
  prepareOutput(path, force);
  const temporary = temporarySibling(path);
  try {
    await write(temporary);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true, recursive: true });
    throw fileSystemError(error, path, 'write');
  }
}

/** Writes bytes atomically. */
export async function writeFileAtomically(path: string, data: Uint8Array | string, force: boolean): Promise<void> {
  await writeAtomically(path, force, (temporary) => writeFileSync(temporary, data));
}
