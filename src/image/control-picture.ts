/**
 * Control pictures for ControlNet: read with sharp, then prepared as diffusers' control image
 * processor does (RGB, stretched to the output size with Lanczos, values / 255, NCHW, no
 * normalisation to [-1, 1]).
 */
import { existsSync, statSync } from 'node:fs';
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/vae.ts';
import { LatentBlendError } from '../errors.ts';

/** Smallest side accepted for a control picture, in pixels (smaller is surely a mistake). */
export const MIN_CONTROL_SIDE = 8;

/**
 * Reads a picture file as RGB8 (alpha dropped, grey expanded). Throws a LatentBlendError naming
 * the file when it is missing, not a picture sharp can decode, or smaller than 8 pixels.
 */
export async function readControlPicture(path: string, what = 'control picture'): Promise<RgbImage> {
  if (!existsSync(path) || !statSync(path).isFile()) throw new LatentBlendError(`${what}: ${path} does not exist or is not a file.`);
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await sharp(path).removeAlpha().toColorspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new LatentBlendError(`${what}: ${path} is not a picture that can be read (PNG, JPEG, WebP, TIFF, GIF…): ${(error as Error).message.split('\n')[0]}`);
  }
  const { data, info } = decoded;
  if (info.width < MIN_CONTROL_SIDE || info.height < MIN_CONTROL_SIDE) {
    throw new LatentBlendError(`${what}: ${path} is ${info.width}x${info.height} pixels; expected at least ${MIN_CONTROL_SIDE}x${MIN_CONTROL_SIDE}.`);
  }
  const pixels = info.width * info.height;
  const rgb = new Uint8Array(pixels * 3);
  const channels = info.channels;
  for (let pixel = 0; pixel < pixels; pixel++) {
    for (let channel = 0; channel < 3; channel++) rgb[pixel * 3 + channel] = data[pixel * channels + Math.min(channel, channels - 1)]!;
  }
  return { width: info.width, height: info.height, data: rgb };
}

export { controlTensor } from './control-tensor.ts';
