/**
 * LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
 * Metric") run through ONNX Runtime: the perceptual distance that decides where the next branch
 * of a transition goes.
 *
 * The model is an ONNX file with two float inputs `img0`, `img1` of shape [batch, 3, height, width]
 * holding RGB in [-1, 1], and one output `distance` of shape [batch, 1, 1, 1] (the layout that
 * tools/export_lpips.py writes for the real AlexNet v0.1 LPIPS and that
 * fixtures/lpips/tiny-lpips.onnx has). float16 models work too (inputs and outputs are converted).
 */
import type * as ort from 'onnxruntime-common';
import { LatentBlendError } from '../errors.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import { floatTensor, loadOnnxModel, runModel, toFloat32, type Device, type OnnxModel } from '../runtime/onnx.ts';
import type { Platform } from '../runtime/platform.ts';
import type { SimilarityMetric } from './metric.ts';
import { checkImagePair, checkMaxSide, resizeRgb } from './pixel-metric.ts';

/**
 * Shortest side (pixels) fed to LPIPS. AlexNet's 11x11/4 convolution and two 3x3/2 max-pools
 * need at least 31 px (smaller inputs leave empty feature maps, which can crash ONNX Runtime);
 * smaller frames are upscaled to this.
 */
export const LPIPS_MIN_SIDE = 32;

/** Default longest side (pixels) at which frames are compared; see {@link LpipsOptions.maxSide}. */
export const DEFAULT_LPIPS_MAX_SIDE = 256;

/** Default largest number of pairs per ONNX Runtime call; see {@link LpipsOptions.maxBatch}. */
export const DEFAULT_LPIPS_MAX_BATCH = 8;

/** The shape of the model we expect, for error messages. */
const EXPECTED =
  'inputs "img0" and "img1" (float [batch, 3, height, width], RGB in [-1, 1]) and output "distance" ([batch, 1, 1, 1])';

/** How to recreate a real LPIPS model file, for error messages. */
function exportHint(path: string): string {
  return `Export one with: python tools/export_lpips.py ${path}  (needs: pip install lpips torch onnx; downloads torchvision's AlexNet weights once).`;
}

/** Options of {@link LpipsMetric}. */
export interface LpipsOptions {
  /**
   * Longest side in pixels at which frames are compared. Larger frames are downscaled (aspect
   * kept; Lanczos-3) before LPIPS, since LPIPS on a 1024x1024 frame is slow on CPU and
   * only the ranking of the gaps between neighbouring frames matters for choosing the next
   * branch. Whole number ≥ 32, or Infinity to always compare at full resolution; default 256.
   * Frames with a side under 32 px are upscaled to 32 px (AlexNet's minimum) whatever this is.
   */
  readonly maxSide?: number;
  /**
   * Largest number of pairs sent to ONNX Runtime in one call by {@link LpipsMetric.distances}
   * (bounds memory; whole number ≥ 1; default 8).
   */
  readonly maxBatch?: number;
}

/**
 * Writes an RGB8 image as LPIPS input — planar [3, height, width] floats, byte / 127.5 - 1, so
 * 0 → -1 and 255 → 1 — into `target` from element `offset` (a new array by default).
 */
export function rgbToLpipsInput(
  image: RgbImage,
  target: Float32Array = new Float32Array(image.width * image.height * 3),
  offset = 0,
): Float32Array {
  const plane = image.width * image.height;
  const data = image.data;
  for (let pixel = 0; pixel < plane; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      target[offset + channel * plane + pixel] = data[pixel * 3 + channel]! / 127.5 - 1;
    }
  }
  return target;
}

/**
 * Size in pixels at which a `width`x`height` frame is fed to LPIPS: scaled down (aspect kept) so
 * that the longer side is at most `maxSide`, but never so that the shorter side drops under
 * {@link LPIPS_MIN_SIDE} (tiny frames are scaled up to it). The frame's own size when it fits.
 */
export function lpipsInputSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const longer = Math.max(width, height);
  const shorter = Math.min(width, height);
  const scale = Math.max(Math.min(1, maxSide / longer), LPIPS_MIN_SIDE / shorter);
  if (scale === 1) return { width, height };
  return {
    width: Math.max(LPIPS_MIN_SIDE, Math.round(width * scale)),
    height: Math.max(LPIPS_MIN_SIDE, Math.round(height * scale)),
  };
}

/** What a model's input or output looks like, for error messages: `name (float32 [batch, 3, h, w])`. */
function describeValue(meta: ort.InferenceSession.ValueMetadata): string {
  if (!meta.isTensor) return `${meta.name} (not a tensor)`;
  const dims = meta.shape.map((dim) => String(dim)).join(', ');
  return `${meta.name} (${meta.type} [${dims}])`;
}

const FLOAT_TYPES: readonly string[] = ['float32', 'float16', 'float64'];

/**
 * Checks that `model` is LPIPS-shaped (inputs img0/img1: float, rank 4, 3 channels where the
 * channel dimension is fixed; output `distance`) and returns the element types of its inputs.
 * The error names the file, what was expected and what the model has.
 */
export function checkLpipsModel(model: OnnxModel): { img0: ort.Tensor.Type; img1: ort.Tensor.Type } {
  const inputs = model.session.inputMetadata;
  const outputs = model.session.outputMetadata;
  const fail = (problem: string): never => {
    throw new LatentBlendError(
      `${model.path} is not an LPIPS model: ${problem}. Expected ${EXPECTED}; it has inputs ${inputs
        .map(describeValue)
        .join(', ')} and outputs ${outputs.map(describeValue).join(', ')}.`,
      'model_folder',
    );
  };
  const types: Partial<Record<'img0' | 'img1', ort.Tensor.Type>> = {};
  for (const name of ['img0', 'img1'] as const) {
    const meta = inputs.find((entry) => entry.name === name);
    if (meta === undefined) return fail(`no input "${name}"`);
    if (!meta.isTensor || !FLOAT_TYPES.includes(meta.type)) return fail(`input "${name}" is not a float tensor`);
    if (meta.shape.length !== 4) return fail(`input "${name}" has rank ${meta.shape.length}, not 4`);
    const channels = meta.shape[1];
    if (typeof channels === 'number' && channels !== 3) return fail(`input "${name}" has ${channels} channels, not 3`);
    types[name] = meta.type;
  }
  if (inputs.length !== 2) return fail(`it has ${inputs.length} inputs, not 2`);
  const output = outputs.find((entry) => entry.name === 'distance');
  if (output === undefined) return fail('no output "distance"');
  if (!output.isTensor || !FLOAT_TYPES.includes(output.type)) return fail('output "distance" is not a float tensor');
  return { img0: types.img0!, img1: types.img1! };
}

/**
 * An LPIPS metric's options with their defaults, checked (both LPIPS metrics, one model file or
 * two): `maxSide` a whole number ≥ 32 px or Infinity, `maxBatch` a whole number ≥ 1.
 */
export function lpipsLimits(options: LpipsOptions): { maxSide: number; maxBatch: number } {
  const maxSide = options.maxSide ?? DEFAULT_LPIPS_MAX_SIDE;
  const maxBatch = options.maxBatch ?? DEFAULT_LPIPS_MAX_BATCH;
  checkMaxSide(maxSide, LPIPS_MIN_SIDE, 'LPIPS metric');
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new LatentBlendError(`LPIPS metric: maxBatch must be a whole number ≥ 1, got ${maxBatch}.`);
  }
  return { maxSide, maxBatch };
}

/**
 * LPIPS as a {@link SimilarityMetric}: distance ≥ 0 between two RGB8 frames (0 for identical
 * frames; for the real AlexNet v0.1 model, roughly 0.0–0.1 for near-identical frames and 0.5–0.8
 * for unrelated images). Frames are compared at most {@link LpipsOptions.maxSide} px on the longer
 * side. Create with {@link loadLpipsMetric}.
 */
export class LpipsMetric implements SimilarityMetric {
  readonly name = 'lpips';
  /** Longest compared side in pixels (Infinity: full resolution). */
  readonly maxSide: number;
  /** Largest number of pairs per ONNX Runtime call. */
  readonly maxBatch: number;
  private readonly types: { img0: ort.Tensor.Type; img1: ort.Tensor.Type };

  /** Wraps a loaded model; throws a LatentBlendError unless it is LPIPS-shaped. */
  constructor(
    readonly model: OnnxModel,
    options: LpipsOptions = {},
  ) {
    ({ maxSide: this.maxSide, maxBatch: this.maxBatch } = lpipsLimits(options));
    this.types = checkLpipsModel(model);
  }

  /**
   * The model on float inputs as it sees them: `img0` and `img1` hold `batch` planar RGB images
   * [batch, 3, height, width] (row-major) with values in [-1, 1], height and width ≥
   * {@link LPIPS_MIN_SIDE}; no resizing happens here.
   * Returns one distance per batch item, in order.
   */
  async distanceTensors(
    img0: Float32Array,
    img1: Float32Array,
    dims: readonly [batch: number, channels: number, height: number, width: number],
  ): Promise<number[]> {
    const [batch, channels, height, width] = dims;
    if (channels !== 3) throw new LatentBlendError(`LPIPS: expected 3 channels, got dims [${dims.join(', ')}].`);
    if (!(height >= LPIPS_MIN_SIDE && width >= LPIPS_MIN_SIDE)) {
      // Smaller inputs make AlexNet's pooling produce empty maps, which can crash the process.
      throw new LatentBlendError(`LPIPS: inputs must be at least ${LPIPS_MIN_SIDE}x${LPIPS_MIN_SIDE} pixels, got ${width}x${height}.`);
    }
    const length = batch * channels * height * width;
    if (img0.length !== length || img1.length !== length) {
      throw new LatentBlendError(
        `LPIPS: inputs of dims [${dims.join(', ')}] need ${length} values each, got ${img0.length} and ${img1.length}.`,
      );
    }
    const outputs = await runModel(this.model, {
      img0: floatTensor(this.types.img0, img0, dims),
      img1: floatTensor(this.types.img1, img1, dims),
    });
    const output = outputs.distance;
    if (output === undefined) throw new Error(`${this.model.path}: LPIPS returned no "distance" output.`);
    const values = toFloat32(output);
    if (values.length !== batch) {
      throw new LatentBlendError(
        `${this.model.path}: LPIPS returned ${values.length} values for ${batch} pairs (output dims [${output.dims.join(', ')}]); expected [batch, 1, 1, 1].`,
        'model_folder',
      );
    }
    return Array.from(values);
  }

  /** LPIPS distance (≥ 0) between two same-size RGB8 frames. */
  async distance(a: RgbImage, b: RgbImage): Promise<number> {
    const [value] = await this.distances([[a, b]]);
    return value!;
  }

  /**
   * LPIPS distance of each pair (the two frames of a pair have the same size), in order. Pairs
   * that are fed to the model at the same size go through ONNX Runtime together, up to
   * {@link maxBatch} per call — e.g. a new frame against both of its neighbours is one call.
   */
  async distances(pairs: readonly (readonly [RgbImage, RgbImage])[]): Promise<number[]> {
    pairs.forEach(([a, b], index) => checkImagePair(a, b, `LPIPS distance (pair ${index})`));
    const prepared = await Promise.all(
      pairs.map(async ([a, b]) => {
        const size = lpipsInputSize(a.width, a.height, this.maxSide);
        return Promise.all([resizeRgb(a, size.width, size.height), resizeRgb(b, size.width, size.height)]);
      }),
    );
    // Pairs of equal input size, by "WxH", as indices into `pairs`.
    const groups = new Map<string, number[]>();
    prepared.forEach(([a], index) => {
      const key = `${a.width}x${a.height}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [index]);
      else group.push(index);
    });
    const result = new Array<number>(pairs.length);
    for (const indices of groups.values()) {
      for (let start = 0; start < indices.length; start += this.maxBatch) {
        const chunk = indices.slice(start, start + this.maxBatch);
        const first = prepared[chunk[0]!]![0];
        const stride = 3 * first.width * first.height;
        const img0 = new Float32Array(chunk.length * stride);
        const img1 = new Float32Array(chunk.length * stride);
        chunk.forEach((index, item) => {
          const [a, b] = prepared[index]!;
          rgbToLpipsInput(a, img0, item * stride);
          rgbToLpipsInput(b, img1, item * stride);
        });
        const values = await this.distanceTensors(img0, img1, [chunk.length, 3, first.height, first.width]);
        chunk.forEach((index, item) => {
          result[index] = values[item]!;
        });
      }
    }
    return result;
  }

  /** Frees the ONNX Runtime session. */
  async release(): Promise<void> {
    await this.model.session.release();
  }
}

/**
 * Loads an LPIPS ONNX model (see the module comment for the layout) on `device` with the
 * platform's ONNX Runtime. Throws a
 * LatentBlendError naming the file when it is missing, unreadable, or not LPIPS-shaped.
 */
export async function loadLpipsMetric(platform: Platform, path: string, device: Device, options: LpipsOptions = {}): Promise<LpipsMetric> {
  const { files } = platform;
  if (!files.isFile(path) && !files.isFolder(path)) {
    throw new LatentBlendError(`LPIPS model not found: ${path}. ${exportHint(path)}`, 'model_folder');
  }
  if (!files.isFile(path)) {
    throw new LatentBlendError(`LPIPS model ${path} is not a file; expected an .onnx file with ${EXPECTED}.`, 'model_folder');
  }
  const model = await loadOnnxModel(platform.runtime, path, 'LPIPS model', device);
  try {
    return new LpipsMetric(model, options);
  } catch (error) {
    await model.session.release();
    throw error;
  }
}
