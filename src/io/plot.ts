/**
 * The smoothness plot: the perceptual distance between each pair of neighbouring computed frames,
 * drawn at the middle of their gap (x: fract 0..1 along the transition; y: distance from 0). A
 * smooth transition has low, even values; a spike marks a jump the viewer will notice. Drawn
 * as SVG (axes, grid, ticks, stems with a connecting line, a dashed mean) and rasterised to PNG
 * by sharp; no plotting library.
 */
import sharp from 'sharp';
import { LatentBlendError } from '../errors.ts';
import { escapeXml } from './contact-sheet.ts';

/** One gap between neighbouring frames. */
export interface SmoothnessPoint {
  /** Middle of the gap along the transition, in [0, 1]. */
  fract: number;
  /** Distance between the gap's two frames (LPIPS or another metric), finite and >= 0. */
  distance: number;
}

export interface SmoothnessPlotOptions {
  /** PNG width in pixels, integer in [240, 4096]; default 800. */
  width?: number;
  /** PNG height in pixels, integer in [160, 4096]; default 400. */
  height?: number;
  /** Heading above the chart; default "Distance between neighbouring frames". An empty string draws none. */
  title?: string;
  /** A second, smaller line under the title (e.g. the smoothness figures); default none. */
  caption?: string;
}

export const DEFAULT_PLOT_TITLE = 'Distance between neighbouring frames';

/** A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) giving about `count` intervals up to `max`. */
function niceStep(max: number, count: number): number {
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const scaled = rough / power;
  const factor = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 2.5 ? 2.5 : scaled <= 5 ? 5 : 10;
  return factor * power;
}

/** Formats a tick value with as many decimals as the step needs (at most 6): 0.25 → "0.50", 0.1 → "0.5". */
function tickLabel(value: number, step: number): string {
  let decimals = 0;
  while (decimals < 6 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals += 1;
  return value.toFixed(decimals);
}

/** Formats a data value compactly (3 significant digits). */
function valueLabel(value: number): string {
  return value === 0 ? '0' : Number(value.toPrecision(3)).toString();
}

function checkSize(value: number | undefined, fallback: number, name: string, min: number): number {
  const size = value ?? fallback;
  if (!Number.isInteger(size) || size < min || size > 4096) {
    throw new LatentBlendError(`The plot's ${name} must be an integer in [${min}, 4096] pixels; got ${String(value)}.`);
  }
  return size;
}

/**
 * Builds the chart as an SVG document (exported for tests and for writing .svg files). Points are
 * sorted by fract; an empty list draws the axes with a "no data" note.
 * Throws a LatentBlendError naming the first point with fract outside [0, 1] or a negative or
 * non-finite distance.
 */
export function smoothnessPlotSvg(points: readonly SmoothnessPoint[], options: SmoothnessPlotOptions = {}): string {
  const width = checkSize(options.width, 800, 'width', 240);
  const height = checkSize(options.height, 400, 'height', 160);
  points.forEach((point, index) => {
    if (!Number.isFinite(point.fract) || point.fract < 0 || point.fract > 1) {
      throw new LatentBlendError(`Plot point ${index} has fract ${String(point.fract)}; it must be in [0, 1].`);
    }
    if (!Number.isFinite(point.distance) || point.distance < 0) {
      throw new LatentBlendError(`Plot point ${index} has distance ${String(point.distance)}; it must be a finite number >= 0.`);
    }
  });
  const sorted = [...points].sort((a, b) => a.fract - b.fract);
  const title = options.title ?? DEFAULT_PLOT_TITLE;

  const font = 12;
  const caption = options.caption ?? '';
  const margin = { left: 64, right: 20, top: (title === '' ? 16 : 40) + (caption === '' ? 0 : 18), bottom: 52 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const maxDistance = Math.max(0, ...sorted.map((p) => p.distance));
  const yStep = niceStep(maxDistance > 0 ? maxDistance : 1, Math.max(2, Math.min(6, Math.floor(plotHeight / 40))));
  const yMax = Math.max(yStep, Math.ceil(maxDistance / yStep - 1e-9) * yStep);
  const xStep = plotWidth >= 400 ? 0.1 : plotWidth >= 160 ? 0.25 : 0.5;
  const x = (fract: number): number => margin.left + fract * plotWidth;
  const y = (distance: number): number => margin.top + plotHeight - (distance / yMax) * plotHeight;
  const n = (value: number): string => value.toFixed(1);

  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  if (title !== '') {
    parts.push(`<text x="${n(width / 2)}" y="24" text-anchor="middle" font-size="${font + 3}" font-weight="bold">${escapeXml(title)}</text>`);
  }

  if (caption !== '') {
    parts.push(`<text x="${n(width / 2)}" y="${title === '' ? 16 : 42}" text-anchor="middle" font-size="${font - 1}" fill="#555">${escapeXml(caption)}</text>`);
  }

  // Grid and ticks.
  const xTicks = Math.round(1 / xStep);
  for (let i = 0; i <= xTicks; i++) {
    const fract = i * xStep;
    const px = x(fract);
    parts.push(`<line x1="${n(px)}" y1="${n(margin.top)}" x2="${n(px)}" y2="${n(margin.top + plotHeight)}" stroke="#e6e6e6"/>`);
    parts.push(`<line x1="${n(px)}" y1="${n(margin.top + plotHeight)}" x2="${n(px)}" y2="${n(margin.top + plotHeight + 5)}" stroke="#333"/>`);
    parts.push(`<text x="${n(px)}" y="${n(margin.top + plotHeight + 8 + font)}" text-anchor="middle">${tickLabel(fract, xStep)}</text>`);
  }
  const yTicks = Math.round(yMax / yStep);
  for (let i = 0; i <= yTicks; i++) {
    const value = i * yStep;
    const py = y(value);
    parts.push(`<line x1="${n(margin.left)}" y1="${n(py)}" x2="${n(margin.left + plotWidth)}" y2="${n(py)}" stroke="#e6e6e6"/>`);
    parts.push(`<line x1="${n(margin.left - 5)}" y1="${n(py)}" x2="${n(margin.left)}" y2="${n(py)}" stroke="#333"/>`);
    parts.push(`<text x="${n(margin.left - 8)}" y="${n(py + font * 0.35)}" text-anchor="end">${tickLabel(value, yStep)}</text>`);
  }

  // Axes and their names.
  parts.push(
    `<polyline points="${n(margin.left)},${n(margin.top)} ${n(margin.left)},${n(margin.top + plotHeight)} ${n(margin.left + plotWidth)},${n(margin.top + plotHeight)}" fill="none" stroke="#333" stroke-width="1.5"/>`,
  );
  parts.push(`<text x="${n(margin.left + plotWidth / 2)}" y="${n(height - 10)}" text-anchor="middle">${plotWidth >= 320 ? 'fract (position in the transition, A = 0, B = 1)' : 'fract (A = 0, B = 1)'}</text>`);
  const yLabelX = 16;
  const yLabelY = margin.top + plotHeight / 2;
  parts.push(`<text x="${n(yLabelX)}" y="${n(yLabelY)}" text-anchor="middle" transform="rotate(-90 ${n(yLabelX)} ${n(yLabelY)})">distance</text>`);

  if (sorted.length === 0) {
    parts.push(`<text x="${n(margin.left + plotWidth / 2)}" y="${n(margin.top + plotHeight / 2)}" text-anchor="middle" fill="#999">no data</text>`);
  } else {
    // Stems: one bar per gap, as wide as the narrowest gap allows (2..14 px).
    let narrowest = 1;
    for (let i = 1; i < sorted.length; i++) narrowest = Math.min(narrowest, sorted[i]!.fract - sorted[i - 1]!.fract);
    const barWidth = Math.min(14, Math.max(2, narrowest * plotWidth * 0.5));
    for (const point of sorted) {
      const top = y(point.distance);
      parts.push(`<rect x="${n(x(point.fract) - barWidth / 2)}" y="${n(top)}" width="${n(barWidth)}" height="${n(margin.top + plotHeight - top)}" fill="#9ecae1"/>`);
    }
    // Mean, dashed, labelled at the right end.
    const mean = sorted.reduce((sum, point) => sum + point.distance, 0) / sorted.length;
    parts.push(`<line x1="${n(margin.left)}" y1="${n(y(mean))}" x2="${n(margin.left + plotWidth)}" y2="${n(y(mean))}" stroke="#d95f02" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${n(margin.left + plotWidth - 4)}" y="${n(y(mean) - 5)}" text-anchor="end" fill="#d95f02" stroke="#ffffff" stroke-width="3" paint-order="stroke">mean ${valueLabel(mean)}, max ${valueLabel(maxDistance)}</text>`);
    // Line through the points, with markers.
    const path = sorted.map((point) => `${n(x(point.fract))},${n(y(point.distance))}`).join(' ');
    parts.push(`<polyline points="${path}" fill="none" stroke="#08519c" stroke-width="2" stroke-linejoin="round"/>`);
    for (const point of sorted) parts.push(`<circle cx="${n(x(point.fract))}" cy="${n(y(point.distance))}" r="3" fill="#08519c"/>`);
  }

  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="'DejaVu Sans',Arial,Helvetica,sans-serif" font-size="${font}" fill="#222">` +
    parts.join('') +
    '</svg>'
  );
}

/**
 * Renders the smoothness chart as PNG bytes of `width` x `height` pixels (default 800x400).
 * See smoothnessPlotSvg for the drawing and the errors.
 */
export async function smoothnessPlot(points: readonly SmoothnessPoint[], options: SmoothnessPlotOptions = {}): Promise<Buffer> {
  const svg = smoothnessPlotSvg(points, options);
  return sharp(Buffer.from(svg), { density: 72 }).flatten({ background: '#ffffff' }).png().toBuffer();
}
