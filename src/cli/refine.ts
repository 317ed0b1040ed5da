/** `latentblend refine`: more branches for a saved transition, then its film rendered again. */
import { Command } from 'commander';
import { dirname, join, resolve, relative } from 'node:path';
import { existsSync, realpathSync } from 'node:fs';
import { loadTransition, saveTransition, checkSameModel, modelStamp } from '../io/store.ts';
import { createReporter } from './progress.ts';
import { integerIn } from './parse.ts';
import { loadForFilm } from './transition.ts';
import { readFilmRecord, writeFilmRecord, locateRecordedModel } from '../film/film-record.ts';
import { resolveInside } from '../io/inside.ts';
import { prepareOutput } from '../io/files.ts';
import { checkFilmSettings, writeFilm } from '../film/work-folder.ts';
import { DEVICES } from '../runtime/onnx.ts';
import { Option } from 'commander';
import type { Transition } from '../engine/engine.ts';
import { LatentBlendError } from '../errors.ts';
import { metricOption } from './metric-flags.ts';
import { addControlFlags, loadControlNetForCli, readControlPicturesFromFlags, transitionControlFromFlags, type ControlFlags } from './control-flags.ts';
import { addIpAdapterFlags, loadIpAdapterForCli, readImagePromptsFromFlags, transitionImagePromptFromFlags, type IpAdapterFlags } from './ip-adapter-flags.ts';

interface RefineFlags extends ControlFlags, IpAdapterFlags {
  branches: number;
  out?: string;
  device: string;
  lpips?: string;
  force: boolean;
  metric?: string;
  json: boolean;
  quiet: boolean;
}

export function refineCommand(signal: AbortSignal): Command {
  const command = new Command('refine')
    .description("Add branches to a saved transition (nothing already computed is recomputed) and render its film again.")
    .argument('<transition-dir>', 'a saved transition: <work folder>/transitions/NN-…')
    .requiredOption('-b, --branches <int>', 'how many branches to add', integerIn(1, 4096))
    .addOption(new Option('-d, --device <name>', 'execution provider').choices(DEVICES).default('cpu'))
    .option('--lpips <file.onnx>', 'LPIPS model (use the same metric as the first run)')
    .option('-o, --out <file>', "write the film here instead of where film.json says (needed when that is outside the work folder's parent folder)")
    .option('-f, --force', 'overwrite --out if it exists', false)
    .addOption(metricOption())
    .option('--json', 'print a JSON summary on stdout', false)
    .option('-q, --quiet', 'no progress output', false);
  addIpAdapterFlags(command, true);
  return addControlFlags(command, true)
    .addHelpText('after', '\nA transition computed with a ControlNet is refined with the same ControlNet flags again.\n\nExample:\n  latentblend refine movie.latentblend/transitions/00-3f2a9c… --branches 10\n\nThe film recorded in the work folder (film.json) is rendered again, replacing its previous version.')
    .action(async (transitionDir: string, flags: RefineFlags) => {
      const started = performance.now();
      const stored = await loadTransition(transitionDir);
      const pictures = await readControlPicturesFromFlags(flags, false);
      const imagePrompts = await readImagePromptsFromFlags(flags);
      const workDir = dirname(dirname(resolve(transitionDir)));
      const record = existsSync(join(workDir, 'film.json')) ? readFilmRecord(workDir) : undefined;
      // film.json is untrusted: the film it names is written only inside the folder that holds
      // the work folder (where the CLI puts it), and its transitions only come from the work folder.
      const out =
        flags.out !== undefined
          ? resolve(flags.out)
          : record === undefined
            ? undefined
            : resolveInside(dirname(workDir), resolve(workDir, record.out), `the film named in ${join(workDir, 'film.json')} (out)`);
      if (flags.out !== undefined) prepareOutput(resolve(flags.out), flags.force);
      if (out !== undefined && record !== undefined) {
        await checkFilmSettings({
          out,
          fps: record.fps,
          durations: record.transitions.map((entry) => entry.durationSeconds),
          ...(record.quality !== undefined ? { quality: record.quality } : {}),
        });
      }
      const recordDirs = record?.transitions.map((entry) => resolveInside(workDir, entry.dir, `a transition named in ${join(workDir, 'film.json')}`));
      const here = realpathSync(transitionDir);
      if (recordDirs !== undefined && !recordDirs.includes(here)) {
        throw new LatentBlendError(`${transitionDir} is not one of the transitions of ${join(workDir, 'film.json')}.`);
      }
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      const { pipeline, metric, metricFallback, engine, ffmpegSpawner } = await loadForFilm(
        {
          model: locateRecordedModel(record?.model ?? stored.model.source, workDir),
          device: flags.device,
          ...(flags.lpips !== undefined ? { lpips: flags.lpips } : {}),
          ...(flags.metric !== undefined ? { metric: flags.metric } : {}),
        },
        reporter,
        signal,
        record !== undefined ? { out: resolve(workDir, record.out) } : undefined,
      );
      try {
        if (metric.name !== stored.transition.metric) {
          reporter.warn(`this transition was measured with ${stored.transition.metric}, now ${metric.name} is used; new gaps are compared with a different metric.`);
        }
        const shape = stored.model.latentShape;
        checkSameModel(stored.model, modelStamp(stored.model.source, pipeline, shape));
        reporter.startBar('refining', 1, { countSteps: false });
        const loadedControl = pictures === undefined ? undefined : await loadControlNetForCli(flags, pipeline, reporter, signal);
        const controlNet = pictures === undefined || loadedControl === undefined ? undefined : transitionControlFromFlags(flags, pictures, loadedControl);
        const loadedIp = imagePrompts === undefined ? undefined : await loadIpAdapterForCli(flags, pipeline, reporter, signal);
        const ipAdapter = imagePrompts === undefined || loadedIp === undefined ? undefined : transitionImagePromptFromFlags(flags, imagePrompts, loadedIp);
        const refined = await engine.refine(stored.transition, flags.branches, {
          signal,
          onEvent: reporter.engineListener,
          ...(controlNet !== undefined ? { controlNet } : {}),
          ...(ipAdapter !== undefined ? { ipAdapter } : {}),
        });
        reporter.stopBar();
        await saveTransition(transitionDir, refined, stored.model, { replace: true });

        let filmFrames = 0;
        if (record !== undefined && out !== undefined && recordDirs !== undefined) {
          const segments: { transition: Transition; durationSeconds: number }[] = [];
          for (const [index, entry] of record.transitions.entries()) {
            const dir = recordDirs[index]!;
            const transition = dir === here ? refined : (await loadTransition(dir)).transition;
            segments.push({ transition, durationSeconds: entry.durationSeconds });
          }
          const result = await writeFilm(
            segments,
            { out, fps: record.fps, retiming: record.retiming, force: true, signal, metric, ...(record.quality !== undefined ? { quality: record.quality } : {}), ...(ffmpegSpawner !== undefined ? { ffmpegSpawner } : {}) },
            reporter,
          );
          filmFrames = result.filmFrames;
          // The record's smoothness figures describe the film as it is now.
          if (result.smoothness !== undefined) {
            const { metricFallback: _previous, ...rest } = record;
            await writeFilmRecord(workDir, {
              ...rest,
              metric: metric.name,
              ...(metricFallback !== undefined ? { metricFallback } : {}),
              smoothness: { ...result.smoothness },
            });
          }
          reporter.info(`re-rendered ${relative(process.cwd(), out) || out}`);
        }
        await metric.release?.();
        const summary = {
          out: out ?? null,
          transitionDir,
          framesComputed: refined.frames.length,
          filmFrames,
          unetCalls: refined.stats.unetCalls,
          unetEvaluations: refined.stats.unetEvaluations,
          wallSeconds: (performance.now() - started) / 1000,
        };
        if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else reporter.info(`${transitionDir}: now ${summary.framesComputed} computed frames (${summary.unetCalls} UNet calls for the new ones)`);
      } finally {
        await ffmpegSpawner?.close();
      }
    });
}
