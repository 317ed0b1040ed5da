/**
 * Paths read from files the user did not write themselves (film.json, transition.json, frame and
 * latent lists) are untrusted: work folders get copied, shared and edited. The one rule for them
 * is resolveInside: the path, after following every symbolic link, must stay inside one of the
 * folders the user named (the work folder, the output folder), or it is refused.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { LatentBlendError } from '../errors.ts';

/** Whether `path` is `root` or below it (both absolute, normalised). */
function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * The real path of `path`, which need not exist yet: the deepest existing ancestor is resolved
 * with realpath (following links), the missing rest appended as written.
 */
export function realpathLenient(path: string): string {
  const absolute = resolve(path);
  const missing: string[] = [];
  let current = absolute;
  for (;;) {
    try {
      return join(realpathSync(current), ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A dangling link is not "missing": its target is somewhere we have not checked.
      if (code === 'ENOENT' && lstatSync(current, { throwIfNoEntry: false })?.isSymbolicLink()) {
        throw new LatentBlendError(`${current} is a symbolic link to a missing file; refusing to follow it.`, 'unsafe_path');
      }
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      const parent = dirname(current);
      if (parent === current) return absolute;
      missing.push(basename(current));
      current = parent;
    }
  }
}

/**
 * Resolves `path` (absolute, or relative to the first root) and checks that it stays inside one
 * of `roots` after following symbolic links. Returns the real absolute path. Throws a
 * LatentBlendError (code 'unsafe_path') naming `what` (e.g. "film.json's out") and the path.
 */
export function resolveInside(roots: string | readonly string[], path: string, what: string): string {
  const list = typeof roots === 'string' ? [roots] : roots;
  if (list.length === 0) throw new Error('resolveInside needs at least one root');
  if (typeof path !== 'string' || path === '' || path.includes('\0')) {
    throw new LatentBlendError(`${what} is not a usable path (${JSON.stringify(path)}).`, 'unsafe_path');
  }
  const realRoots = list.map((root) => realpathLenient(root));
  const candidate = resolve(realRoots[0]!, path);
  const real = realpathLenient(candidate);
  if (!realRoots.some((root) => isWithin(root, real))) {
    const where = list.length === 1 ? list[0]! : `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]!}`;
    const link = real !== candidate ? ` (through a symbolic link, to ${real})` : '';
    throw new LatentBlendError(`${what} ${JSON.stringify(path)} points outside ${where}${link}; refusing to use it.`, 'unsafe_path');
  }
  return real;
}
