/**
 * Locating the ffmpeg executable that encodes (and, for tests, decodes) films.
 *
 * Where ffmpeg comes from, in this order:
 * 1. the `ffmpegPath` option of the caller (the CLI's `--ffmpeg`, if it offers one);
 * 2. the environment variable `LATENTBLEND_FFMPEG` (a path, or a bare command name such as
 *    `ffmpeg` that is looked up on PATH);
 * 3. the binary shipped by the npm package `@ffmpeg-installer/ffmpeg` (a dependency).
 *
 * Why the npm package is the default: it carries a static ffmpeg inside a per-platform npm
 * package (`@ffmpeg-installer/linux-x64`, `darwin-arm64`, `win32-x64`, …), so `npm ci` alone gives
 * a working encoder, offline from the npm registry, with no system package and no download at
 * install time (`ffmpeg-static` downloads its binary from GitHub in a postinstall script, which
 * fails on machines without general internet access). The binary has every encoder we use
 * (libx264, libvpx-vp9, gif with palettegen/paletteuse). Its drawbacks: it is an old build (ffmpeg
 * of 2018; fine for these three encoders, but without newer codecs and fixes), it is large
 * (about 70 MB on linux-x64), and the static Linux build is configured with `--enable-gpl`, so
 * whoever redistributes it takes on the GPL's terms for that binary. Anyone who prefers a current
 * ffmpeg (e.g. Debian's `ffmpeg` package, Homebrew's) sets `LATENTBLEND_FFMPEG=ffmpeg` or passes
 * `ffmpegPath`; nothing else changes. The arguments we pass work with ffmpeg 4.1 (the shipped
 * build) up to current releases.
 *
 * The platform package's postinstall script only runs `chmod u+x ffmpeg`; the file is already
 * executable in the published tarball, so it works when npm skips install scripts.
 *
 * Nothing here runs at import time: the npm package (which throws when its platform package is
 * missing) is loaded on first use only.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { LatentBlendError } from '../errors.ts';

/** Environment variable that overrides the bundled ffmpeg. */
export const FFMPEG_ENV = 'LATENTBLEND_FFMPEG';

/** Options shared by everything that runs ffmpeg. */
export interface FfmpegOptions {
  /** Path (or command name on PATH) of the ffmpeg executable; overrides `LATENTBLEND_FFMPEG`. */
  ffmpegPath?: string;
}

/** Where the executable was found. */
export interface FfmpegLocation {
  /** Absolute path of the executable. */
  path: string;
  /** Which rule chose it. */
  source: 'option' | 'environment' | 'npm';
}

const HOW_TO_FIX =
  'Reinstall the dependencies with optional packages included (`npm ci`, not `--omit=optional`), ' +
  `or install ffmpeg (e.g. \`apt install ffmpeg\`, \`brew install ffmpeg\`) and set ${FFMPEG_ENV}=ffmpeg ` +
  '(or to the full path of the executable).';

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    if (process.platform !== 'win32') accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Looks a bare command name up on PATH (with PATHEXT on Windows); undefined when absent. */
function searchPath(command: string): string | undefined {
  const folders = (process.env.PATH ?? '').split(delimiter).filter((folder) => folder !== '');
  const extensions = process.platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const folder of folders) {
    for (const extension of extensions) {
      const candidate = join(folder, command + extension);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Resolves a user-given path or command name; throws naming where the value came from. */
function resolveGiven(value: string, origin: string): string {
  if (value.trim() === '') throw new LatentBlendError(`${origin} is empty; give the path of an ffmpeg executable.`, 'unavailable');
  const hasFolder = value.includes('/') || (process.platform === 'win32' && value.includes('\\'));
  if (!hasFolder) {
    const found = searchPath(value);
    if (found === undefined) {
      throw new LatentBlendError(`${origin} is "${value}", which is not an executable on PATH. ${HOW_TO_FIX}`, 'unavailable');
    }
    return found;
  }
  const path = isAbsolute(value) ? value : resolve(value);
  if (!isExecutableFile(path)) {
    throw new LatentBlendError(`${origin} is "${value}", which is not an executable file. ${HOW_TO_FIX}`, 'unavailable');
  }
  return path;
}

/** The binary of `@ffmpeg-installer/ffmpeg`, or a LatentBlendError saying how to get one. */
function bundledFfmpeg(): string {
  const require = createRequire(import.meta.url);
  let path: unknown;
  try {
    // The package throws (a string) when the platform package is missing or unsupported.
    path = (require('@ffmpeg-installer/ffmpeg') as { path?: unknown }).path;
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new LatentBlendError(
      `No ffmpeg found: the bundled ffmpeg (@ffmpeg-installer/ffmpeg for ${process.platform}-${process.arch}) ` +
        `is not available (${reason}). ${HOW_TO_FIX}`,
      'unavailable',
    );
  }
  if (typeof path !== 'string' || !isExecutableFile(path)) {
    throw new LatentBlendError(
      `No ffmpeg found: the bundled ffmpeg at ${String(path)} is missing or not executable ` +
        `(on Linux/macOS \`chmod u+x\` it). ${HOW_TO_FIX}`,
      'unavailable',
    );
  }
  return path;
}

/**
 * Finds the ffmpeg executable: `options.ffmpegPath`, else `$LATENTBLEND_FFMPEG`, else the binary
 * of `@ffmpeg-installer/ffmpeg`. Throws a LatentBlendError (code 'unavailable') that says how to fix
 * it when none is usable. Reads the environment at call time.
 */
export function locateFfmpeg(options: FfmpegOptions = {}): FfmpegLocation {
  if (options.ffmpegPath !== undefined) {
    return { path: resolveGiven(options.ffmpegPath, 'The ffmpeg path option'), source: 'option' };
  }
  const fromEnvironment = process.env[FFMPEG_ENV];
  if (fromEnvironment !== undefined && fromEnvironment !== '') {
    return { path: resolveGiven(fromEnvironment, FFMPEG_ENV), source: 'environment' };
  }
  return { path: bundledFfmpeg(), source: 'npm' };
}

/** What an ffmpeg executable offers. */
export interface FfmpegCapabilities {
  /** First line of `ffmpeg -version`, e.g. "ffmpeg version 7.1.1 Copyright …". */
  version: string;
  /** Names of its encoders (`ffmpeg -encoders`), e.g. 'libx264', 'libvpx-vp9', 'gif'. */
  encoders: ReadonlySet<string>;
  /** Names of its filters (`ffmpeg -filters`), e.g. 'palettegen', 'pad'. */
  filters: ReadonlySet<string>;
}

/** Runs ffmpeg with `args` and returns its stdout; rejects on a non-zero exit or spawn failure. */
function runForOutput(path: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      reject(new LatentBlendError(`Could not run ffmpeg at ${path}: ${error.message}. ${HOW_TO_FIX}`, 'unavailable'));
    });
    child.on('close', (code) => {
      if (code === 0) resolvePromise(Buffer.concat(out).toString('utf8'));
      else {
        const tail = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-5).join('\n');
        reject(new LatentBlendError(`ffmpeg at ${path} failed on \`${args.join(' ')}\` (exit ${String(code)}):\n${tail}`, 'unavailable'));
      }
    });
  });
}

/**
 * Names in the listing of `-encoders` / `-filters`: lines "<flags> <name> <description>", where the
 * flags are at least three of [A-Z.|]; legend lines ("T.. = Timeline support") are skipped.
 */
function listedNames(listing: string): Set<string> {
  const names = new Set<string>();
  for (const line of listing.split('\n')) {
    const match = /^\s*[A-Z.|]{3,}\s+(\S+)/.exec(line);
    if (match?.[1] !== undefined && match[1] !== '=') names.add(match[1]);
  }
  return names;
}

const capabilityCache = new Map<string, Promise<FfmpegCapabilities>>();

/**
 * Version, encoders and filters of the ffmpeg at `path` (runs it three times; cached per path
 * for the life of the process).
 */
export function ffmpegCapabilities(path: string): Promise<FfmpegCapabilities> {
  let cached = capabilityCache.get(path);
  if (cached === undefined) {
    cached = (async () => {
      const quiet = ['-hide_banner', '-nostdin'];
      const [version, encoders, filters] = await Promise.all([
        runForOutput(path, [...quiet, '-version']),
        runForOutput(path, [...quiet, '-encoders']),
        runForOutput(path, [...quiet, '-filters']),
      ]);
      return {
        version: version.split('\n')[0]?.trim() ?? '',
        encoders: listedNames(encoders),
        filters: listedNames(filters),
      };
    })();
    capabilityCache.set(path, cached);
    // A failed probe is not remembered, so a fixed installation is picked up on the next call.
    cached.catch(() => capabilityCache.delete(path));
  }
  return cached;
}

/**
 * Starts probing the ffmpeg that `options` choose and returns at once, so that a long-running
 * process (the studio) spawns the probes while it is still small, before models are loaded;
 * later checks reuse the cached result. Failures are ignored here: they are reported when a film
 * is encoded.
 */
export function prefetchFfmpegCapabilities(options: FfmpegOptions = {}): void {
  try {
    ffmpegCapabilities(locateFfmpeg(options).path).catch(() => undefined);
  } catch {
    // No usable ffmpeg: encodeVideo reports it with the fix.
  }
}

/**
 * Throws a LatentBlendError naming the ffmpeg and what to do when it lacks one of `encoders` or
 * `filters`.
 */
export async function requireFfmpegFeatures(location: FfmpegLocation, encoders: readonly string[], filters: readonly string[] = []): Promise<void> {
  const capabilities = await ffmpegCapabilities(location.path);
  const missing = [
    ...encoders.filter((name) => !capabilities.encoders.has(name)).map((name) => `encoder ${name}`),
    ...filters.filter((name) => !capabilities.filters.has(name)).map((name) => `filter ${name}`),
  ];
  if (missing.length > 0) {
    throw new LatentBlendError(
      `The ffmpeg at ${location.path} (${capabilities.version}, chosen by ${location.source}) lacks ${missing.join(', ')}. ` +
        `Use an ffmpeg built with them: unset ${FFMPEG_ENV} to use the bundled one, or point it to another build.`,
      'unavailable',
    );
  }
}
