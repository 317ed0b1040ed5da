/// <reference lib="dom" />
/**
 * Picture keyframes in a browser: the picture is fetched by URL (an http(s) URL, or a `blob:` URL
 * the page made for a dropped file), decoded by the browser (EXIF orientation applied, ICC
 * profiles converted to sRGB, the first frame of an animation), flattened onto white, and fitted
 * to the film size with Pillow's Lanczos (src/image/fit.ts). The content hash is the SHA-256 of
 * the fetched bytes, as in Node, so a saved transition knows its picture on both.
 */
import { LatentBlendError } from '../errors.ts';
import { fitPicture, MAX_PICTURE_PIXELS, PICTURE_BACKGROUND } from '../image/fit.ts';
import type { PictureLoader } from '../runtime/platform.ts';

function oneLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!.trim();
}

function hex(digest: ArrayBuffer): string {
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * A {@link PictureLoader} for browsers; `fetcher` defaults to the page's fetch. Errors are
 * LatentBlendErrors naming the URL: not found, not a picture, or over 100 megapixels.
 */
export function browserPictures(fetcher: typeof fetch = (input, init) => fetch(input, init)): PictureLoader {
  return async (path, options) => {
    let bytes: ArrayBuffer;
    try {
      const response = await fetcher(path);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      bytes = await response.arrayBuffer();
    } catch (error) {
      throw new LatentBlendError(`${path}: cannot read the picture (${oneLine(error)}).`);
    }
    const hash = hex(await crypto.subtle.digest('SHA-256', bytes));
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes]), { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
    } catch (error) {
      throw new LatentBlendError(`${path}: not a picture that can be read (${oneLine(error)}).`);
    }
    const { width, height } = bitmap;
    if (width * height > MAX_PICTURE_PIXELS) {
      bitmap.close();
      throw new LatentBlendError(`${path}: ${width}×${height} pixels is too large; at most ${MAX_PICTURE_PIXELS / 1e6} megapixels are read. Scale it down first.`);
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (context === null) throw new LatentBlendError(`${path}: this browser cannot draw pictures (no 2D canvas).`, 'unsupported');
    // Transparent pixels become white, as sharp's flatten does in Node.
    context.fillStyle = `rgb(${PICTURE_BACKGROUND.r}, ${PICTURE_BACKGROUND.g}, ${PICTURE_BACKGROUND.b})`;
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = context.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * 3);
    for (let source = 0, target = 0; source < rgba.length; source += 4, target += 3) {
      rgb[target] = rgba[source]!;
      rgb[target + 1] = rgba[source + 1]!;
      rgb[target + 2] = rgba[source + 2]!;
    }
    return { image: fitPicture({ width, height, data: rgb }, options.width, options.height, options.fit ?? 'cover'), hash };
  };
}
