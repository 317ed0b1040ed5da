/**
 * Transition benchmark on the tiny fixtures: a whole runTransition for maxBranches 10 and 30,
 * batchSize 1 and 4, with the tiny LPIPS fixture as the metric. Reports wall time, UNet
 * evaluations and calls, decodes, metric evaluations, and the share of wall time outside ONNX
 * Runtime (engine overhead: slerps, crossfeed, scheduler maths, tensor copies).
 */
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { loadLpipsMetric } from '../src/engine/metric.ts';
import { nodePlatform } from '../src/node/platform.ts';

export interface TransitionBenchResult {
  model: string;
  maxBranches: number;
  batchSize: number;
  wallSeconds: number;
  unetEvaluations: number;
  unetCalls: number;
  decodes: number;
  metricEvaluations: number;
  outsideOnnxShare: number;
}

export async function benchTransitions(root: string, models: readonly string[]): Promise<TransitionBenchResult[]> {
  const results: TransitionBenchResult[] = [];
  for (const model of models) {
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: join(root, 'fixtures', 'models', model, 'onnx') });
    const metric = await loadLpipsMetric(nodePlatform, join(root, 'fixtures', 'lpips', 'tiny-lpips.onnx'), 'cpu');
    const engine = new BlendingEngine(pipeline, metric);
    const keyframes = { keyframeA: { prompt: 'a lighthouse at dawn', seed: 1 }, keyframeB: { prompt: 'a forest in winter', seed: 2 } };
    await engine.runTransition({ ...keyframes, maxBranches: 3 }); // warm-up
    for (const maxBranches of [10, 30]) {
      for (const batchSize of [1, 4]) {
        const metricBefore = metric.model.stats.seconds;
        const started = performance.now();
        const result = await engine.runTransition({ ...keyframes, maxBranches, batchSize });
        const wall = (performance.now() - started) / 1000;
        const inside = result.stats.onnxSeconds + ((metric.model.stats.seconds) - metricBefore);
        results.push({
          model,
          maxBranches,
          batchSize,
          wallSeconds: wall,
          unetEvaluations: result.stats.unetEvaluations,
          unetCalls: result.stats.unetCalls,
          decodes: result.stats.decodes,
          metricEvaluations: result.stats.metricEvaluations,
          outsideOnnxShare: Math.max(0, wall - inside) / wall,
        });
      }
    }
    await metric.release?.();
    for (const onnx of pipeline.models) await onnx.session.release();
  }
  return results;
}
