/**
 * A preview decoder: a tiny autoencoder (TAESD, TAESDXL: diffusers' AutoencoderTiny) exported to
 * ONNX, used by the studio for previews only (`latentblend studio --preview-vae DIR`). It is
 * several times cheaper than the model's own VAE decoder and less faithful, so films and their
 * frames never use it (docs/preview-vae.md).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { floatTensor, loadOnnxModel, requireInput, runModel, toFloat32, type Device, type InferenceThread, type OnnxModel } from '../runtime/onnx.ts';
import { parseConfigJson } from '../model/folder.ts';
import { LatentBlendError } from '../errors.ts';
import { decodedToRgb, type LatentDecoder, type RgbImage } from '../pipeline/vae.ts';
import { nodePlatform } from './platform.ts';

export type { LatentDecoder } from '../pipeline/vae.ts';

/** The ONNX file of a preview decoder folder: DIR/vae_decoder/model.onnx, or DIR/model.onnx. */
export function previewVaeFile(dir: string): string {
  const candidates = [join(dir, 'vae_decoder', 'model.onnx'), join(dir, 'model.onnx')];
  const found = candidates.find((path) => existsSync(path) && statSync(path).isFile());
  if (found === undefined) {
    throw new LatentBlendError(
      `The preview VAE folder ${resolve(dir)} has no vae_decoder/model.onnx (export TAESD or TAESDXL as docs/preview-vae.md shows).`,
      'model_folder',
    );
  }
  return found;
}

export class PreviewVae implements LatentDecoder {
  private readonly inputType;

  /**
   * @param scalingFactor the tiny autoencoder's own `scaling_factor` (1.0 for TAESD/TAESDXL): the
   *   pipeline's latents are divided by it, never by the model's (0.18215, 0.13025), because
   *   TAESD was trained on latents already scaled by the model's factor.
   * @param latentChannels latent channels the decoder takes (4 for TAESD/TAESDXL).
   * @param scaleFactor pixels per latent cell (8).
   */
  private constructor(
    /** The folder it was loaded from, absolute. */
    readonly source: string,
    readonly decoder: OnnxModel,
    readonly scalingFactor: number,
    readonly shiftFactor: number,
    readonly latentChannels: number,
    readonly scaleFactor: number,
  ) {
    this.inputType = requireInput(decoder, 'latent_sample');
  }

  /** Loads the preview decoder folder `dir` (see previewVaeFile); its config.json is optional. */
  static async load(dir: string, device: Device = 'cpu', thread: InferenceThread = 'main'): Promise<PreviewVae> {
    const file = previewVaeFile(dir);
    const config = readConfig(join(file, '..', 'config.json'));
    const number = (key: string, fallback: number): number => {
      const value = config[key];
      if (value === undefined || value === null) return fallback;
      if (typeof value !== 'number' || !Number.isFinite(value) || (key === 'scaling_factor' && value <= 0)) {
        throw new LatentBlendError(`${join(file, '..', 'config.json')}: ${key} must be a ${key === 'scaling_factor' ? 'positive ' : ''}number, got ${JSON.stringify(value)}.`, 'model_folder');
      }
      return value;
    };
    const blocks = Array.isArray(config.decoder_block_out_channels) ? config.decoder_block_out_channels.length : 4;
    // The VAE decoder's session options (optimisation level) suit this decoder too.
    const decoder = await loadOnnxModel(nodePlatform.runtime, file, 'VAE decoder', device, { thread });
    return new PreviewVae(resolve(dir), decoder, number('scaling_factor', 1), number('shift_factor', 0), number('latent_channels', 4), 2 ** (blocks - 1));
  }

  /** Decoder calls so far (one per image). */
  decodes = 0;

  /**
   * The raw decoder output [3, h*scale, w*scale] (about [-1, 1]) of one item's pipeline latents
   * [C, h, w], as diffusers decodes `latents / scaling_factor + shift_factor` with AutoencoderTiny.
   */
  async decodeRaw(latents: Float32Array, latentShape: readonly [number, number, number]): Promise<Float32Array> {
    if (latentShape[0] !== this.latentChannels) {
      throw new LatentBlendError(
        `The preview VAE ${this.decoder.path} takes ${this.latentChannels} latent channels and this model makes ${latentShape[0]}; use the tiny autoencoder made for this model family.`,
        'model_folder',
      );
    }
    const input = Float32Array.from(latents, (value) => value / this.scalingFactor + this.shiftFactor);
    const outputs = await runModel(this.decoder, { latent_sample: floatTensor(this.inputType, input, [1, ...latentShape]) });
    this.decodes += 1;
    return toFloat32(outputs.sample ?? Object.values(outputs)[0]!);
  }

  /** Decodes one item's pipeline latents [C, h, w] to an RGB8 image. */
  async decode(latents: Float32Array, latentShape: readonly [number, number, number]): Promise<RgbImage> {
    const raw = await this.decodeRaw(latents, latentShape);
    return decodedToRgb(raw, latentShape[2] * this.scaleFactor, latentShape[1] * this.scaleFactor);
  }

  /** Frees the ONNX session. */
  async release(): Promise<void> {
    await this.decoder.session.release();
  }
}

function readConfig(path: string): Record<string, unknown> {
  if (!existsSync(path)) return {};
  let parsed: unknown;
  try {
    parsed = parseConfigJson(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new LatentBlendError(`${path}: not valid JSON (${(error as Error).message}).`, 'model_folder');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new LatentBlendError(`${path}: expected a JSON object.`, 'model_folder');
  }
  const className = (parsed as Record<string, unknown>)._class_name;
  if (className !== undefined && className !== 'AutoencoderTiny') {
    throw new LatentBlendError(`${path}: a preview VAE is a tiny autoencoder (AutoencoderTiny), this is ${JSON.stringify(className)}; the model's own VAE needs no --preview-vae.`, 'model_folder');
  }
  return parsed as Record<string, unknown>;
}
