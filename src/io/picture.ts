/**
 * Reading the user's pictures (keyframes, img2img input) as 8-bit sRGB at the film size, with
 * sharp/libvips. What happens to a picture, in order:
 *
 * 1. The header is read first; more than `MAX_PICTURE_PIXELS` pixels is refused before decoding.
 * 2. Animated files (GIF, WebP, AVIF sequences, multi-page TIFF): the first frame only.
 * 3. The EXIF orientation is applied (a portrait photo stays upright).
 * 4. Alpha is flattened onto white (`PICTURE_BACKGROUND`); `contain` pads with white too.
 * 5. Grey, 16-bit, CMYK and other colour spaces become 8-bit sRGB (embedded ICC profiles used).
 * 6. Resized to the film size: `cover` fills it and crops the centre, `contain` fits it whole.
 *
 * A file sharp cannot read gives one LatentBlendError line that names the file.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/vae.ts';
import { LatentBlendError } from '../errors.ts';
import { MAX_PICTURE_PIXELS, PICTURE_BACKGROUND, type PictureFit } from '../image/fit.ts';

// One set of picture rules for Node and the browser (src/image/fit.ts).
export { MAX_PICTURE_PIXELS, PICTURE_BACKGROUND, type PictureFit };
export const PICTURE_FITS: readonly PictureFit[] = ['cover', 'contain'];

export interface ReadPictureOptions {
  /** Target width and height in pixels; both or neither (neither keeps the picture's size). */
  readonly width?: number;
  readonly height?: number;
  /** `cover` (default): fill and crop the centre; `contain`: fit whole, pad with white. */
  readonly fit?: PictureFit;
}

/** A picture file read into memory: its bytes, the name used in messages and its content hash. */
export interface PictureSource {
  readonly name: string;
  readonly bytes: Buffer;
}

async function loadSource(source: string | PictureSource): Promise<PictureSource> {
  if (typeof source !== 'string') return source;
  try {
    return { name: source, bytes: await readFile(source) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a picture' : (error as Error).message;
    throw new LatentBlendError(`${source}: cannot read the picture (${why}).`);
  }
}

function oneLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.trim();
}

/** The picture's size from its header (nothing decoded); refuses unreadable headers and huge pictures. */
async function headerSize(name: string, bytes: Buffer): Promise<{ width: number; height: number }> {
  let metadata: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new LatentBlendError(`${name}: not a picture that can be read (${oneLine(error)}).`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.pageHeight ?? metadata.height ?? 0;
  if (!(width > 0 && height > 0)) throw new LatentBlendError(`${name}: the picture has no size in its header.`);
  if (width * height > MAX_PICTURE_PIXELS) {
    throw new LatentBlendError(
      `${name}: ${width}×${height} pixels is too large; at most ${MAX_PICTURE_PIXELS / 1e6} megapixels are read. Scale it down first.`,
    );
  }
  return { width, height };
}

/**
 * Reads a picture (PNG, JPEG, WebP, TIFF, AVIF, GIF: what sharp reads) as RGB8, resized to
 * `width` × `height` if given. See the module comment for orientation, alpha, colour and limits.
 */
export async function readPicture(source: string | PictureSource, options: ReadPictureOptions = {}): Promise<RgbImage> {
  const { name, bytes } = await loadSource(source);
  if ((options.width === undefined) !== (options.height === undefined)) {
    throw new RangeError('readPicture: give both width and height, or neither.');
  }
  await headerSize(name, bytes);
  try {
    // pages: 1 = the first frame of an animation; failOn 'error' refuses truncated files.
    let image = sharp(bytes, { pages: 1, failOn: 'error', limitInputPixels: MAX_PICTURE_PIXELS })
      .autoOrient()
      .flatten({ background: PICTURE_BACKGROUND })
      .toColourspace('srgb');
    if (options.width !== undefined && options.height !== undefined) {
      image = image.resize(options.width, options.height, {
        fit: options.fit ?? 'cover',
        position: 'centre',
        background: PICTURE_BACKGROUND,
      });
    }
    const { data, info } = await image.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (error) {
    throw new LatentBlendError(`${name}: the picture cannot be decoded (${oneLine(error)}).`);
  }
}

/**
 * Checks a picture file cheaply, before any model work: readable, a format sharp knows, within
 * the pixel limit (header only, nothing decoded). readPicture may still find it truncated.
 */
export async function checkPicture(path: string): Promise<void> {
  const { name, bytes } = await loadSource(path);
  await headerSize(name, bytes);
}

/** SHA-256 (hex) of the picture file's bytes: changes exactly when the file's content changes. */
export async function pictureHash(source: string | PictureSource): Promise<string> {
  const { bytes } = await loadSource(source);
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads the file once for both the hash and the pixels (an edit between two reads cannot split them). */
export async function loadPicture(path: string, options: ReadPictureOptions = {}): Promise<{ image: RgbImage; hash: string }> {
  const source = await loadSource(path);
  const [image, hash] = await Promise.all([readPicture(source, options), pictureHash(source)]);
  return { image, hash };
}
