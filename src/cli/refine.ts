/** `latentblend refine`: more branches for a saved transition, then its film rendered again. */
import { Command } from 'commander';
import { dirname, join, resolve, relative } from 'node:path';
import { existsSync } from 'node:fs';
import { loadTransition, saveTransition, checkSameModel, modelStamp } from '../io/store.ts';
import { createReporter } from './progress.ts';
import { integerIn } from './parse.ts';
import { loadForFilm } from './transition.ts';
import { readFilmRecord } from '../film/film-record.ts';
import { writeFilm } from '../film/work-folder.ts';
import { DEVICES } from '../runtime/onnx.ts';
import { Option } from 'commander';
import type { Transition } from '../engine/engine.ts';
import { LatentBlendError } from '../errors.ts';

interface RefineFlags {
  branches: number;
  device: string;
  lpips?: string;
  json: boolean;
  quiet: boolean;
}

export function refineCommand(signal: AbortSignal): Command {
  return new Command('refine')
    .description("Add branches to a saved transition (nothing already computed is recomputed) and render its film again.")
    .argument('<transition-dir>', 'a saved transition: <work folder>/transitions/NN-…')
    .requiredOption('-b, --branches <int>', 'how many branches to add', integerIn(1, 4096))
    .addOption(new Option('-d, --device <name>', 'execution provider').choices(DEVICES).default('cpu'))
    .option('--lpips <file.onnx>', 'LPIPS model (use the same metric as the first run)')
    .option('--json', 'print a JSON summary on stdout', false)
    .option('-q, --quiet', 'no progress output', false)
    .addHelpText('after', '\nExample:\n  latentblend refine movie.latentblend/transitions/00-3f2a9c… --branches 10\n\nThe film recorded in the work folder (film.json) is rendered again, replacing its previous version.')
    .action(async (transitionDir: string, flags: RefineFlags) => {
      const started = performance.now();
      const stored = await loadTransition(transitionDir);
      const workDir = dirname(dirname(resolve(transitionDir)));
      const record = existsSync(join(workDir, 'film.json')) ? readFilmRecord(workDir) : undefined;
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      const { pipeline, metric, engine } = await loadForFilm(
        { model: stored.model.source, device: flags.device, ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}) },
        reporter,
        signal,
      );
      if (metric.name !== stored.transition.metric) {
        reporter.warn(`this transition was measured with ${stored.transition.metric}, now ${metric.name} is used; new gaps are compared with a different metric.`);
      }
      const shape = stored.model.latentShape;
      checkSameModel(stored.model, modelStamp(stored.model.source, pipeline, shape));
      reporter.startBar('refining', 1, { countSteps: false });
      const refined = await engine.refine(stored.transition, flags.branches, { signal, onEvent: reporter.engineListener });
      reporter.stopBar();
      await saveTransition(transitionDir, refined, stored.model, { replace: true });

      let filmFrames = 0;
      if (record !== undefined) {
        const here = resolve(transitionDir);
        const segments: { transition: Transition; durationSeconds: number }[] = [];
        for (const entry of record.transitions) {
          const dir = resolve(workDir, entry.dir);
          const transition = dir === here ? refined : (await loadTransition(dir)).transition;
          segments.push({ transition, durationSeconds: entry.durationSeconds });
        }
        if (!segments.some((segment) => segment.transition === refined)) {
          throw new LatentBlendError(`${transitionDir} is not one of the transitions of ${join(workDir, 'film.json')}.`);
        }
        const out = resolve(workDir, record.out);
        const result = await writeFilm(
          segments,
          { out, fps: record.fps, retiming: record.retiming, force: true, signal, ...(record.quality !== undefined ? { quality: record.quality } : {}) },
          reporter,
        );
        filmFrames = result.filmFrames;
        reporter.info(`re-rendered ${relative(process.cwd(), out) || out}`);
      }
      await metric.release?.();
      const summary = {
        out: record === undefined ? null : resolve(workDir, record.out),
        transitionDir,
        framesComputed: refined.frames.length,
        filmFrames,
        unetCalls: refined.stats.unetCalls,
        unetEvaluations: refined.stats.unetEvaluations,
        wallSeconds: (performance.now() - started) / 1000,
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else reporter.info(`${transitionDir}: now ${summary.framesComputed} computed frames (${summary.unetCalls} UNet calls for the new ones)`);
    });
}
