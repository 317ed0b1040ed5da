/**
 * Resampling of interleaved 8-bit images with a Lanczos-3 kernel, in plain TypeScript so that
 * Node and a browser compute the same pixels (the metrics compare downscaled frames, and the
 * comparison decides where branches go). When shrinking, the kernel is stretched by the scale
 * factor, so each output pixel averages its whole source footprint (no aliasing), as libvips
 * and Pillow do.
 */

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Lanczos window of radius 3. */
function lanczos3(x: number): number {
  return x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

/** For each output position: first source index and normalised weights. */
function contributions(source: number, target: number): { first: Int32Array; weights: Float64Array[] } {
  const scale = source / target;
  const stretch = Math.max(1, scale);
  const support = 3 * stretch;
  const first = new Int32Array(target);
  const weights: Float64Array[] = [];
  for (let out = 0; out < target; out++) {
    const centre = (out + 0.5) * scale;
    const low = Math.max(0, Math.floor(centre - support));
    const high = Math.min(source, Math.ceil(centre + support));
    const row = new Float64Array(high - low);
    let total = 0;
    for (let index = low; index < high; index++) {
      const weight = lanczos3((index + 0.5 - centre) / stretch);
      row[index - low] = weight;
      total += weight;
    }
    if (total !== 0) for (let k = 0; k < row.length; k++) row[k]! /= total;
    first[out] = low;
    weights.push(row);
  }
  return { first, weights };
}

/**
 * Resamples `data` (width × height pixels, `channels` interleaved bytes each) to
 * `targetWidth` × `targetHeight` with Lanczos-3; returns a new array (values rounded, clamped to
 * 0–255). Sizes must be positive whole numbers.
 */
export function resizeLanczos3(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  targetWidth: number,
  targetHeight: number,
): Uint8Array {
  // Horizontal pass into floats, then vertical pass into bytes.
  const horizontal = contributions(width, targetWidth);
  const middle = new Float64Array(targetWidth * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < targetWidth; x++) {
      const low = horizontal.first[x]!;
      const row = horizontal.weights[x]!;
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < row.length; k++) sum += row[k]! * data[((y * width) + low + k) * channels + c]!;
        middle[(y * targetWidth + x) * channels + c] = sum;
      }
    }
  }
  const vertical = contributions(height, targetHeight);
  const out = new Uint8Array(targetWidth * targetHeight * channels);
  for (let y = 0; y < targetHeight; y++) {
    const low = vertical.first[y]!;
    const column = vertical.weights[y]!;
    for (let x = 0; x < targetWidth; x++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < column.length; k++) sum += column[k]! * middle[((low + k) * targetWidth + x) * channels + c]!;
        out[(y * targetWidth + x) * channels + c] = Math.min(255, Math.max(0, Math.round(sum)));
      }
    }
  }
  return out;
}
