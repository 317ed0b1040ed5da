/** Shared by `transition`, `movie` and `refine`: the work folder, cached transitions and the film files. */
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Transition } from '../engine/engine.ts';
import { loadTransition, saveTransition, checkSameModel, type ModelStamp } from '../io/store.ts';
import { checkVideoOutput, encodeVideo, videoFormatFromPath } from '../io/video.ts';
import type { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';
import { filmFrameCount } from '../blend/retime.ts';
import { MAX_FILM_FRAMES } from './spec-guards.ts';
import { contactSheet } from '../io/contact-sheet.ts';
import { smoothnessPlot } from '../io/plot.ts';
import { encodePng } from '../io/png.ts';
import { withPngText } from '../io/png-text.ts';
import { transitionFrameText } from '../studio/provenance.ts';
import { writeFileAtomically, prepareOutput, ensureFolder, checkFolderCreatable } from '../io/files.ts';
import { LatentBlendError, fileSystemError } from '../errors.ts';
import { filmFrames, filmLength, type FilmSegment } from './render.ts';
import type { RetimeMode } from '../blend/retime.ts';
import type { Reporter } from './progress.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { filmSmoothness, summaryLine, type SmoothnessReport } from '../eval/report.ts';

/** The work folder of a film: `<out without extension>.latentblend` beside the output. */
export function defaultWorkDir(out: string): string {
  return join(dirname(out), `${basename(out, extname(out))}.latentblend`);
}

/** Stable hash of what determines a transition's computed frames. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * Returns the transition saved under `<work>/transitions/<index>-<key>` when it is there (a
 * resumed render recomputes nothing that finished), else computes it and saves it there first.
 * A damaged saved copy (see loadTransition) is reported to `onDamaged` and computed again.
 */
export async function cachedTransition(
  workDir: string,
  index: number,
  key: string,
  stamp: ModelStamp,
  compute: () => Promise<Transition>,
  onDamaged?: (message: string) => void,
): Promise<{ transition: Transition; dir: string; reused: boolean }> {
  const folder = join(workDir, 'transitions');
  const name = `${String(index).padStart(2, '0')}-${key.slice(0, 16)}`;
  const dir = join(folder, name);
  if (existsSync(join(dir, 'transition.json'))) {
    let stored: Awaited<ReturnType<typeof loadTransition>> | undefined;
    try {
      stored = await loadTransition(dir);
    } catch (error) {
      // A damaged copy is computed again (and replaced); anything else is the user's to fix.
      if (!(error instanceof LatentBlendError && error.code === 'damaged')) throw error;
      onDamaged?.(error.message);
    }
    if (stored !== undefined) {
      checkSameModel(stored.model, stamp);
      return { transition: stored.transition, dir, reused: true };
    }
  }
  const transition = await compute();
  await saveTransition(dir, transition, stamp, { force: true });
  return { transition, dir, reused: false };
}

export interface FilmOutputOptions {
  readonly out: string;
  readonly fps: number;
  readonly quality?: number;
  readonly retiming: RetimeMode;
  readonly force: boolean;
  readonly framesDir?: string;
  /**
   * The model (as recorded) and scheduler class that made the frames: with it, each PNG written to
   * `framesDir` says how it was made in text chunks, as the studio's frames do (src/studio/provenance.ts).
   */
  readonly frameProvenance?: { readonly model: string; readonly scheduler: string };
  readonly signal?: AbortSignal;
  readonly ffmpegPath?: string;
  /** Start the encoder through this helper (cheap while models are loaded; see FfmpegSpawner). */
  readonly ffmpegSpawner?: FfmpegSpawner;
  /**
   * Called once the side files are written and before the film is encoded (e.g. to write
   * film.json): the film appears last, so a film in place always has its side files and record.
   */
  readonly beforeFilm?: (smoothness: SmoothnessReport | undefined) => Promise<void> | void;
  /** Stored in the film's metadata comment (e.g. its spec). */
  readonly comment?: string;
  /** Measure the film's smoothness with this metric (report returned, figures on the plot). */
  readonly metric?: SimilarityMetric;
}

/** Side files written beside the film. */
export function sideFiles(out: string): { contactSheet: string; smoothness: string } {
  const base = join(dirname(out), basename(out, extname(out)));
  return { contactSheet: `${base}.contact-sheet.png`, smoothness: `${base}.smoothness.png` };
}

/**
 * Refuses early (before any computing) when an output exists and --force is not set. Side files
 * without their film, beside an existing work folder, are leftovers of a render that did not
 * finish (e.g. the disk filled up while encoding): they are replaced, so that running the same
 * command again resumes.
 */
export function checkOutputs(options: { out: string; force: boolean; workDir?: string; framesDir?: string }): void {
  videoFormatFromPath(options.out);
  prepareOutput(options.out, options.force);
  const workDir = options.workDir ?? defaultWorkDir(options.out);
  // Finished transitions go there: a folder that cannot be made must not be found after computing.
  checkFolderCreatable(workDir);
  if (options.framesDir !== undefined) checkFolderCreatable(options.framesDir);
  const unfinished = existsSync(workDir);
  const side = sideFiles(options.out);
  prepareOutput(side.contactSheet, options.force || unfinished);
  prepareOutput(side.smoothness, options.force || unfinished);
}

/**
 * Checks a film's settings before any computing: the encoder can honour format and fps (GIF at
 * most 50 fps), the ffmpeg to be used works, every transition gets at least 2 film frames
 * (duration × fps), and the film has at most MAX_FILM_FRAMES frames.
 */
export async function checkFilmSettings(options: { out: string; fps: number; quality?: number; durations: readonly number[]; ffmpegPath?: string }): Promise<void> {
  let total = 0;
  options.durations.forEach((duration, index) => {
    const frames = filmFrameCount(duration, options.fps);
    const which = options.durations.length > 1 ? `transition ${index + 1}: ` : '';
    if (frames < 2) {
      throw new LatentBlendError(`${which}a duration of ${duration} s at ${options.fps} fps gives ${frames} film frame(s); a transition needs at least 2 (a first and a last). Make it longer or raise fps.`);
    }
    total += frames;
  });
  if (total > MAX_FILM_FRAMES) {
    throw new LatentBlendError(`The film would have ${total} frames; the limit is ${MAX_FILM_FRAMES} (an hour at 120 fps). Shorten the durations or lower fps.`, 'too_large');
  }
  await checkVideoOutput(options.out, {
    fps: options.fps,
    ...(options.quality !== undefined ? { quality: options.quality } : {}),
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
  });
}

/** The text chunks of a computed frame written to --frames-dir, when its transition's options and the model are known. */
function framePngText(
  segment: FilmSegment,
  fract: number,
  transition: number,
  image: { readonly width: number; readonly height: number },
  made: FilmOutputOptions['frameProvenance'],
): Record<string, string> | undefined {
  const options = segment.transition.options;
  return made === undefined || options === undefined ? undefined : transitionFrameText(options, made, transition, fract, image);
}

/**
 * Writes the contact sheet, the smoothness plot, the computed frames (optionally), calls
 * `beforeFilm`, and only then encodes the film: a film in place is a finished one, and a render
 * stopped on the way (full disk, Ctrl-C) is resumed by running the same command again.
 */
export async function writeFilm(
  segments: readonly FilmSegment[],
  options: FilmOutputOptions,
  reporter: Reporter,
): Promise<{ filmFrames: number; smoothness?: SmoothnessReport }> {
  const total = filmLength(segments, options.fps, options.retiming);
  const labelled = segments.flatMap((segment, index) =>
    segment.transition.tree.branches
      .map((branch, position) => ({
        image: segment.transition.images[position]!,
        transition: index,
        fract: branch.fract,
        label:
          branch.fract === 0
            ? `keyframe ${index + 1}`
            : branch.fract === 1
              ? `keyframe ${index + 2}`
              : `${branch.fract.toFixed(3)} k=${branch.injectionStep}`,
      }))
      .filter((_, position) => index === 0 || position > 0),
  );
  // The film itself is refused when it exists without --force before anything is written.
  prepareOutput(options.out, options.force);
  const side = sideFiles(options.out);
  await writeFileAtomically(side.contactSheet, await contactSheet(labelled), true);
  const points = segments.flatMap((segment, index) =>
    segment.transition.tree.gapDistances.map((distance, gap) => {
      const branches = segment.transition.tree.branches;
      return { fract: index + (branches[gap]!.fract + branches[gap + 1]!.fract) / 2, distance };
    }),
  );
  const span = segments.length;
  let smoothness: SmoothnessReport | undefined;
  if (options.metric !== undefined) {
    reporter.startBar('measuring', 1, { countSteps: false });
    smoothness = await filmSmoothness(segments, options.metric, {
      fps: options.fps,
      retiming: options.retiming,
      reuseStoredDistances: true,
      onProgress: (done, total) => reporter.updateBar(done, total),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    reporter.stopBar();
  }
  await writeFileAtomically(
    side.smoothness,
    await smoothnessPlot(points.map((point) => ({ fract: point.fract / span, distance: point.distance })), {
      title: 'distance between neighbouring computed frames',
      ...(smoothness !== undefined
        ? {
            caption:
              summaryLine(smoothness.metric, smoothness.whole.computed) +
              (smoothness.whole.film !== null ? `; film frames: smoothness ${smoothness.whole.film.smoothness.toFixed(3)}` : ''),
          }
        : {}),
    }),
    true,
  );

  if (options.framesDir !== undefined) {
    ensureFolder(options.framesDir);
    let number = 0;
    for (const frame of labelled) {
      const path = join(options.framesDir, `${String(number++).padStart(4, '0')}.png`);
      try {
        const png = await encodePng(frame.image);
        const text = framePngText(segments[frame.transition]!, frame.fract, frame.transition, frame.image, options.frameProvenance);
        writeFileSync(path, text === undefined ? png : withPngText(png, text));
      } catch (error) {
        throw fileSystemError(error, path, 'write');
      }
    }
  }
  await options.beforeFilm?.(smoothness);

  reporter.startBar('encoding', total);
  await encodeVideo(options.out, filmFrames(segments, options.fps, options.retiming), {
    fps: options.fps,
    force: options.force,
    ...(options.quality !== undefined ? { quality: options.quality } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
    ...(options.ffmpegSpawner !== undefined ? { spawner: options.ffmpegSpawner } : {}),
    ...(options.comment !== undefined ? { comment: options.comment } : {}),
    onFrame: (written) => reporter.updateBar(written),
  });
  reporter.stopBar();
  return { filmFrames: total, ...(smoothness !== undefined ? { smoothness } : {}) };
}
