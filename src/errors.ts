/**
 * The one error class for user mistakes and environment problems (bad option, bad model folder,
 * missing execution provider). Front ends print its message without a stack trace; anything else
 * that escapes is a bug and is shown in full.
 */
export class LatentBlendError extends Error {
  constructor(
    message: string,
    /** Machine-readable category, e.g. 'invalid_input', 'model_folder', 'unavailable'. */
    readonly code: string = 'invalid_input',
  ) {
    super(message);
    this.name = 'LatentBlendError';
  }
}

/** What each file-system error means for the user, and what to do about it. */
const FILE_SYSTEM_ERRORS: Readonly<Record<string, { what: string; fix: string }>> = {
  ENOSPC: { what: 'no space left on the device', fix: 'free some space and run the same command again (finished work is reused)' },
  EDQUOT: { what: 'the disk quota is exceeded', fix: 'free some space and run the same command again (finished work is reused)' },
  EEXIST: { what: 'a file is in the way where a folder is needed', fix: 'remove or rename that file, or choose another path' },
  ENOTDIR: { what: 'a part of the path is a file, not a folder', fix: 'remove or rename that file, or choose another path' },
  EISDIR: { what: 'it is a folder, not a file', fix: 'choose a file name' },
  ENOENT: { what: 'a folder of the path does not exist or cannot hold files', fix: 'create the folder or choose another path' },
  EACCES: { what: 'permission denied', fix: 'choose a folder you can write to, or change its permissions' },
  EPERM: { what: 'operation not permitted', fix: 'choose a folder you can write to, or change its permissions' },
  EROFS: { what: 'the file system is read-only', fix: 'choose a folder on a writable disk' },
  ENAMETOOLONG: { what: 'the name is too long', fix: 'choose a shorter path' },
  ELOOP: { what: 'too many symbolic links in the path', fix: 'choose another path' },
  EMFILE: { what: 'too many open files', fix: 'raise the open-file limit (ulimit -n) and run again' },
  EIO: { what: 'an input/output error of the device', fix: 'check the disk and run again' },
  EXDEV: { what: 'the path crosses devices', fix: 'choose a path on one disk' },
  EBUSY: { what: 'the file or folder is busy', fix: 'close what uses it and run again' },
  EINVAL: { what: 'the file system refused the name or operation', fix: 'choose a path on an ordinary disk' },
};

/** The errno code of a Node file-system error (ENOSPC, ENOTDIR, …), or undefined. */
export function fileSystemErrorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && Object.hasOwn(FILE_SYSTEM_ERRORS, code) && typeof (error as NodeJS.ErrnoException).syscall === 'string' ? code : undefined;
}

/**
 * The one rule for file-system failures: a Node errno error (ENOSPC, EEXIST, ENOTDIR, ENOENT,
 * EACCES, EPERM, EROFS, …) becomes a LatentBlendError (code 'file_system', exit status 1) of one
 * line naming `path` (the file the user knows, not a temporary sibling; default the error's own
 * path) and what to do; `action` says whether it was being written (default: guessed from the
 * system call). Anything else (a LatentBlendError, a bug) is returned unchanged.
 */
export function fileSystemError(error: unknown, path?: string, action?: 'write' | 'read'): unknown {
  const code = fileSystemErrorCode(error);
  if (code === undefined) return error;
  const errno = error as NodeJS.ErrnoException;
  const named = path ?? errno.path ?? 'a file';
  const { what, fix } = FILE_SYSTEM_ERRORS[code]!;
  const reading = ['read', 'scandir', 'stat', 'lstat', 'realpath', 'access'].includes(errno.syscall ?? '');
  const verb = action ?? (reading ? 'read' : 'write');
  return new LatentBlendError(`cannot ${verb} ${named}: ${what} (${code}); ${fix}.`, 'file_system');
}
