/**
 * Picture sizes that cannot fit in memory are refused before any model runs. The limit is an
 * area: by default 4 times the model's native area (e.g. 1024x1024 for a 512x512 model), which
 * callers may raise (the CLI's --max-area). The estimate in the message is rough on purpose: it
 * counts the largest buffers of one UNet call (self-attention scores at the finest attention
 * level, float32) and of the VAE decoder (its last up-block at full resolution), which grow
 * with the square of the latent area and with the area respectively.
 */
import { LatentBlendError } from '../errors.ts';

/** Default largest picture area, as a multiple of the model's native width × height. */
export const DEFAULT_MAX_AREA_FACTOR = 4;

export interface SizeModel {
  readonly family: string;
  /** Native size of the model in pixels. */
  readonly width: number;
  readonly height: number;
  /** Pixels per latent cell along each side (8 for SD and SDXL). */
  readonly vaeScaleFactor: number;
}

/** Rough bytes needed to make one picture of `width` × `height` (see the module comment). */
export function estimatePictureMemory(width: number, height: number, model: SizeModel, batch = 1): number {
  const tokens = (width / model.vaeScaleFactor) * (height / model.vaeScaleFactor);
  // SDXL's first attention level is at half the latent resolution (10 heads); SD's at full (8).
  const attentionTokens = model.family === 'sdxl' ? tokens / 4 : tokens;
  const heads = model.family === 'sdxl' ? 10 : 8;
  const unet = attentionTokens * attentionTokens * heads * 4 * batch;
  const vaeMidAttention = tokens * tokens * 4;
  const vaeUpBlock = width * height * 128 * 4 * 3;
  return unet + Math.max(vaeMidAttention, vaeUpBlock);
}

/** "3.2 GB", "512 MB", "35 TB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Throws a LatentBlendError (code 'too_large') when `width` × `height` exceeds `factor` times
 * the model's native area, naming the size, the limit, the estimated memory and how to go on.
 */
export function checkPictureSize(width: number, height: number, model: SizeModel, factor = DEFAULT_MAX_AREA_FACTOR): void {
  const limit = factor * model.width * model.height;
  if (width * height <= limit) return;
  const times = (width * height) / (model.width * model.height);
  throw new LatentBlendError(
    `${width}x${height} is ${times.toFixed(times < 10 ? 1 : 0)} times the model's native ${model.width}x${model.height} area; ` +
      `the limit is ${factor} times (${limit} pixels, e.g. ${Math.floor(Math.sqrt(limit) / model.vaeScaleFactor) * model.vaeScaleFactor}x${Math.floor(Math.sqrt(limit) / model.vaeScaleFactor) * model.vaeScaleFactor}). ` +
      `It would need about ${formatBytes(estimatePictureMemory(width, height, model))} of memory. ` +
      'Choose a smaller width and height, or raise the limit with --max-area (a multiple of the native area).',
    'too_large',
  );
}
