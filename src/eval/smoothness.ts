/**
 * Smoothness figures of a sequence of frames, from the distances between neighbouring frames
 * (pure maths, no I/O). The distances come from a similarity metric (LPIPS or rms-pixel); the
 * figures are those the morphing literature reports:
 *
 * - d_i: distance between frames i and i + 1 (n = frames − 1 values);
 * - total = LPIPS_T = Σ d_i; max = LPIPS_max = max d_i; mean = Σ d_i / n (AID's "consistency");
 *   maxOverMean = max / mean (1 for perfectly even steps);
 * - gini = Σ_i Σ_j |d_i − d_j| / (2 n² mean), smoothness = 1 − gini ("AID: Attention
 *   Interpolation of Text-to-Image Diffusion"): 1 when every step is the same size, towards 0
 *   when one step carries the whole change;
 * - directness = Σ d_i / d(first, last): 1 when the path goes straight from the first frame to the
 *   last, larger when it wanders (with LPIPS, which is not a true metric, it can fall below 1).
 *
 * And perceptual path length (as StyleGAN/IMPUS compute it) from distances of ε-apart pairs.
 */
import { LatentBlendError } from '../errors.ts';

/** The figures of one sequence of frames. Values that are undefined for the input are null. */
export interface SmoothnessFigures {
  /** Number of gaps n (frames − 1), ≥ 1. */
  readonly gaps: number;
  /** Σ d_i (LPIPS_T). */
  readonly total: number;
  /** max d_i (LPIPS_max). */
  readonly max: number;
  /** mean d_i (AID's consistency). */
  readonly mean: number;
  /** max / mean; 1 when all distances are 0 (every step equal). */
  readonly maxOverMean: number;
  /** Gini coefficient of the distances, in [0, 1 − 1/n]; 0 when all distances are 0. */
  readonly gini: number;
  /** 1 − gini. */
  readonly smoothness: number;
  /** d(first, last), when given. */
  readonly endToEnd: number | null;
  /** total / endToEnd; null without endToEnd or when it is 0. */
  readonly directness: number | null;
}

function checkDistances(distances: readonly number[], what: string): void {
  if (distances.length === 0) throw new LatentBlendError(`${what}: need at least one distance (two frames), got none.`);
  distances.forEach((value, index) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new LatentBlendError(`${what}: distance ${index} is ${String(value)}; distances must be finite numbers ≥ 0.`);
    }
  });
}

/**
 * Gini coefficient Σ_i Σ_j |d_i − d_j| / (2 n² mean(d)) of non-negative values; 0 when they are
 * all 0. Computed in O(n log n) from the sorted values, using
 * Σ_i Σ_j |d_i − d_j| = 2 Σ_k (2k − n + 1) d_(k) for d_(0) ≤ … ≤ d_(n−1).
 */
export function gini(distances: readonly number[]): number {
  checkDistances(distances, 'gini');
  const n = distances.length;
  const sorted = [...distances].sort((a, b) => a - b);
  let sum = 0;
  let weighted = 0;
  sorted.forEach((value, k) => {
    sum += value;
    weighted += (2 * k - n + 1) * value;
  });
  if (sum === 0) return 0;
  const mean = sum / n;
  // 2·weighted is the double sum; divided by 2 n² mean.
  return Math.max(0, (2 * weighted) / (2 * n * n * mean));
}

/**
 * The smoothness figures (see the module comment) of the neighbour distances `distances`
 * (finite, ≥ 0, at least one) and, optionally, the distance `endToEnd` between the first and the
 * last frame (for directness). Throws a LatentBlendError naming a bad value.
 */
export function smoothnessFigures(distances: readonly number[], endToEnd?: number): SmoothnessFigures {
  checkDistances(distances, 'smoothness');
  if (endToEnd !== undefined && (!Number.isFinite(endToEnd) || endToEnd < 0)) {
    throw new LatentBlendError(`smoothness: the first-to-last distance is ${String(endToEnd)}; it must be a finite number ≥ 0.`);
  }
  const gaps = distances.length;
  const total = distances.reduce((sum, value) => sum + value, 0);
  const max = Math.max(...distances);
  const mean = total / gaps;
  const coefficient = gini(distances);
  return {
    gaps,
    total,
    max,
    mean,
    maxOverMean: mean === 0 ? 1 : max / mean,
    gini: coefficient,
    smoothness: 1 - coefficient,
    endToEnd: endToEnd ?? null,
    directness: endToEnd === undefined || endToEnd === 0 ? null : total / endToEnd,
  };
}

/** Perceptual path length: mean and population standard deviation of the kept samples. */
export interface PathLength {
  /** Samples given. */
  readonly samples: number;
  /** Samples kept between the 1st and 99th percentiles. */
  readonly kept: number;
  readonly mean: number;
  readonly std: number;
  /** ε used. */
  readonly epsilon: number;
}

/** The default ε of {@link perceptualPathLength}: 1e-4, as StyleGAN and IMPUS use. */
export const PPL_EPSILON = 1e-4;

/**
 * Value at percentile `q` (0–100) of ascending `sorted`, rounding the fractional rank down
 * (`'lower'`) or up (`'higher'`) to a sample, like numpy.percentile's lower/higher methods.
 */
export function percentileOfSorted(sorted: readonly number[], q: number, method: 'lower' | 'higher'): number {
  if (sorted.length === 0) throw new LatentBlendError('percentile: no values.');
  const rank = (q / 100) * (sorted.length - 1);
  const index = method === 'lower' ? Math.floor(rank + 1e-12) : Math.ceil(rank - 1e-12);
  return sorted[Math.min(sorted.length - 1, Math.max(0, index))]!;
}

/**
 * Perceptual path length from the distances d_k between the frames at α_k and α_k + ε: each
 * sample is d_k / ε²; samples below the 1st percentile (numpy "lower") or above the 99th
 * ("higher") are dropped, and the mean and population standard deviation of the rest returned.
 */
export function perceptualPathLength(distances: readonly number[], epsilon: number = PPL_EPSILON): PathLength {
  checkDistances(distances, 'perceptual path length');
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new LatentBlendError(`perceptual path length: ε must be a finite number > 0, got ${String(epsilon)}.`);
  }
  const samples = distances.map((value) => value / (epsilon * epsilon));
  const sorted = [...samples].sort((a, b) => a - b);
  const low = percentileOfSorted(sorted, 1, 'lower');
  const high = percentileOfSorted(sorted, 99, 'higher');
  const kept = samples.filter((value) => value >= low && value <= high);
  const mean = kept.reduce((sum, value) => sum + value, 0) / kept.length;
  const variance = kept.reduce((sum, value) => sum + (value - mean) ** 2, 0) / kept.length;
  return { samples: samples.length, kept: kept.length, mean, std: Math.sqrt(variance), epsilon };
}
