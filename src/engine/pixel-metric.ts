/**
 * A weight-free similarity metric (root-mean-square RGB difference) for when no LPIPS model is
 * available, and the RGB8 helpers both metrics share: size checks and downscaling (Lanczos-3).
 */
import { resizeLanczos3 } from '../math/resize.ts';
import { LatentBlendError } from '../errors.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { SimilarityMetric } from './metric.ts';

/** Throws unless `image` is a well-formed RGB8 image (positive integer size, 3 bytes a pixel). */
export function checkRgbImage(image: RgbImage, what: string): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new LatentBlendError(`${what}: image size must be positive whole pixels, got ${width}x${height}.`);
  }
  if (data.length !== width * height * 3) {
    throw new LatentBlendError(
      `${what}: a ${width}x${height} RGB8 image needs ${width * height * 3} bytes, got ${data.length}.`,
    );
  }
}

/** Throws unless `a` and `b` are well-formed RGB8 images of the same size. */
export function checkImagePair(a: RgbImage, b: RgbImage, what: string): void {
  checkRgbImage(a, what);
  checkRgbImage(b, what);
  if (a.width !== b.width || a.height !== b.height) {
    throw new LatentBlendError(
      `${what}: images must have the same size to be compared, got ${a.width}x${a.height} and ${b.width}x${b.height}.`,
    );
  }
}

/** Throws unless `maxSide` is a whole number of pixels ≥ `least`, or Infinity (never resize). */
export function checkMaxSide(maxSide: number, least: number, what: string): void {
  if (maxSide !== Number.POSITIVE_INFINITY && (!Number.isInteger(maxSide) || maxSide < least)) {
    throw new LatentBlendError(`${what}: maxSide must be a whole number of pixels ≥ ${least} (or Infinity), got ${maxSide}.`);
  }
}

/**
 * Size (pixels) of a `width`x`height` image scaled down, aspect ratio kept, so that its longer
 * side is at most `maxSide`; the size itself when it already fits. Each side is at least 1 px.
 */
export function fitWithin(width: number, height: number, maxSide: number): { width: number; height: number } {
  const longer = Math.max(width, height);
  if (longer <= maxSide) return { width, height };
  const scale = maxSide / longer;
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Resamples an RGB8 image to exactly `width`x`height` pixels with Lanczos-3 (which averages over
 * the source footprint when shrinking; plain TypeScript, so Node and browsers agree). Returns
 * `image` itself when the size already matches.
 */
export async function resizeRgb(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (image.width === width && image.height === height) return image;
  return { width, height, data: resizeLanczos3(image.data, image.width, image.height, 3, width, height) };
}

/**
 * Root-mean-square difference of two same-size RGB8 images, over every channel value taken in
 * [0, 1] (byte / 255): sqrt(mean((a - b)²)). Range [0, 1]: 0 for identical images, 1 only for
 * black against white everywhere.
 */
export function rmsPixelDistance(a: RgbImage, b: RgbImage): number {
  checkImagePair(a, b, 'rms-pixel distance');
  const x = a.data;
  const y = b.data;
  let sum = 0;
  for (let k = 0; k < x.length; k++) {
    const delta = x[k]! - y[k]!;
    sum += delta * delta;
  }
  return Math.sqrt(sum / x.length) / 255;
}

/** Options of {@link PixelMetric}. */
export interface PixelMetricOptions {
  /**
   * Longest side in pixels at which images are compared: larger pairs are first downscaled
   * (aspect kept, Lanczos-3) so that their longer side is `maxSide`, which makes the metric
   * slightly less sensitive to pixel noise. Whole number ≥ 1; default Infinity (full resolution,
   * which is already cheap: one pass over the bytes).
   */
  readonly maxSide?: number;
}

/**
 * The weight-free fallback metric "rms-pixel": root-mean-square difference of RGB values in
 * [0, 1] (see {@link rmsPixelDistance}), optionally on downscaled copies. It is not perceptual —
 * a small shift of an edge counts as much as a colour change of the same energy — so LPIPS is
 * preferred when a model is available.
 */
export class PixelMetric implements SimilarityMetric {
  readonly name = 'rms-pixel';
  /** Longest compared side in pixels (Infinity: never downscale). */
  readonly maxSide: number;

  constructor(options: PixelMetricOptions = {}) {
    this.maxSide = options.maxSide ?? Number.POSITIVE_INFINITY;
    checkMaxSide(this.maxSide, 1, 'rms-pixel metric');
  }

  /** Distance in [0, 1] between two same-size RGB8 images; 0 when identical. */
  async distance(a: RgbImage, b: RgbImage): Promise<number> {
    checkImagePair(a, b, 'rms-pixel distance');
    const size = fitWithin(a.width, a.height, this.maxSide);
    const [smallA, smallB] = await Promise.all([resizeRgb(a, size.width, size.height), resizeRgb(b, size.width, size.height)]);
    return rmsPixelDistance(smallA, smallB);
  }

  /** {@link distance} of each pair, in order. */
  async distances(pairs: readonly (readonly [RgbImage, RgbImage])[]): Promise<number[]> {
    return Promise.all(pairs.map(([a, b]) => this.distance(a, b)));
  }
}
