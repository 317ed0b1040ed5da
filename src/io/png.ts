/** PNG encoding and decoding of RGB8 images (sharp/libvips does the work). */
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/vae.ts';
import { writeAtomically } from './files.ts';

/** Encodes an RGB8 image as PNG bytes. */
export async function encodePng(image: RgbImage): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

/** Writes an RGB8 image as a PNG file, atomically; refuses to overwrite unless `force`. */
export async function writePng(path: string, image: RgbImage, force = false): Promise<void> {
  const bytes = await encodePng(image);
  await writeAtomically(path, force, async (temporary) => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(temporary, bytes);
  });
}

/** Reads any image sharp understands as RGB8 (alpha dropped). */
export async function readRgb(path: string): Promise<RgbImage> {
  const { data, info } = await sharp(path).removeAlpha().toColorspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}
