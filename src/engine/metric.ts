/**
 * How different two frames look: the measure that decides where the next branch goes.
 * Implementations: LPIPS through ONNX Runtime (./lpips.ts) and the weight-free "rms-pixel"
 * fallback (./pixel-metric.ts); in Node, `chooseMetric` (src/node/metric.ts) picks one (the
 * two-file LPIPS of the Hub included).
 */
import type { RgbImage } from '../pipeline/vae.ts';

export { LpipsMetric, loadLpipsMetric, rgbToLpipsInput, lpipsInputSize, type LpipsOptions } from './lpips.ts';
export { PixelMetric, rmsPixelDistance, type PixelMetricOptions } from './pixel-metric.ts';

export interface SimilarityMetric {
  /** Short name for logs and saved transitions, e.g. "lpips" or "rms-pixel". */
  readonly name: string;
  /** Distance between two RGB8 images of the same size; 0 for identical images, larger = more different. */
  distance(a: RgbImage, b: RgbImage): Promise<number>;
  /** Frees native resources. */
  release?(): Promise<void>;
}

/**
 * Distances of several pairs with one metric: its batched `distances` method when it has one
 * (LPIPS: one ONNX Runtime call), otherwise one `distance` call per pair. In pair order.
 */
export async function distancesOf(
  metric: SimilarityMetric,
  pairs: readonly (readonly [RgbImage, RgbImage])[],
): Promise<number[]> {
  const batched = (metric as { distances?: (pairs: readonly (readonly [RgbImage, RgbImage])[]) => Promise<number[]> }).distances;
  if (typeof batched === 'function') return batched.call(metric, pairs);
  const result: number[] = [];
  for (const [a, b] of pairs) result.push(await metric.distance(a, b));
  return result;
}
