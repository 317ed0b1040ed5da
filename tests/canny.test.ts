/** The built-in Canny preprocessor on synthetic pictures whose edges are known by construction. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canny, gaussianBlur, hysteresis, nonMaximumSuppression, sobel, toGrey } from '../src/image/canny.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';

function picture(width: number, height: number, grey: (x: number, y: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill(grey(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

function edgeSet(image: RgbImage): Set<string> {
  const set = new Set<string>();
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const v = image.data[(y * image.width + x) * 3]!;
      assert.ok(v === 0 || v === 255, 'binary map');
      assert.equal(image.data[(y * image.width + x) * 3 + 1], v);
      if (v === 255) set.add(`${x},${y}`);
    }
  }
  return set;
}

test('a vertical step gives one straight one-pixel line at the step, nothing elsewhere', () => {
  const image = picture(32, 24, (x) => (x < 16 ? 20 : 220));
  const edges = edgeSet(canny(image));
  const columns = new Set([...edges].map((key) => Number(key.split(',')[0])));
  assert.equal(columns.size, 1, `edge columns ${[...columns].join(' ')}`);
  const column = [...columns][0]!;
  assert.ok(column === 15 || column === 16, `edge at column ${column}`);
  assert.equal(edges.size, 24, 'every row has exactly one edge pixel');
});

test('a filled square gives a closed outline; the inside and the outside stay empty', () => {
  const image = picture(40, 40, (x, y) => (x >= 10 && x < 30 && y >= 10 && y < 30 ? 200 : 30));
  const edges = edgeSet(canny(image));
  for (const key of edges) {
    const [x, y] = key.split(',').map(Number) as [number, number];
    const nearBorder = Math.min(Math.abs(x - 9.5), Math.abs(x - 29.5)) <= 1.5 || Math.min(Math.abs(y - 9.5), Math.abs(y - 29.5)) <= 1.5;
    assert.ok(nearBorder, `edge pixel ${key} is away from the square's border`);
    assert.ok(x >= 7 && x <= 32 && y >= 7 && y <= 32, `edge pixel ${key} outside the square's area`);
  }
  // every side of the square is found along its whole length (corners rounded by the blur)
  for (let t = 13; t < 27; t++) {
    assert.ok([8, 9, 10, 11].some((x) => edges.has(`${x},${t}`)), `left side at row ${t}`);
    assert.ok([28, 29, 30, 31].some((x) => edges.has(`${x},${t}`)), `right side at row ${t}`);
    assert.ok([8, 9, 10, 11].some((y) => edges.has(`${t},${y}`)), `top side at column ${t}`);
    assert.ok([28, 29, 30, 31].some((y) => edges.has(`${t},${y}`)), `bottom side at column ${t}`);
  }
});

test('flat pictures and faint ramps have no edges; thresholds decide', () => {
  assert.equal(edgeSet(canny(picture(16, 16, () => 128))).size, 0);
  // a ramp of 2 levels per pixel: Sobel L1 magnitude 8*2 = 16, far below 100
  assert.equal(edgeSet(canny(picture(32, 16, (x) => 2 * x))).size, 0);
  // a step of 20 levels: magnitude about 80 with sigma 0 (4 * 20) → below low = 100, but found with low 50 / high 60
  const faint = picture(16, 16, (x) => (x < 8 ? 100 : 120));
  assert.equal(edgeSet(canny(faint, { sigma: 0 })).size, 0);
  assert.equal(edgeSet(canny(faint, { sigma: 0, low: 50, high: 60 })).size, 16);
});

test('transposing the picture transposes the edges (no direction bias)', () => {
  const grey = (x: number, y: number) => Math.round(127 + 100 * Math.sin(x / 3 + (y * y) / 40) * Math.cos(y / 5));
  const a = canny(picture(30, 20, grey));
  const b = canny(picture(20, 30, (x, y) => grey(y, x)));
  const transposed = new Set([...edgeSet(b)].map((key) => key.split(',').reverse().join(',')));
  assert.deepEqual([...edgeSet(a)].sort(), [...transposed].sort());
  assert.ok(transposed.size > 10, 'the test picture has edges');
});

test('hysteresis keeps weak edges connected to a strong one and drops isolated weak ones', () => {
  const width = 10;
  const values = new Float32Array(width * 3);
  // row 0: strong at x=0, then weak x=1..4 connected; row 2: weak isolated at x=6..8
  values[0] = 300;
  for (let x = 1; x <= 4; x++) values[x] = 150;
  for (let x = 6; x <= 8; x++) values[2 * width + x] = 150;
  const edges = hysteresis(values, width, 3, 100, 200);
  assert.deepEqual([...edges.subarray(0, width)], [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual([...edges.subarray(2 * width)], new Array(width).fill(0));
});

test('the building blocks: grey levels, blur keeps the mean, Sobel signs, suppression thins', () => {
  assert.deepEqual([...toGrey({ width: 1, height: 1, data: new Uint8Array([255, 0, 0]) })].map((v) => Math.round(v * 1000) / 1000), [76.245]);
  const noise = Float32Array.from({ length: 64 }, (_, i) => (i * 37) % 17);
  const blurred = gaussianBlur(noise, 8, 8, 1.2);
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(blurred) - mean(noise)) < 0.5, 'blur keeps roughly the mean');
  assert.ok(Math.max(...blurred) - Math.min(...blurred) < Math.max(...noise) - Math.min(...noise), 'blur smooths');
  const ramp = Float32Array.from({ length: 25 }, (_, i) => (i % 5) * 10 + Math.floor(i / 5));
  const { gx, gy } = sobel(ramp, 5, 5);
  assert.equal(gx[12], 80, 'rises to the right: 8 * 10 inside');
  assert.equal(gy[12], 8, 'rises downwards: 8 * 1 inside');
  const magnitude = Float32Array.from([0, 5, 9, 5, 0]);
  const thin = nonMaximumSuppression(magnitude, Float32Array.from([1, 1, 1, 1, 1]), new Float32Array(5), 5, 1);
  assert.deepEqual([...thin], [0, 0, 9, 0, 0]);
});
