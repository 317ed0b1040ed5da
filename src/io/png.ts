/** PNG encoding and decoding of RGB8 images (sharp/libvips does the work). */
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/vae.ts';
import { writeAtomically } from './files.ts';
import { readPicture } from './picture.ts';

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

/**
 * Reads any picture sharp understands as RGB8 at its own size (EXIF orientation applied, alpha
 * flattened onto white, converted to 8-bit sRGB; see readPicture).
 */
export async function readRgb(path: string): Promise<RgbImage> {
  return readPicture(path);
}
