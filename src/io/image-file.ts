/**
 * Still pictures in the format their file name asks for: .png (lossless), .jpg/.jpeg (JPEG,
 * quality 92, 4:4:4 chroma) or .webp (WebP, quality 90), encoded by sharp. Any other extension
 * is refused before anything is computed, so a file never holds bytes of another format.
 */
import { extname } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/vae.ts';
import { LatentBlendError } from '../errors.ts';
import { writeAtomically } from './files.ts';

export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

const EXTENSIONS: Readonly<Record<string, ImageFormat>> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' };

/** The picture format implied by `path`'s extension (any letter case); throws listing the allowed ones. */
export function imageFormatFromPath(path: string): ImageFormat {
  const extension = extname(path).toLowerCase();
  const format = Object.hasOwn(EXTENSIONS, extension) ? EXTENSIONS[extension] : undefined;
  if (format === undefined) {
    const shown = extension === '' ? 'no extension' : `extension "${extension}"`;
    throw new LatentBlendError(`Cannot tell the picture format of ${path} (${shown}); use one of: ${Object.keys(EXTENSIONS).join(', ')}.`);
  }
  return format;
}

/** Encodes an RGB8 image in `format`. */
export async function encodeImage(image: RgbImage, format: ImageFormat): Promise<Buffer> {
  const input = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (format === 'jpeg') return input.jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer();
  if (format === 'webp') return input.webp({ quality: 90 }).toBuffer();
  return input.png().toBuffer();
}

/** Writes an RGB8 image atomically in the format of `path`'s extension; refuses to overwrite unless `force`. */
export async function writeImage(path: string, image: RgbImage, force = false): Promise<void> {
  const bytes = await encodeImage(image, imageFormatFromPath(path));
  await writeAtomically(path, force, async (temporary) => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(temporary, bytes);
  });
}
