/**
 * ControlNet (docs/controlnet-onnx.md): the folder check, the ONNX wrapper, diffusers' guidance
 * window, and the residuals of a batch where every row may mix several control pictures.
 */
import type { FeedTensor } from '../runtime/onnx.ts';
import type { FileAccess, Platform } from '../runtime/platform.ts';
import { checkOnnxFile, readJsonObject, type ModelFamily, type ModelFolder } from '../model/folder.ts';
import { floatTensor, intTensor, loadOnnxModel, requireInput, runModel, toFloat32, type Device, type OnnxModel } from '../runtime/onnx.ts';
import { isResidualInput, type Unet } from './unet.ts';
import type { Tensor32 } from './tensor.ts';
import { LatentBlendError } from '../errors.ts';

export const CONTROLNET_FORMAT = 'latentblend-controlnet';
/** The base model's UNet export that takes the residuals, inside the model folder. */
export const RESIDUAL_UNET_FOLDER = 'unet_controlnet';

const EXPORT_HINT = 'export it with tools/export_controlnet.py (docs/controlnet-onnx.md)';

/** A checked ControlNet folder. */
export interface ControlNetFolder {
  readonly dir: string;
  readonly family: ModelFamily;
  readonly model: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly description: Readonly<Record<string, unknown>>;
}

function folderError(message: string): LatentBlendError {
  return new LatentBlendError(message, 'model_folder');
}

/** Inspects a ControlNet folder in latentblend's layout; errors name the file and what was expected. */
export function inspectControlNetFolder(files: FileAccess, dir: string): ControlNetFolder {
  const join = (...parts: string[]): string => files.join(...parts);
  const existsSync = (path: string): boolean => files.isFile(path) || files.isFolder(path);
  if (!files.isFolder(dir)) throw folderError(`ControlNet folder ${dir} does not exist or is not a folder.`);
  const descriptionPath = join(dir, 'latentblend-controlnet.json');
  if (!existsSync(descriptionPath) && existsSync(join(dir, 'model_index.json'))) {
    throw folderError(`${dir} is a text-to-image model, not a ControlNet: expected controlnet/model.onnx and latentblend-controlnet.json (${EXPORT_HINT}).`);
  }
  const description = readJsonObject(files, descriptionPath, `the ControlNet description (${EXPORT_HINT})`);
  if (description.format !== CONTROLNET_FORMAT || description.version !== 1) {
    throw folderError(`${descriptionPath}: expected format "${CONTROLNET_FORMAT}" version 1, got ${JSON.stringify(description.format)} version ${JSON.stringify(description.version)}.`);
  }
  const family = description.family;
  if (family !== 'sd' && family !== 'sdxl') throw folderError(`${descriptionPath}: "family" must be "sd" or "sdxl", got ${JSON.stringify(family)}.`);
  const model = join(dir, 'controlnet', 'model.onnx');
  checkOnnxFile(files, model, 'ControlNet');
  const config = readJsonObject(files, join(dir, 'controlnet', 'config.json'), "the ControlNet's diffusers config.json");
  if (config.global_pool_conditions === true) {
    throw new LatentBlendError(`${dir}: ControlNets with global_pool_conditions (shuffle-style, diffusers' guess mode) are not supported.`, 'unsupported');
  }
  // Absolute, as saved transitions record it (and compare it to decide what can be reused).
  return { dir: files.resolve(dir), family, model, config, description };
}

/** The residual UNet's path in `model`, or a clear error when the model has none. */
export function residualUnetPath(files: FileAccess, model: ModelFolder): string {
  const path = files.join(model.dir, RESIDUAL_UNET_FOLDER, 'model.onnx');
  if (!files.isFile(path)) {
    throw folderError(
      `${model.dir} has no ${RESIDUAL_UNET_FOLDER}/model.onnx, the UNet that takes ControlNet residuals: add it with "python tools/export_controlnet.py unet --base <the model's diffusers repo> --into ${model.dir}" (docs/controlnet-onnx.md).`,
    );
  }
  checkOnnxFile(files, path, 'UNet with ControlNet residual inputs');
  return path;
}

/**
 * Why `controlNet` cannot drive `model` (empty when it can): another family or another text
 * conditioning width. Checked before any session is created.
 */
export function controlNetProblems(controlNet: ControlNetFolder, model: ModelFolder): string[] {
  const problems: string[] = [];
  if (controlNet.family !== model.family) {
    problems.push(`the ControlNet is for ${controlNet.family === 'sdxl' ? 'SDXL' : 'SD 1.x/2.x'} models but the model is ${model.family === 'sdxl' ? 'SDXL' : 'SD 1.x/2.x'}`);
  }
  const width = (config: Readonly<Record<string, unknown>>) => config.cross_attention_dim;
  const a = width(controlNet.config);
  const b = width(model.unetConfig);
  if (typeof a === 'number' && typeof b === 'number' && a !== b) {
    problems.push(`its text conditioning is ${a} wide but the model's UNet takes ${b} (an SD 1.x ControlNet on SD 2.x, or the reverse)`);
  }
  return problems;
}

/** diffusers' controlnet_keep: 1 inside [start, end] of the steps, else 0 (step i of `steps`). */
export function controlKeep(stepIndex: number, steps: number, guidanceStart: number, guidanceEnd: number): number {
  return stepIndex / steps < guidanceStart || (stepIndex + 1) / steps > guidanceEnd ? 0 : 1;
}

/** A loaded ControlNet model. */
export class ControlNet {
  /** Output names in order: down_block_0… then mid_block_additional_residual. */
  readonly residualNames: readonly string[];
  /** Conditioning inputs besides the latents, timestep, picture and scale (encoder states, SDXL extras). */
  readonly conditioningInputs: readonly string[];

  constructor(
    readonly model: OnnxModel,
    readonly folder: ControlNetFolder,
  ) {
    for (const name of ['sample', 'timestep', 'controlnet_cond', 'conditioning_scale', 'encoder_hidden_states']) requireInput(model, name);
    this.residualNames = model.outputNames.filter(isResidualInput);
    if (this.residualNames.length === 0) {
      throw folderError(`${model.path}: the ControlNet has no residual outputs (down_block_N_additional_residual, mid_block_additional_residual); ${EXPORT_HINT}.`);
    }
    this.conditioningInputs = [...model.inputTypes.keys()].filter(
      (name) => !['sample', 'timestep', 'controlnet_cond', 'conditioning_scale'].includes(name),
    );
  }

  /** Rows of ControlNet evaluated so far. */
  evaluations = 0;

  /**
   * Residuals for a batch at conditioning scale 1. `images` is [B, 3, H, W] in [0, 1] at the
   * output size in pixels; every conditioning tensor has batch B.
   */
  async run(sample: Tensor32, timestep: number, conditioning: ReadonlyMap<string, Tensor32>, images: Tensor32): Promise<Map<string, Tensor32>> {
    const model = this.model;
    const batch = sample.dims[0] ?? 1;
    const feeds: Record<string, FeedTensor> = {
      sample: floatTensor(model.inputTypes.get('sample')!, sample.data, sample.dims),
      controlnet_cond: floatTensor(model.inputTypes.get('controlnet_cond')!, images.data, images.dims),
      conditioning_scale: floatTensor(model.inputTypes.get('conditioning_scale')!, new Float32Array([1]), (model.inputRanks.get('conditioning_scale') ?? 0) === 0 ? [] : [1]),
    };
    const timestepType = model.inputTypes.get('timestep')!;
    feeds.timestep =
      (model.inputRanks.get('timestep') ?? 1) === 0 ? intTensor(timestepType, [timestep], []) : intTensor(timestepType, new Array<number>(batch).fill(timestep), [batch]);
    for (const name of this.conditioningInputs) {
      const tensor = conditioning.get(name);
      if (tensor === undefined) throw folderError(`${model.path}: the ControlNet needs input "${name}", which this model family's conditioning does not provide.`);
      feeds[name] = floatTensor(model.inputTypes.get(name)!, tensor.data, tensor.dims);
    }
    const outputs = await runModel(model, feeds);
    this.evaluations += batch;
    const result = new Map<string, Tensor32>();
    for (const name of this.residualNames) {
      const output = outputs[name]!;
      result.set(name, { data: toFloat32(output), dims: output.dims });
    }
    return result;
  }
}

/** One control picture acting on a row, with its weight (conditioning scale × mixing share). */
export interface ControlTerm {
  /** [1, 3, H, W] in [0, 1], H × W the output size in pixels. */
  readonly image: Tensor32;
  readonly weight: number;
}

/**
 * The residuals for a UNet batch where row r is driven by `rowTerms[r]`: Σ weight · ControlNet(
 * row, picture), all (row, picture) pairs in one ControlNet call. Terms with weight 0 are skipped;
 * undefined when no row has any (the plain UNet then gives the same result as zero residuals).
 */
export async function mixedResiduals(
  controlNet: ControlNet,
  sample: Tensor32,
  timestep: number,
  conditioning: ReadonlyMap<string, Tensor32>,
  rowTerms: readonly (readonly ControlTerm[])[],
): Promise<Map<string, Tensor32> | undefined> {
  const rows = sample.dims[0] ?? 1;
  if (rowTerms.length !== rows) throw new Error(`mixedResiduals: ${rowTerms.length} term lists for ${rows} rows`);
  const pairs: { row: number; term: ControlTerm }[] = [];
  rowTerms.forEach((terms, row) => terms.forEach((term) => term.weight !== 0 && pairs.push({ row, term })));
  if (pairs.length === 0) return undefined;
  const gather = (tensor: Tensor32, pick: (pair: { row: number; term: ControlTerm }) => Float32Array): Tensor32 => {
    const rowLength = tensor.data.length / (tensor.dims[0] ?? 1);
    const data = new Float32Array(pairs.length * rowLength);
    pairs.forEach((pair, index) => data.set(pick(pair), index * rowLength));
    return { data, dims: [pairs.length, ...tensor.dims.slice(1)] };
  };
  const rowOf = (tensor: Tensor32, row: number) => {
    const rowLength = tensor.data.length / (tensor.dims[0] ?? 1);
    return tensor.data.subarray(row * rowLength, (row + 1) * rowLength);
  };
  const first = pairs[0]!.term.image;
  for (const { term } of pairs) {
    if (term.image.dims.join(',') !== first.dims.join(',')) throw new Error('mixedResiduals: control pictures of different sizes in one batch');
  }
  const pairSample = gather(sample, ({ row }) => rowOf(sample, row));
  const pairConditioning = new Map<string, Tensor32>();
  for (const [name, tensor] of conditioning) pairConditioning.set(name, gather(tensor, ({ row }) => rowOf(tensor, row)));
  const images = gather({ data: first.data, dims: first.dims }, ({ term }) => term.image.data);
  const residuals = await controlNet.run(pairSample, timestep, pairConditioning, images);
  const result = new Map<string, Tensor32>();
  for (const [name, tensor] of residuals) {
    const rowLength = tensor.data.length / pairs.length;
    const mixed = new Float32Array(rows * rowLength);
    pairs.forEach(({ row, term }, index) => {
      // Math.fround: the scale as float32, as torch multiplies a float32 tensor by a Python float.
      const weight = Math.fround(term.weight);
      const source = tensor.data.subarray(index * rowLength, (index + 1) * rowLength);
      const offset = row * rowLength;
      for (let k = 0; k < rowLength; k++) mixed[offset + k] = mixed[offset + k]! + weight * source[k]!;
    });
    result.set(name, { data: mixed, dims: [rows, ...tensor.dims.slice(1)] });
  }
  return result;
}

/** A ControlNet ready to use with a pipeline's UNet. */
export interface LoadedControlNet {
  readonly controlNet: ControlNet;
  /** The ONNX sessions opened here (release them when done). */
  readonly models: readonly OnnxModel[];
}

/**
 * Checks `dir` against the model (family, conditioning width, residual UNet present) before any
 * session is created, then loads the ControlNet and attaches the residual UNet to `unet`.
 */
export async function loadControlNet(platform: Platform, dir: string, model: ModelFolder, unet: Unet, device: Device): Promise<LoadedControlNet> {
  const folder = inspectControlNetFolder(platform.files, dir);
  const problems = controlNetProblems(folder, model);
  if (problems.length > 0) throw new LatentBlendError(`The ControlNet ${dir} does not fit the model ${model.dir}: ${problems.join('; ')}.`, 'invalid_input');
  const unetPath = residualUnetPath(platform.files, model);
  const controlModel = await loadOnnxModel(platform.runtime, folder.model, 'ControlNet', device);
  const controlNet = new ControlNet(controlModel, folder);
  const opened: OnnxModel[] = [controlModel];
  if (unet.residualModel === undefined) {
    const residualModel = await loadOnnxModel(platform.runtime, unetPath, 'UNet with ControlNet residual inputs', device);
    unet.useResidualModel(residualModel);
    opened.push(residualModel);
  }
  const missing = [...unet.residualModel!.inputTypes.keys()].filter(isResidualInput).filter((name) => !controlNet.residualNames.includes(name));
  const extra = controlNet.residualNames.filter((name) => !unet.residualModel!.inputTypes.has(name));
  if (missing.length > 0 || extra.length > 0) {
    throw new LatentBlendError(
      `The ControlNet ${dir} gives ${controlNet.residualNames.length} residuals but the model's ${RESIDUAL_UNET_FOLDER} takes ${[...unet.residualModel!.inputTypes.keys()].filter(isResidualInput).length}: they are not for the same architecture.`,
      'invalid_input',
    );
  }
  return { controlNet, models: opened };
}
