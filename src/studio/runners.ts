/**
 * What the studio's jobs do: previews (one image per seed, `DiffusionPipeline.generate`) and
 * renders (a film spec rendered with renderFilm into a CLI work folder); loading another model
 * is ./model-switch.ts. Each returns a JobRunner for the queue; they report progress, warnings,
 * partial results and live frames through the job context and stop within a denoising step when
 * the job is cancelled. A job takes the model in use when it starts (the model can change while
 * it waits in the queue), so it is handed a function that returns the current model.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DiffusionPipeline, PipelineEvent } from '../pipeline/pipeline.ts';
import type { BlendingEngine, EngineEvent } from '../engine/engine.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { modelTransitionDefaults, resolveTransitionOptions, type ResolvedTransitionOptions } from '../engine/options.ts';
import type { Device } from '../runtime/onnx.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { LatentDecoder } from '../pipeline/vae.ts';
import { encodePng } from '../io/png.ts';
import { withPngText } from '../io/png-text.ts';
import { previewText, transitionFrameText } from './provenance.ts';
import { savePreviewBatch } from './preview-library.ts';
import { compatibleSchedulers } from './model-catalog.ts';
import { writeFileAtomically } from '../io/files.ts';
import { VIDEO_FORMATS } from '../io/video.ts';
import { checkRenderFormat } from '../film/spec-guards.ts';
import { filmSpecToYaml, transitionsOf, type FilmSpec } from '../film/spec.ts';
import { renderFilm, type RenderFilmResult } from '../film/render-film.ts';
import { transitionOptionsOf } from '../film/render-film.ts';
import type { Reporter } from '../film/progress.ts';
import { LatentBlendError } from '../errors.ts';
import type { JobContext, JobRunner } from './jobs.ts';
import { unresolvedPicture } from './pictures.ts';
import { hasControlNetUnet } from './control.ts';
import { checkIpAdapterFits, takesIpAdapter } from './image-prompt.ts';
import { RESIDUAL_UNET_FOLDER } from '../pipeline/controlnet.ts';
import { DEFAULT_PREVIEWS, MAX_PREVIEWS, type PreviewsRequest, type RenderRequest } from './requests.ts';
import { filesDir, filmDir, filmFiles, filmIds, filmUrls, newId, writeStudioFilmRecord, type StudioFilmRecord } from './storage.ts';
import type { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';

/** Routes the pipeline's events (fixed at load time) to whichever job runs now. */
export interface PipelineHooks {
  step?: (() => void) | undefined;
  warning?: ((message: string) => void) | undefined;
}

/** The loaded model and everything a job needs to use it. */
export interface StudioModel {
  /** The model as recorded in transitions and film specs: an absolute folder or a Hub repo id. */
  readonly source: string;
  readonly pipeline: DiffusionPipeline;
  readonly metric: SimilarityMetric;
  /** Set when `metric` is the rms-pixel fallback (no LPIPS model found): the warning, recorded in film.json. */
  readonly metricFallback?: string;
  readonly engine: BlendingEngine;
  readonly device: Device;
  readonly hooks: PipelineHooks;
  readonly ffmpegPath?: string;
  /** Starts film encoders from a small helper process (see FfmpegSpawner); the studio owns it. */
  readonly ffmpegSpawner?: FfmpegSpawner;
}

/** The pipeline listener that feeds PipelineHooks (`fallbackWarning` when no job listens). */
export function pipelineListener(hooks: PipelineHooks, fallbackWarning: (message: string) => void): (event: PipelineEvent) => void {
  return (event) => {
    if (event.type === 'step') hooks.step?.();
    else if (event.type === 'warning') (hooks.warning ?? fallbackWarning)(event.message);
  };
}

/** The model in use now (it changes when a 'model' job installs another one). */
export type CurrentModel = () => StudioModel;

/** GET /api/model (`modelsDir`: the studio's --models-dir, when it has one). */
export function modelInfo(model: StudioModel, options: { readonly modelsDir?: string } = {}) {
  const { defaults } = model.pipeline;
  return {
    source: model.source,
    family: defaults.family,
    preset: defaults.preset,
    defaults: modelTransitionDefaults(defaults),
    schedulerClass: model.pipeline.schedulerClass,
    /** The scheduler the model ships, and the project's schedulers that suit it (POST /api/model `scheduler`). */
    shippedScheduler: model.pipeline.folder.schedulerClass,
    schedulers: compatibleSchedulers(model.pipeline.folder.schedulerClass, defaults.preset),
    device: model.device,
    metric: model.metric.name,
    /** Whether the model takes a ControlNet (has unet_controlnet/): the page then offers control pictures. */
    controlnet: hasControlNetUnet(model.pipeline.folder.dir),
    /** Whether the model can take an IP-Adapter exported for it: the page then offers image prompts. */
    ipAdapter: takesIpAdapter(model.pipeline.folder),
    /** Why the metric is the rms-pixel fallback (no LPIPS model found); absent when it was chosen or is LPIPS. */
    ...(model.metricFallback !== undefined ? { metricFallback: model.metricFallback } : {}),
    formats: [...VIDEO_FORMATS],
    limits: { previews: MAX_PREVIEWS, bodyBytes: 1024 * 1024 },
    ...(options.modelsDir !== undefined ? { modelsDir: options.modelsDir } : {}),
  };
}

/** Writes a PNG with its provenance in text chunks (./provenance.ts). */
async function writeImage(path: string, image: RgbImage, text: Readonly<Record<string, string>>): Promise<void> {
  await writeFileAtomically(path, withPngText(await encodePng(image), text), true);
}

/** The seeds of a previews request: those given, or `count` random ones. */
export function previewSeeds(request: PreviewsRequest, random: () => number = () => Math.floor(Math.random() * 2 ** 31)): number[] {
  if (request.seeds !== undefined) return [...request.seeds];
  return Array.from({ length: request.count ?? DEFAULT_PREVIEWS }, random);
}

/**
 * A previews job: one image per seed, written to the session's files as they come. `previewVae`
 * (the studio's --preview-vae) decodes them instead of the model's VAE; renders never take one.
 */
export function previewsJob(currentModel: CurrentModel, sessionDir: string, request: PreviewsRequest, seeds: readonly number[], previewVae?: LatentDecoder): JobRunner {
  return async (context) => {
    const model = currentModel();
    const { pipeline } = model;
    const dir = filesDir(sessionDir);
    mkdirSync(dir, { recursive: true });
    const steps = request.steps ?? pipeline.defaults.steps;
    const total = seeds.length * steps;
    const started = performance.now();
    let done = 0;
    const images: { seed: number; url: string }[] = [];
    model.hooks.step = () => {
      done = Math.min(total, done + 1);
      const elapsed = (performance.now() - started) / 1000;
      context.progress({ done, total, etaSeconds: (elapsed / done) * (total - done) });
    };
    model.hooks.warning = (message) => context.warn(message);
    try {
      for (const [index, seed] of seeds.entries()) {
        context.progress({ done, total, label: `image ${index + 1} of ${seeds.length}` });
        const { image } = await pipeline.generate({
          prompt: request.prompt,
          seed,
          signal: context.signal,
          ...(request.negativePrompt !== undefined ? { negativePrompt: request.negativePrompt } : {}),
          ...(request.steps !== undefined ? { steps: request.steps } : {}),
          ...(request.guidanceScale !== undefined ? { guidanceScale: request.guidanceScale } : {}),
          ...(request.width !== undefined ? { width: request.width } : {}),
          ...(request.height !== undefined ? { height: request.height } : {}),
        }, previewVae);
        const name = `${newId()}.png`;
        const negativePrompt = request.negativePrompt ?? '';
        await writeImage(
          join(dir, name),
          image,
          previewText({
            prompt: request.prompt,
            ...(negativePrompt !== '' ? { negativePrompt } : {}),
            seed,
            model: model.source,
            scheduler: pipeline.schedulerClass,
            steps,
            guidanceScale: request.guidanceScale ?? pipeline.defaults.guidanceScale,
            width: image.width,
            height: image.height,
            ...(previewVae !== undefined ? { previewVae: previewVae.source ?? 'preview decoder' } : {}),
          }),
        );
        images.push({ seed, url: `/api/files/${name}` });
        done = (index + 1) * steps;
        context.partial({ prompt: request.prompt, images: [...images] });
      }
    } finally {
      model.hooks.step = undefined;
      model.hooks.warning = undefined;
      // Kept on the server for the session (also what a cancelled job made).
      if (images.length > 0) {
        await savePreviewBatch(sessionDir, {
          id: context.id,
          createdAt: new Date().toISOString(),
          prompt: request.prompt,
          ...(request.negativePrompt !== undefined && request.negativePrompt !== '' ? { negativePrompt: request.negativePrompt } : {}),
          width: request.width === undefined ? pipeline.defaults.width : pipeline.roundedSize(request.width),
          height: request.height === undefined ? pipeline.defaults.height : pipeline.roundedSize(request.height),
          steps,
          guidanceScale: request.guidanceScale ?? pipeline.defaults.guidanceScale,
          model: model.source,
          images,
        }).catch((error: unknown) => context.warn(`The previews could not be recorded on the server: ${(error as Error).message}`));
      }
    }
    context.progress({ done: total, total, label: `${seeds.length} image${seeds.length === 1 ? '' : 's'}`, etaSeconds: 0 });
    return { prompt: request.prompt, images };
  };
}

/** The film spec as rendered by the studio: its model, never the spec's own model or device. */
export function studioSpec(model: StudioModel, spec: FilmSpec): FilmSpec {
  const { device: _device, ...rest } = spec;
  return { ...rest, model: model.source };
}

/**
 * Checks a render request against the loaded model before it is queued, so that mistakes are
 * a 400 answer and not a failed job: the preset, every transition's options, the GIF frame rate.
 * Every picture must be one of the session's (./pictures.ts resolveRenderPictures made it so);
 * without `sessionDir` no picture is accepted.
 */
export function checkRenderRequest(model: StudioModel, request: RenderRequest, sessionDir?: string): void {
  const { pipeline } = model;
  const spec = studioSpec(model, request.spec);
  // A spec from the page must not make the server read files from its disk: pictures are
  // uploaded first and named by id (./pictures.ts resolveRenderPictures).
  const withPicture = unresolvedPicture(sessionDir, request);
  if (withPicture !== undefined) {
    throw new LatentBlendError(`Invalid film spec (key spec):\n  ${withPicture}: expected the id of a picture uploaded to this studio (POST /api/pictures)`);
  }
  if (spec.controlnet !== undefined && !hasControlNetUnet(pipeline.folder.dir)) {
    throw new LatentBlendError(
      `Invalid film spec (key spec):\n  controlnet: this studio's model ${model.source} has no ${RESIDUAL_UNET_FOLDER}/ export (the UNet that takes ControlNet residuals, docs/controlnet-onnx.md); remove the ControlNet keys or load a model that has it`,
    );
  }
  checkIpAdapterFits(spec, pipeline.folder, model.source);
  if (spec.preset !== undefined && spec.preset !== pipeline.defaults.preset) {
    throw new LatentBlendError(
      `Invalid film spec (key spec):\n  preset: this studio's model runs with the ${pipeline.defaults.preset} preset, got ${JSON.stringify(spec.preset)} (remove the key, or load another model)`,
    );
  }
  if (request.format !== undefined) checkRenderFormat(request.format, spec.fps);
  for (const transition of transitionsOf(spec)) {
    try {
      resolveTransitionOptions(transitionOptionsOf(spec, transition.index), pipeline.defaults, (value) => value);
    } catch (error) {
      if (error instanceof LatentBlendError) throw new LatentBlendError(`Transition ${transition.index + 1} of the spec: ${error.message}`, error.code);
      throw error;
    }
  }
}

/** Most live frames written per render job (a film with more still renders; the rest are not streamed). */
const MAX_LIVE_FRAMES = 4096;
/** Progress units per transition, and for encoding the film. */
const TRANSITION_UNITS = 1000;
const ENCODING_UNITS = 100;

/** Progress units of a render of `transitions` transitions (what its progress counts to), for queue estimates. */
export function renderUnits(transitions: number): number {
  return transitions * TRANSITION_UNITS + ENCODING_UNITS;
}

/**
 * What every studio render does first, on the studio's model or on the pool: checks the request
 * again (another model may have been loaded since it was accepted), makes the film folder, writes
 * its spec and its record ('rendering'). `others`: the session's other films, whose finished
 * transitions are reused.
 */
export async function prepareFilmRender(
  model: StudioModel,
  sessionDir: string,
  request: RenderRequest,
  filmId: string,
  jobId: string,
  resumed?: StudioFilmRecord,
): Promise<{ spec: FilmSpec; dir: string; others: string[]; framesDir: string; record: StudioFilmRecord }> {
  checkRenderRequest(model, request, sessionDir);
  const spec = studioSpec(model, request.spec);
  const dir = filmDir(sessionDir, filmId);
  const others = filmIds(sessionDir)
    .filter((id) => id !== filmId)
    .slice(0, 20)
    .map((id) => filmDir(sessionDir, id));
  mkdirSync(dir, { recursive: true });
  const framesDir = filesDir(sessionDir);
  mkdirSync(framesDir, { recursive: true });
  await writeFileAtomically(join(dir, 'spec.yaml'), filmSpecToYaml(spec), true);
  const record: StudioFilmRecord = {
    id: filmId,
    // A resumed film keeps its place in the list and its title.
    createdAt: resumed?.createdAt ?? Date.now(),
    ...(resumed?.title !== undefined ? { title: resumed.title } : {}),
    ...(resumed !== undefined ? { earlierJobIds: [...(resumed.earlierJobIds ?? []), resumed.jobId].slice(-50) } : {}),
    state: 'rendering',
    format: request.format,
    jobId,
    model: model.source,
    spec: request.rawSpec,
    ...(request.transitionIndex !== undefined ? { transitionIndex: request.transitionIndex } : {}),
  };
  await writeStudioFilmRecord(dir, record);
  return { spec, dir, others, framesDir, record };
}

/**
 * What every studio render does last once its film is made: waits for its live frames, records
 * the film 'done', reports the progress full (`progressTotal` units) and returns the job's result
 * (docs/studio-api.md), with the runner's own keys (`extra`).
 */
export async function finishFilmRender(
  context: JobContext,
  dir: string,
  record: StudioFilmRecord,
  request: RenderRequest,
  frameWrites: Promise<void>,
  result: RenderFilmResult,
  progressTotal: number,
  extra: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  await frameWrites;
  await writeStudioFilmRecord(dir, { ...record, state: 'done', finishedAt: Date.now(), frames: result.framesComputed, filmFrames: result.filmFrames });
  context.progress({ done: progressTotal, total: progressTotal, label: `${result.filmFrames} film frames`, etaSeconds: 0 });
  return {
    filmId: record.id,
    ...filmUrls(record.id, request.format),
    format: request.format,
    frames: result.framesComputed,
    filmFrames: result.filmFrames,
    transitions: result.transitions,
    transitionsReused: result.transitionsReused,
    unetCalls: result.unetCalls,
    ...extra,
    workDir: dir,
    ...(request.transitionIndex !== undefined ? { transitionIndex: request.transitionIndex } : {}),
  };
}

/**
 * What every studio render does when it fails or is cancelled: waits for its live frames and
 * records the film 'failed' or 'cancelled' (a failure to record is dropped: the render's error
 * is the one to report, and the caller rethrows it).
 */
export async function recordEndedFilmRender(context: JobContext, dir: string, record: StudioFilmRecord, frameWrites: Promise<void>): Promise<void> {
  await frameWrites;
  const state = context.signal.aborted ? 'cancelled' : 'failed';
  await writeStudioFilmRecord(dir, { ...record, state, finishedAt: Date.now() }).catch(() => {});
}

/**
 * A render job: the spec rendered into the film folder `filmId` of the session, reusing
 * finished transitions of the session's other films. Frames stream as 'frame' events.
 */
export function renderJob(currentModel: CurrentModel, sessionDir: string, request: RenderRequest, filmId: string, resumed?: StudioFilmRecord): JobRunner {
  return async (context: JobContext) => {
    const model = currentModel();
    const { spec, dir, others, framesDir, record } = await prepareFilmRender(model, sessionDir, request, filmId, context.id, resumed);

    const count = transitionsOf(spec).length;
    let step = 0;
    let steps = 1;
    let transitionStarted = performance.now();
    let frameCount = 0;
    let frameWrites: Promise<void> = Promise.resolve();
    const total = () => steps * TRANSITION_UNITS + ENCODING_UNITS;
    const resolved = new Map<number, ResolvedTransitionOptions>();
    /** The text chunks of a computed frame of transition `transition`. */
    const frameProvenance = (transition: number, fract: number, image: RgbImage) => {
      let options = resolved.get(transition);
      if (options === undefined) {
        options = resolveTransitionOptions(transitionOptionsOf(spec, transition), model.pipeline.defaults, (value) => model.pipeline.roundedSize(value));
        resolved.set(transition, options);
      }
      return transitionFrameText(options, { model: model.source, scheduler: model.pipeline.schedulerClass }, transition, fract, image);
    };
    const liveFrame = (transition: number, fract: number, injectionStep: number, image: RgbImage) => {
      if (frameCount >= MAX_LIVE_FRAMES) return;
      const index = frameCount++;
      const name = `${context.id}-frame-${index}.png`;
      frameWrites = frameWrites
        .then(async () => {
          await writeImage(join(framesDir, name), image, frameProvenance(transition, fract, image));
          context.emit('frame', { index, transition, fract, filmFract: (transition + fract) / count, injectionStep, url: `/api/files/${name}` });
        })
        .catch((error: unknown) => context.warn(`A live frame could not be written: ${(error as Error).message}`));
    };
    const onEngineEvent = (index: number, event: EngineEvent) => {
      if (event.type === 'progress') {
        const share = event.unetEvaluationsTotal > 0 ? event.unetEvaluationsDone / event.unetEvaluationsTotal : 0;
        const eta = event.etaSeconds;
        const elapsed = (performance.now() - transitionStarted) / 1000;
        context.progress({
          done: step * TRANSITION_UNITS + Math.round(share * TRANSITION_UNITS),
          total: total(),
          label: `transition ${index + 1} of ${count}: frame ${event.branchesDone} of ${event.branchesTotal}`,
          etaSeconds: eta === undefined ? undefined : eta + (steps - step - 1) * (elapsed + eta),
        });
      } else if (event.type === 'frame') {
        if (!(step > 0 && event.fract === 0)) liveFrame(index, event.fract, event.injectionStep, event.image);
      } else if (event.type === 'warning') {
        context.warn(event.message);
      } else if (event.type === 'budget-stop') {
        context.warn(`Transition ${index + 1}: the time budget of ${event.budgetSeconds} s was reached; ${event.branchesSkipped} planned frames were skipped.`);
      }
    };
    let encodingTotal = 1;
    const reporter: Reporter = {
      listener: () => {},
      engineListener: () => {},
      startBar: (label, barTotal) => {
        if (label !== 'encoding') return;
        encodingTotal = Math.max(1, barTotal);
        context.progress({ done: steps * TRANSITION_UNITS, total: total(), label: `encoding the film (${barTotal} frames)`, etaSeconds: undefined });
      },
      updateBar: (value) => {
        context.progress({ done: steps * TRANSITION_UNITS + Math.round((ENCODING_UNITS * value) / encodingTotal), total: total(), label: `encoding the film: frame ${value} of ${encodingTotal}` });
      },
      stopBar: () => {},
      warn: (message) => context.warn(message),
      info: () => {},
    };
    model.hooks.warning = (message) => context.warn(message);
    for (const message of request.warnings ?? []) context.warn(message);
    const files = filmFiles(dir, request.format);
    try {
      const result = await renderFilm({
        spec,
        model: model.source,
        pipeline: model.pipeline,
        metric: model.metric,
        engine: model.engine,
        ...(model.metricFallback !== undefined ? { metricFallback: model.metricFallback } : {}),
        workDir: dir,
        out: files.film,
        force: true,
        reporter,
        signal: context.signal,
        reuseFrom: others,
        // The film carries its spec (with the model it was made with), as `latentblend movie` reads it.
        comment: filmSpecToYaml(spec),
        ...(model.ffmpegPath !== undefined ? { ffmpegPath: model.ffmpegPath } : {}),
        ...(model.ffmpegSpawner !== undefined ? { ffmpegSpawner: model.ffmpegSpawner } : {}),
        ...(request.transitionIndex !== undefined ? { only: request.transitionIndex } : {}),
        events: {
          transitionStart: (info) => {
            step = info.step;
            steps = info.steps;
            transitionStarted = performance.now();
            context.progress({ done: step * TRANSITION_UNITS, total: total(), label: `transition ${info.index + 1} of ${count}`, etaSeconds: undefined });
          },
          engineEvent: onEngineEvent,
          transitionDone: (info) => {
            if (info.reused) {
              info.transition.tree.branches.forEach((branch, position) => {
                if (!(step > 0 && branch.fract === 0)) liveFrame(info.index, branch.fract, branch.injectionStep, info.transition.images[position]!);
              });
            }
            context.progress({ done: (step + 1) * TRANSITION_UNITS, total: total() });
          },
        },
      });
      return await finishFilmRender(context, dir, record, request, frameWrites, result, total(), {
        metric: result.metric,
        ...(model.metricFallback !== undefined ? { metricFallback: true } : {}),
      });
    } catch (error) {
      await recordEndedFilmRender(context, dir, record, frameWrites);
      throw error;
    } finally {
      model.hooks.warning = undefined;
    }
  };
}

/** A new film id for a render. */
export function newFilmId(): string {
  return newId();
}
