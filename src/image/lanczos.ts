/**
 * Resizing of RGB8 pictures computed as Pillow's `Image.resize(size, LANCZOS | BICUBIC)` does
 * (diffusers' control image processor uses Lanczos, transformers' CLIPImageProcessor bicubic):
 * separable, horizontal pass first, filter support widened by the scale when shrinking, 22-bit
 * fixed-point coefficients and rounding to 8 bits after each pass. Pure; no I/O.
 */
import type { RgbImage } from '../pipeline/vae.ts';

const PRECISION_BITS = 32 - 8 - 2;
const SUPPORT = 3;

/** A Pillow resampling filter: its support (in input pixels at scale 1) and kernel. */
interface Filter {
  readonly support: number;
  readonly kernel: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

function lanczos(x: number): number {
  return x >= -SUPPORT && x < SUPPORT ? sinc(x) * sinc(x / SUPPORT) : 0;
}

/** Pillow's bicubic kernel (a = -0.5). */
function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

export const PILLOW_FILTERS = {
  lanczos: { support: SUPPORT, kernel: lanczos },
  bicubic: { support: 2, kernel: bicubic },
} as const satisfies Record<string, Filter>;
export type PillowFilter = keyof typeof PILLOW_FILTERS;

interface Coefficients {
  /** Number of taps per output sample. */
  readonly taps: number;
  /** Per output sample: first input index and tap count. */
  readonly bounds: Int32Array;
  /** Fixed-point weights, `taps` per output sample. */
  readonly weights: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for inSize → outSize. */
function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const inverse = 1 / filterScale;
    const min = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - min;
    let total = 0;
    k.fill(0);
    for (let x = 0; x < count; x++) {
      const w = filter.kernel((x + min - center + 0.5) * inverse);
      k[x] = w;
      total += w;
    }
    for (let x = 0; x < taps; x++) {
      const normalised = x < count && total !== 0 ? k[x]! / total : x < count ? k[x]! : 0;
      const fixed = normalised * (1 << PRECISION_BITS);
      weights[out * taps + x] = normalised < 0 ? Math.trunc(-0.5 + fixed) : Math.trunc(0.5 + fixed);
    }
    bounds[out * 2] = min;
    bounds[out * 2 + 1] = count;
  }
  return { taps, bounds, weights };
}

function clip8(value: number): number {
  if (value >= 1 << PRECISION_BITS << 8) return 255;
  if (value <= 0) return 0;
  return value >> PRECISION_BITS;
}

/**
 * Resizes (stretches) an RGB8 picture to width x height with Pillow's Lanczos. Returns the input
 * unchanged when the size already matches (as Pillow does).
 */
export function resizeLanczos(picture: RgbImage, width: number, height: number): RgbImage {
  return resizePillow(picture, width, height, 'lanczos');
}

/** Resizes an RGB8 picture with one of Pillow's filters (see the file comment). */
export function resizePillow(picture: RgbImage, width: number, height: number, filterName: PillowFilter): RgbImage {
  const filter = PILLOW_FILTERS[filterName];
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resizeLanczos: bad size ${width}x${height}`);
  }
  if (picture.width === width && picture.height === height) return picture;
  let source = picture;
  const bias = 1 << (PRECISION_BITS - 1);
  if (width !== picture.width) {
    const { taps, bounds, weights } = coefficients(picture.width, width, filter);
    const out = new Uint8Array(width * picture.height * 3);
    for (let y = 0; y < picture.height; y++) {
      const row = y * picture.width * 3;
      for (let x = 0; x < width; x++) {
        const min = bounds[x * 2]!;
        const count = bounds[x * 2 + 1]!;
        for (let c = 0; c < 3; c++) {
          let sum = bias;
          for (let t = 0; t < count; t++) sum += picture.data[row + (min + t) * 3 + c]! * weights[x * taps + t]!;
          out[(y * width + x) * 3 + c] = clip8(sum);
        }
      }
    }
    source = { width, height: picture.height, data: out };
  }
  if (height !== source.height) {
    const { taps, bounds, weights } = coefficients(source.height, height, filter);
    const out = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      const min = bounds[y * 2]!;
      const count = bounds[y * 2 + 1]!;
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          let sum = bias;
          for (let t = 0; t < count; t++) sum += source.data[((min + t) * width + x) * 3 + c]! * weights[y * taps + t]!;
          out[(y * width + x) * 3 + c] = clip8(sum);
        }
      }
    }
    source = { width, height, data: out };
  }
  return source;
}
