/**
 * Contact sheets: the computed frames of a transition side by side, each with a caption (e.g.
 * "A", "0.25 k=2", "B"), as one PNG. sharp scales the thumbnails and composites them onto a dark
 * background; the captions are one SVG overlay (rendered by librsvg with the system's fonts).
 */
import sharp, { type OverlayOptions } from 'sharp';
import { LatentBlendError } from '../errors.ts';
import type { RgbImage } from '../pipeline/vae.ts';

/** One picture of the sheet. */
export interface ContactSheetFrame {
  image: RgbImage;
  /** Caption under the thumbnail; long captions are shortened with "…" to fit. */
  label?: string;
}

export interface ContactSheetOptions {
  /** Thumbnails per row, a positive integer; default min(frame count, 5). */
  columns?: number;
  /** Width of each thumbnail in pixels, an integer in [16, 2048]; default 192. Heights keep each frame's aspect ratio. */
  thumbWidth?: number;
}

/** Default thumbnail width in pixels. */
export const DEFAULT_THUMB_WIDTH = 192;
/** Default (and, for fewer frames, actual) number of columns. */
export const DEFAULT_COLUMNS = 5;

const BACKGROUND = { r: 24, g: 24, b: 28 };
const TEXT_COLOUR = '#e8e8ec';

/** Escapes text for an SVG text node. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

/** Shortens `text` to at most `maxChars` characters, ending in "…" when cut. */
function fit(text: string, maxChars: number): string {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  if (chars.length <= maxChars) return chars.join('');
  return chars.slice(0, Math.max(1, maxChars - 1)).join('') + '…';
}

/** Layout of a sheet, in pixels. */
export interface ContactSheetLayout {
  columns: number;
  rows: number;
  thumbWidth: number;
  /** Height of each thumbnail (frames may differ in aspect ratio). */
  thumbHeights: number[];
  /** Height of one row: tallest thumbnail plus the caption band. */
  cellHeight: number;
  captionHeight: number;
  padding: number;
  fontSize: number;
  width: number;
  height: number;
}

/**
 * Computes the sheet's layout (also used to know the PNG's size in advance): padding 8 px
 * around and between cells, a caption band of about 1.6 font sizes under each row, font size
 * thumbWidth/12 clamped to [10, 16] px.
 */
export function contactSheetLayout(frames: readonly { image: { width: number; height: number } }[], options: ContactSheetOptions = {}): ContactSheetLayout {
  if (frames.length === 0) throw new LatentBlendError('A contact sheet needs at least one frame; got none.');
  const thumbWidth = options.thumbWidth ?? DEFAULT_THUMB_WIDTH;
  if (!Number.isInteger(thumbWidth) || thumbWidth < 16 || thumbWidth > 2048) {
    throw new LatentBlendError(`thumbWidth must be an integer in [16, 2048] pixels; got ${String(thumbWidth)}.`);
  }
  const columns = Math.min(options.columns ?? DEFAULT_COLUMNS, frames.length);
  if (!Number.isInteger(columns) || columns < 1) {
    throw new LatentBlendError(`columns must be a positive integer; got ${String(options.columns)}.`);
  }
  const thumbHeights = frames.map(({ image }, index) => {
    if (!Number.isInteger(image.width) || !Number.isInteger(image.height) || image.width < 1 || image.height < 1) {
      throw new LatentBlendError(`Frame ${index} of the contact sheet has an invalid size ${String(image.width)}x${String(image.height)}.`);
    }
    return Math.max(1, Math.round((thumbWidth * image.height) / image.width));
  });
  const rows = Math.ceil(frames.length / columns);
  const padding = 8;
  const fontSize = Math.min(16, Math.max(10, Math.round(thumbWidth / 12)));
  const captionHeight = Math.round(fontSize * 1.6);
  const cellHeight = Math.max(...thumbHeights) + captionHeight;
  return {
    columns,
    rows,
    thumbWidth,
    thumbHeights,
    cellHeight,
    captionHeight,
    padding,
    fontSize,
    width: padding + columns * (thumbWidth + padding),
    height: padding + rows * (cellHeight + padding),
  };
}

/**
 * Renders a grid of thumbnails, left to right then top to bottom in the given order, each with
 * its label centred below it, as PNG bytes of size `contactSheetLayout(frames, options)`.
 * Throws a LatentBlendError for no frames, bad options, or an image whose data does not match its size.
 */
export async function contactSheet(frames: readonly ContactSheetFrame[], options: ContactSheetOptions = {}): Promise<Buffer> {
  const layout = contactSheetLayout(frames, options);
  const { columns, thumbWidth, thumbHeights, cellHeight, captionHeight, padding, fontSize } = layout;

  const thumbs = await Promise.all(
    frames.map(async ({ image }, index) => {
      if (!(image.data instanceof Uint8Array) || image.data.length !== image.width * image.height * 3) {
        throw new LatentBlendError(`Frame ${index} of the contact sheet is not RGB8 of its size ${image.width}x${image.height}.`);
      }
      const height = thumbHeights[index]!;
      const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
        .resize(thumbWidth, height, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer();
      return { data, height };
    }),
  );

  const maxChars = Math.max(3, Math.floor(thumbWidth / (fontSize * 0.6)));
  const texts: string[] = [];
  const layers: OverlayOptions[] = thumbs.map(({ data, height }, index) => {
    const column = index % columns;
    const row = Math.floor(index / columns);
    const left = padding + column * (thumbWidth + padding);
    const top = padding + row * (cellHeight + padding);
    const label = frames[index]!.label;
    if (label !== undefined && label !== '') {
      const x = left + thumbWidth / 2;
      // Baseline a little below the middle of the caption band under the row's tallest thumbnail.
      const y = top + cellHeight - captionHeight / 2 + fontSize * 0.35;
      texts.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}">${escapeXml(fit(label, maxChars))}</text>`);
    }
    return { input: data, raw: { width: thumbWidth, height, channels: 3 }, left, top };
  });
  if (texts.length > 0) {
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}">` +
      `<style>text{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;font-size:${fontSize}px;fill:${TEXT_COLOUR};text-anchor:middle}</style>` +
      texts.join('') +
      '</svg>';
    layers.push({ input: Buffer.from(svg), left: 0, top: 0 });
  }

  // Composite first, then drop the alpha channel the SVG layer brings, so the PNG is plain RGB.
  const { data, info } = await sharp({ create: { width: layout.width, height: layout.height, channels: 3, background: BACKGROUND } })
    .composite(layers)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .removeAlpha()
    .png()
    .toBuffer();
}
