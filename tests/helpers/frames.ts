/** Synthetic film frames for the video tests (tests only). */
import type { RgbImage } from '../../src/pipeline/vae.ts';

/** A moving gradient: red across, green down, blue changing with the frame number `i`; RGB8. */
export function gradient(width: number, height: number, i: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = Math.round((255 * x) / Math.max(1, width - 1));
      data[o + 1] = Math.round((255 * y) / Math.max(1, height - 1));
      data[o + 2] = (i * 20) & 255;
    }
  }
  return { width, height, data };
}

/** `count` gradient frames of width × height. */
export function* gradients(count: number, width = 64, height = 48): Generator<RgbImage> {
  for (let i = 0; i < count; i++) yield gradient(width, height, i);
}
