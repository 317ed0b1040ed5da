/** `latentblend movie`: a film through K keyframes from a spec file, resumable. */
import { Command, Option } from 'commander';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { loadFilmSpec, transitionsOf, EXAMPLE_FILM_SPEC } from '../film/spec.ts';
import { renderFilm, filmPictureHashes } from '../film/render-film.ts';
import { createReporter } from './progress.ts';
import { DEFAULT_MODEL } from './model-source.ts';
import { loadForFilm } from './transition.ts';
import { checkFilmSettings, checkOutputs, defaultWorkDir } from '../film/work-folder.ts';
import { DEVICES } from '../runtime/onnx.ts';
import { addFilmOutputFlags, type FilmOutputFlags } from './engine-flags.ts';
import { LatentBlendError } from '../errors.ts';
import { numberIn } from './parse.ts';
import { metricOption } from './metric-flags.ts';
import { modelIdentity, parseQueueUrl } from '../queue/connection.ts';

interface MovieFlags extends FilmOutputFlags {
  out?: string;
  example: boolean;
  device?: string;
  lpips?: string;
  metric?: string;
  framesDir?: string;
  maxArea?: number;
  queue?: string;
  run?: string;
}

export function movieCommand(signal: AbortSignal): Command {
  const command = new Command('movie')
    .description('Render a film through several keyframes, described in a YAML or JSON spec.')
    .argument('[spec]', 'film spec (.yaml, .yml or .json); see --example')
    .option('-o, --out <file>', 'the film: .mp4 (H.264), .webm (VP9) or .gif')
    .option('--example', 'print a commented example spec and exit', false)
    .addOption(new Option('-d, --device <name>', "execution provider (default: the spec's, else cpu)").choices(DEVICES))
    .option('--lpips <file.onnx>', 'LPIPS model for perceptual distances')
    .option('--frames-dir <dir>', 'also write the computed frames there as PNGs')
    .option('--max-area <factor>', "largest frame area, as a multiple of the model's native area (default 4)", numberIn(1, 1024))
    .addOption(metricOption())
    .option('--queue <redis://HOST:PORT>', 'render on a pool of `latentblend worker`s sharing this Redis and the work folder; the film is encoded here')
    .addOption(new Option('--run <name>', 'with --queue: name of this submission in job ids (letters, digits, - and _; default: random)').hideHelp());
  return addFilmOutputFlags(command, 'where finished transitions are kept for resuming')
    .addHelpText(
      'after',
      `
Examples:
  latentblend movie --example > film.yaml
  latentblend movie film.yaml --out film.mp4

An interrupted render (Ctrl-C, crash) resumes when the same command runs again: finished
transitions are reused, and changing a keyframe recomputes only the transitions it touches.`,
    )
    .action(async (specPath: string | undefined, flags: MovieFlags) => {
      if (flags.example) {
        process.stdout.write(EXAMPLE_FILM_SPEC);
        return;
      }
      if (specPath === undefined) throw new LatentBlendError('movie: give a film spec file (or --example to print one).');
      if (flags.out === undefined) throw new LatentBlendError("movie: --out <file> is required (the film's .mp4, .webm or .gif).");
      const out = flags.out;
      const started = performance.now();
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      const spec = loadFilmSpec(specPath, { onWarning: (message) => reporter.warn(message) });
      await checkFilmSettings({
        out,
        fps: spec.fps,
        quality: spec.quality,
        durations: transitionsOf(spec).map((transition) => transition.duration),
        ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
      });
      checkOutputs({ out, force: flags.force, ...(flags.workDir !== undefined ? { workDir: flags.workDir } : {}), ...(flags.framesDir !== undefined ? { framesDir: flags.framesDir } : {}) });
      // Bad pictures are refused before the model loads (renderFilm checks them again, cheaply).
      await filmPictureHashes(spec);
      // A relative model folder in a spec means relative to the spec file, like any path in it.
      const besideSpec = spec.model !== undefined && !isAbsolute(spec.model) ? join(dirname(specPath), spec.model) : undefined;
      const model = besideSpec !== undefined && existsSync(besideSpec) ? besideSpec : (spec.model ?? DEFAULT_MODEL);
      const workDir = flags.workDir ?? defaultWorkDir(out);
      // What the worker pool and this process render with alike.
      const renderOptions = {
        workDir,
        out,
        force: flags.force,
        reporter,
        signal,
        ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}),
        ...(flags.framesDir !== undefined ? { framesDir: flags.framesDir } : {}),
      };
      if (flags.queue !== undefined) {
        const connection = parseQueueUrl(flags.queue);
        // BullMQ is loaded only for --queue.
        const { renderFilmOnPool } = await import('../queue/render-on-pool.ts');
        const result = await renderFilmOnPool({
          connection,
          spec,
          // Workers compare models by real path: the same folder on the shared file system.
          model: modelIdentity(model),
          ...(spec.preset !== undefined ? { preset: spec.preset } : {}),
          // Workers read the spec's control pictures, image prompts and adapters relative to it.
          specDir: resolve(dirname(specPath)),
          ...renderOptions,
          ...(flags.run !== undefined ? { run: flags.run } : {}),
        });
        const summary = {
          out,
          workDir: result.workDir,
          transitions: result.transitions,
          transitionsReused: result.transitionsReused,
          framesComputed: result.framesComputed,
          filmFrames: result.filmFrames,
          unetCalls: result.unetCalls,
          metric: result.metric,
          run: result.run,
          workers: result.workers,
          jobs: result.jobs,
          wallSeconds: (performance.now() - started) / 1000,
        };
        if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else reporter.info(`wrote ${out}: ${summary.filmFrames} film frames, ${summary.transitions} transitions (${summary.transitionsReused} reused) by ${summary.workers.length} worker${summary.workers.length === 1 ? '' : 's'}, ${summary.wallSeconds.toFixed(1)} s`);
        return;
      }
      const { pipeline, metric, metricFallback, engine, ffmpegSpawner } = await loadForFilm(
        {
          model,
          device: flags.device ?? spec.device ?? 'cpu',
          ...(spec.preset !== undefined ? { preset: spec.preset } : {}),
          ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}),
          ...(flags.maxArea !== undefined ? { maxArea: flags.maxArea } : {}),
          ...(flags.metric !== undefined ? { metric: flags.metric } : {}),
        },
        reporter,
        signal,
        { out, ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}) },
      );
      try {
        const result = await renderFilm({
          spec,
          model,
          pipeline,
          metric,
          engine,
          ...renderOptions,
          ...(ffmpegSpawner !== undefined ? { ffmpegSpawner } : {}),
          ...(metricFallback !== undefined ? { metricFallback } : {}),
          specDir: dirname(specPath),
        });
        await metric.release?.();
        const summary = {
          out,
          workDir,
          transitions: result.transitions,
          transitionsReused: result.transitionsReused,
          framesComputed: result.framesComputed,
          filmFrames: result.filmFrames,
          unetCalls: result.unetCalls,
          ...(result.inversionUnetCalls !== undefined ? { inversionUnetCalls: result.inversionUnetCalls } : {}),
          metric: result.metric,
          ...(metricFallback !== undefined ? { metricFallback: true } : {}),
          smoothness: result.smoothness,
          wallSeconds: (performance.now() - started) / 1000,
        };
        if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else reporter.info(`wrote ${out}: ${summary.filmFrames} film frames, ${summary.transitions} transitions (${summary.transitionsReused} reused), ${summary.unetCalls} UNet calls, ${summary.wallSeconds.toFixed(1)} s`);
      } finally {
        await ffmpegSpawner?.close();
      }
    });
}
