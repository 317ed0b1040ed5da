/**
 * The Canny edge detector, as a built-in ControlNet preprocessor (no weights needed): grey
 * levels, Gaussian blur, Sobel gradients, non-maximum suppression and hysteresis. Pure functions
 * on arrays; thresholds are on the L1 gradient magnitude |gx| + |gy| of 8-bit grey levels with
 * the unnormalised 3x3 Sobel kernels, as OpenCV's cv2.Canny (whose 100 / 200 diffusers' ControlNet
 * examples use).
 */
import type { RgbImage } from '../pipeline/vae.ts';

export interface CannyOptions {
  /** Weak-edge threshold (kept only when connected to a strong edge); default 100. */
  readonly low?: number;
  /** Strong-edge threshold; default 200. */
  readonly high?: number;
  /** Gaussian blur sigma in pixels before the gradients; 0 = none; default 1. */
  readonly sigma?: number;
  /** Use the L2 magnitude sqrt(gx² + gy²) instead of |gx| + |gy|. */
  readonly l2Gradient?: boolean;
}

export const CANNY_DEFAULTS = { low: 100, high: 200, sigma: 1, l2Gradient: false } as const;

/** Grey levels 0–255 (ITU-R BT.601 luma, as OpenCV's RGB2GRAY) as floats, row-major. */
export function toGrey(picture: RgbImage): Float32Array {
  const pixels = picture.width * picture.height;
  const grey = new Float32Array(pixels);
  for (let pixel = 0; pixel < pixels; pixel++) {
    grey[pixel] = 0.299 * picture.data[pixel * 3]! + 0.587 * picture.data[pixel * 3 + 1]! + 0.114 * picture.data[pixel * 3 + 2]!;
  }
  return grey;
}

/** Index clamp with mirror reflection without repeating the edge pixel (OpenCV's BORDER_REFLECT_101). */
function reflect(index: number, size: number): number {
  if (size === 1) return 0;
  let i = index;
  while (i < 0 || i >= size) i = i < 0 ? -i : 2 * size - 2 - i;
  return i;
}

/** Separable Gaussian blur (kernel radius ceil(3 sigma), normalised), mirrored borders. */
export function gaussianBlur(values: Float32Array, width: number, height: number, sigma: number): Float32Array {
  if (sigma <= 0) return values.slice();
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const kernel = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) {
    kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma));
    total += kernel[k + radius]!;
  }
  for (let k = 0; k < kernel.length; k++) kernel[k]! /= total;
  const across = new Float32Array(values.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += kernel[k + radius]! * values[y * width + reflect(x + k, width)]!;
      across[y * width + x] = sum;
    }
  }
  const out = new Float32Array(values.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) sum += kernel[k + radius]! * across[reflect(y + k, height) * width + x]!;
      out[y * width + x] = sum;
    }
  }
  return out;
}

/** 3x3 Sobel gradients (x to the right, y downwards), mirrored borders. */
export function sobel(values: Float32Array, width: number, height: number): { gx: Float32Array; gy: Float32Array } {
  const gx = new Float32Array(values.length);
  const gy = new Float32Array(values.length);
  const at = (x: number, y: number) => values[reflect(y, height) * width + reflect(x, width)]!;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const a = at(x - 1, y - 1), b = at(x, y - 1), c = at(x + 1, y - 1);
      const d = at(x - 1, y), f = at(x + 1, y);
      const g = at(x - 1, y + 1), h = at(x, y + 1), i = at(x + 1, y + 1);
      gx[y * width + x] = c + 2 * f + i - (a + 2 * d + g);
      gy[y * width + x] = g + 2 * h + i - (a + 2 * b + c);
    }
  }
  return { gx, gy };
}

const TAN_22_5 = Math.tan(Math.PI / 8);
const TAN_67_5 = Math.tan((3 * Math.PI) / 8);

/**
 * Keeps a magnitude only where it is a maximum along its gradient direction (quantised to 0°,
 * 45°, 90°, 135°); ties go to the pixel before (left, up), so a plateau gives one pixel.
 */
export function nonMaximumSuppression(magnitude: Float32Array, gx: Float32Array, gy: Float32Array, width: number, height: number): Float32Array {
  const out = new Float32Array(magnitude.length);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : magnitude[y * width + x]!);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const index = y * width + x;
      const m = magnitude[index]!;
      if (m === 0) continue;
      const ax = Math.abs(gx[index]!);
      const ay = Math.abs(gy[index]!);
      let before: number;
      let after: number;
      if (ay <= ax * TAN_22_5) {
        before = at(x - 1, y);
        after = at(x + 1, y);
      } else if (ay >= ax * TAN_67_5) {
        before = at(x, y - 1);
        after = at(x, y + 1);
      } else if (gx[index]! * gy[index]! > 0) {
        before = at(x - 1, y - 1);
        after = at(x + 1, y + 1);
      } else {
        before = at(x + 1, y - 1);
        after = at(x - 1, y + 1);
      }
      if (m > before && m >= after) out[index] = m;
    }
  }
  return out;
}

/**
 * Edges: pixels above `high`, plus pixels above `low` connected to them through other such
 * pixels (8-connected). Returns 1 for edge pixels, 0 elsewhere.
 */
export function hysteresis(values: Float32Array, width: number, height: number, low: number, high: number): Uint8Array {
  const edges = new Uint8Array(values.length);
  const stack: number[] = [];
  for (let index = 0; index < values.length; index++) {
    if (values[index]! > high && edges[index] === 0) {
      edges[index] = 1;
      stack.push(index);
      while (stack.length > 0) {
        const current = stack.pop()!;
        const cx = current % width;
        const cy = (current - cx) / width;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const x = cx + dx;
            const y = cy + dy;
            if (x < 0 || y < 0 || x >= width || y >= height) continue;
            const next = y * width + x;
            if (edges[next] === 0 && values[next]! > low) {
              edges[next] = 1;
              stack.push(next);
            }
          }
        }
      }
    }
  }
  return edges;
}

/**
 * Canny edge map of a picture: white (255) one-pixel edges on black, RGB, same size. Use it as
 * a ControlNet control picture (e.g. with a canny ControlNet).
 */
export function canny(picture: RgbImage, options: CannyOptions = {}): RgbImage {
  const low = options.low ?? CANNY_DEFAULTS.low;
  const high = options.high ?? CANNY_DEFAULTS.high;
  const sigma = options.sigma ?? CANNY_DEFAULTS.sigma;
  if (!(low >= 0 && high >= low)) throw new RangeError(`canny: expected 0 <= low <= high, got low ${low}, high ${high}`);
  if (!(sigma >= 0)) throw new RangeError(`canny: expected sigma >= 0, got ${sigma}`);
  const { width, height } = picture;
  const blurred = gaussianBlur(toGrey(picture), width, height, sigma);
  const { gx, gy } = sobel(blurred, width, height);
  const magnitude = new Float32Array(gx.length);
  for (let index = 0; index < gx.length; index++) {
    magnitude[index] = options.l2Gradient === true ? Math.hypot(gx[index]!, gy[index]!) : Math.abs(gx[index]!) + Math.abs(gy[index]!);
  }
  const thin = nonMaximumSuppression(magnitude, gx, gy, width, height);
  const edges = hysteresis(thin, width, height, low, high);
  const data = new Uint8Array(width * height * 3);
  for (let index = 0; index < edges.length; index++) {
    if (edges[index] === 1) data.fill(255, index * 3, index * 3 + 3);
  }
  return { width, height, data };
}
