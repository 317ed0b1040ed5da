/**
 * Loading another model while the studio runs (POST /api/model): where a source points (a local
 * folder, confined to `--models-dir` when the studio has one, or a Hugging Face Hub repo id) and
 * the 'model' job that downloads it when needed, loads it and hands it to the server, which
 * swaps it in. The job goes through the same queue as previews and renders, so the swap always
 * happens between two jobs, never under one. The chosen folder is only read as a model: nothing
 * in it is served or written through the API.
 */
import { statSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { DiffusionPipeline, type PipelineEvent } from '../pipeline/pipeline.ts';
import { BlendingEngine } from '../engine/engine.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import type { Device } from '../runtime/onnx.ts';
import { isRepoId, resolveModelSource, type ResolveModelOptions } from '../model/hub.ts';
import { LatentBlendError } from '../errors.ts';
import type { JobRunner } from './jobs.ts';
import { pipelineListener, type PipelineHooks, type StudioModel } from './runners.ts';
import { nodePlatform } from '../node/platform.ts';
import type { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';

/** Hub settings of the studio (tests point them at a fake Hub); unset ones come from HF_* variables. */
export type StudioHubOptions = Pick<ResolveModelOptions, 'cacheDir' | 'endpoint' | 'offline' | 'token' | 'env' | 'fetch'>;

/** What a model source names: a local folder (absolute) or a Hub repo id. */
export type ModelLocation = { readonly kind: 'folder'; readonly path: string } | { readonly kind: 'hub'; readonly id: string };

/** True when `path` is `root` or inside it (both absolute). */
export function isInside(root: string, path: string): boolean {
  const rest = relative(root, path);
  return !isAbsolute(rest) && rest.split(/[\\/]/)[0] !== '..';
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where a source points, decided as the CLI's `--model` decides: a path (absolute, `./…`,
 * `../…`, `~/…`) is a folder; a relative name that is an existing folder (under `modelsDir` when
 * given, else under `cwd`) is that folder; else a Hub id (`owner/name[/subfolder][@revision]`);
 * anything else is a folder that the job will report missing. With `modelsDir`, a folder outside
 * it is refused here (400) before anything is read.
 */
export function locateModelSource(source: string, options: { readonly modelsDir?: string; readonly cwd?: string } = {}): ModelLocation {
  const expanded = source === '~' || source.startsWith('~/') ? join(homedir(), source.slice(1)) : source;
  const pathLike = isAbsolute(expanded) || expanded === '.' || expanded === '..' || /^\.\.?[\\/]/.test(expanded) || expanded !== source;
  const path = resolve(options.modelsDir ?? options.cwd ?? process.cwd(), expanded);
  let location: ModelLocation;
  if (pathLike || isDirectory(path)) location = { kind: 'folder', path };
  else if (isRepoId(source)) location = { kind: 'hub', id: source };
  else location = { kind: 'folder', path };
  if (location.kind === 'folder' && options.modelsDir !== undefined && !isInside(options.modelsDir, location.path)) {
    throw new LatentBlendError(
      `Invalid model request:\n  source: ${location.path} is outside the models folder ${options.modelsDir} (the studio was started with --models-dir); choose a folder inside it or a Hugging Face repo id`,
      'outside_models_dir',
    );
  }
  return location;
}

/** Checks a local model folder before it is loaded; returns its absolute path. */
async function checkFolder(path: string, modelsDir: string | undefined): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new LatentBlendError(`Model folder ${path} does not exist.`, 'model_not_found');
  }
  if (!info.isDirectory()) {
    throw new LatentBlendError(`${path} is a file; a model is a folder in Optimum's ONNX layout (model_index.json, unet/model.onnx, …).`, 'model_not_found');
  }
  // A symbolic link inside the models folder must not lead out of it.
  if (modelsDir !== undefined && !isInside(modelsDir, await realpath(path))) {
    throw new LatentBlendError(`Model folder ${path} leads outside the models folder ${modelsDir} (through a symbolic link).`, 'outside_models_dir');
  }
  return path;
}

async function sameFolder(a: string, b: string): Promise<boolean> {
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}

export interface ModelSwitchOptions {
  readonly device: Device;
  readonly metric: SimilarityMetric;
  /** Why `metric` is the rms-pixel fallback, when it is (kept by every model loaded). */
  readonly metricFallback?: string;
  /** Shared by every model the studio loads: the running job's step and warning listeners. */
  readonly hooks: PipelineHooks;
  readonly ffmpegPath?: string;
  readonly ffmpegSpawner?: FfmpegSpawner;
  /** Real path of `--models-dir`, when given. */
  readonly modelsDir?: string;
  readonly hub?: StudioHubOptions;
  /** The model in use now. */
  current(): StudioModel;
  /** Makes `next` the model of every later job and frees the one it replaces. */
  install(next: StudioModel): Promise<void>;
  /** What GET /api/model answers for a model (the job's result). */
  describe(model: StudioModel): unknown;
  /** Warnings of the pipeline while no job listens. */
  log(line: string): void;
}

const MB = 1024 * 1024;

/**
 * The 'model' job: resolves the source (downloading a Hub model into the Hugging Face cache,
 * with bytes done/total as progress), loads it on the studio's device and installs it. A bad
 * source fails the job with the LatentBlendError's message; the old model then stays in use.
 */
export function modelJob(options: ModelSwitchOptions, location: ModelLocation, scheduler?: string): JobRunner {
  return async (context) => {
    const { signal } = context;
    const shown = location.kind === 'hub' ? location.id : location.path;
    context.progress({ done: 0, total: 0, label: `looking up ${shown}` });
    let dir: string;
    let recorded: string;
    if (location.kind === 'folder') {
      dir = (await resolveModelSource(await checkFolder(location.path, options.modelsDir), { signal })).dir;
      // A folder is recorded absolute (as the CLI records it), so the CLI finds it from anywhere.
      recorded = location.path;
    } else {
      const started = performance.now();
      const resolved = await resolveModelSource(location.id, {
        ...options.hub,
        signal,
        onProgress: (progress) => {
          const seconds = (performance.now() - started) / 1000;
          const rate = seconds > 0.5 && progress.bytesDone > 0 ? progress.bytesDone / seconds : undefined;
          context.progress({
            done: progress.bytesDone,
            total: progress.totalBytes,
            label: `Downloading ${location.id}: ${progress.file} (${(progress.bytesDone / MB).toFixed(1)} of ${(progress.totalBytes / MB).toFixed(1)} MB)`,
            etaSeconds: rate === undefined ? undefined : Math.max(0, progress.totalBytes - progress.bytesDone) / rate,
          });
        },
      });
      dir = resolved.dir;
      recorded = location.id;
    }
    signal.throwIfAborted();

    const current = options.current();
    if ((await sameFolder(current.pipeline.folder.dir, dir)) && (scheduler === undefined || scheduler === current.pipeline.schedulerClass)) {
      // The same files: nothing to load again; only the name the films record may change.
      const next = current.source === recorded ? current : { ...current, source: recorded };
      if (next !== current) await options.install(next);
      context.warn('This model is already loaded.');
      context.progress({ done: 1, total: 1, label: `${recorded} is loaded`, etaSeconds: 0 });
      return options.describe(next);
    }

    context.progress({ done: 0, total: 0, label: `loading ${shown} on ${options.device}`, etaSeconds: undefined });
    const base = pipelineListener(options.hooks, (message) => options.log(`warning: ${message}`));
    let onLoad: ((part: string) => void) | undefined = (part) => context.progress({ label: `loading ${shown}: ${part} ready` });
    options.hooks.warning = (message) => context.warn(message);
    let pipeline: DiffusionPipeline;
    try {
      pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, device: options.device, inferenceThread: 'worker', ...(scheduler !== undefined ? { scheduler } : {}) }, (event: PipelineEvent) => {
        if (event.type === 'load') onLoad?.(event.part);
        else base(event);
      });
    } finally {
      onLoad = undefined;
      options.hooks.warning = undefined;
    }
    if (signal.aborted) {
      // Cancelled while loading (loading itself cannot stop): the old model stays.
      for (const model of pipeline.models) await model.session.release().catch(() => {});
      throw signal.reason;
    }
    const next: StudioModel = {
      source: recorded,
      pipeline,
      metric: options.metric,
      ...(options.metricFallback !== undefined ? { metricFallback: options.metricFallback } : {}),
      engine: new BlendingEngine(pipeline, options.metric),
      device: options.device,
      hooks: options.hooks,
      ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
      ...(options.ffmpegSpawner !== undefined ? { ffmpegSpawner: options.ffmpegSpawner } : {}),
    };
    await options.install(next);
    context.progress({ done: 1, total: 1, label: `${recorded} is loaded (${pipeline.defaults.family === 'sdxl' ? 'SDXL' : 'SD'}, ${pipeline.defaults.preset})`, etaSeconds: 0 });
    return options.describe(next);
  };
}
