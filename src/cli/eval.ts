/** `latentblend eval`: the smoothness report of a film, a transition or a folder of frames. */
import { Command, Option } from 'commander';
import { relative } from 'node:path';
import { createReporter } from './progress.ts';
import { integerIn, numberIn } from './parse.ts';
import { resolveModelForCli } from './model-source.ts';
import { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { BlendingEngine } from '../engine/engine.ts';
import { checkSameModel, modelStamp } from '../io/store.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { transitionPathLength } from '../eval/ppl.ts';
import { perceptualPathLength, type PathLength } from '../eval/smoothness.ts';
import type { FilmSource } from '../eval/source.ts';
import type { Reporter } from '../film/progress.ts';
import { LatentBlendError } from '../errors.ts';
import { metricFromFlags, metricOption } from './metric-flags.ts';
import { DEVICES, type Device } from '../runtime/onnx.ts';
import type { Preset } from '../model/preset.ts';
import { loadEvalSource } from '../eval/source.ts';
import { filmSmoothness, formatReport, sequenceSmoothness, type SmoothnessReport } from '../eval/report.ts';
import { nodePlatform } from '../node/platform.ts';

interface EvalFlags {
  metric?: string;
  lpips?: string;
  device: string;
  fps: number;
  duration: number;
  retiming: 'perceptual' | 'equal';
  json: boolean;
  quiet: boolean;
  ppl?: number;
}

/** Perceptual path length per transition and over all samples of the film, running the model. */
async function filmPathLength(
  source: FilmSource,
  metric: SimilarityMetric,
  samples: number,
  device: string,
  reporter: Reporter,
  signal: AbortSignal,
): Promise<{ transitions: (PathLength & { index: number })[]; whole: PathLength }> {
  const first = source.segments[0]!.model;
  const modelDir = await resolveModelForCli(first.source, reporter, signal);
  const pipeline = await DiffusionPipeline.load(nodePlatform, 
    { modelDir, device: device as Device, preset: first.preset as Preset, scheduler: first.schedulerClass },
    reporter.listener,
  );
  const engine = new BlendingEngine(pipeline, metric);
  const transitions: (PathLength & { index: number })[] = [];
  const all: number[] = [];
  try {
    for (const [index, segment] of source.segments.entries()) {
      checkSameModel(segment.model, modelStamp(segment.model.source, pipeline, segment.model.latentShape));
      reporter.startBar(`path length ${index + 1}`, samples, { countSteps: false });
      const result = await transitionPathLength(engine, segment.transition, metric, {
        samples,
        signal,
        onProgress: (done, total) => reporter.updateBar(done, total),
      });
      reporter.stopBar();
      const { distances, ...figures } = result;
      all.push(...distances);
      transitions.push({ index, ...figures });
    }
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
  return { transitions, whole: perceptualPathLength(all, transitions[0]!.epsilon) };
}

export function evalCommand(signal: AbortSignal): Command {
  return new Command('eval')
    .description('Measure how smooth a film is: distances between neighbouring frames, per transition and for the whole film.')
    .argument('<folder>', 'a film work folder (<out>.latentblend), a transition folder (…/transitions/NN-…) or a folder of frames')
    .addOption(metricOption())
    .option('--lpips <file.onnx>', 'LPIPS model (default: $LATENTBLEND_LPIPS or ~/.cache/latentblend/lpips-alex.onnx)')
    .addOption(new Option('-d, --device <name>', 'execution provider for LPIPS').choices(DEVICES).default('cpu'))
    .option('--fps <number>', 'film frames per second, for a transition folder that no film.json describes', numberIn(1, 120), 30)
    .option('--duration <seconds>', 'its duration in the film, likewise', numberIn(0.1, 3600), 6)
    .addOption(new Option('--retiming <mode>', 'its retiming, likewise').choices(['perceptual', 'equal']).default('perceptual'))
    .option('--ppl <N>', 'also the perceptual path length from N samples per transition (runs the model: 2 branches a sample)', integerIn(1, 100_000))
    .option('--json', 'print the report as JSON on stdout', false)
    .option('-q, --quiet', 'no progress output', false)
    .addHelpText(
      'after',
      `
Figures, from the distances d_i between neighbouring frames (the metric is named in the output):
  Σd             total change (LPIPS_T)  max, mean   largest and mean step (mean: AID's consistency)
  max/mean       1 = even steps        smoothness  1 − Gini(d): 1 = every step the same size
  directness     Σd / d(first, last): 1 = straight from the first frame to the last
--ppl N        perceptual path length: frames at N positions α and α + 1e-4 generated as
               branches of the transition, d / ε², 1st–99th percentiles kept, mean ± std
"computed" rows measure the computed frames; "film" rows the film's frames after retiming.

Examples:
  latentblend eval film.latentblend
  latentblend eval film.latentblend/transitions/00-3f2a9c… --json
  latentblend eval frames/ --metric rms-pixel`,
    )
    .action(async (folder: string, flags: EvalFlags) => {
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      const source = await loadEvalSource(folder, {
        fps: flags.fps,
        durationSeconds: flags.duration,
        retiming: flags.retiming === 'equal' ? 'equal' : 'perceptual',
      });
      const { metric, fallback } = await metricFromFlags(flags, reporter);
      try {
        reporter.startBar('measuring', 1, { countSteps: false });
        const onProgress = (done: number, total: number) => reporter.updateBar(done, total);
        let report: SmoothnessReport;
        let extra: Record<string, unknown>;
        if (source.kind === 'frames' && flags.ppl !== undefined) {
          throw new LatentBlendError('--ppl needs a work folder or a transition folder (it generates frames with the model); a folder of frames has none.');
        }
        if (source.kind === 'frames') {
          const figures = await sequenceSmoothness(source.images, metric, { onProgress, signal });
          report = { metric: metric.name, transitions: [], whole: { computed: figures, film: null } };
          extra = { frames: source.files.length };
        } else {
          report = await filmSmoothness(source.segments, metric, { fps: source.fps, retiming: source.retiming, onProgress, signal });
          extra = {
            timing: { fps: source.fps, retiming: source.retiming, from: source.timing },
            transitionDirs: source.segments.map((segment) => relative(folder, segment.dir) || '.'),
          };
        }
        reporter.stopBar();
        let ppl: Awaited<ReturnType<typeof filmPathLength>> | undefined;
        if (flags.ppl !== undefined && source.kind !== 'frames') ppl = await filmPathLength(source, metric, flags.ppl, flags.device, reporter, signal);
        if (ppl !== undefined) extra = { ...extra, ppl };
        if (flags.json) {
          const json = { source: { kind: source.kind, path: folder }, ...extra, ...(fallback !== undefined ? { metricFallback: true } : {}), ...report };
          process.stdout.write(`${JSON.stringify(json)}\n`);
        } else {
          const labels = source.kind === 'frames' ? [] : source.segments.map((_, index) => `transition ${index + 1}`);
          process.stdout.write(`${formatReport(report, labels)}\n`);
          if (ppl !== undefined) {
            const line = (label: string, value: PathLength) =>
              `${label}: ${value.mean.toPrecision(4)} ± ${value.std.toPrecision(3)} (${value.kept} of ${value.samples} samples kept, ε = ${value.epsilon})`;
            process.stdout.write(`perceptual path length (${report.metric}, d/ε²)\n`);
            for (const entry of ppl.transitions) process.stdout.write(`${line(labels[entry.index] ?? `transition ${entry.index + 1}`, entry)}\n`);
            if (ppl.transitions.length > 1) process.stdout.write(`${line('whole film', ppl.whole)}\n`);
          }
        }
      } finally {
        await metric.release?.();
      }
    });
}
