/**
 * LPIPS in the two-file form of deepghs/imgutils-models (folder `lpips/`), which
 * `tools/export_lpips.py --two-file` also writes:
 *
 *   lpips_feature.onnx  input `input` float [batch, 3, height, width], RGB in [0, 1] (byte / 255);
 *                       outputs `feat_0` … `feat_4`: AlexNet's five ReLU outputs after LPIPS'
 *                       scaling layer, each unit-normalised over channels
 *   lpips_diff.onnx     inputs `feat_x_0` … `feat_x_4` and `feat_y_0` … `feat_y_4` (two images'
 *                       features); output `output` float [batch]: the LPIPS distance
 *
 * imgutils' export fixes height and width at 400 px (it resizes every image to 400x400); when the
 * feature model declares a fixed size, frames are resized to it, otherwise they are compared at
 * the size {@link lpipsInputSize} gives, like the one-file form. Splitting the network lets a
 * frame's features be computed once and compared with both of its neighbours.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type * as ort from 'onnxruntime-common';
import { LatentBlendError } from '../errors.ts';
import { nodePlatform } from './platform.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import { floatTensor, loadOnnxModel, runModel, toFloat32, type Device, type FeedTensor, type OnnxModel } from '../runtime/onnx.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { checkImagePair, resizeRgb } from '../engine/pixel-metric.ts';
import { LPIPS_MIN_SIDE, lpipsInputSize, lpipsLimits, type LpipsOptions } from '../engine/lpips.ts';

export const LPIPS_FEATURE_FILE = 'lpips_feature.onnx';
export const LPIPS_DIFF_FILE = 'lpips_diff.onnx';
/** Layers whose features LPIPS compares (AlexNet's five ReLUs). */
const LAYERS = 5;
/** Frames whose features are kept for the next comparison (each is a few MB for the real AlexNet at 400 px). */
const FEATURE_CACHE = 8;

/**
 * The two files when `path` is a folder holding both, or one of the two files (its sibling must
 * be there); undefined when `path` is neither (e.g. a one-file LPIPS model).
 */
export function twoFileLpipsPaths(path: string): { feature: string; diff: string } | undefined {
  const folder = existsSync(path) && statSync(path).isDirectory() ? path : [LPIPS_FEATURE_FILE, LPIPS_DIFF_FILE].includes(basename(path)) ? dirname(path) : undefined;
  if (folder === undefined) return undefined;
  const feature = join(folder, LPIPS_FEATURE_FILE);
  const diff = join(folder, LPIPS_DIFF_FILE);
  const missing = [feature, diff].filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new LatentBlendError(
      `${path}: the two-file LPIPS form needs ${LPIPS_FEATURE_FILE} and ${LPIPS_DIFF_FILE} side by side; ${missing.join(' and ')} missing.`,
      'model_folder',
    );
  }
  return { feature, diff };
}

function describe(meta: ort.InferenceSession.ValueMetadata): string {
  return meta.isTensor ? `${meta.name} (${meta.type} [${meta.shape.map(String).join(', ')}])` : `${meta.name} (not a tensor)`;
}

/** Checks both models' inputs and outputs; returns the feature input's type and fixed size, if any. */
function checkModels(feature: OnnxModel, diff: OnnxModel): { inputType: ort.Tensor.Type; featureTypes: ort.Tensor.Type[]; fixed?: { width: number; height: number } } {
  const fail = (model: OnnxModel, problem: string): never => {
    throw new LatentBlendError(
      `${model.path} is not part of a two-file LPIPS model: ${problem}. It has inputs ${model.session.inputMetadata.map(describe).join(', ')} ` +
        `and outputs ${model.session.outputMetadata.map(describe).join(', ')}.`,
      'model_folder',
    );
  };
  const input = feature.session.inputMetadata.find((meta) => meta.name === 'input');
  if (input === undefined || !input.isTensor) return fail(feature, 'no tensor input "input" (float [batch, 3, height, width], RGB in [0, 1])');
  if (!['float32', 'float16'].includes(input.type)) return fail(feature, 'input "input" is not float');
  if (input.shape.length !== 4 || (typeof input.shape[1] === 'number' && input.shape[1] !== 3)) return fail(feature, 'input "input" is not [batch, 3, height, width]');
  for (let k = 0; k < LAYERS; k++) {
    if (!feature.session.outputNames.includes(`feat_${k}`)) fail(feature, `no output "feat_${k}"`);
  }
  const featureTypes: ort.Tensor.Type[] = [];
  for (let k = 0; k < LAYERS; k++) {
    for (const side of ['x', 'y']) {
      const meta = diff.session.inputMetadata.find((entry) => entry.name === `feat_${side}_${k}`);
      if (meta === undefined || !meta.isTensor) return fail(diff, `no tensor input "feat_${side}_${k}"`);
      if (side === 'x') featureTypes.push(meta.type);
    }
  }
  if (!diff.session.outputNames.includes('output')) fail(diff, 'no output "output"');
  const [, , height, width] = input.shape;
  const fixed = typeof height === 'number' && typeof width === 'number' && height > 0 && width > 0 ? { width, height } : undefined;
  if (fixed !== undefined && (fixed.width < LPIPS_MIN_SIDE || fixed.height < LPIPS_MIN_SIDE)) fail(feature, `its fixed input size ${width}x${height} is under ${LPIPS_MIN_SIDE} px`);
  return { inputType: input.type, featureTypes, ...(fixed !== undefined ? { fixed } : {}) };
}

/** One image's features: per layer, the values and dims [channels, height, width]. */
type Features = readonly { readonly data: Float32Array; readonly dims: readonly number[] }[];

/**
 * LPIPS from the two-file form as a {@link SimilarityMetric} (the same distance as the one-file
 * form for the same network; see the module comment). Create with {@link loadTwoFileLpipsMetric}.
 */
export class TwoFileLpipsMetric implements SimilarityMetric {
  readonly name = 'lpips';
  readonly maxSide: number;
  readonly maxBatch: number;
  /** The feature model's fixed input size, when it has one (imgutils: 400x400). */
  readonly fixedSize: { readonly width: number; readonly height: number } | undefined;
  private readonly types: ReturnType<typeof checkModels>;
  private readonly cache = new Map<RgbImage, { key: string; features: Features }>();

  constructor(
    readonly feature: OnnxModel,
    readonly diff: OnnxModel,
    options: LpipsOptions = {},
  ) {
    ({ maxSide: this.maxSide, maxBatch: this.maxBatch } = lpipsLimits(options));
    this.types = checkModels(feature, diff);
    this.fixedSize = this.types.fixed;
  }

  /** Size in pixels at which a `width`x`height` frame is fed to the feature model. */
  inputSize(width: number, height: number): { width: number; height: number } {
    return this.fixedSize ?? lpipsInputSize(width, height, this.maxSide);
  }

  /** Features of `batch` planar images [batch, 3, height, width] with values in [0, 1]. */
  private async featuresOfTensor(data: Float32Array, dims: readonly [number, number, number, number]): Promise<Features[]> {
    const outputs = await runModel(this.feature, { input: floatTensor(this.types.inputType, data, dims) });
    const batch = dims[0];
    const perImage: { data: Float32Array; dims: number[] }[][] = Array.from({ length: batch }, () => []);
    for (let k = 0; k < LAYERS; k++) {
      const tensor = outputs[`feat_${k}`];
      if (tensor === undefined) throw new Error(`${this.feature.path}: no output feat_${k}`);
      const values = toFloat32(tensor);
      const itemDims = tensor.dims.slice(1);
      const stride = itemDims.reduce((product, value) => product * value, 1);
      for (let item = 0; item < batch; item++) perImage[item]!.push({ data: values.subarray(item * stride, (item + 1) * stride), dims: itemDims });
    }
    return perImage;
  }

  /** Distances between feature pairs, up to maxBatch pairs per call of the difference model. */
  private async compare(pairs: readonly (readonly [Features, Features])[]): Promise<number[]> {
    const result: number[] = [];
    for (let start = 0; start < pairs.length; start += this.maxBatch) {
      const chunk = pairs.slice(start, start + this.maxBatch);
      const feeds: Record<string, FeedTensor> = {};
      for (let k = 0; k < LAYERS; k++) {
        for (const [side, which] of [['x', 0], ['y', 1]] as const) {
          const layer = chunk.map((pair) => pair[which][k]!);
          const stride = layer[0]!.data.length;
          const joined = new Float32Array(stride * chunk.length);
          layer.forEach((entry, item) => {
            if (entry.data.length !== stride) throw new LatentBlendError('LPIPS: features of different sizes cannot be compared in one batch.');
            joined.set(entry.data, item * stride);
          });
          feeds[`feat_${side}_${k}`] = floatTensor(this.types.featureTypes[k]!, joined, [chunk.length, ...layer[0]!.dims]);
        }
      }
      const outputs = await runModel(this.diff, feeds);
      const output = outputs.output;
      if (output === undefined) throw new Error(`${this.diff.path}: LPIPS returned no "output".`);
      const values = toFloat32(output);
      if (values.length !== chunk.length) {
        throw new LatentBlendError(`${this.diff.path}: returned ${values.length} distances for ${chunk.length} pairs (dims [${output.dims.join(', ')}]).`, 'model_folder');
      }
      result.push(...values);
    }
    return result;
  }

  /**
   * The model on float inputs in [-1, 1] as the one-file form takes them (so the two forms can be
   * compared on the same tensors): `img0`, `img1` planar [batch, 3, height, width]; at the fixed
   * size when the feature model has one. Returns one distance per batch item.
   */
  async distanceTensors(img0: Float32Array, img1: Float32Array, dims: readonly [batch: number, channels: number, height: number, width: number]): Promise<number[]> {
    const [batch, channels, height, width] = dims;
    const length = batch * channels * height * width;
    if (channels !== 3 || img0.length !== length || img1.length !== length) {
      throw new LatentBlendError(`LPIPS: inputs of dims [${dims.join(', ')}] need 3 channels and ${length} values each.`);
    }
    if (this.fixedSize !== undefined && (width !== this.fixedSize.width || height !== this.fixedSize.height)) {
      throw new LatentBlendError(`LPIPS: ${this.feature.path} takes ${this.fixedSize.width}x${this.fixedSize.height} px only, got ${width}x${height}.`);
    }
    const toUnit = (values: Float32Array) => Float32Array.from(values, (value) => (value + 1) / 2);
    const [x, y] = [await this.featuresOfTensor(toUnit(img0), dims), await this.featuresOfTensor(toUnit(img1), dims)];
    return this.compare(x.map((features, item) => [features, y[item]!] as const));
  }

  /** LPIPS distance (≥ 0) between two same-size RGB8 frames. */
  async distance(a: RgbImage, b: RgbImage): Promise<number> {
    const [value] = await this.distances([[a, b]]);
    return value!;
  }

  /**
   * LPIPS distance of each pair, in order. Each distinct frame's features are computed once
   * (frames of the same input size together, up to maxBatch per call) and kept for the few
   * frames most recently seen, so a new frame against both of its neighbours costs one
   * feature pass for the new frame.
   */
  async distances(pairs: readonly (readonly [RgbImage, RgbImage])[]): Promise<number[]> {
    pairs.forEach(([a, b], index) => checkImagePair(a, b, `LPIPS distance (pair ${index})`));
    const images = [...new Set(pairs.flat())];
    const features = new Map<RgbImage, Features>();
    const todo: { image: RgbImage; key: string }[] = [];
    for (const image of images) {
      const size = this.inputSize(image.width, image.height);
      const key = `${size.width}x${size.height}`;
      const cached = this.cache.get(image);
      if (cached !== undefined && cached.key === key) features.set(image, cached.features);
      else todo.push({ image, key });
    }
    const groups = new Map<string, RgbImage[]>();
    for (const { image, key } of todo) groups.set(key, [...(groups.get(key) ?? []), image]);
    for (const [key, group] of groups) {
      const [width, height] = key.split('x').map(Number) as [number, number];
      for (let start = 0; start < group.length; start += this.maxBatch) {
        const chunk = group.slice(start, start + this.maxBatch);
        const plane = width * height;
        const data = new Float32Array(chunk.length * 3 * plane);
        for (const [item, image] of chunk.entries()) {
          const resized = await resizeRgb(image, width, height);
          const offset = item * 3 * plane;
          for (let pixel = 0; pixel < plane; pixel++) {
            for (let channel = 0; channel < 3; channel++) data[offset + channel * plane + pixel] = resized.data[pixel * 3 + channel]! / 255;
          }
        }
        const computed = await this.featuresOfTensor(data, [chunk.length, 3, height, width]);
        chunk.forEach((image, item) => {
          features.set(image, computed[item]!);
          this.remember(image, key, computed[item]!);
        });
      }
    }
    return this.compare(pairs.map(([a, b]) => [features.get(a)!, features.get(b)!] as const));
  }

  private remember(image: RgbImage, key: string, features: Features): void {
    this.cache.delete(image);
    this.cache.set(image, { key, features });
    while (this.cache.size > FEATURE_CACHE) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Frees both ONNX Runtime sessions. */
  async release(): Promise<void> {
    this.cache.clear();
    await this.feature.session.release();
    await this.diff.session.release();
  }
}

/** Loads the two-file LPIPS form from `paths` on `device`; errors name the file and what is wrong. */
export async function loadTwoFileLpipsMetric(paths: { feature: string; diff: string }, device: Device, options: LpipsOptions = {}): Promise<TwoFileLpipsMetric> {
  const feature = await loadOnnxModel(nodePlatform.runtime, paths.feature, 'LPIPS features', device);
  let diff: OnnxModel | undefined;
  try {
    diff = await loadOnnxModel(nodePlatform.runtime, paths.diff, 'LPIPS difference', device);
    return new TwoFileLpipsMetric(feature, diff, options);
  } catch (error) {
    await feature.session.release();
    await diff?.session.release();
    throw error;
  }
}
