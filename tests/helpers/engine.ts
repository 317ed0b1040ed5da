/** Shared pieces of the engine tests on the tiny SD 1.x fixture (tests only). */
import type { SimilarityMetric } from '../../src/engine/metric.ts';
import type { RgbImage } from '../../src/pipeline/vae.ts';

/** A cheap similarity metric: root mean square of the pixel differences, in 0..1. */
export const rmsMetric: SimilarityMetric = {
  name: 'rms',
  async distance(a: RgbImage, b: RgbImage) {
    let sum = 0;
    for (let i = 0; i < a.data.length; i++) sum += ((a.data[i]! - b.data[i]!) / 255) ** 2;
    return Math.sqrt(sum / a.data.length);
  },
};

/** A 4-step 64×64 transition between two fixed keyframes (add maxBranches and the like). */
export const SMALL_TRANSITION = {
  keyframeA: { prompt: 'a red house by the sea', seed: 11 },
  keyframeB: { prompt: 'a green forest at night', seed: 22 },
  steps: 4,
  guidanceScale: 3,
  width: 64,
  height: 64,
};
