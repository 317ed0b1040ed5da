/**
 * Fitting a decoded picture to the film size without sharp (the browser's picture keyframes):
 * `cover` crops the centre region with the film's aspect ratio and resizes it; `contain` resizes
 * the whole picture to fit and pads with white. Resizing is Pillow's Lanczos (./lanczos.ts), so
 * the result is the same on every browser. Pure; no I/O.
 */
import type { RgbImage } from '../pipeline/vae.ts';
import { resizeLanczos } from './lanczos.ts';

/** Largest picture accepted, in pixels (width × height): 100 megapixels (as the Node reader). */
export const MAX_PICTURE_PIXELS = 100_000_000;

/** The colour transparent pixels and `contain` padding become: white. */
export const PICTURE_BACKGROUND = { r: 255, g: 255, b: 255 } as const;

/** How a picture is fitted to the film size. */
export type PictureFit = 'cover' | 'contain';

function crop(picture: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  if (left === 0 && top === 0 && width === picture.width && height === picture.height) return picture;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * picture.width + left) * 3;
    data.set(picture.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data };
}

/**
 * `picture` at `width` × `height` pixels (integers ≥ 1): `cover` fills the frame and crops the
 * centre, `contain` shows the whole picture centred on white. Returns the input when the size
 * already matches.
 */
export function fitPicture(picture: RgbImage, width: number, height: number, fit: PictureFit = 'cover'): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new RangeError(`fitPicture: bad size ${width}x${height}`);
  if (picture.width === width && picture.height === height) return picture;
  if (fit === 'cover') {
    // The largest centred region with the frame's aspect ratio.
    const scale = Math.max(width / picture.width, height / picture.height);
    const regionWidth = Math.min(picture.width, Math.max(1, Math.round(width / scale)));
    const regionHeight = Math.min(picture.height, Math.max(1, Math.round(height / scale)));
    const region = crop(picture, Math.floor((picture.width - regionWidth) / 2), Math.floor((picture.height - regionHeight) / 2), regionWidth, regionHeight);
    return resizeLanczos(region, width, height);
  }
  const scale = Math.min(width / picture.width, height / picture.height);
  const innerWidth = Math.min(width, Math.max(1, Math.round(picture.width * scale)));
  const innerHeight = Math.min(height, Math.max(1, Math.round(picture.height * scale)));
  const inner = resizeLanczos(picture, innerWidth, innerHeight);
  const data = new Uint8Array(width * height * 3);
  for (let index = 0; index < width * height; index++) {
    data[index * 3] = PICTURE_BACKGROUND.r;
    data[index * 3 + 1] = PICTURE_BACKGROUND.g;
    data[index * 3 + 2] = PICTURE_BACKGROUND.b;
  }
  const left = Math.floor((width - innerWidth) / 2);
  const top = Math.floor((height - innerHeight) / 2);
  for (let y = 0; y < innerHeight; y++) {
    data.set(inner.data.subarray(y * innerWidth * 3, (y + 1) * innerWidth * 3), ((top + y) * width + left) * 3);
  }
  return { width, height, data };
}
