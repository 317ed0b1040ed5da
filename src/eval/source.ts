/**
 * What `latentblend eval` measures, read from disk: a film work folder (film.json and its
 * transitions), one saved transition folder, or a folder of frames (PNG, JPEG or WebP, in name
 * order).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadTransition, type ModelStamp } from '../io/store.ts';
import type { Transition } from '../engine/engine.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import { readRgb } from '../io/png.ts';
import { readFilmRecord } from '../film/film-record.ts';
import type { RetimeMode } from '../blend/retime.ts';
import { LatentBlendError } from '../errors.ts';

/** A film (or one transition) to measure: its transitions in film order and how it is timed. */
export interface FilmSource {
  readonly kind: 'work-folder' | 'transition';
  readonly path: string;
  readonly segments: readonly { readonly transition: Transition; readonly model: ModelStamp; readonly durationSeconds: number; readonly dir: string }[];
  readonly fps: number;
  readonly retiming: RetimeMode;
  /** Where the timing came from: the work folder's film.json, or the defaults given. */
  readonly timing: 'film.json' | 'defaults';
}

/** A plain sequence of frames. */
export interface FramesSource {
  readonly kind: 'frames';
  readonly path: string;
  readonly files: readonly string[];
  readonly images: readonly RgbImage[];
}

/** Timing used for a transition folder that no film.json describes. */
export interface TimingDefaults {
  readonly fps: number;
  readonly durationSeconds: number;
  readonly retiming: RetimeMode;
}

const IMAGE_EXTENSIONS = /\.(png|jpe?g|webp)$/i;

/**
 * The timing of the transition folder `path` in its film: when the work folder around it has a
 * film.json that lists it (undefined otherwise).
 */
function transitionTiming(path: string): (TimingDefaults & { readonly from: 'film.json' }) | undefined {
  const workDir = dirname(dirname(resolve(path)));
  if (basename(dirname(resolve(path))) !== 'transitions' || !existsSync(join(workDir, 'film.json'))) return undefined;
  const record = readFilmRecord(workDir);
  const entry = record.transitions.find((candidate) => resolve(workDir, candidate.dir) === resolve(path));
  if (entry === undefined) return undefined;
  return { durationSeconds: entry.durationSeconds, fps: record.fps, retiming: record.retiming, from: 'film.json' };
}

/**
 * Reads `path` as a work folder (has film.json), a transition folder (has transition.json) or a
 * folder of frames. Throws a LatentBlendError saying what was expected when it is none of these.
 */
export async function loadEvalSource(path: string, defaults: TimingDefaults): Promise<FilmSource | FramesSource> {
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new LatentBlendError(`eval: ${path} is not a folder; give a film work folder, a transition folder or a folder of frames.`);
  }
  if (existsSync(join(path, 'film.json'))) {
    const record = readFilmRecord(path);
    const segments = [];
    for (const entry of record.transitions) {
      const dir = resolve(path, entry.dir);
      const { transition, model } = await loadTransition(dir);
      segments.push({ transition, model, durationSeconds: entry.durationSeconds, dir });
    }
    return { kind: 'work-folder', path, segments, fps: record.fps, retiming: record.retiming, timing: 'film.json' };
  }
  if (existsSync(join(path, 'transition.json'))) {
    const { transition, model } = await loadTransition(path);
    const timing = transitionTiming(path) ?? { ...defaults, from: 'defaults' as const };
    return {
      kind: 'transition',
      path,
      segments: [{ transition, model, durationSeconds: timing.durationSeconds, dir: path }],
      fps: timing.fps,
      retiming: timing.retiming,
      timing: timing.from,
    };
  }
  const files = readdirSync(path)
    .filter((name) => IMAGE_EXTENSIONS.test(name))
    .sort();
  if (files.length < 2) {
    throw new LatentBlendError(
      `eval: ${path} has no film.json, no transition.json and ${files.length} image file(s); give a film work folder, a transition folder or a folder of at least two frames (.png, .jpg, .webp).`,
    );
  }
  const images: RgbImage[] = [];
  for (const name of files) images.push(await readRgb(join(path, name)));
  const first = images[0]!;
  images.forEach((image, index) => {
    if (image.width !== first.width || image.height !== first.height) {
      throw new LatentBlendError(
        `eval: ${join(path, files[index]!)} is ${image.width}x${image.height} but ${files[0]} is ${first.width}x${first.height}; all frames must have the same size.`,
      );
    }
  });
  return { kind: 'frames', path, files, images };
}
