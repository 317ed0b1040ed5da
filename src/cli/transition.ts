/** `latentblend transition`: one transition between two prompts, rendered as a film. */
import { Command, Option } from 'commander';
import { relative } from 'node:path';
import { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { BlendingEngine } from '../engine/engine.ts';
import { chooseMetric } from '../node/metric.ts';
import { resolveTransitionOptions } from '../engine/options.ts';
import { modelStamp } from '../io/store.ts';
import { createReporter } from './progress.ts';
import { integerIn, numberIn, seedValue } from './parse.ts';
import { DEFAULT_MODEL, resolveModelForCli } from './model-source.ts';
import { addEngineFlags, addFilmOutputFlags, engineOptionsFromFlags, type EngineFlags, type FilmOutputFlags } from './engine-flags.ts';
import { cachedTransition, checkOutputs, defaultWorkDir, hashOf, writeFilm } from '../film/work-folder.ts';
import { writeFilmRecord } from '../film/film-record.ts';
import type { Device } from '../runtime/onnx.ts';
import { nodePlatform } from '../node/platform.ts';

interface TransitionFlags extends EngineFlags, FilmOutputFlags {
  model: string;
  prompt1: string;
  prompt2: string;
  seed1: number;
  seed2: number;
  duration: number;
  fps: number;
  quality?: number;
  retiming: 'perceptual' | 'equal';
  out: string;
  framesDir?: string;
}

/** Loads the model and the similarity metric for a film command. */
export async function loadForFilm(flags: EngineFlags & { model: string }, reporter: ReturnType<typeof createReporter>, signal: AbortSignal) {
  const modelDir = await resolveModelForCli(flags.model, reporter, signal);
  const pipeline = await DiffusionPipeline.load(nodePlatform, 
    {
      modelDir,
      device: flags.device as Device,
      ...(flags.preset !== undefined ? { preset: flags.preset } : {}),
      ...(flags.scheduler !== undefined ? { scheduler: flags.scheduler } : {}),
    },
    reporter.listener,
  );
  const metric = await chooseMetric({
    device: flags.device as Device,
    ...(flags.lpips !== undefined ? { lpipsModel: flags.lpips } : {}),
    onWarning: (message) => reporter.warn(message),
  });
  return { pipeline, metric, engine: new BlendingEngine(pipeline, metric) };
}

export function transitionCommand(signal: AbortSignal): Command {
  const command = new Command('transition')
    .description('Compute a smooth transition between two prompts and render it as a film (mp4, webm or gif).')
    .option('-m, --model <path|repo>', 'model folder in Optimum ONNX layout, or a Hugging Face Hub repo id', DEFAULT_MODEL)
    .requiredOption('--prompt1 <text>', 'prompt of keyframe A (the start)')
    .requiredOption('--prompt2 <text>', 'prompt of keyframe B (the end)')
    .option('--seed1 <int>', 'seed of keyframe A', seedValue, 1)
    .option('--seed2 <int>', 'seed of keyframe B', seedValue, 2);
  addEngineFlags(command)
    .option('--duration <seconds>', 'length of the film', numberIn(0.1, 3600), 6)
    .option('--fps <number>', 'frames per second of the film', numberIn(1, 120), 30)
    .option('--quality <0-100>', 'video quality (higher = bigger file)', integerIn(0, 100))
    .addOption(new Option('--retiming <mode>', 'perceptual: constant perceived change per second; equal: the same time for every gap (as the Python project)').choices(['perceptual', 'equal']).default('perceptual'))
    .requiredOption('-o, --out <file>', 'the film: .mp4 (H.264), .webm (VP9) or .gif')
    .option('--frames-dir <dir>', 'also write the computed frames there as PNGs');
  addFilmOutputFlags(command, 'where the computed transition is kept for resuming and refining')
    .addHelpText(
      'after',
      `
Examples:
  latentblend transition --prompt1 "a lighthouse at dawn" --prompt2 "a lighthouse in a storm" --duration 12 --out storm.mp4
  latentblend transition --model fixtures/models/tiny-sdxl-turbo/onnx --prompt1 "a cat" --prompt2 "a dog" --duration 2 --fps 10 --out cat-dog.mp4

Re-running the same command resumes: a transition that finished is not computed again.
Add branches later with: latentblend refine <out>.latentblend/transitions/00-… --branches 10`,
    )
    .action(async (flags: TransitionFlags) => {
      const started = performance.now();
      checkOutputs(flags);
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      const { pipeline, metric, engine } = await loadForFilm(flags, reporter, signal);
      const input = {
        keyframeA: { prompt: flags.prompt1, seed: flags.seed1 },
        keyframeB: { prompt: flags.prompt2, seed: flags.seed2 },
        ...engineOptionsFromFlags(flags),
      };
      const resolved = resolveTransitionOptions(input, pipeline.defaults, (value) => pipeline.roundedSize(value));
      const stamp = modelStamp(flags.model, pipeline, pipeline.latentShape(resolved.width, resolved.height));
      const workDir = flags.workDir ?? defaultWorkDir(flags.out);
      const key = hashOf({ stamp: { ...stamp, source: undefined }, options: resolved, metric: metric.name });
      reporter.startBar('blending', 1, { countSteps: false });
      const { transition, dir, reused } = await cachedTransition(workDir, 0, key, stamp, () =>
        engine.runTransition(input, { signal, onEvent: reporter.engineListener }),
      );
      reporter.stopBar();
      if (reused) reporter.info(`reusing the finished transition in ${dir}`);
      const retiming = flags.retiming === 'equal' ? 'equal' : 'distance';
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
          ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
        },
        reporter,
      );
      await writeFilmRecord(workDir, {
        kind: 'transition',
        model: flags.model,
        out: relative(workDir, flags.out),
        fps: flags.fps,
        retiming,
        ...(flags.quality !== undefined ? { quality: flags.quality } : {}),
        transitions: [{ dir: relative(workDir, dir), durationSeconds: flags.duration }],
      });
      await metric.release?.();
      const summary = {
        out: flags.out,
        workDir,
        transitionDir: dir,
        framesComputed: transition.frames.length,
        filmFrames: film.filmFrames,
        unetCalls: reused ? 0 : transition.stats.unetCalls,
        unetEvaluations: reused ? 0 : transition.stats.unetEvaluations,
        metric: metric.name,
        resumed: reused,
        wallSeconds: (performance.now() - started) / 1000,
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else reporter.info(`wrote ${flags.out}: ${summary.filmFrames} film frames from ${summary.framesComputed} computed frames (${summary.unetCalls} UNet calls) in ${summary.wallSeconds.toFixed(1)} s`);
    });
  return command;
}
