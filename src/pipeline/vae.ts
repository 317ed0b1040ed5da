/** The VAE (ONNX): latents ↔ RGB8 images, with the model's latent scaling factor. */
import { floatTensor, requireInput, runModel, toFloat32, type OnnxModel } from '../runtime/onnx.ts';
import { LatentBlendError } from '../errors.ts';

/** An 8-bit RGB image, rows top to bottom, 3 bytes a pixel. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/**
 * Converts a decoder output [3, H, W] in [-1, 1] to RGB8 as diffusers' image processor does:
 * (x / 2 + 0.5) clamped to [0, 1], times 255, rounded.
 */
export function decodedToRgb(decoded: Float32Array, width: number, height: number): RgbImage {
  const plane = width * height;
  const data = new Uint8Array(plane * 3);
  for (let channel = 0; channel < 3; channel++) {
    for (let pixel = 0; pixel < plane; pixel++) {
      const unit = Math.min(1, Math.max(0, decoded[channel * plane + pixel]! / 2 + 0.5));
      // float32 like torch, so .5 cases round the same way
      data[pixel * 3 + channel] = Math.round(Math.fround(Math.fround(unit) * 255));
    }
  }
  return { width, height, data };
}

export class Vae {
  private readonly decoderInputType;
  private encoderLoading: Promise<OnnxModel> | undefined;
  private encoderLoaded: OnnxModel | undefined;

  /**
   * @param encoder loads the VAE encoder on first use (undefined when the folder has none):
   *   most runs (generate, transition) never encode a picture, so its session is not created.
   */
  constructor(
    readonly decoder: OnnxModel,
    private readonly encoder: (() => Promise<OnnxModel>) | undefined,
    /** Latent scaling factor from the VAE config (SD 0.18215, SDXL 0.13025). */
    readonly scalingFactor: number,
    /** Pixels per latent cell (8 for SD and SDXL). */
    readonly scaleFactor: number,
  ) {
    this.decoderInputType = requireInput(decoder, 'latent_sample');
  }

  /** Whether the model folder has a VAE encoder (loaded or not). */
  get hasEncoder(): boolean {
    return this.encoder !== undefined;
  }

  /** The VAE encoder if it was loaded already (for statistics and release), else undefined. */
  get loadedEncoder(): OnnxModel | undefined {
    return this.encoderLoaded;
  }

  /**
   * The VAE encoder, loaded on the first call (concurrent callers share one load; a failed load
   * is retried on the next call). Throws a LatentBlendError when the folder has no encoder.
   */
  async encoderModel(): Promise<OnnxModel> {
    if (this.encoderLoaded !== undefined) return this.encoderLoaded;
    if (this.encoder === undefined) {
      throw new LatentBlendError('This model folder has no vae_encoder/model.onnx, so images cannot be encoded.', 'model_folder');
    }
    this.encoderLoading ??= this.encoder().then(
      (model) => {
        requireInput(model, 'sample');
        this.encoderLoaded = model;
        return model;
      },
      (error: unknown) => {
        this.encoderLoading = undefined;
        throw error;
      },
    );
    return this.encoderLoading;
  }

  /** Decoder calls so far (one per image). */
  decodes = 0;

  /**
   * Decodes one item's latents [C, h, w] (as the scheduler leaves them) to the raw decoder
   * output [3, h*scale, w*scale] in roughly [-1, 1].
   */
  async decodeRaw(latents: Float32Array, latentShape: readonly [number, number, number]): Promise<Float32Array> {
    return this.decodeRawBatch([latents], latentShape);
  }

  /**
   * Decodes several items' latents (each [C, h, w]) in one decoder call, batch B = the number
   * of items; returns the raw outputs stacked, [B, 3, h*scale, w*scale].
   */
  async decodeRawBatch(items: readonly Float32Array[], latentShape: readonly [number, number, number]): Promise<Float32Array> {
    const length = latentShape[0] * latentShape[1] * latentShape[2];
    const scaled = new Float32Array(items.length * length);
    items.forEach((latents, item) => {
      for (let k = 0; k < length; k++) scaled[item * length + k] = latents[k]! / this.scalingFactor;
    });
    const outputs = await runModel(this.decoder, {
      latent_sample: floatTensor(this.decoderInputType, scaled, [items.length, ...latentShape]),
    });
    this.decodes += items.length;
    const out = outputs.sample ?? Object.values(outputs)[0]!;
    const data = toFloat32(out);
    if (data.some((value) => Number.isNaN(value))) {
      throw new LatentBlendError(
        `${this.decoder.path}: the VAE decoder produced NaN values. A float16 SDXL VAE overflows; use a float32 VAE decoder or the fp16-fixed SDXL VAE.`,
        'numerics',
      );
    }
    return data;
  }

  /** Decodes one item's latents to an RGB8 image. */
  async decode(latents: Float32Array, latentShape: readonly [number, number, number]): Promise<RgbImage> {
    const raw = await this.decodeRaw(latents, latentShape);
    return decodedToRgb(raw, latentShape[2] * this.scaleFactor, latentShape[1] * this.scaleFactor);
  }

  /** Decodes several items' latents to RGB8 images in one decoder call (see decodeRawBatch). */
  async decodeBatch(items: readonly Float32Array[], latentShape: readonly [number, number, number]): Promise<RgbImage[]> {
    if (items.length === 0) return [];
    const raw = await this.decodeRawBatch(items, latentShape);
    const width = latentShape[2] * this.scaleFactor;
    const height = latentShape[1] * this.scaleFactor;
    const plane = 3 * width * height;
    return items.map((_, item) => decodedToRgb(raw.subarray(item * plane, (item + 1) * plane), width, height));
  }

  /**
   * Encodes an RGB8 image to latents [C, h, w] (the latent distribution's mean times the scaling
   * factor, as diffusers' image-to-image does with `sample_mode="argmax"`).
   */
  async encode(image: RgbImage, latentChannels = 4): Promise<Float32Array> {
    const { width, height, data } = image;
    const plane = width * height;
    const pixels = new Float32Array(plane * 3);
    for (let pixel = 0; pixel < plane; pixel++) {
      for (let channel = 0; channel < 3; channel++) pixels[channel * plane + pixel] = (data[pixel * 3 + channel]! / 255) * 2 - 1;
    }
    const mean = await this.encodeMean(pixels, width, height, latentChannels);
    return Float32Array.from(mean, (value) => value * this.scalingFactor);
  }

  /**
   * The latent distribution's mean [C, h, w] for planar pixels [3, height, width] in [-1, 1],
   * before the scaling factor.
   */
  async encodeMean(pixels: Float32Array, width: number, height: number, latentChannels = 4): Promise<Float32Array> {
    const encoder = await this.encoderModel();
    const outputs = await runModel(encoder, { sample: floatTensor(requireInput(encoder, 'sample'), pixels, [1, 3, height, width]) });
    const out = toFloat32(outputs.latent_parameters ?? outputs.latent_sample ?? Object.values(outputs)[0]!);
    // Current exports return the distribution's parameters: mean and log-variance stacked on channels.
    return out.slice(0, latentChannels * (width / this.scaleFactor) * (height / this.scaleFactor));
  }
}

/** What decodes a pipeline's latents to an image (the model's Vae, or a PreviewVae). */
export interface LatentDecoder {
  /** Where a preview decoder was loaded from (recorded in the previews' provenance). */
  readonly source?: string;
  decode(latents: Float32Array, latentShape: readonly [number, number, number]): Promise<RgbImage>;
}
