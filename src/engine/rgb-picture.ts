/**
 * What ControlNet and IP-Adapter settings take as a picture (decoded RGB8, any size) and how a
 * transition records it: a short hash, so refine and continuation can compare pictures.
 */
import { sha256Hex } from '../math/sha256.ts';
import { z } from 'zod';
import type { RgbImage } from '../pipeline/vae.ts';

/** Zod schema of a decoded RGB8 picture ({ width, height, data } with width · height · 3 bytes). */
export const rgbPictureSchema = z.custom<RgbImage>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    (value as RgbImage).data instanceof Uint8Array &&
    Number.isInteger((value as RgbImage).width) &&
    Number.isInteger((value as RgbImage).height) &&
    (value as RgbImage).data.length === (value as RgbImage).width * (value as RgbImage).height * 3,
  { error: 'expected an RGB8 picture ({ width, height, data })' },
);

/** 16 hex digits of sha256 over a picture's size and pixels. */
export function pictureHash(picture: RgbImage): string {
  return sha256Hex(`${picture.width}x${picture.height}:`, picture.data).slice(0, 16);
}
