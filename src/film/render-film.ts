/**
 * Renders a film spec into a work folder in the CLI's format (`latentblend movie`): every
 * transition saved under `<work>/transitions/NN-<key>` (reused when it is already there), the
 * film and its side files, and `<work>/film.json` so that `latentblend refine` can render the
 * film again. The studio calls this; it uses the same building blocks as `latentblend movie`
 * (transitionOptionsOf, transitionKey, cachedTransition, writeFilm, writeFilmRecord), so a work
 * folder written by one is resumed and refined by the other.
 *
 * Beyond what the movie command does:
 * - `only`: render just one transition as the film (the others are computed only when that
 *   transition depends on them, i.e. with branch-1 crossfeed);
 * - `reuseFrom`: other work folders whose finished transitions (same index and key, same model)
 *   are copied in instead of computed;
 * - `events`: hooks for progress and live frames.
 */
import { basename, relative, resolve } from 'node:path';
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { continuationProblems, type BlendingEngine, type EngineEvent, type Transition } from '../engine/engine.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { modelStamp, type ModelStamp } from '../io/store.ts';
import { resolveTransitionOptions, type ResolvedTransitionOptions, type TransitionOptions } from '../engine/options.ts';
import { transitionsOf, transitionKey, type FilmKeyframe, type FilmSpec, type FilmTransition } from './spec.ts';
import { checkPicture, pictureHash } from '../io/picture.ts';
import { cachedTransition, hashOf, writeFilm } from './work-folder.ts';
import { transitionOptionsOf } from './transition-options.ts';

export { transitionOptionsOf };
import { writeFilmRecord, recordedModel } from './film-record.ts';
import type { Reporter } from './progress.ts';
import type { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';
import { LatentBlendError } from '../errors.ts';
import type { SmoothnessReport } from '../eval/report.ts';
import { filmTransitionControl, filmTransitionImagePrompt, loadFilmControl, loadFilmImagePrompts, type FilmControl, type FilmImagePrompts } from './film-control.ts';
import { imagePromptContinuationProblem, pictureHashOf, type ImagePromptSummary, type TransitionImagePrompt } from '../engine/image-prompt.ts';
import { controlContinuationProblem, prepareControl, type ControlSummary, type TransitionControl } from '../engine/control.ts';

export interface RenderFilmEvents {
  /** A transition begins: its index in the spec, and its place among the transitions this render goes through. */
  readonly transitionStart?: (info: { index: number; step: number; steps: number; transition: FilmTransition }) => void;
  /** An event of the blending engine while it computes transition `index`. */
  readonly engineEvent?: (index: number, event: EngineEvent) => void;
  /**
   * A transition is ready. `reused`: it was already in the work folder or copied from one of
   * `reuseFrom` (nothing computed).
   */
  readonly transitionDone?: (info: { index: number; transition: Transition; dir: string; reused: boolean }) => void;
}

export interface RenderFilmOptions {
  /** The film; its `model` should be the model source written into keys (see transitionKey). */
  readonly spec: FilmSpec;
  /** The model as the user named it (folder or Hub id), recorded in transitions and film.json. */
  readonly model: string;
  readonly pipeline: DiffusionPipeline;
  readonly metric: SimilarityMetric;
  readonly engine: BlendingEngine;
  /** The work folder (film.json, transitions/). */
  readonly workDir: string;
  /** The film file (.mp4, .webm or .gif); its contact sheet and smoothness plot go beside it. */
  readonly out: string;
  readonly force: boolean;
  readonly reporter: Reporter;
  readonly signal?: AbortSignal;
  readonly ffmpegPath?: string;
  /** Start the encoder through this helper (cheap while models are loaded; see FfmpegSpawner). */
  readonly ffmpegSpawner?: FfmpegSpawner;
  /** Also write the computed frames there as PNGs (film order, a shared keyframe once). */
  readonly framesDir?: string;
  /** Render only this transition (0-based) as the film; film.json is then not written. */
  readonly only?: number;
  /** Work folders to copy finished transitions from. */
  readonly reuseFrom?: readonly string[];
  readonly events?: RenderFilmEvents;
  /** Stored in the film's metadata comment (the studio stores the film's spec there). */
  readonly comment?: string;
  /** Set when `metric` is the rms-pixel fallback (no LPIPS model found): the warning, recorded in film.json. */
  readonly metricFallback?: string;
  /** Folder that relative control picture and ControlNet paths of the spec are relative to (default: the current folder). */
  readonly specDir?: string;
}

export interface RenderFilmResult {
  readonly out: string;
  readonly workDir: string;
  /** Transitions in the film. */
  readonly transitions: number;
  /** Transitions of this render that were reused rather than computed. */
  readonly transitionsReused: number;
  /** Computed frames in the film (a keyframe shared by two transitions counts once). */
  readonly framesComputed: number;
  readonly filmFrames: number;
  readonly unetCalls: number;
  /** Of unetCalls, those spent on DDIM inversion of picture keyframes (absent when none). */
  readonly inversionUnetCalls?: number;
  readonly metric: string;
  /** The film's transition folders, in film order. */
  readonly segments: readonly { readonly dir: string; readonly durationSeconds: number }[];
  /** The film's smoothness report, measured with `metric`. */
  readonly smoothness?: SmoothnessReport;
}

/**
 * Checks every picture of a film (readable, within the size limit; nothing decoded) and hashes
 * its content, before any model work. Keys: the spec's (resolved) picture paths.
 */
export async function filmPictureHashes(spec: FilmSpec): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const keyframe of spec.keyframes) {
    if (keyframe.image === undefined || hashes.has(keyframe.image)) continue;
    await checkPicture(keyframe.image);
    hashes.set(keyframe.image, await pictureHash(keyframe.image));
  }
  return hashes;
}

/**
 * The picture part of transition `index`'s cache key (content hash, fit, method of each picture
 * end), or undefined when neither end is a picture (then keys stay as they were).
 */
function pictureKeyOf(transition: FilmTransition, hashes: ReadonlyMap<string, string>): unknown[] | undefined {
  const part = (keyframe: FilmKeyframe) =>
    keyframe.image === undefined ? null : [hashes.get(keyframe.image) ?? null, keyframe.fit ?? 'cover', keyframe.imageMethod ?? null];
  if (transition.from.image === undefined && transition.to.image === undefined) return undefined;
  return ['pictures', part(transition.from), part(transition.to)];
}

class NotCached extends Error {}

/** Whether keyframe B of a transition depends on its keyframe A (then transitions chain). */
function chained(spec: FilmSpec): boolean {
  const crossfeed = spec.branch1Crossfeed;
  return crossfeed !== undefined && crossfeed.power > 0 && crossfeed.range > 0;
}

/** Transition `index` with `key`, finished in one of the work folders `folders`, or undefined. */
export async function findFinished(folders: readonly string[], index: number, key: string, stamp: ModelStamp): Promise<Transition | undefined> {
  for (const folder of folders) {
    try {
      const found = await cachedTransition(folder, index, key, stamp, () => Promise.reject(new NotCached()));
      return found.transition;
    } catch (error) {
      // Not there, made with another model, or unreadable: look further.
      if (error instanceof NotCached || error instanceof LatentBlendError) continue;
      throw error;
    }
  }
  return undefined;
}

export interface FilmTransitionSetup {
  /** Engine options (picture keyframes with their content hashes). */
  readonly input: Record<string, unknown>;
  readonly resolved: ResolvedTransitionOptions;
  /** Cache key of the transition's folder. */
  readonly key: string;
  readonly controlNet: TransitionControl | undefined;
  /** What the transition records of its ControlNet (compared when a film continues). */
  readonly control: ControlSummary | undefined;
  readonly ipAdapter: TransitionImagePrompt | undefined;
  /** What the engine compares of keyframe A's IP-Adapter side when continuing from the previous transition. */
  readonly nextImageSide: ImagePromptSummary | undefined;
}

/**
 * Everything transition `index` of a film is computed from, and its cache key: the same for a
 * single-process render and a worker of the pool (queue/worker.ts), so that both write the same
 * folder with the same frames.
 */
export function filmTransitionSetup(
  spec: FilmSpec,
  index: number,
  setup: {
    readonly pipeline: DiffusionPipeline;
    readonly metricName: string;
    readonly pictureHashes: ReadonlyMap<string, string>;
    readonly filmControl: FilmControl | undefined;
    readonly filmImages: FilmImagePrompts | undefined;
  },
): FilmTransitionSetup {
  const { pipeline, pictureHashes, filmControl, filmImages } = setup;
  const transition = transitionsOf(spec)[index]!;
  const input = transitionOptionsOf(spec, index, pictureHashes);
  const resolved = resolveTransitionOptions(input, pipeline.defaults, (value) => pipeline.roundedSize(value));
  const pictureKey = pictureKeyOf(transition, pictureHashes);
  const controlNet = filmControl === undefined ? undefined : filmTransitionControl(filmControl, spec, index);
  const control = controlNet === undefined ? undefined : prepareControl(controlNet, resolved.width, resolved.height, pipeline.folder.family).summary;
  // Pictures, control pictures and image prompts enter the key by content (transitionKey has their paths).
  const ipAdapter = filmImages === undefined ? undefined : filmTransitionImagePrompt(filmImages, spec, index);
  const imagePrompt =
    filmImages === undefined
      ? undefined
      : { pictureA: pictureHashOf(filmImages.pictures[index]!), pictureB: pictureHashOf(filmImages.pictures[index + 1]!) };
  // What the engine will compare for keyframe A (its IP-Adapter, picture and scale).
  const nextImageSide =
    filmImages === undefined || ipAdapter === undefined || imagePrompt === undefined
      ? undefined
      : { ipAdapter: resolve(filmImages.loaded.adapter.folder.dir), pictureA: imagePrompt.pictureA, pictureB: null, scaleA: ipAdapter.scaleA ?? 1, scaleB: ipAdapter.scaleA ?? 1 };
  const key = hashOf([
    transitionKey(spec, index),
    setup.metricName,
    ...(pictureKey !== undefined ? [pictureKey] : []),
    ...(control !== undefined ? [control] : []),
    ...(imagePrompt !== undefined ? [imagePrompt] : []),
  ]);
  return { input, resolved, key, controlNet, control, ipAdapter, nextImageSide };
}

export async function renderFilm(options: RenderFilmOptions): Promise<RenderFilmResult> {
  const { spec, model, pipeline, metric, engine, workDir, reporter, signal, events = {} } = options;
  const transitions = transitionsOf(spec);
  const { only } = options;
  if (only !== undefined && (!Number.isInteger(only) || only < 0 || only >= transitions.length)) {
    throw new LatentBlendError(`transitionIndex: expected an integer from 0 to ${transitions.length - 1} (the spec has ${transitions.length} transitions), got ${only}`);
  }
  const indices =
    only === undefined ? transitions.map((_, index) => index) : chained(spec) ? transitions.slice(0, only + 1).map((_, index) => index) : [only];
  const inFilm = (index: number) => only === undefined || index === only;

  // Bad pictures fail here, before any UNet call; their content hashes go into the keys.
  const pictureHashes = await filmPictureHashes(spec);
  const segments: { transition: Transition; durationSeconds: number; dir: string; index: number }[] = [];
  let unetCalls = 0;
  let inversionUnetCalls = 0;
  let reusedCount = 0;
  let previous: { transition: Transition; index: number } | undefined;
  // ControlNet and every control picture first: a bad one fails before any transition runs.
  const filmControl = await loadFilmControl(spec, pipeline, options.specDir ?? process.cwd(), signal);
  const filmImages = await loadFilmImagePrompts(spec, pipeline, options.specDir ?? process.cwd(), signal);
  for (const [step, index] of indices.entries()) {
    const transition = transitions[index]!;
    events.transitionStart?.({ index, step, steps: indices.length, transition });
    const { input, resolved, key, controlNet, control, ipAdapter, nextImageSide } = filmTransitionSetup(spec, index, { pipeline, metricName: metric.name, pictureHashes, filmControl, filmImages });
    const stamp = modelStamp(recordedModel(model), pipeline, pipeline.latentShape(resolved.width, resolved.height));
    // Keyframe A of this transition is keyframe B of the previous one: reuse it when the
    // settings that shape a trajectory are the same (as `latentblend movie` does).
    const startFrom =
      previous !== undefined &&
      previous.index === index - 1 &&
      continuationProblems(previous.transition, resolved).length === 0 &&
      controlContinuationProblem(previous.transition.control, control) === undefined &&
      imagePromptContinuationProblem(previous.transition.ipAdapter, nextImageSide) === undefined
        ? previous.transition
        : undefined;
    const label = (keyframe: FilmKeyframe) => (keyframe.image !== undefined ? `${basename(keyframe.image)}${keyframe.prompt !== '' ? ` ("${keyframe.prompt}")` : ''}` : `"${keyframe.prompt}"`);
    reporter.info(`transition ${index + 1} of ${transitions.length}: ${label(transition.from)} → ${label(transition.to)}`);
    reporter.startBar(`transition ${index + 1}`, 1, { countSteps: false });
    let copied = false;
    const result = await cachedTransition(workDir, index, key, stamp, async () => {
      const elsewhere = await findFinished(options.reuseFrom ?? [], index, key, stamp);
      if (elsewhere !== undefined) {
        copied = true;
        return elsewhere;
      }
      return engine.runTransition(input as TransitionOptions, {
        ...(signal !== undefined ? { signal } : {}),
        onEvent: (event) => {
          reporter.engineListener(event);
          events.engineEvent?.(index, event);
        },
        ...(startFrom !== undefined ? { startFrom } : {}),
        ...(controlNet !== undefined ? { controlNet } : {}),
        ...(ipAdapter !== undefined ? { ipAdapter } : {}),
      });
    }, (message) => reporter.warn(`${message} Computing it again.`));
    reporter.stopBar();
    const reused = result.reused || copied;
    if (reused) reusedCount += 1;
    else {
      unetCalls += result.transition.stats.unetCalls;
      inversionUnetCalls += result.transition.stats.inversionUnetCalls ?? 0;
    }
    events.transitionDone?.({ index, transition: result.transition, dir: result.dir, reused });
    if (inFilm(index)) segments.push({ transition: result.transition, durationSeconds: transition.duration, dir: result.dir, index });
    previous = { transition: result.transition, index };
  }

  // The residual UNet stays attached to the pipeline (it may serve the next film); the ControlNet goes.
  if (filmControl !== undefined) await filmControl.loaded.controlNet.model.session.release();
  if (filmImages !== undefined) await filmImages.loaded.adapter.encoder.session.release();
  const film = await writeFilmWithRecord(
    segments,
    {
      workDir,
      out: options.out,
      spec,
      model: recordedModel(model),
      scheduler: pipeline.schedulerClass,
      wholeFilm: only === undefined,
      force: options.force,
      metric,
      ...(options.metricFallback !== undefined ? { metricFallback: options.metricFallback } : {}),
      ...(signal !== undefined ? { signal } : {}),
      ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
      ...(options.ffmpegSpawner !== undefined ? { ffmpegSpawner: options.ffmpegSpawner } : {}),
      ...(options.framesDir !== undefined ? { framesDir: options.framesDir } : {}),
      ...(options.comment !== undefined ? { comment: options.comment } : {}),
    },
    reporter,
  );
  return {
    out: options.out,
    workDir,
    transitions: segments.length,
    transitionsReused: reusedCount,
    framesComputed: segments.reduce((sum, segment, position) => sum + segment.transition.frames.length - (position > 0 ? 1 : 0), 0),
    filmFrames: film.filmFrames,
    unetCalls,
    ...(inversionUnetCalls > 0 ? { inversionUnetCalls } : {}),
    metric: metric.name,
    segments: segments.map((segment) => ({ dir: segment.dir, durationSeconds: segment.durationSeconds })),
    ...(film.smoothness !== undefined ? { smoothness: film.smoothness } : {}),
  };
}

/**
 * Writes the film of finished transitions (side files first) and, for a whole film, its record
 * film.json just before the film itself, so a film in place always has its record (a film of
 * one transition does not describe the work folder's film). Shared by renderFilm and the worker
 * pool. With `metric`, the smoothness figures go on the plot and into the record.
 */
export async function writeFilmWithRecord(
  segments: readonly { readonly transition: Transition; readonly durationSeconds: number; readonly dir: string }[],
  options: {
    readonly workDir: string;
    readonly out: string;
    readonly spec: FilmSpec;
    /** The model as film.json records it. */
    readonly model: string;
    readonly wholeFilm: boolean;
    readonly force: boolean;
    readonly metric?: SimilarityMetric;
    readonly metricFallback?: string;
    readonly signal?: AbortSignal;
    readonly ffmpegPath?: string;
    readonly ffmpegSpawner?: FfmpegSpawner;
    readonly framesDir?: string;
    /** The scheduler class that made the frames, for the provenance of --frames-dir PNGs. */
    readonly scheduler?: string;
    readonly comment?: string;
  },
  reporter: Reporter,
): Promise<{ filmFrames: number; smoothness?: SmoothnessReport }> {
  const { workDir, spec } = options;
  const retiming = spec.retiming === 'equal' ? 'equal' : 'perceptual';
  const writeRecord = (smoothness: SmoothnessReport | undefined) =>
    writeFilmRecord(workDir, {
      kind: 'movie',
      model: options.model,
      out: relative(workDir, resolve(options.out)),
      fps: spec.fps,
      quality: spec.quality,
      retiming,
      transitions: segments.map((segment) => ({ dir: relative(workDir, segment.dir), durationSeconds: segment.durationSeconds })),
      ...(options.metric !== undefined ? { metric: options.metric.name } : {}),
      ...(options.metricFallback !== undefined ? { metricFallback: options.metricFallback } : {}),
      ...(smoothness !== undefined ? { smoothness: { ...smoothness } } : {}),
    });
  return writeFilm(
    segments,
    {
      out: options.out,
      fps: spec.fps,
      quality: spec.quality,
      retiming,
      force: options.force,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
      ...(options.ffmpegSpawner !== undefined ? { ffmpegSpawner: options.ffmpegSpawner } : {}),
      ...(options.framesDir !== undefined ? { framesDir: options.framesDir } : {}),
      ...(options.scheduler !== undefined ? { frameProvenance: { model: options.model, scheduler: options.scheduler } } : {}),
      ...(options.metric !== undefined ? { metric: options.metric } : {}),
      ...(options.wholeFilm ? { beforeFilm: writeRecord } : {}),
      ...(options.comment !== undefined ? { comment: options.comment } : {}),
    },
    reporter,
  );
}
