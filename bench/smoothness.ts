/**
 * Smoothness benchmark: the smoothness figures (src/eval) of one transition per tiny fixture, for
 * the default settings and a few parental-crossfeed and depth-strength variations, so that a
 * change to the engine is judged by how smooth its films are and not only by its speed.
 *
 * Metric: the tiny LPIPS fixture (fixtures/lpips/tiny-lpips.onnx: LPIPS' layout with a small
 * random trunk), so the numbers compare settings with each other; they are not real LPIPS values.
 * Film figures: a 2 s film at 30 fps with perceptual retiming. Perceptual path length: 8 samples.
 *
 * Run alone with `node --import tsx bench/smoothness.ts [fixture…]`; `npm run bench` runs it too.
 * Writes bench/results/smoothness.json.
 */
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { loadLpipsMetric } from '../src/engine/metric.ts';
import { filmSmoothness } from '../src/eval/report.ts';
import { transitionPathLength } from '../src/eval/ppl.ts';
import type { CrossfeedParams } from '../src/blend/crossfeed.ts';
import { nodePlatform } from '../src/node/platform.ts';

export interface SmoothnessBenchResult {
  model: string;
  variant: string;
  frames: number;
  depthStrength: number;
  parentalCrossfeed: CrossfeedParams;
  metric: string;
  computed: { total: number; max: number; mean: number; maxOverMean: number; smoothness: number; directness: number | null };
  film: { frames: number; maxOverMean: number; smoothness: number };
  ppl: { mean: number; std: number; samples: number };
  wallSeconds: number;
}

/** The settings compared: the defaults, then one change at a time. */
const NONE: CrossfeedParams = { power: 0, range: 0, decay: 0 };
// With full parental crossfeed (the Turbo default 1,1,1) a branch is its parents' mix at every
// step, so the depth only matters with less crossfeed: depths are also tried without it.
const VARIANTS: readonly { name: string; options: { depthStrength?: number; parentalCrossfeed?: CrossfeedParams } }[] = [
  { name: 'default', options: {} },
  { name: 'crossfeed 0,0,0', options: { parentalCrossfeed: NONE } },
  { name: 'crossfeed 0.3,0.6,0.9', options: { parentalCrossfeed: { power: 0.3, range: 0.6, decay: 0.9 } } },
  { name: 'crossfeed 0.6,1,0.9', options: { parentalCrossfeed: { power: 0.6, range: 1, decay: 0.9 } } },
  { name: 'crossfeed 1,1,1', options: { parentalCrossfeed: { power: 1, range: 1, decay: 1 } } },
  { name: 'depth 0.3', options: { depthStrength: 0.3 } },
  { name: 'depth 0.7', options: { depthStrength: 0.7 } },
  { name: 'depth 0.3, crossfeed 0,0,0', options: { depthStrength: 0.3, parentalCrossfeed: NONE } },
  { name: 'depth 0.7, crossfeed 0,0,0', options: { depthStrength: 0.7, parentalCrossfeed: NONE } },
];

export const DEFAULT_SMOOTHNESS_MODELS = ['tiny-sd-turbo', 'tiny-sdxl-turbo', 'tiny-sd15'];

export async function benchSmoothness(root: string, models: readonly string[] = DEFAULT_SMOOTHNESS_MODELS): Promise<SmoothnessBenchResult[]> {
  const results: SmoothnessBenchResult[] = [];
  const metric = await loadLpipsMetric(nodePlatform, join(root, 'fixtures', 'lpips', 'tiny-lpips.onnx'), 'cpu');
  try {
    for (const model of models) {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: join(root, 'fixtures', 'models', model, 'onnx') });
      const engine = new BlendingEngine(pipeline, metric);
      const keyframes = { keyframeA: { prompt: 'a lighthouse at dawn', seed: 1 }, keyframeB: { prompt: 'a forest in winter', seed: 2 } };
      for (const variant of VARIANTS) {
        const started = performance.now();
        const transition = await engine.runTransition({ ...keyframes, ...variant.options });
        const report = await filmSmoothness([{ transition, durationSeconds: 2 }], metric, { fps: 30, retiming: 'perceptual', reuseStoredDistances: true });
        const ppl = await transitionPathLength(engine, transition, metric, { samples: 8 });
        const computed = report.whole.computed;
        const film = report.whole.film!;
        results.push({
          model,
          variant: variant.name,
          frames: transition.frames.length,
          depthStrength: transition.options.depthStrength,
          parentalCrossfeed: transition.options.parentalCrossfeed,
          metric: report.metric,
          computed: {
            total: computed.total,
            max: computed.max,
            mean: computed.mean,
            maxOverMean: computed.maxOverMean,
            smoothness: computed.smoothness,
            directness: computed.directness,
          },
          film: { frames: film.frames, maxOverMean: film.maxOverMean, smoothness: film.smoothness },
          ppl: { mean: ppl.mean, std: ppl.std, samples: ppl.samples },
          wallSeconds: (performance.now() - started) / 1000,
        });
      }
      for (const onnx of pipeline.models) await onnx.session.release();
    }
  } finally {
    await metric.release();
  }
  return results;
}

/** The results as rows for console.table. */
export function smoothnessTable(results: readonly SmoothnessBenchResult[]): Record<string, string | number>[] {
  return results.map((result) => ({
    model: result.model,
    settings: result.variant,
    frames: result.frames,
    'Σd': result.computed.total.toFixed(4),
    'max/mean': result.computed.maxOverMean.toFixed(3),
    smoothness: result.computed.smoothness.toFixed(3),
    directness: result.computed.directness === null ? '–' : result.computed.directness.toFixed(3),
    'film max/mean': result.film.maxOverMean.toFixed(3),
    'film smooth.': result.film.smoothness.toFixed(3),
    PPL: `${result.ppl.mean.toPrecision(3)} ± ${result.ppl.std.toPrecision(2)}`,
    's': result.wallSeconds.toFixed(2),
  }));
}

/** Prints the table and writes bench/results/smoothness.json. */
export function writeSmoothnessResults(root: string, results: readonly SmoothnessBenchResult[]): void {
  console.log('smoothness (metric: the tiny LPIPS fixture, for comparing settings; film: 2 s at 30 fps; PPL: 8 samples)');
  console.table(smoothnessTable(results));
  const out = join(root, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'smoothness.json'), `${JSON.stringify({ kind: 'smoothness', date: new Date().toISOString(), results }, null, 2)}\n`);
  console.log('written bench/results/smoothness.json');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const models = process.argv.slice(2);
  writeSmoothnessResults(root, await benchSmoothness(root, models.length > 0 ? models : DEFAULT_SMOOTHNESS_MODELS));
}
