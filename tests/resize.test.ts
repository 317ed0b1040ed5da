/** The pure-TypeScript Lanczos-3 resize (shared by Node and browsers) against libvips (sharp). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { resizeLanczos3 } from '../src/math/resize.ts';

/** A smooth pattern with some edges: what a diffusion frame looks like more than noise does. */
function pattern(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round(127.5 + 127.5 * Math.sin(x / 7) * Math.cos(y / 11));
      data[i + 1] = (x + y) % 64 < 32 ? 40 : 210;
      data[i + 2] = Math.round((255 * x) / (width - 1));
    }
  }
  return data;
}

for (const [width, height, toWidth, toHeight] of [
  [256, 192, 64, 48],
  [100, 60, 37, 23],
] as const) {
  // Only shrinking is compared: sharp enlarges with its own interpolator, not the kernel asked for.
  test(`Lanczos-3 ${width}x${height} → ${toWidth}x${toHeight} matches libvips to within a few levels`, async () => {
    const source = pattern(width, height);
    const ours = resizeLanczos3(source, width, height, 3, toWidth, toHeight);
    const theirs = await sharp(source, { raw: { width, height, channels: 3 } })
      .resize(toWidth, toHeight, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer();
    assert.equal(ours.length, theirs.length);
    let sum = 0;
    let max = 0;
    for (let k = 0; k < ours.length; k++) {
      const delta = Math.abs(ours[k]! - theirs[k]!);
      sum += delta;
      max = Math.max(max, delta);
    }
    const mean = sum / ours.length;
    assert.ok(mean < 1.5, `mean absolute difference ${mean.toFixed(3)} levels`);
    assert.ok(max <= 24, `largest difference ${max} levels`);
  });
}

test('enlarging keeps a ramp increasing and hits its values at pixel centres', () => {
  const ramp = Uint8Array.from({ length: 24 }, (_, x) => 10 * x);
  const out = resizeLanczos3(ramp, 24, 1, 1, 48, 1);
  for (let x = 2; x < 45; x++) assert.ok(out[x + 1]! >= out[x]!, `increasing at ${x}`);
  // Output pixel 2x+1 lies at 0.25 px right of source pixel x's centre: 10x + 2.5.
  assert.ok(Math.abs(out[21]! - 102.5) <= 1, `got ${out[21]}`);
});

test('same size is the identity; a constant image stays constant', () => {
  const source = pattern(20, 10);
  assert.deepEqual(resizeLanczos3(source, 20, 10, 3, 20, 10), source);
  const flat = new Uint8Array(30 * 30 * 3).fill(77);
  assert.ok(resizeLanczos3(flat, 30, 30, 3, 7, 11).every((value) => value === 77));
});
