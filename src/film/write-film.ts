/**
 * The library's one call from a computed transition to a film file, as the Python project's
 * `write_movie_transition(fp_movie, duration_transition)`:
 *
 *   await writeFilm('morph.mp4', transition, { duration: 10 });
 *
 * Several transitions (e.g. the segments of a multi-keyframe film) are joined without a seam.
 * Only the film is written; the CLI's side files (contact sheet, smoothness plot) and work
 * folder come from `latentblend transition` / `movie`.
 */
import type { FilmSegment } from './render.ts';
import { filmFrames, filmLength } from './render.ts';
import { checkFilmSettings } from './work-folder.ts';
import { encodeVideo, type EncodeVideoResult } from '../io/video.ts';
import type { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';
import { LatentBlendError } from '../errors.ts';

export interface WriteFilmOptions {
  /** Seconds of film per transition, > 0 and at most 3600 (duration × fps must give at least 2 frames). */
  readonly duration: number;
  /** Frames per second, default 30 (a GIF at most 50). */
  readonly fps?: number;
  /** 'perceptual' (default): constant perceptual change per second; 'equal': the same time per gap. */
  readonly retiming?: 'perceptual' | 'equal';
  /** Video quality 0..100 (default 80); ignored for GIF. */
  readonly quality?: number;
  /** Replace an existing file (otherwise that is an error, raised before anything is encoded). */
  readonly force?: boolean;
  /** ffmpeg to use instead of $LATENTBLEND_FFMPEG or the bundled one. */
  readonly ffmpegPath?: string;
  /**
   * Start the encoder through this helper: create it with `FfmpegSpawner.start()` before loading
   * models (spawning ffmpeg from a process that holds them costs about 0.3 s), close it when done.
   */
  readonly ffmpegSpawner?: FfmpegSpawner;
  readonly signal?: AbortSignal;
  /** Called after each film frame with the frames written so far and the total. */
  readonly onFrame?: (written: number, total: number) => void;
}

/**
 * Writes `transition` (or several, in order) as a film at `path` (.mp4, .webm or .gif by its
 * extension), atomically. Every setting is checked before the first frame is encoded; errors
 * are LatentBlendErrors naming the bad value.
 */
export async function writeFilm(
  path: string,
  transition: FilmSegment['transition'] | readonly FilmSegment['transition'][],
  options: WriteFilmOptions,
): Promise<EncodeVideoResult & { filmFrames: number }> {
  const transitions = Array.isArray(transition) ? (transition as readonly FilmSegment['transition'][]) : [transition as FilmSegment['transition']];
  if (transitions.length === 0) throw new LatentBlendError('writeFilm: give at least one transition.');
  const fps = options.fps ?? 30;
  const retiming = options.retiming ?? 'perceptual';
  if (retiming !== 'perceptual' && retiming !== 'equal') throw new LatentBlendError(`retiming: expected 'perceptual' or 'equal', got ${JSON.stringify(retiming)}.`);
  if (typeof options.duration !== 'number' || !Number.isFinite(options.duration) || options.duration <= 0 || options.duration > 3600) {
    throw new LatentBlendError(`duration: expected a number of seconds in (0, 3600], got ${String(options.duration)}.`);
  }
  const segments: FilmSegment[] = transitions.map((item) => ({ transition: item, durationSeconds: options.duration }));
  await checkFilmSettings({
    out: path,
    fps,
    durations: segments.map((segment) => segment.durationSeconds),
    ...(options.quality !== undefined ? { quality: options.quality } : {}),
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
  });
  const total = filmLength(segments, fps, retiming);
  const result = await encodeVideo(path, filmFrames(segments, fps, retiming), {
    fps,
    force: options.force ?? false,
    ...(options.quality !== undefined ? { quality: options.quality } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
    ...(options.ffmpegSpawner !== undefined ? { spawner: options.ffmpegSpawner } : {}),
    onFrame: (written) => options.onFrame?.(written, total),
  });
  return { ...result, filmFrames: total };
}
