/** Fitting decoded pictures to the film size without sharp (the browser's picture keyframes). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { fitPicture } from '../src/image/fit.ts';
import { readPicture } from '../src/io/picture.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';

/** A width × height picture coloured by `paint(x, y)`. */
function picture(width: number, height: number, paint: (x: number, y: number) => readonly [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(paint(x, y), (y * width + x) * 3);
  return { width, height, data };
}

const RED = [255, 0, 0] as const;
const GREEN = [0, 200, 0] as const;
const BLUE = [0, 0, 255] as const;
/** 40×20: a red quarter, a green half, a blue quarter, left to right. */
const bands = picture(40, 20, (x) => (x < 10 ? RED : x < 30 ? GREEN : BLUE));

function pixel(image: RgbImage, x: number, y: number): number[] {
  return Array.from(image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));
}

test('a picture of the film size is returned as it is', () => {
  assert.equal(fitPicture(bands, 40, 20, 'cover'), bands);
  assert.equal(fitPicture(bands, 40, 20, 'contain'), bands);
});

test('cover keeps the centre region with the frame aspect ratio: a square frame of the bands shows only green', () => {
  const fitted = fitPicture(bands, 10, 10, 'cover');
  assert.deepEqual([fitted.width, fitted.height], [10, 10]);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) assert.deepEqual(pixel(fitted, x, y), [...GREEN], `(${x}, ${y})`);
});

test('contain shows the whole picture centred on white', () => {
  const fitted = fitPicture(bands, 10, 10, 'contain');
  assert.deepEqual([fitted.width, fitted.height], [10, 10]);
  // 40×20 shrinks to 10×5, placed at rows 2..6.
  for (const y of [0, 1, 7, 8, 9]) for (let x = 0; x < 10; x++) assert.deepEqual(pixel(fitted, x, y), [255, 255, 255], `padding (${x}, ${y})`);
  assert.ok(pixel(fitted, 0, 4)[0]! > 200 && pixel(fitted, 0, 4)[2]! < 60, `left edge is red: ${pixel(fitted, 0, 4)}`);
  assert.ok(pixel(fitted, 9, 4)[2]! > 200 && pixel(fitted, 9, 4)[0]! < 60, `right edge is blue: ${pixel(fitted, 9, 4)}`);
  const middle = pixel(fitted, 5, 4);
  assert.ok(middle[1]! > 150 && middle[0]! < 60 && middle[2]! < 60, `middle is green: ${middle}`);
});

test('bad sizes are refused', () => {
  assert.throws(() => fitPicture(bands, 0, 10), /bad size 0x10/);
  assert.throws(() => fitPicture(bands, 10.5, 10), /bad size/);
});

test("the browser's fitting comes close to sharp's in Node on a smooth picture", async () => {
  const smooth = picture(120, 72, (x, y) => [Math.round((x / 119) * 255), Math.round((y / 71) * 255), 128]);
  const png = await sharp(Buffer.from(smooth.data), { raw: { width: 120, height: 72, channels: 3 } }).png().toBuffer();
  for (const fit of ['cover', 'contain'] as const) {
    const node = await readPicture({ name: 'smooth.png', bytes: png }, { width: 32, height: 32, fit });
    const ours = fitPicture(smooth, 32, 32, fit);
    let sum = 0;
    let max = 0;
    for (let k = 0; k < ours.data.length; k++) {
      const delta = Math.abs(ours.data[k]! - node.data[k]!);
      sum += delta;
      max = Math.max(max, delta);
    }
    const mean = sum / ours.data.length;
    console.log(`fitPicture vs sharp (${fit}): max ${max}, mean ${mean.toFixed(2)} levels`);
    assert.ok(mean < 3 && max <= 8, `${fit}: max ${max}, mean ${mean}`);
  }
});
