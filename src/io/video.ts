/**
 * Films out of frames: RGB8 frames are piped as raw `rgb24` into ffmpeg, which encodes
 *
 * - mp4:  H.264 (libx264, preset medium), yuv420p, BT.709 tagged, `+faststart` (the index sits at
 *         the front, so browsers start playing before the download ends);
 * - webm: VP9 (libvpx-vp9, constant quality, `-b:v 0`), yuv420p, BT.709 tagged;
 * - gif:  one 256-colour palette for the whole film (palettegen with full statistics, then
 *         paletteuse with sierra2_4a dithering, in one filter graph), looping forever.
 *
 * Sizes: H.264 in yuv420p needs an even width and height, so an mp4 of an odd-sized frame is
 * padded by one column (right) and/or one row (bottom) that repeats the frame's last column/row;
 * nothing is scaled, so the picture is untouched and a 63x47 frame gives a 64x48 film. VP9 and
 * GIF keep any size as it is.
 *
 * Quality (0..100, default 80) is mapped linearly to a constant rate factor (lower CRF = better):
 * H.264 CRF = round(51 - 0.39 q) (q 0 → 51, 80 → 20, 100 → 12), VP9 CRF = round(63 - 0.48 q)
 * (q 0 → 63, 80 → 25, 100 → 15). The best setting stops short of lossless on purpose: lossless
 * H.264 needs a profile many players reject. GIF ignores quality (always 256 colours, dithered).
 *
 * Output is written to a temporary sibling and renamed into place when ffmpeg succeeds; on any
 * failure or abort ffmpeg is killed, the temporary file removed, and an existing file is never
 * replaced without `force`.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { LatentBlendError } from '../errors.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import { locateFfmpeg, requireFfmpegFeatures, type FfmpegLocation, type FfmpegOptions } from './ffmpeg.ts';
import type { FfmpegSpawner } from './ffmpeg-spawner.ts';
import { writeAtomically } from './files.ts';

/** Container/codec pairs we write. */
export const VIDEO_FORMATS = ['mp4', 'webm', 'gif'] as const;
export type VideoFormat = (typeof VIDEO_FORMATS)[number];

/** Default of `quality`. */
export const DEFAULT_VIDEO_QUALITY = 80;
/** Highest accepted frame rate (frames per second). */
export const MAX_FPS = 1000;
// Highest GIF frame rate (src/film/spec-guards.ts says why); ffmpeg rounds GIF delays to whole hundredths.
import { MAX_GIF_FPS } from '../film/spec-guards.ts';
export { MAX_GIF_FPS };

export interface EncodeVideoOptions extends FfmpegOptions {
  /** Frames per second of the film, in (0, 1000] (GIF: (0, 50]). Non-integers such as 29.97 are allowed. */
  fps: number;
  /** Output format; default from the file extension (.mp4, .webm, .gif, any letter case). */
  format?: VideoFormat;
  /** 0 (smallest file) .. 100 (best picture), default 80; see the module comment for the CRF mapping. */
  quality?: number;
  /** Replace an existing file (otherwise that is an error, raised before any frame is consumed). */
  force?: boolean;
  /** Aborting kills ffmpeg, removes the temporary file and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Called after each frame was handed to ffmpeg with the number of frames handed over so far (1, 2, …). */
  onFrame?: (framesWritten: number) => void;
  /** Text stored as the container's `comment` metadata (MP4 ©cmt, WebM COMMENT; GIF files keep none). */
  comment?: string;
  /**
   * Start ffmpeg through this helper (see FfmpegSpawner): cheap even when this process holds
   * gigabytes of models. Without it, or when its helper is unusable, ffmpeg is our own child.
   */
  spawner?: FfmpegSpawner;
}

/** What was written. */
export interface EncodeVideoResult {
  path: string;
  format: VideoFormat;
  /** Frames written (as given). */
  frames: number;
  /** Size of the film in pixels (mp4 of odd-sized frames: rounded up to even, see above). */
  width: number;
  height: number;
  fps: number;
  /** CRF given to the encoder; undefined for GIF. */
  crf: number | undefined;
}

/** The format implied by `path`'s extension; throws a LatentBlendError listing the allowed ones. */
export function videoFormatFromPath(path: string): VideoFormat {
  const extension = extname(path).slice(1).toLowerCase();
  const format = VIDEO_FORMATS.find((name) => name === extension);
  if (format === undefined) {
    const shown = extension === '' ? 'no extension' : `extension ".${extension}"`;
    throw new LatentBlendError(`Cannot tell the video format of ${path} (${shown}); use one of: ${VIDEO_FORMATS.map((name) => `.${name}`).join(', ')}.`);
  }
  return format;
}

/**
 * The encoder's constant rate factor for `quality` in [0, 100]: H.264 51..12, VP9 63..15
 * (linear, rounded); undefined for GIF.
 */
export function qualityToCrf(format: VideoFormat, quality: number): number | undefined {
  if (format === 'mp4') return Math.round(51 - 0.39 * quality);
  if (format === 'webm') return Math.round(63 - 0.48 * quality);
  return undefined;
}

function validateOptions(path: string, options: EncodeVideoOptions): { format: VideoFormat; quality: number } {
  if (typeof path !== 'string' || path === '') throw new LatentBlendError('The video path is empty; give a file name ending in .mp4, .webm or .gif.');
  let format: VideoFormat;
  if (options.format === undefined) format = videoFormatFromPath(path);
  else if ((VIDEO_FORMATS as readonly string[]).includes(options.format)) format = options.format;
  else throw new LatentBlendError(`Unknown video format "${String(options.format)}"; use one of: ${VIDEO_FORMATS.join(', ')}.`);

  const { fps } = options;
  const maxFps = format === 'gif' ? MAX_GIF_FPS : MAX_FPS;
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0 || fps > maxFps) {
    throw new LatentBlendError(`fps must be a number in (0, ${maxFps}] for ${format}; got ${String(fps)}.`);
  }
  const quality = options.quality ?? DEFAULT_VIDEO_QUALITY;
  if (typeof quality !== 'number' || !Number.isFinite(quality) || quality < 0 || quality > 100) {
    throw new LatentBlendError(`quality must be a number in [0, 100]; got ${String(quality)}.`);
  }
  return { format, quality };
}

/** Checks one frame's shape; throws a LatentBlendError naming the frame index. */
function checkFrame(frame: RgbImage, index: number, expected: { width: number; height: number } | undefined): void {
  if (frame === null || typeof frame !== 'object' || !(frame.data instanceof Uint8Array)) {
    throw new LatentBlendError(`Frame ${index} is not an RGB image ({ width, height, data: Uint8Array }).`);
  }
  const { width, height } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new LatentBlendError(`Frame ${index} has an invalid size ${String(width)}x${String(height)}; width and height must be positive integers.`);
  }
  if (frame.data.length !== width * height * 3) {
    throw new LatentBlendError(`Frame ${index} (${width}x${height}) holds ${frame.data.length} bytes; RGB8 needs ${width * height * 3}.`);
  }
  if (expected !== undefined && (width !== expected.width || height !== expected.height)) {
    throw new LatentBlendError(`Frame ${index} is ${width}x${height}, but frame 0 is ${expected.width}x${expected.height}; all frames of a film must have the same size.`);
  }
}

/**
 * Copies an RGB8 frame into a new buffer of `outWidth` x `outHeight` (each at most one larger),
 * repeating the last column and row into the extra pixels. The copy also means the caller may
 * reuse its frame buffer as soon as the next frame is requested.
 */
function padFrame(frame: RgbImage, outWidth: number, outHeight: number): Buffer {
  const { width, height, data } = frame;
  if (outWidth === width && outHeight === height) return Buffer.from(data);
  const out = Buffer.allocUnsafe(outWidth * outHeight * 3);
  const rowBytes = width * 3;
  const outRowBytes = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const source = Math.min(y, height - 1) * rowBytes;
    const target = y * outRowBytes;
    out.set(data.subarray(source, source + rowBytes), target);
    for (let x = width; x < outWidth; x++) out.copyWithin(target + x * 3, target + (width - 1) * 3, target + width * 3);
  }
  return out;
}

/** Keeps the last `limit` characters of a text stream. */
class TextTail {
  private text = '';
  constructor(private readonly limit = 16_384) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > 2 * this.limit) this.text = this.text.slice(-this.limit);
  }
  /** The last `count` non-empty lines. */
  lines(count = 12): string {
    return this.text
      .split(/\r?\n|\r/)
      .map((line) => line.trimEnd())
      .filter((line) => line !== '')
      .slice(-count)
      .join('\n');
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
  /** The spawner's helper died while ffmpeg ran (ffmpeg was killed; how it ended is unknown). */
  lost?: boolean;
}

/** One ffmpeg process with its stderr tail and a promise of its end (which never rejects). */
class FfmpegProcess {
  readonly stderr = new TextTail();
  readonly exited: Promise<Exit>;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** ffmpeg's stderr as it comes (only when we spawned it ourselves). */
  readonly stderrStream: Readable | null;
  private readonly killNow: () => void;
  private done = false;

  private constructor(
    readonly executable: string,
    readonly args: string[],
    started: { stdin: Writable | null; stdout: Readable | null; stderr: Readable | null; kill: () => void; exited: Promise<Exit> },
  ) {
    this.stdin = started.stdin;
    this.stdout = started.stdout;
    this.stderrStream = started.stderr;
    this.killNow = started.kill;
    this.stderrStream?.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    // EPIPE when ffmpeg quits early: reported through its exit status and stderr instead.
    this.stdin?.on('error', () => undefined);
    this.exited = started.exited.then((exit) => {
      this.done = true;
      return exit;
    });
  }

  /** Spawns ffmpeg as our own child. */
  static direct(executable: string, args: string[], stdio: ['pipe' | 'ignore', 'pipe' | 'ignore', 'pipe']): FfmpegProcess {
    const child = spawn(executable, args, { stdio, windowsHide: true });
    const exited = new Promise<Exit>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, spawnError: error }));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    return new FfmpegProcess(executable, args, { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, kill: () => child.kill('SIGKILL'), exited });
  }

  /**
   * Spawns an encoder reading from stdin: through `spawner` when it can (its helper is small,
   * so the spawn is cheap however much memory we hold), else as our own child.
   */
  static async encoder(executable: string, args: string[], spawner: FfmpegSpawner | undefined): Promise<FfmpegProcess> {
    const remote = await spawner?.spawn(executable, args);
    if (remote === undefined) return FfmpegProcess.direct(executable, args, ['pipe', 'ignore', 'pipe']);
    const started = new FfmpegProcess(executable, args, {
      stdin: remote.stdin,
      stdout: null,
      stderr: null,
      kill: () => remote.kill(),
      exited: remote.exited.then((exit) => {
        if (exit.lost === true) return { code: null, signal: null, lost: true };
        started.stderr.push(exit.stderr);
        return { code: exit.code, signal: exit.signal };
      }),
    });
    return started;
  }

  get running(): boolean {
    return !this.done;
  }

  /** Kills ffmpeg (SIGKILL) if it still runs; does not wait. */
  kill(): void {
    if (this.running) this.killNow();
  }

  /** Kills ffmpeg (if still running) and waits until it is gone. */
  async stop(): Promise<void> {
    this.kill();
    await this.exited;
  }

  /** A LatentBlendError describing how the process ended, with ffmpeg's last stderr lines. */
  failure(what: string, exit: Exit): LatentBlendError {
    if (exit.spawnError !== undefined) {
      return new LatentBlendError(`${what}: could not start ${this.executable}: ${exit.spawnError.message}`, 'unavailable');
    }
    if (exit.lost === true) {
      return new LatentBlendError(`${what}: the helper process that started ffmpeg ended unexpectedly, so ffmpeg was stopped; run the same command again.`, 'ffmpeg');
    }
    const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with status ${String(exit.code)}`;
    const tail = this.stderr.lines();
    return new LatentBlendError(`${what}: ffmpeg ${how}.${tail === '' ? '' : `\nffmpeg said:\n${tail}`}`, 'ffmpeg');
  }
}

/** Writes `chunk` to `stdin`, waiting for 'drain' when the pipe is full; rejects if ffmpeg ends first. */
async function writeChunk(process_: FfmpegProcess, stdin: Writable, chunk: Buffer, what: string): Promise<void> {
  if (!process_.running) throw process_.failure(what, await process_.exited);
  if (stdin.write(chunk)) return;
  const ended = process_.exited.then((exit) => {
    throw process_.failure(what, exit);
  });
  ended.catch(() => undefined);
  await Promise.race([once(stdin, 'drain'), ended]);
}

function codecArguments(format: VideoFormat, crf: number | undefined): string[] {
  const bt709 = ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv'];
  const toYuv = ['-vf', 'scale=out_color_matrix=bt709:out_range=tv,format=yuv420p'];
  switch (format) {
    case 'mp4':
      return [...toYuv, '-c:v', 'libx264', '-preset', 'medium', '-crf', String(crf), '-pix_fmt', 'yuv420p', ...bt709, '-movflags', '+faststart', '-f', 'mp4'];
    case 'webm':
      return [...toYuv, '-c:v', 'libvpx-vp9', '-crf', String(crf), '-b:v', '0', '-deadline', 'good', '-cpu-used', '2', '-row-mt', '1', '-pix_fmt', 'yuv420p', ...bt709, '-f', 'webm'];
    case 'gif':
      return ['-vf', 'split[frames][copy];[copy]palettegen=stats_mode=full[palette];[frames][palette]paletteuse=dither=sierra2_4a', '-loop', '0', '-f', 'gif'];
  }
}

const REQUIRED_FEATURES: Record<VideoFormat, { encoders: string[]; filters: string[] }> = {
  mp4: { encoders: ['libx264'], filters: ['scale', 'format'] },
  webm: { encoders: ['libvpx-vp9'], filters: ['scale', 'format'] },
  gif: { encoders: ['gif'], filters: ['split', 'palettegen', 'paletteuse'] },
};

/**
 * Checks that ffmpeg can write the film `path` (its format from `options.format` or the
 * extension): locates ffmpeg and probes its encoders and filters. Call it before loading a model:
 * the probe's spawns then come from a small process (spawning from a process holding gigabytes of
 * weights costs about 0.3 s each, against a few ms), a missing encoder fails before any slow work,
 * and the result is cached for the process, so `encodeVideo` later spawns only the encoder itself.
 */
export async function checkVideoEncoder(path: string, options: FfmpegOptions & { format?: VideoFormat } = {}): Promise<FfmpegLocation> {
  const format = options.format ?? videoFormatFromPath(path);
  const ffmpeg = locateFfmpeg(options);
  await requireFfmpegFeatures(ffmpeg, REQUIRED_FEATURES[format].encoders, REQUIRED_FEATURES[format].filters);
  return ffmpeg;
}

/** ffmpeg's "file:" protocol, so names with ':' or a leading '-' are not misread. */
function fileUrl(path: string): string {
  return `file:${path}`;
}

/** An async-or-sync iterator over the frames. */
type FrameIterator = AsyncIterator<RgbImage> | Iterator<RgbImage>;

function frameIterator(frames: AsyncIterable<RgbImage> | Iterable<RgbImage>): FrameIterator {
  if (frames !== null && typeof frames === 'object' && Symbol.asyncIterator in frames) return frames[Symbol.asyncIterator]();
  if (frames !== null && typeof frames === 'object' && Symbol.iterator in frames) return frames[Symbol.iterator]();
  throw new LatentBlendError('The frames to encode must be an iterable or async iterable of RGB images.');
}

/**
 * The next frame, or `signal.reason` as soon as the signal aborts (without waiting for a slow
 * frame source to yield).
 */
async function nextFrame(iterator: FrameIterator, signal: AbortSignal | undefined): Promise<IteratorResult<RgbImage>> {
  signal?.throwIfAborted();
  const next = Promise.resolve(iterator.next());
  if (signal === undefined) return next;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  next.catch(() => undefined); // a rejection after the abort won the race is not unhandled
  try {
    return await Promise.race([next, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}

/** Asks the frame source to finish early, ignoring what it answers. */
function closeIterator(iterator: FrameIterator): void {
  try {
    const result = iterator.return?.();
    if (result instanceof Promise) result.catch(() => undefined);
  } catch {
    // The source's own clean-up failed; the encode error is the one to report.
  }
}

/**
 * Encodes `frames` (all the same size, RGB8) into the film `path` (mp4, webm or gif; see the module
 * comment for codecs, sizes and the quality mapping). Frames are pulled one at a time and streamed
 * to ffmpeg's stdin, waiting whenever the pipe is full, so a lazy generator is never far ahead of
 * the encoder. Checks (format, fps, quality, existing file, ffmpeg and its encoders) happen before
 * the first frame is pulled. Errors: LatentBlendError for bad options, an existing file without
 * `force`, no frames, a frame of another size (naming its index) and ffmpeg failures (with its
 * last stderr lines); `signal.reason` when aborted. No file is left behind on any error.
 */
export async function encodeVideo(
  path: string,
  frames: AsyncIterable<RgbImage> | Iterable<RgbImage>,
  options: EncodeVideoOptions,
): Promise<EncodeVideoResult> {
  const { format, quality } = validateOptions(path, options);
  const { signal, onFrame } = options;
  signal?.throwIfAborted();
  const crf = qualityToCrf(format, quality);
  const ffmpeg = locateFfmpeg(options);
  await requireFfmpegFeatures(ffmpeg, REQUIRED_FEATURES[format].encoders, REQUIRED_FEATURES[format].filters);
  signal?.throwIfAborted();

  let written = 0;
  let size: { width: number; height: number; outWidth: number; outHeight: number } | undefined;
  const what = `Encoding ${path}`;

  await writeAtomically(path, options.force ?? false, async (temporary) => {
    let process_: FfmpegProcess | undefined;
    const onAbort = (): void => process_?.kill();
    signal?.addEventListener('abort', onAbort, { once: true });
    const iterator = frameIterator(frames);
    let finished = false;
    try {
      for (;;) {
        const step = await nextFrame(iterator, signal);
        if (step.done === true) break;
        const frame = step.value;
        checkFrame(frame, written, size);
        if (size === undefined) {
          const even = format === 'mp4';
          size = {
            width: frame.width,
            height: frame.height,
            outWidth: even ? frame.width + (frame.width % 2) : frame.width,
            outHeight: even ? frame.height + (frame.height % 2) : frame.height,
          };
          const args = [
            '-hide_banner', '-loglevel', 'warning', '-nostats', '-y',
            '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-video_size', `${size.outWidth}x${size.outHeight}`, '-framerate', String(options.fps),
            '-i', 'pipe:0',
            '-an', '-map_metadata', '-1',
            ...(options.comment !== undefined ? ['-metadata', `comment=${options.comment}`] : []),
            ...codecArguments(format, crf),
            fileUrl(temporary),
          ];
          process_ = await FfmpegProcess.encoder(ffmpeg.path, args, options.spawner);
          signal?.throwIfAborted();
        }
        const stdin = process_!.stdin!;
        await writeChunk(process_!, stdin, padFrame(frame, size.outWidth, size.outHeight), what);
        signal?.throwIfAborted();
        written += 1;
        onFrame?.(written);
      }
      finished = true;
      if (process_ === undefined) throw new LatentBlendError(`${what}: there are no frames to encode.`);
      process_.stdin!.end();
      const exit = await process_.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) throw process_.failure(what, exit);
    } catch (caught) {
      let error = caught;
      // ffmpeg closing its input because it failed (e.g. a full disk) reads as EPIPE on our side
      // (ECONNRESET when its stdin came from a spawner: that socket is also read, and a reader
      // learns of unread data discarded that way): report how ffmpeg ended, with what it said.
      const closedInput = ['EPIPE', 'ECONNRESET'].includes((caught as NodeJS.ErrnoException | undefined)?.code ?? '');
      if (process_ !== undefined && closedInput) {
        error = process_.failure(what, await process_.exited);
      }
      // Let the frame source clean up (not awaited: a busy generator answers only after its current step).
      if (!finished) closeIterator(iterator);
      await process_?.stop();
      // A kill caused by the abort makes ffmpeg fail; report the abort, not the kill.
      if (signal?.aborted) throw signal.reason;
      // ffmpeg's own file-system failures read as ours do (one line naming the film).
      const ffmpegSaid = error instanceof LatentBlendError && error.code === 'ffmpeg' ? error.message : '';
      if (/No space left on device/i.test(ffmpegSaid)) {
        throw new LatentBlendError(`cannot write ${path}: no space left on the device (ENOSPC); free some space and run the same command again (finished work is reused).`, 'file_system');
      }
      if (/Permission denied|Read-only file system/i.test(ffmpegSaid)) {
        throw new LatentBlendError(`cannot write ${path}: ${/Read-only/i.test(ffmpegSaid) ? 'the file system is read-only (EROFS)' : 'permission denied (EACCES)'}; choose a folder you can write to.`, 'file_system');
      }
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  });

  return { path, format, frames: written, width: size!.outWidth, height: size!.outHeight, fps: options.fps, crf };
}

/**
 * Checks, before anything is computed, everything encodeVideo would refuse about its options:
 * the format from `path`, fps (GIF at most 50), quality, and that the ffmpeg to be used exists
 * and has the format's encoder and filters. Throws a LatentBlendError naming the problem.
 */
export async function checkVideoOutput(path: string, options: Pick<EncodeVideoOptions, 'fps' | 'quality' | 'format' | 'ffmpegPath'>): Promise<VideoFormat> {
  const { format } = validateOptions(path, options);
  const ffmpeg = locateFfmpeg(options);
  await requireFfmpegFeatures(ffmpeg, REQUIRED_FEATURES[format].encoders, REQUIRED_FEATURES[format].filters);
  return format;
}

/** What ffmpeg finds in a film. */
export interface VideoInfo {
  /** Frames decoded, counted exactly by decoding the whole first video stream. */
  frames: number;
  /** Picture size in pixels. */
  width: number;
  height: number;
  /** Frame rate as the container reports it (frames per second), when it does. */
  fps?: number;
  /** ffmpeg's name of the codec, e.g. 'h264', 'vp9', 'gif'. */
  codec?: string;
}

/** Parses the first video stream line of ffmpeg's input description. */
function parseStreamLine(stderr: string): { width: number; height: number; fps?: number; codec: string } | undefined {
  const inputPart = stderr.split(/^Output #0/m)[0] ?? stderr;
  const line = inputPart.split(/\r?\n/).find((candidate) => /^\s*Stream #\d+:\d+.*: Video: /.test(candidate));
  if (line === undefined) return undefined;
  const description = line.slice(line.indexOf(': Video: ') + ': Video: '.length);
  const codec = /^([\w-]+)/.exec(description)?.[1] ?? 'unknown';
  const dims = /(?:^|,\s)(\d+)x(\d+)(?=[\s,]|$)/.exec(description);
  if (dims === null) return undefined;
  const rate = /,\s(\d+(?:\.\d+)?)(k?)\s(?:fps|tbr)\b/.exec(description);
  const fps = rate === null ? undefined : Number(rate[1]) * (rate[2] === 'k' ? 1000 : 1);
  return { width: Number(dims[1]), height: Number(dims[2]), codec, ...(fps === undefined ? {} : { fps }) };
}

/**
 * Decodes the first video stream of `path` with ffmpeg (`-f null`, which passes every decoded
 * frame through) and returns the exact number of decoded frames, the picture size, the frame
 * rate the container reports and the codec. Throws a LatentBlendError when the file is missing,
 * not a video, or ffmpeg fails.
 */
export async function probeVideo(path: string, options: FfmpegOptions & { signal?: AbortSignal } = {}): Promise<VideoInfo> {
  if (!existsSync(path)) throw new LatentBlendError(`Cannot read the video ${path}: it does not exist.`, 'not_found');
  const ffmpeg = locateFfmpeg(options);
  options.signal?.throwIfAborted();
  const args = ['-hide_banner', '-nostdin', '-nostats', '-progress', 'pipe:1', '-i', fileUrl(path), '-map', '0:v:0', '-f', 'null', '-'];
  const process_ = FfmpegProcess.direct(ffmpeg.path, args, ['ignore', 'pipe', 'pipe']);
  let header = '';
  process_.stderrStream!.on('data', (chunk: Buffer) => {
    if (header.length < 65_536) header += chunk.toString();
  });
  const progress = new TextTail(4096);
  process_.stdout!.on('data', (chunk: Buffer) => progress.push(chunk));
  const onAbort = (): void => void process_.stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const exit = await process_.exited;
  options.signal?.removeEventListener('abort', onAbort);
  options.signal?.throwIfAborted();
  const what = `Reading ${path}`;
  if (exit.code !== 0) throw process_.failure(what, exit);

  const stream = parseStreamLine(header);
  if (stream === undefined) throw new LatentBlendError(`${what}: ffmpeg found no video stream.\n${process_.stderr.lines()}`, 'ffmpeg');
  const counts = [...progress.lines(200).matchAll(/^frame=\s*(\d+)\s*$/gm)];
  const last = counts[counts.length - 1];
  if (last === undefined) throw new LatentBlendError(`${what}: ffmpeg reported no frame count.`, 'ffmpeg');
  return { frames: Number(last[1]), width: stream.width, height: stream.height, codec: stream.codec, ...(stream.fps === undefined ? {} : { fps: stream.fps }) };
}
