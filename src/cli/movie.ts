/** `latentblend movie`: a film through K keyframes from a spec file, resumable. */
import { Command, Option } from 'commander';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { existsSync } from 'node:fs';
import { modelStamp } from '../engine/store.ts';
import type { Transition } from '../engine/engine.ts';
import { loadFilmSpec, transitionsOf, transitionKey, EXAMPLE_FILM_SPEC, type FilmSpec } from '../film/spec.ts';
import { createReporter } from './progress.ts';
import { DEFAULT_MODEL } from './model-source.ts';
import { loadForFilm } from './transition.ts';
import { cachedTransition, checkOutputs, defaultWorkDir, hashOf, writeFilm } from './film-output.ts';
import { writeFilmRecord } from './film-record.ts';
import { DEVICES } from '../runtime/onnx.ts';
import { resolveTransitionOptions, type TransitionOptions } from '../engine/options.ts';
import { LatentBlendError } from '../errors.ts';

interface MovieFlags {
  out?: string;
  example: boolean;
  device?: string;
  lpips?: string;
  workDir?: string;
  ffmpeg?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
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

export function movieCommand(signal: AbortSignal): Command {
  return new Command('movie')
    .description('Render a film through several keyframes, described in a YAML or JSON spec.')
    .argument('[spec]', 'film spec (.yaml, .yml or .json); see --example')
    .option('-o, --out <file>', 'the film: .mp4 (H.264), .webm (VP9) or .gif')
    .option('--example', 'print a commented example spec and exit', false)
    .addOption(new Option('-d, --device <name>', "execution provider (default: the spec's, else cpu)").choices(DEVICES))
    .option('--lpips <file.onnx>', 'LPIPS model for perceptual distances')
    .option('--work-dir <dir>', 'where finished transitions are kept for resuming (default: <out>.latentblend beside the film)')
    .option('--ffmpeg <path>', 'use this ffmpeg instead of the bundled one')
    .option('-f, --force', 'overwrite existing output files', false)
    .option('--json', 'print a JSON summary on stdout', false)
    .option('-q, --quiet', 'no progress output', false)
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
      const spec = loadFilmSpec(specPath);
      checkOutputs({ out, force: flags.force });
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      // A relative model folder in a spec means relative to the spec file, like any path in it.
      const besideSpec = spec.model !== undefined && !isAbsolute(spec.model) ? join(dirname(specPath), spec.model) : undefined;
      const model = besideSpec !== undefined && existsSync(besideSpec) ? besideSpec : (spec.model ?? DEFAULT_MODEL);
      const { pipeline, metric, engine } = await loadForFilm(
        {
          model,
          device: flags.device ?? spec.device ?? 'cpu',
          ...(spec.preset !== undefined ? { preset: spec.preset } : {}),
          ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}),
        },
        reporter,
        signal,
      );
      const workDir = flags.workDir ?? defaultWorkDir(out);
      const transitions = transitionsOf(spec);
      const segments: { transition: Transition; durationSeconds: number; dir: string }[] = [];
      let unetCalls = 0;
      let reusedCount = 0;
      let previous: Transition | undefined;
      for (const [index, transition] of transitions.entries()) {
        const input = transitionOptionsOf(spec, index);
        const resolved = resolveTransitionOptions(input, pipeline.defaults, (value) => value);
        const stamp = modelStamp(model, pipeline, pipeline.latentShape(pipeline.roundedSize(resolved.width), pipeline.roundedSize(resolved.height)));
        const key = hashOf([transitionKey(spec, index), metric.name]);
        // Keyframe A of this transition is keyframe B of the previous one: reuse it when the
        // settings that shape a trajectory are the same.
        const reusable =
          previous !== undefined &&
          previous.options.negativePrompt === resolved.negativePrompt &&
          previous.options.width === resolved.width &&
          previous.options.height === resolved.height;
        reporter.info(`transition ${index + 1} of ${transitions.length}: "${transition.from.prompt}" → "${transition.to.prompt}"`);
        reporter.startBar(`transition ${index + 1}`, 1, { countSteps: false });
        const result = await cachedTransition(workDir, index, key, stamp, () =>
          engine.runTransition(input as TransitionOptions, { signal, onEvent: reporter.engineListener, ...(reusable ? { startFrom: previous } : {}) }),
        );
        reporter.stopBar();
        if (result.reused) reusedCount += 1;
        else unetCalls += result.transition.stats.unetCalls;
        segments.push({ transition: result.transition, durationSeconds: transition.duration, dir: result.dir });
        previous = result.transition;
      }
      const retiming = spec.retiming === 'equal' ? 'equal' : 'distance';
      const film = await writeFilm(
        segments,
        { out, fps: spec.fps, quality: spec.quality, retiming, force: flags.force, signal, ...(flags.ffmpeg !== undefined ? { ffmpegPath: flags.ffmpeg } : {}) },
        reporter,
      );
      await writeFilmRecord(workDir, {
        kind: 'movie',
        model,
        out: relative(workDir, out),
        fps: spec.fps,
        quality: spec.quality,
        retiming,
        transitions: segments.map((segment) => ({ dir: relative(workDir, segment.dir), durationSeconds: segment.durationSeconds })),
      });
      await metric.release?.();
      const summary = {
        out,
        workDir,
        transitions: segments.length,
        transitionsReused: reusedCount,
        framesComputed: segments.reduce((sum, segment, index) => sum + segment.transition.frames.length - (index > 0 ? 1 : 0), 0),
        filmFrames: film.filmFrames,
        unetCalls,
        metric: metric.name,
        wallSeconds: (performance.now() - started) / 1000,
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else reporter.info(`wrote ${out}: ${summary.filmFrames} film frames, ${summary.transitions} transitions (${reusedCount} reused), ${unetCalls} UNet calls, ${summary.wallSeconds.toFixed(1)} s`);
    });
}
