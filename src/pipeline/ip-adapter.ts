/**
 * IP-Adapter (docs/ip-adapter-onnx.md): a picture as part of the prompt. The folder holds the
 * CLIP vision encoder and the base UNet exported with the adapter's attention; the picture's
 * embedding and the adapter scale travel with the text conditioning (`image_embeds`,
 * `ip_adapter_scale`), so they are batched and interpolated like it. Plain adapters take the
 * encoder's `image_embeds`; "plus" adapters (a Resampler in the UNet) its penultimate hidden states.
 */
import type { FileAccess, Platform } from '../runtime/platform.ts';
import { checkOnnxFile, readJsonObject, type ModelFamily, type ModelFolder } from '../model/folder.ts';
import { floatTensor, loadOnnxModel, requireInput, requireOutput, runModel, toFloat32, type Device, type OnnxModel } from '../runtime/onnx.ts';
import { clipImageConfig, clipPixelValues, type ClipImageConfig } from '../image/clip-preprocess.ts';
import type { Conditioning } from '../adapters/adapter.ts';
import type { Tensor32 } from './tensor.ts';
import type { RgbImage } from './vae.ts';
import type { Unet } from './unet.ts';
import { LatentBlendError } from '../errors.ts';

export const IP_ADAPTER_FORMAT = 'latentblend-ip-adapter';
const EXPORT_HINT = 'export it with tools/export_ip_adapter.py (docs/ip-adapter-onnx.md)';

/** "plain": ImageProjection of `image_embeds`; "plus": Resampler of the penultimate hidden states. */
export type IpAdapterVariant = 'plain' | 'plus';

export interface IpAdapterFolder {
  readonly dir: string;
  readonly family: ModelFamily;
  readonly variant: IpAdapterVariant;
  readonly description: Readonly<Record<string, unknown>>;
  readonly imageEncoder: string;
  readonly unet: string;
  readonly unetConfig: Readonly<Record<string, unknown>>;
  readonly preprocess: ClipImageConfig;
}

function folderError(message: string): LatentBlendError {
  return new LatentBlendError(message, 'model_folder');
}

/** Inspects an IP-Adapter folder in latentblend's layout; errors name the file and what was expected. */
export function inspectIpAdapterFolder(files: FileAccess, dir: string): IpAdapterFolder {
  const join = (...parts: string[]): string => files.join(...parts);
  if (!files.isFolder(dir)) throw folderError(`IP-Adapter folder ${dir} does not exist or is not a folder.`);
  const descriptionPath = join(dir, 'latentblend-ip-adapter.json');
  const description = readJsonObject(files, descriptionPath, `the IP-Adapter description (${EXPORT_HINT})`);
  if (description.format !== IP_ADAPTER_FORMAT || description.version !== 1) {
    throw folderError(`${descriptionPath}: expected format "${IP_ADAPTER_FORMAT}" version 1, got ${JSON.stringify(description.format)} version ${JSON.stringify(description.version)}.`);
  }
  const family = description.family;
  if (family !== 'sd' && family !== 'sdxl') throw folderError(`${descriptionPath}: "family" must be "sd" or "sdxl", got ${JSON.stringify(family)}.`);
  const variant = description.variant;
  if (variant !== 'plain' && variant !== 'plus') {
    throw new LatentBlendError(`${dir}: IP-Adapter variant ${JSON.stringify(variant)} is not supported (plain and plus only).`, 'unsupported');
  }
  const imageEncoder = join(dir, 'image_encoder', 'model.onnx');
  const unet = join(dir, 'unet', 'model.onnx');
  checkOnnxFile(files, imageEncoder, 'IP-Adapter image encoder');
  checkOnnxFile(files, unet, 'UNet with the IP-Adapter');
  const preprocessorPath = join(dir, 'image_encoder', 'preprocessor_config.json');
  const preprocess = clipImageConfig(readJsonObject(files, preprocessorPath, "the image encoder's CLIPImageProcessor config"), preprocessorPath);
  const unetConfig = readJsonObject(files, join(dir, 'unet', 'config.json'), "the IP-Adapter UNet's config.json");
  // Absolute, as saved transitions record it (and compare it to decide what can be reused).
  return { dir: files.resolve(dir), family, variant, description, imageEncoder, unet, unetConfig, preprocess };
}

/** Why the IP-Adapter cannot be used with `model` (empty when it can). */
export function ipAdapterProblems(adapter: IpAdapterFolder, model: ModelFolder): string[] {
  const problems: string[] = [];
  if (adapter.family !== model.family) {
    problems.push(`the IP-Adapter is for ${adapter.family === 'sdxl' ? 'SDXL' : 'SD 1.x/2.x'} models but the model is ${model.family === 'sdxl' ? 'SDXL' : 'SD 1.x/2.x'}`);
  }
  for (const key of ['cross_attention_dim', 'block_out_channels', 'sample_size'] as const) {
    const a = JSON.stringify(adapter.unetConfig[key]);
    const b = JSON.stringify(model.unetConfig[key]);
    if (a !== undefined && b !== undefined && a !== b) problems.push(`its UNet's ${key} is ${a} but the model's is ${b} (exported for another base model)`);
  }
  return problems;
}

/** A loaded IP-Adapter's image encoder. */
export class IpAdapter {
  private readonly output: 'image_embeds' | 'penultimate_hidden_states';
  private negative: Promise<Tensor32> | undefined;

  constructor(
    readonly encoder: OnnxModel,
    readonly folder: IpAdapterFolder,
  ) {
    requireInput(encoder, 'pixel_values');
    this.output = folder.variant === 'plus' ? 'penultimate_hidden_states' : 'image_embeds';
    requireOutput(encoder, this.output);
  }

  /** The picture's embedding as the UNet takes it: [1, 1, E] (plain) or [1, 1, T, W] (plus). */
  async encode(picture: RgbImage): Promise<Tensor32> {
    return this.encodePixels(clipPixelValues(picture, this.folder.preprocess));
  }

  /**
   * The embedding of the negative side under classifier-free guidance, as diffusers: zeros for
   * plain adapters; for plus ones the encoder's hidden states of all-zero pixel values.
   */
  async negativeEmbeds(embeds: Tensor32): Promise<Tensor32> {
    if (this.folder.variant === 'plain') return zeroImageEmbeds(embeds);
    const { cropHeight, cropWidth } = this.folder.preprocess;
    this.negative ??= this.encodePixels({ data: new Float32Array(3 * cropHeight * cropWidth), dims: [1, 3, cropHeight, cropWidth] });
    return this.negative;
  }

  private async encodePixels(pixels: Tensor32): Promise<Tensor32> {
    const outputs = await runModel(this.encoder, { pixel_values: floatTensor(this.encoder.inputTypes.get('pixel_values')!, pixels.data, pixels.dims) });
    const output = outputs[this.output]!;
    const data = toFloat32(output);
    const dims = output.dims.slice(1);
    return { data, dims: [1, 1, ...dims] };
  }
}

/**
 * `conditioning` with an image prompt: `embeds` ([1, 1, E]; zeros for the negative side, as
 * diffusers) and the adapter scale.
 */
export function withImagePrompt(conditioning: Conditioning, embeds: Tensor32, scale: number): Conditioning {
  const result = new Map(conditioning);
  result.set('image_embeds', embeds);
  result.set('ip_adapter_scale', { data: Float32Array.of(scale), dims: [1] });
  return result;
}

/** Zero image embeddings shaped like `embeds` (the negative side of plain IP-Adapters; see `IpAdapter.negativeEmbeds`). */
export function zeroImageEmbeds(embeds: Tensor32): Tensor32 {
  return { data: new Float32Array(embeds.data.length), dims: embeds.dims };
}

export interface LoadedIpAdapter {
  readonly adapter: IpAdapter;
  readonly models: readonly OnnxModel[];
}

/** Checks the folder against the model before any session, then loads it and attaches its UNet to `unet`. */
export async function loadIpAdapter(platform: Platform, dir: string, model: ModelFolder, unet: Unet, device: Device): Promise<LoadedIpAdapter> {
  const folder = inspectIpAdapterFolder(platform.files, dir);
  const problems = ipAdapterProblems(folder, model);
  if (problems.length > 0) throw new LatentBlendError(`The IP-Adapter ${dir} does not fit the model ${model.dir}: ${problems.join('; ')}.`, 'invalid_input');
  const encoder = await loadOnnxModel(platform.runtime, folder.imageEncoder, 'IP-Adapter image encoder', device);
  const unetModel = await loadOnnxModel(platform.runtime, folder.unet, 'UNet with the IP-Adapter', device);
  unet.useIpAdapterModel(unetModel);
  return { adapter: new IpAdapter(encoder, folder), models: [encoder, unetModel] };
}
