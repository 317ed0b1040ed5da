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
import { relative } from 'node:path';
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { continuationProblems, type BlendingEngine, type EngineEvent, type Transition } from '../engine/engine.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { modelStamp, type ModelStamp } from '../io/store.ts';
import { resolveTransitionOptions, type TransitionOptions } from '../engine/options.ts';
import { transitionsOf, transitionKey, type FilmSpec, type FilmTransition } from './spec.ts';
import { cachedTransition, hashOf, writeFilm } from './work-folder.ts';
import { writeFilmRecord } from './film-record.ts';
import type { Reporter } from './progress.ts';
import { LatentBlendError } from '../errors.ts';

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
  /** Also write the computed frames there as PNGs (film order, a shared keyframe once). */
  readonly framesDir?: string;
  /** Render only this transition (0-based) as the film; film.json is then not written. */
  readonly only?: number;
  /** Work folders to copy finished transitions from. */
  readonly reuseFrom?: readonly string[];
  readonly events?: RenderFilmEvents;
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
  readonly metric: string;
  /** The film's transition folders, in film order. */
  readonly segments: readonly { readonly dir: string; readonly durationSeconds: number }[];
}

/** The engine options of transition `index` of a film spec. */
export function transitionOptionsOf(spec: FilmSpec, index: number): Record<string, unknown> {
  const transition = transitionsOf(spec)[index]!;
  const optional = {
    negativePrompt: transition.negativePrompt,
    width: spec.width,
    height: spec.height,
    steps: spec.steps,
    guidanceScale: spec.guidanceScale,
    midDamper: spec.midDamper,
    depthStrength: spec.depthStrength,
    maxBranches: spec.branchesPerTransition,
    timeBudget: spec.timeBudgetPerTransition,
    branch1Crossfeed: spec.branch1Crossfeed,
    parentalCrossfeed: spec.parentalCrossfeed,
  };
  return {
    keyframeA: { prompt: transition.from.prompt, seed: transition.from.seed },
    keyframeB: { prompt: transition.to.prompt, seed: transition.to.seed },
    batchSize: spec.batchSize,
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
  };
}

class NotCached extends Error {}

/** Whether keyframe B of a transition depends on its keyframe A (then transitions chain). */
function chained(spec: FilmSpec): boolean {
  const crossfeed = spec.branch1Crossfeed;
  return crossfeed !== undefined && crossfeed.power > 0 && crossfeed.range > 0;
}

/** Transition `index` with `key`, finished in one of `folders`, or undefined. */
async function findFinished(folders: readonly string[], index: number, key: string, stamp: ModelStamp): Promise<Transition | undefined> {
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

  const segments: { transition: Transition; durationSeconds: number; dir: string; index: number }[] = [];
  let unetCalls = 0;
  let reusedCount = 0;
  let previous: { transition: Transition; index: number } | undefined;
  for (const [step, index] of indices.entries()) {
    const transition = transitions[index]!;
    events.transitionStart?.({ index, step, steps: indices.length, transition });
    const input = transitionOptionsOf(spec, index);
    const resolved = resolveTransitionOptions(input, pipeline.defaults, (value) => pipeline.roundedSize(value));
    const stamp = modelStamp(model, pipeline, pipeline.latentShape(resolved.width, resolved.height));
    const key = hashOf([transitionKey(spec, index), metric.name]);
    // Keyframe A of this transition is keyframe B of the previous one: reuse it when the
    // settings that shape a trajectory are the same (as `latentblend movie` does).
    const startFrom =
      previous !== undefined && previous.index === index - 1 && continuationProblems(previous.transition, resolved).length === 0
        ? previous.transition
        : undefined;
    reporter.info(`transition ${index + 1} of ${transitions.length}: "${transition.from.prompt}" → "${transition.to.prompt}"`);
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
      });
    });
    reporter.stopBar();
    const reused = result.reused || copied;
    if (reused) reusedCount += 1;
    else unetCalls += result.transition.stats.unetCalls;
    events.transitionDone?.({ index, transition: result.transition, dir: result.dir, reused });
    if (inFilm(index)) segments.push({ transition: result.transition, durationSeconds: transition.duration, dir: result.dir, index });
    previous = { transition: result.transition, index };
  }

  const retiming = spec.retiming === 'equal' ? 'equal' : 'distance';
  const film = await writeFilm(
    segments,
    {
      out: options.out,
      fps: spec.fps,
      quality: spec.quality,
      retiming,
      force: options.force,
      ...(signal !== undefined ? { signal } : {}),
      ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
      ...(options.framesDir !== undefined ? { framesDir: options.framesDir } : {}),
    },
    reporter,
  );
  if (only === undefined) {
    await writeFilmRecord(workDir, {
      kind: 'movie',
      model,
      out: relative(workDir, options.out),
      fps: spec.fps,
      quality: spec.quality,
      retiming,
      transitions: segments.map((segment) => ({ dir: relative(workDir, segment.dir), durationSeconds: segment.durationSeconds })),
    });
  }
  return {
    out: options.out,
    workDir,
    transitions: segments.length,
    transitionsReused: reusedCount,
    framesComputed: segments.reduce((sum, segment, position) => sum + segment.transition.frames.length - (position > 0 ? 1 : 0), 0),
    filmFrames: film.filmFrames,
    unetCalls,
    metric: metric.name,
    segments: segments.map((segment) => ({ dir: segment.dir, durationSeconds: segment.durationSeconds })),
  };
}
