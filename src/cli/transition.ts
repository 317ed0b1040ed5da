/** `latentblend transition`: one transition between two prompts, rendered as a film. */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { BlendingEngine } from '../engine/engine.ts';
import { metricFromFlags } from './metric-flags.ts';
import { resolveTransitionOptions, IMAGE_METHODS, type ImageMethod, type Keyframe } from '../engine/options.ts';
import { checkPicture, pictureHash, PICTURE_FITS, type PictureFit } from '../io/picture.ts';
import { LatentBlendError } from '../errors.ts';
import { modelStamp } from '../io/store.ts';
import { createReporter } from './progress.ts';
import { integerIn, numberIn, seedValue } from './parse.ts';
import { DEFAULT_MODEL, resolveModelForCli } from './model-source.ts';
import { addEngineFlags, addFilmOutputFlags, engineOptionsFromFlags, type EngineFlags, type FilmOutputFlags } from './engine-flags.ts';
import { cachedTransition, checkFilmSettings, checkOutputs, defaultWorkDir, hashOf, writeFilm } from '../film/work-folder.ts';
import { writeFilmRecord, recordedModel } from '../film/film-record.ts';
import { checkVideoEncoder } from '../io/video.ts';
import { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';
import type { Device } from '../runtime/onnx.ts';
import { nodePlatform } from '../node/platform.ts';
import { addControlFlags, loadControlNetForCli, readControlPicturesFromFlags, transitionControlFromFlags, type ControlFlags } from './control-flags.ts';
import { pictureHash as imagePictureHash, prepareControl } from '../engine/control.ts';
import { addIpAdapterFlags, loadIpAdapterForCli, readImagePromptsFromFlags, transitionImagePromptFromFlags, type IpAdapterFlags } from './ip-adapter-flags.ts';
import { parseFilmSpec } from '../film/spec.ts';
import { modelIdentity, parseQueueUrl } from '../queue/connection.ts';

interface TransitionFlags extends EngineFlags, FilmOutputFlags, ControlFlags, IpAdapterFlags {
  model: string;
  prompt1?: string;
  prompt2?: string;
  image1?: string;
  image2?: string;
  fit: PictureFit;
  imageMethod?: ImageMethod;
  seed1: number;
  seed2: number;
  duration: number;
  fps: number;
  quality?: number;
  retiming: 'perceptual' | 'equal';
  out: string;
  framesDir?: string;
  queue?: string;
}

/**
 * Loads the model and the similarity metric for a film command. With `film`, ffmpeg is checked
 * first (before any download or session), see checkVideoEncoder.
 */
export async function loadForFilm(
  flags: EngineFlags & { model: string },
  reporter: ReturnType<typeof createReporter>,
  signal: AbortSignal,
  film?: { out: string; ffmpegPath?: string },
) {
  // With a film, its encoder will be spawned by a helper started now, while this process is
  // small (see FfmpegSpawner); the caller closes it (our exit ends it too).
  const ffmpegSpawner = film !== undefined ? FfmpegSpawner.start() : undefined;
  try {
    return { ...(await loadModelForFilm(flags, reporter, signal, film)), ffmpegSpawner };
  } catch (error) {
    await ffmpegSpawner?.close();
    throw error;
  }
}

async function loadModelForFilm(
  flags: EngineFlags & { model: string },
  reporter: ReturnType<typeof createReporter>,
  signal: AbortSignal,
  film: { out: string; ffmpegPath?: string } | undefined,
) {
  if (film !== undefined) await checkVideoEncoder(film.out, film.ffmpegPath !== undefined ? { ffmpegPath: film.ffmpegPath } : {});
  const modelDir = await resolveModelForCli(flags.model, reporter, signal);
  const pipeline = await DiffusionPipeline.load(nodePlatform, 
    {
      modelDir,
      device: flags.device as Device,
      // Sessions in worker threads: Ctrl-C and the progress display answer during a long call.
      inferenceThread: 'worker',
      ...(flags.preset !== undefined ? { preset: flags.preset } : {}),
      ...(flags.scheduler !== undefined ? { scheduler: flags.scheduler } : {}),
      ...(flags.maxArea !== undefined ? { maxAreaFactor: flags.maxArea } : {}),
    },
    reporter.listener,
  );
  const { metric, fallback } = await metricFromFlags(flags, reporter);
  return { pipeline, metric, metricFallback: fallback, engine: new BlendingEngine(pipeline, metric) };
}

/**
 * A keyframe from the CLI: a prompt, a picture, or both. The picture is checked (header, size
 * limit) and hashed here, so that a bad file fails before any model work and a changed file
 * changes the transition's key (it is computed again instead of reused).
 */
async function cliKeyframe(
  side: '1' | '2',
  prompt: string | undefined,
  image: string | undefined,
  seed: number,
  flags: { fit: PictureFit; imageMethod?: ImageMethod },
): Promise<Keyframe> {
  if (image === undefined) {
    if (prompt === undefined) throw new LatentBlendError(`keyframe ${side === '1' ? 'A' : 'B'} needs --prompt${side}, --image${side} or both.`);
    return { prompt, seed };
  }
  await checkPicture(image);
  const hash = await pictureHash(image);
  return { prompt: prompt ?? '', seed, image: { path: image, fit: flags.fit, hash, ...(flags.imageMethod !== undefined ? { method: flags.imageMethod } : {}) } };
}

export function transitionCommand(signal: AbortSignal): Command {
  const command = new Command('transition')
    .description('Compute a smooth transition between two prompts or pictures and render it as a film (mp4, webm or gif).')
    .option('-m, --model <path|repo>', 'model folder in Optimum ONNX layout, or a Hugging Face Hub repo id', DEFAULT_MODEL)
    .option('--prompt1 <text>', 'prompt of keyframe A (the start); with --image1, what the picture shows')
    .option('--prompt2 <text>', 'prompt of keyframe B (the end); with --image2, what the picture shows')
    .option('--image1 <file>', 'picture as keyframe A: the film starts exactly on it (PNG, JPEG, WebP, TIFF, AVIF)')
    .option('--image2 <file>', 'picture as keyframe B: the film ends exactly on it')
    .addOption(new Option('--fit <mode>', 'how pictures fill the frame: cover (crop the centre) or contain (pad white)').choices(PICTURE_FITS).default('cover'))
    .addOption(new Option('--image-method <method>', "how a picture's trajectory is built: noise (cheap, Turbo's default) or inversion (DDIM inversion, N-1 UNet calls, the default of standard models)").choices(IMAGE_METHODS))
    .option('--seed1 <int>', 'seed of keyframe A', seedValue, 1)
    .option('--seed2 <int>', 'seed of keyframe B', seedValue, 2);
  addEngineFlags(command)
    .option('--duration <seconds>', 'length of the film', numberIn(0.1, 3600), 6)
    .option('--fps <number>', 'frames per second of the film', numberIn(1, 120), 30)
    .option('--quality <0-100>', 'video quality (higher = bigger file)', integerIn(0, 100))
    .addOption(new Option('--retiming <mode>', 'perceptual: constant perceived change per second; equal: the same time for every gap (as the Python project)').choices(['perceptual', 'equal']).default('perceptual'))
    .requiredOption('-o, --out <file>', 'the film: .mp4 (H.264), .webm (VP9) or .gif')
    .option('--frames-dir <dir>', 'also write the computed frames there as PNGs')
    .option('--queue <redis://HOST:PORT>', 'compute on a pool of `latentblend worker`s sharing this Redis and the work folder; the film is encoded here');
  addControlFlags(command, true);
  addIpAdapterFlags(command, true);
  addFilmOutputFlags(command, 'where the computed transition is kept for resuming and refining')
    .addHelpText(
      'after',
      `
Examples:
  latentblend transition --prompt1 "a lighthouse at dawn" --prompt2 "a lighthouse in a storm" --duration 12 --out storm.mp4
  latentblend transition --model fixtures/models/tiny-sdxl-turbo/onnx --prompt1 "a cat" --prompt2 "a dog" --duration 2 --fps 10 --out cat-dog.mp4
  latentblend transition --image1 summer.jpg --image2 winter.jpg --prompt1 "a park in summer" --prompt2 "a park in winter" --out seasons.mp4

Re-running the same command resumes: a transition that finished is not computed again.
Add branches later with: latentblend refine <out>.latentblend/transitions/00-… --branches 10`,
    )
    .action(async (flags: TransitionFlags) => {
      const started = performance.now();
      await checkFilmSettings({
        out: flags.out,
        fps: flags.fps,
        durations: [flags.duration],
        ...(flags.quality !== undefined ? { quality: flags.quality } : {}),
        ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
      });
      checkOutputs(flags);
      if (flags.queue !== undefined) {
        // The film spec has Canny's default thresholds only, and workers write no edge map here.
        for (const [flag, value] of [['--canny-low', flags.cannyLow], ['--canny-high', flags.cannyHigh], ['--canny-out', flags.cannyOut]] as const) {
          if (value !== undefined) throw new LatentBlendError(`transition --queue: ${flag} is not supported on the worker pool; leave it out (--canny uses the default thresholds) or run without --queue.`);
        }
      }
      // Keyframes first: a bad picture is refused before the model loads.
      const keyframeA = await cliKeyframe('1', flags.prompt1, flags.image1, flags.seed1, flags);
      const keyframeB = await cliKeyframe('2', flags.prompt2, flags.image2, flags.seed2, flags);
      const pictures = await readControlPicturesFromFlags(flags, flags.force);
      const imagePrompts = await readImagePromptsFromFlags(flags);
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      if (flags.queue !== undefined) {
        await transitionOnPool(flags, reporter, signal, started);
        return;
      }
      const { pipeline, metric, metricFallback, engine, ffmpegSpawner } = await loadForFilm(flags, reporter, signal, { out: flags.out, ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}) });
      try {
        const loadedControl = pictures === undefined ? undefined : await loadControlNetForCli(flags, pipeline, reporter, signal);
        const controlNet = pictures === undefined || loadedControl === undefined ? undefined : transitionControlFromFlags(flags, pictures, loadedControl);
        const loadedIp = imagePrompts === undefined ? undefined : await loadIpAdapterForCli(flags, pipeline, reporter, signal);
        const ipAdapter = imagePrompts === undefined || loadedIp === undefined ? undefined : transitionImagePromptFromFlags(flags, imagePrompts, loadedIp);
        // Image prompts by content in the key, like control pictures.
        const imageKey =
          ipAdapter === undefined || imagePrompts === undefined
            ? undefined
            : { ipAdapter: flags.ipAdapter, pictureA: imagePictureHash(imagePrompts.pictureA), pictureB: imagePrompts.pictureB === undefined ? null : imagePictureHash(imagePrompts.pictureB), scaleA: flags.ipAdapterScale ?? 1, scaleB: flags.ipAdapterScale2 ?? flags.ipAdapterScale ?? 1 };
        const input = { keyframeA, keyframeB, ...engineOptionsFromFlags(flags) };
        const resolved = resolveTransitionOptions(input, pipeline.defaults, (value) => pipeline.roundedSize(value));
        const stamp = modelStamp(recordedModel(flags.model), pipeline, pipeline.latentShape(resolved.width, resolved.height));
        const workDir = flags.workDir ?? defaultWorkDir(flags.out);
        // The ControlNet settings (pictures by content) are part of the key: other pictures, another transition.
        const control = controlNet === undefined ? undefined : prepareControl(controlNet, resolved.width, resolved.height, pipeline.folder.family).summary;
        const key = hashOf({ stamp: { ...stamp, source: undefined }, options: resolved, metric: metric.name, ...(control !== undefined ? { control } : {}), ...(imageKey !== undefined ? { imagePrompt: imageKey } : {}) });
        reporter.startBar('blending', 1, { countSteps: false });
        const { transition, dir, reused } = await cachedTransition(workDir, 0, key, stamp, () =>
          engine.runTransition(input, { signal, onEvent: reporter.engineListener, ...(controlNet !== undefined ? { controlNet } : {}), ...(ipAdapter !== undefined ? { ipAdapter } : {}) }),
          (message) => reporter.warn(`${message} Computing it again.`),
        );
        reporter.stopBar();
        if (reused) reporter.info(`reusing the finished transition in ${dir}`);
        const retiming = flags.retiming === 'equal' ? 'equal' : 'perceptual';
        const film = await writeFilm(
          [{ transition, durationSeconds: flags.duration }],
          {
            out: flags.out,
            fps: flags.fps,
            retiming,
            force: flags.force,
            signal,
            ...(flags.quality !== undefined ? { quality: flags.quality } : {}),
            ...(flags.framesDir !== undefined ? { framesDir: flags.framesDir } : {}),
            frameProvenance: { model: recordedModel(flags.model), scheduler: pipeline.schedulerClass },
            ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
            ...(ffmpegSpawner !== undefined ? { ffmpegSpawner } : {}),
            metric,
            beforeFilm: (smoothness) =>
              writeFilmRecord(workDir, {
                kind: 'transition',
                model: recordedModel(flags.model),
                out: relative(workDir, flags.out),
                fps: flags.fps,
                retiming,
                ...(flags.quality !== undefined ? { quality: flags.quality } : {}),
                transitions: [{ dir: relative(workDir, dir), durationSeconds: flags.duration }],
                metric: metric.name,
                ...(metricFallback !== undefined ? { metricFallback } : {}),
                ...(smoothness !== undefined ? { smoothness: { ...smoothness } } : {}),
              }),
          },
          reporter,
        );
        await metric.release?.();
        const summary = {
          out: flags.out,
          workDir,
          transitionDir: dir,
          framesComputed: transition.frames.length,
          filmFrames: film.filmFrames,
          unetCalls: reused ? 0 : transition.stats.unetCalls,
          unetEvaluations: reused ? 0 : transition.stats.unetEvaluations,
          ...(transition.stats.inversionUnetCalls !== undefined ? { inversionUnetCalls: reused ? 0 : transition.stats.inversionUnetCalls } : {}),
          metric: metric.name,
          ...(metricFallback !== undefined ? { metricFallback: true } : {}),
          smoothness: film.smoothness,
          resumed: reused,
          wallSeconds: (performance.now() - started) / 1000,
        };
        if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else reporter.info(`wrote ${flags.out}: ${summary.filmFrames} film frames from ${summary.framesComputed} computed frames (${summary.unetCalls} UNet calls) in ${summary.wallSeconds.toFixed(1)} s`);
      } finally {
        await ffmpegSpawner?.close();
      }
    });
  return command;
}

/** A keyframe of `transition --queue`'s film spec: a prompt, a picture (absolute path, on the shared file system), or both. */
function poolKeyframe(prompt: string | undefined, image: string | undefined, seed: number, flags: TransitionFlags): Record<string, unknown> {
  if (image === undefined) return { prompt, seed };
  return {
    ...(prompt !== undefined && prompt !== '' ? { prompt } : {}),
    image: resolve(image),
    fit: flags.fit,
    ...(flags.imageMethod !== undefined ? { imageMethod: flags.imageMethod } : {}),
    seed,
  };
}

/** A folder given on the command line, absolute when it is one here (shared), else a Hub id as written. */
function folderOrRepo(value: string): string {
  return existsSync(value) ? resolve(value) : value;
}

/** The film-wide ControlNet and IP-Adapter settings of `transition --queue`'s film spec (the flags were checked already). */
function poolControlSettings(flags: TransitionFlags): Record<string, unknown> {
  return {
    ...(flags.controlnet !== undefined ? { controlnet: folderOrRepo(flags.controlnet) } : {}),
    ...(flags.controlImage !== undefined ? { controlImage: resolve(flags.controlImage) } : {}),
    ...(flags.controlnetScale !== undefined ? { controlnetScale: flags.controlnetScale } : {}),
    ...(flags.controlGuidanceStart !== undefined ? { controlGuidanceStart: flags.controlGuidanceStart } : {}),
    ...(flags.controlGuidanceEnd !== undefined ? { controlGuidanceEnd: flags.controlGuidanceEnd } : {}),
    ...(flags.canny === true ? { canny: true } : {}),
    ...(flags.ipAdapter !== undefined ? { ipAdapter: folderOrRepo(flags.ipAdapter) } : {}),
    ...(flags.ipImage !== undefined ? { ipImage: resolve(flags.ipImage) } : {}),
    ...(flags.ipAdapterScale !== undefined ? { ipAdapterScale: flags.ipAdapterScale } : {}),
  };
}

/** A keyframe's own control picture, image prompt and scales (--control-image1/2, --ip-image1/2, the scales of B). */
function poolKeyframeControl(flags: TransitionFlags, end: 'A' | 'B'): Record<string, unknown> {
  const controlImage = end === 'A' ? flags.controlImage1 : flags.controlImage2;
  const ipImage = end === 'A' ? flags.ipImage1 : flags.ipImage2;
  return {
    ...(controlImage !== undefined ? { controlImage: resolve(controlImage) } : {}),
    ...(end === 'B' && flags.controlnetScale2 !== undefined ? { controlnetScale: flags.controlnetScale2 } : {}),
    ...(ipImage !== undefined ? { ipImage: resolve(ipImage) } : {}),
    ...(end === 'B' && flags.ipAdapterScale2 !== undefined ? { ipAdapterScale: flags.ipAdapterScale2 } : {}),
  };
}

/**
 * `transition --queue`: the transition as a two-keyframe film on the worker pool (its work folder
 * then has the layout of `movie`'s).
 */
async function transitionOnPool(flags: TransitionFlags, reporter: ReturnType<typeof createReporter>, signal: AbortSignal, started: number): Promise<void> {
  for (const [flag, value] of [['--scheduler', flags.scheduler], ['--lpips', flags.lpips]] as const) {
    if (value !== undefined) throw new LatentBlendError(`${flag} is a setting of the workers, not of transition --queue; start the workers with it.`);
  }
  const connection = parseQueueUrl(flags.queue!);
  const model = modelIdentity(flags.model);
  const settings = Object.fromEntries(
    Object.entries({
      model,
      preset: flags.preset,
      width: flags.width,
      height: flags.height,
      steps: flags.steps,
      guidanceScale: flags.guidanceScale,
      midDamper: flags.midDamper,
      depthStrength: flags.depthStrength,
      negativePrompt: flags.negativePrompt,
      branchesPerTransition: flags.maxBranches,
      timeBudgetPerTransition: flags.timeBudget,
      batchSize: flags.batchSize,
      branch1Crossfeed: flags.branch1Crossfeed,
      parentalCrossfeed: flags.parentalCrossfeed,
      fps: flags.fps,
      transitionDuration: flags.duration,
      retiming: flags.retiming,
      quality: flags.quality,
    }).filter(([, value]) => value !== undefined),
  );
  const spec = parseFilmSpec(
    JSON.stringify({
      ...settings,
      ...poolControlSettings(flags),
      keyframes: [
        { ...poolKeyframe(flags.prompt1, flags.image1, flags.seed1, flags), ...poolKeyframeControl(flags, 'A') },
        { ...poolKeyframe(flags.prompt2, flags.image2, flags.seed2, flags), ...poolKeyframeControl(flags, 'B') },
      ],
    }),
    { path: 'transition flags', format: 'json' },
  );
  // BullMQ is loaded only for --queue.
  const { renderFilmOnPool } = await import('../queue/render-on-pool.ts');
  const result = await renderFilmOnPool({
    connection,
    spec,
    model,
    ...(flags.preset !== undefined ? { preset: flags.preset } : {}),
    workDir: flags.workDir ?? defaultWorkDir(flags.out),
    out: flags.out,
    force: flags.force,
    reporter,
    signal,
    ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
    ...(flags.framesDir !== undefined ? { framesDir: flags.framesDir } : {}),
  });
  const summary = {
    out: flags.out,
    workDir: result.workDir,
    transitionDir: result.segments[0]!.dir,
    framesComputed: result.framesComputed,
    filmFrames: result.filmFrames,
    unetCalls: result.unetCalls,
    metric: result.metric,
    resumed: result.transitionsReused > 0,
    run: result.run,
    workers: result.workers,
    jobs: result.jobs,
    wallSeconds: (performance.now() - started) / 1000,
  };
  if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else reporter.info(`wrote ${flags.out}: ${summary.filmFrames} film frames from ${summary.framesComputed} computed frames by ${summary.workers.length} worker${summary.workers.length === 1 ? '' : 's'} in ${summary.wallSeconds.toFixed(1)} s`);
}
