/** `latentblend eval`: the smoothness report of a film, a transition or a folder of frames. */
import { Command, Option } from 'commander';
import { relative } from 'node:path';
import { createReporter } from './progress.ts';
import { numberIn } from './parse.ts';
import { metricFromFlags, metricOption } from './metric-flags.ts';
import { DEVICES } from '../runtime/onnx.ts';
import { loadEvalSource } from '../eval/source.ts';
import { filmSmoothness, formatReport, sequenceSmoothness, type SmoothnessReport } from '../eval/report.ts';

interface EvalFlags {
  metric?: string;
  lpips?: string;
  device: string;
  fps: number;
  duration: number;
  retiming: 'perceptual' | 'equal';
  json: boolean;
  quiet: boolean;
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
    .option('--json', 'print the report as JSON on stdout', false)
    .option('-q, --quiet', 'no progress output', false)
    .addHelpText(
      'after',
      `
Figures, from the distances d_i between neighbouring frames (the metric is named in the output):
  Σd             total change (LPIPS_T)  max, mean   largest and mean step (mean: AID's consistency)
  max/mean       1 = even steps        smoothness  1 − Gini(d): 1 = every step the same size
  directness     Σd / d(first, last): 1 = straight from the first frame to the last
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
        retiming: flags.retiming === 'equal' ? 'equal' : 'distance',
      });
      const { metric, fallback } = await metricFromFlags(flags, reporter);
      try {
        reporter.startBar('measuring', 1, { countSteps: false });
        const onProgress = (done: number, total: number) => reporter.updateBar(done, total);
        let report: SmoothnessReport;
        let extra: Record<string, unknown>;
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
        if (flags.json) {
          const json = { source: { kind: source.kind, path: folder }, ...extra, ...(fallback !== undefined ? { metricFallback: true } : {}), ...report };
          process.stdout.write(`${JSON.stringify(json)}\n`);
        } else {
          const labels = source.kind === 'frames' ? [] : source.segments.map((_, index) => `transition ${index + 1}`);
          process.stdout.write(`${formatReport(report, labels)}\n`);
        }
      } finally {
        await metric.release?.();
      }
    });
}
