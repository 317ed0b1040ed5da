import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatentBlendError } from '../src/errors.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import {
  LPIPS_MIN_SIDE,
  LpipsMetric,
  loadLpipsMetric,
  lpipsInputSize,
  rgbToLpipsInput,
} from '../src/engine/lpips.ts';
import { PixelMetric, fitWithin, resizeRgb, rmsPixelDistance } from '../src/engine/pixel-metric.ts';
import { distancesOf } from '../src/engine/metric.ts';
import { LPIPS_ENV_VAR, chooseMetric, defaultLpipsPath } from '../src/node/metric.ts';
import { FIXTURES } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

/**
 * Tolerance against torch's recorded LPIPS distances (absolute; the distances are 0.001 and 0.09).
 * onnxruntime reproduces them to ~4e-9 here; the margin is for other CPUs' kernels.
 */
const GOLDEN_TOLERANCE = 1e-6;

const LPIPS_DIR = join(FIXTURES, 'lpips');
const TINY_LPIPS = join(LPIPS_DIR, 'tiny-lpips.onnx');
const NOT_LPIPS = join(FIXTURES, 'models', 'tiny-sd15', 'onnx', 'vae_decoder', 'model.onnx');

interface LpipsGolden {
  readonly pairs: readonly { name: string; img0: string; img1: string; distance: number; onnxruntime_distance: number }[];
  readonly batched_distances: readonly number[];
  readonly identical_distance: number;
  readonly tensors: Readonly<Record<string, { file: string; dtype: string; shape: readonly number[] }>>;
}

const golden = JSON.parse(readFileSync(join(LPIPS_DIR, 'golden.json'), 'utf8')) as LpipsGolden;

/** A golden image: float32 [1, 3, H, W] in [-1, 1]. */
function goldenImage(name: string): { data: Float32Array; dims: [number, number, number, number] } {
  const entry = golden.tensors[name];
  if (entry === undefined || entry.dtype !== 'float32' || entry.shape.length !== 4) throw new Error(`bad golden tensor ${name}`);
  const bytes = readFileSync(join(LPIPS_DIR, entry.file));
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { data, dims: entry.shape as [number, number, number, number] };
}

/** A float [1, 3, H, W] image in [-1, 1] quantised to RGB8 (the inverse of rgbToLpipsInput). */
function toRgb8(data: Float32Array, width: number, height: number): RgbImage {
  const plane = width * height;
  const bytes = new Uint8Array(plane * 3);
  for (let pixel = 0; pixel < plane; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      bytes[pixel * 3 + channel] = Math.round(Math.min(255, Math.max(0, (data[channel * plane + pixel]! + 1) * 127.5)));
    }
  }
  return { width, height, data: bytes };
}

/** A deterministic RGB8 test pattern; `phase` changes it. */
function pattern(width: number, height: number, phase: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = (y * width + x) * 3;
      data[k] = Math.round(127.5 + 127.5 * Math.sin((x + phase) / 5));
      data[k + 1] = Math.round(127.5 + 127.5 * Math.cos((y - phase) / 7));
      data[k + 2] = (x * y + phase * 31) % 256;
    }
  }
  return { width, height, data };
}

function uniform(width: number, height: number, rgb: readonly [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let k = 0; k < data.length; k++) data[k] = rgb[k % 3]!;
  return { width, height, data };
}

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} (diff ${actual - expected}, tolerance ${tolerance})`);
}

const released: LpipsMetric[] = [];
async function tinyLpips(options: { maxSide?: number; maxBatch?: number } = {}): Promise<LpipsMetric> {
  const metric = await loadLpipsMetric(nodePlatform, TINY_LPIPS, 'cpu', options);
  released.push(metric);
  return metric;
}
after(async () => {
  for (const metric of released) await metric.release();
});

const [pair0, pair1] = golden.pairs;
if (pair0 === undefined || pair1 === undefined) throw new Error('golden.json: expected two pairs');
const a0 = goldenImage(pair0.img0);
const a1 = goldenImage(pair0.img1);
const b0 = goldenImage(pair1.img0);
const b1 = goldenImage(pair1.img1);
const [, , H, W] = a0.dims;

test('LPIPS on the golden float images reproduces torch within the tolerance', async () => {
  const metric = await tinyLpips();
  assert.equal(metric.name, 'lpips');
  for (const [pair, x, y] of [[pair0, a0, a1], [pair1, b0, b1]] as const) {
    const [value] = await metric.distanceTensors(x.data, y.data, x.dims);
    assertClose(value!, pair.distance, GOLDEN_TOLERANCE, `${pair.name} vs torch`);
    assertClose(value!, pair.onnxruntime_distance, GOLDEN_TOLERANCE, `${pair.name} vs Python onnxruntime`);
  }
});

test('LPIPS with both golden pairs in one batch matches torch batched and the single calls', async () => {
  const metric = await tinyLpips();
  const img0 = new Float32Array([...a0.data, ...b0.data]);
  const img1 = new Float32Array([...a1.data, ...b1.data]);
  const batched = await metric.distanceTensors(img0, img1, [2, 3, H, W]);
  assert.equal(batched.length, 2);
  batched.forEach((value, k) => assertClose(value, golden.batched_distances[k]!, GOLDEN_TOLERANCE, `batch item ${k}`));
  const [single0] = await metric.distanceTensors(a0.data, a1.data, a0.dims);
  const [single1] = await metric.distanceTensors(b0.data, b1.data, b0.dims);
  assertClose(batched[0]!, single0!, 1e-7, 'item 0 vs single');
  assertClose(batched[1]!, single1!, 1e-7, 'item 1 vs single');
});

test('LPIPS of identical images is 0 (floats and RGB8)', async () => {
  const metric = await tinyLpips();
  const [value] = await metric.distanceTensors(a0.data, a0.data, a0.dims);
  assertClose(value!, golden.identical_distance, 1e-9, 'identical floats');
  const image = pattern(80, 48, 3);
  assertClose(await metric.distance(image, { ...image, data: image.data.slice() }), 0, 1e-9, 'identical RGB8');
});

test('rgbToLpipsInput maps bytes to [-1, 1], planar RGB', () => {
  // 2x1 image: pixel 0 = (0, 255, 128), pixel 1 = (51, 204, 127)
  const image: RgbImage = { width: 2, height: 1, data: new Uint8Array([0, 255, 128, 51, 204, 127]) };
  const planar = rgbToLpipsInput(image);
  const expected = [0, 51, 255, 204, 128, 127].map((byte) => byte / 127.5 - 1);
  assert.equal(planar.length, 6);
  planar.forEach((value, k) => assertClose(value, expected[k]!, 1e-7, `element ${k}`));
  assert.equal(planar[0], -1);
  assert.equal(planar[2], 1);
  // writing at an offset into a larger batch buffer
  const target = new Float32Array(12).fill(9);
  rgbToLpipsInput(image, target, 6);
  assert.deepEqual(Array.from(target.subarray(0, 6)), [9, 9, 9, 9, 9, 9]);
  assert.deepEqual(Array.from(target.subarray(6)), Array.from(planar));
});

test('LPIPS on RGB8 images equals LPIPS on their float conversion, and stays near the float goldens', async () => {
  const metric = await tinyLpips();
  for (const [pair, x, y] of [[pair0, a0, a1], [pair1, b0, b1]] as const) {
    const rgb0 = toRgb8(x.data, W, H);
    const rgb1 = toRgb8(y.data, W, H);
    const fromRgb = await metric.distance(rgb0, rgb1);
    const [fromFloats] = await metric.distanceTensors(rgbToLpipsInput(rgb0), rgbToLpipsInput(rgb1), [1, 3, H, W]);
    assertClose(fromRgb, fromFloats!, 1e-9, `${pair.name}: RGB8 path vs float path`);
    // 8-bit quantisation (steps of 1/127.5) moves the distance only a little
    assertClose(fromRgb, pair.distance, 0.05 * pair.distance, `${pair.name}: quantised vs golden`);
  }
});

test('LPIPS is symmetric', async () => {
  const metric = await tinyLpips();
  const x = toRgb8(b0.data, W, H);
  const y = toRgb8(b1.data, W, H);
  assertClose(await metric.distance(x, y), await metric.distance(y, x), 1e-7, 'golden pair 1');
  const p = pattern(96, 64, 0);
  const q = pattern(96, 64, 9);
  assertClose(await metric.distance(p, q), await metric.distance(q, p), 1e-7, 'patterns');
});

test('LPIPS distances() batches pairs (mixed sizes, chunks) and matches single calls', async () => {
  const metric = await tinyLpips({ maxBatch: 2 });
  const pairs: [RgbImage, RgbImage][] = [
    [pattern(64, 64, 0), pattern(64, 64, 4)],
    [pattern(96, 64, 1), pattern(96, 64, 2)],
    [pattern(64, 64, 0), pattern(64, 64, 20)],
    [toRgb8(a0.data, W, H), toRgb8(a1.data, W, H)],
    [pattern(64, 64, 7), pattern(64, 64, 7)],
  ];
  const batched = await metric.distances(pairs);
  assert.equal(batched.length, pairs.length);
  for (let k = 0; k < pairs.length; k++) {
    const single = await metric.distance(...pairs[k]!);
    assertClose(batched[k]!, single, 1e-6, `pair ${k}`);
  }
  assert.ok(batched[2]! > batched[0]!, 'a larger shift is further apart');
  assertClose(batched[4]!, 0, 1e-9, 'identical pair');
  assert.deepEqual(await metric.distances([]), []);
  // the engine's helper uses the batched method
  const viaHelper = await distancesOf(metric, pairs.slice(0, 2));
  viaHelper.forEach((value, k) => assertClose(value, batched[k]!, 1e-6, `distancesOf pair ${k}`));
});

test('lpipsInputSize: downscale to maxSide (aspect kept), upscale tiny frames, keep the rest', () => {
  assert.deepEqual(lpipsInputSize(1024, 1024, 256), { width: 256, height: 256 });
  assert.deepEqual(lpipsInputSize(1024, 768, 256), { width: 256, height: 192 });
  assert.deepEqual(lpipsInputSize(768, 1344, 256), { width: 146, height: 256 });
  assert.deepEqual(lpipsInputSize(512, 512, Infinity), { width: 512, height: 512 });
  assert.deepEqual(lpipsInputSize(200, 100, 256), { width: 200, height: 100 });
  assert.deepEqual(lpipsInputSize(16, 8, 256), { width: 64, height: LPIPS_MIN_SIDE });
  assert.deepEqual(lpipsInputSize(2048, 64, 256), { width: 1024, height: LPIPS_MIN_SIDE });
  assert.deepEqual(fitWithin(1024, 768, 100), { width: 100, height: 75 });
});

test('LPIPS downscales frames larger than maxSide with sharp before comparing', async () => {
  const small = await tinyLpips({ maxSide: 64 });
  const full = await tinyLpips({ maxSide: Infinity });
  assert.equal(small.maxSide, 64);
  assert.equal((await tinyLpips()).maxSide, 256);
  const p = pattern(256, 128, 0);
  const q = pattern(256, 128, 6);
  const expected = await full.distance(await resizeRgb(p, 64, 32), await resizeRgb(q, 64, 32));
  assertClose(await small.distance(p, q), expected, 1e-9, 'maxSide 64 = explicit resize to 64x32');
  // tiny frames are upscaled instead of crashing AlexNet's pooling
  const tiny = await small.distance(pattern(16, 16, 0), pattern(16, 16, 5));
  assert.ok(Number.isFinite(tiny) && tiny > 0, `16x16 distance ${tiny}`);
  await assert.rejects(full.distanceTensors(new Float32Array(3 * 16 * 16), new Float32Array(3 * 16 * 16), [1, 3, 16, 16]), LatentBlendError);
  await assert.rejects(loadLpipsMetric(nodePlatform, TINY_LPIPS, 'cpu', { maxSide: 16 }), /maxSide/);
});

test('LPIPS input errors: different sizes, wrong byte count, wrong tensor length', async () => {
  const metric = await tinyLpips();
  await assert.rejects(metric.distance(pattern(64, 64, 0), pattern(64, 32, 0)), (error: unknown) => {
    assert.ok(error instanceof LatentBlendError);
    assert.match(error.message, /64x64 and 64x32/);
    return true;
  });
  await assert.rejects(metric.distance({ width: 64, height: 64, data: new Uint8Array(10) }, pattern(64, 64, 0)), /12288 bytes/);
  await assert.rejects(metric.distanceTensors(a0.data, a1.data.subarray(1), a0.dims), LatentBlendError);
});

test('a missing LPIPS file is a clear error naming it and how to export one', async () => {
  const missing = join(tmpdir(), 'latentblend-no-such-dir', 'lpips-alex.onnx');
  await assert.rejects(loadLpipsMetric(nodePlatform, missing, 'cpu'), (error: unknown) => {
    assert.ok(error instanceof LatentBlendError);
    assert.ok(error.message.includes(missing), error.message);
    assert.match(error.message, /not found/);
    assert.match(error.message, /tools\/export_lpips\.py/);
    return true;
  });
});

test('an ONNX file that is not LPIPS is a clear error naming the file, the expected and the actual layout', async () => {
  await assert.rejects(loadLpipsMetric(nodePlatform, NOT_LPIPS, 'cpu'), (error: unknown) => {
    assert.ok(error instanceof LatentBlendError);
    assert.ok(error.message.includes(NOT_LPIPS), error.message);
    assert.match(error.message, /is not an LPIPS model/);
    assert.match(error.message, /"img0"/);
    assert.match(error.message, /"distance"/);
    assert.match(error.message, /latent_sample/);
    return true;
  });
  // not an ONNX file at all
  await assert.rejects(loadLpipsMetric(nodePlatform, join(LPIPS_DIR, 'golden.json'), 'cpu'), (error: unknown) => {
    assert.ok(error instanceof LatentBlendError);
    assert.ok(error.message.includes('golden.json'), error.message);
    return true;
  });
});

test('rms-pixel: 0 for equal images, exact on hand-computed cases', () => {
  const p = pattern(17, 9, 2);
  assert.equal(rmsPixelDistance(p, { ...p, data: p.data.slice() }), 0);
  // black vs white: every value differs by 1
  assert.equal(rmsPixelDistance(uniform(1, 1, [0, 0, 0]), uniform(1, 1, [255, 255, 255])), 1);
  // one channel of three differs by 1: sqrt(1/3)
  assertClose(rmsPixelDistance(uniform(1, 1, [0, 0, 0]), uniform(1, 1, [255, 0, 0])), Math.sqrt(1 / 3), 1e-15, 'one channel');
  // 2x1: one value of six differs by 51/255 = 0.2: sqrt(0.04 / 6)
  const x: RgbImage = { width: 2, height: 1, data: new Uint8Array([10, 20, 30, 40, 50, 60]) };
  const y: RgbImage = { width: 2, height: 1, data: new Uint8Array([10, 20, 30, 40, 101, 60]) };
  assertClose(rmsPixelDistance(x, y), Math.sqrt(0.04 / 6), 1e-15, 'one value by 0.2');
  // uniform grey offset d everywhere: exactly d / 255
  assertClose(rmsPixelDistance(uniform(5, 3, [100, 100, 100]), uniform(5, 3, [130, 70, 130])), 30 / 255, 1e-15, 'offset 30');
  assert.throws(() => rmsPixelDistance(uniform(2, 2, [0, 0, 0]), uniform(2, 1, [0, 0, 0])), LatentBlendError);
});

test('rms-pixel grows with the difference, is symmetric, and can downscale', async () => {
  const metric = new PixelMetric();
  assert.equal(metric.name, 'rms-pixel');
  const base = uniform(8, 8, [100, 100, 100]);
  let previous = 0;
  for (const offset of [1, 5, 20, 80, 155]) {
    const value = await metric.distance(base, uniform(8, 8, [100 + offset, 100, 100 - Math.min(offset, 100)]));
    assert.ok(value > previous, `offset ${offset}: ${value} > ${previous}`);
    previous = value;
  }
  const p = pattern(40, 30, 0);
  const q = pattern(40, 30, 3);
  assert.equal(await metric.distance(p, q), await metric.distance(q, p));
  assert.deepEqual(await metric.distances([[p, q], [q, q]]), [await metric.distance(p, q), 0]);
  // uniform images stay uniform when downscaled: same value
  const small = new PixelMetric({ maxSide: 4 });
  assertClose(await small.distance(uniform(64, 32, [0, 0, 0]), uniform(64, 32, [51, 51, 51])), 0.2, 1e-12, 'downscaled uniform');
  assert.throws(() => new PixelMetric({ maxSide: 0 }), LatentBlendError);
});

test('chooseMetric: no model given, env unset, nothing cached -> rms-pixel with a warning', async () => {
  const home = mkdtempSync(join(tmpdir(), 'latentblend-metric-'));
  try {
    const warnings: string[] = [];
    const metric = await chooseMetric({ device: 'cpu', env: {}, home, hubPin: null, onWarning: (message) => warnings.push(message) });
    assert.equal(metric.name, 'rms-pixel');
    assert.ok(metric instanceof PixelMetric);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /rms-pixel/);
    assert.match(warnings[0]!, /LPIPS/);
    assert.match(warnings[0]!, /python tools\/export_lpips\.py ~\/\.cache\/latentblend\/lpips-alex\.onnx/);
    assert.match(warnings[0]!, new RegExp(LPIPS_ENV_VAR));
    // no onWarning: still falls back, silently
    assert.equal((await chooseMetric({ device: 'cpu', env: {}, home, hubPin: null })).name, 'rms-pixel');
    // an empty env var counts as unset
    assert.equal((await chooseMetric({ device: 'cpu', env: { [LPIPS_ENV_VAR]: '' }, home, hubPin: null })).name, 'rms-pixel');
    // the engine helper falls back to per-pair calls on a metric without distances()
    const single = { name: 'single', distance: async (a: RgbImage, b: RgbImage) => a.width + b.width };
    assert.deepEqual(await distancesOf(single, [[uniform(1, 1, [0, 0, 0]), uniform(1, 1, [0, 0, 0])]]), [2]);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('chooseMetric: explicit path, LATENTBLEND_LPIPS, then the default cache location', async () => {
  const home = mkdtempSync(join(tmpdir(), 'latentblend-metric-'));
  const warnings: string[] = [];
  const onWarning = (message: string): void => void warnings.push(message);
  try {
    const explicit = await chooseMetric({ device: 'cpu', env: {}, home, onWarning, lpipsModel: TINY_LPIPS, lpips: { maxSide: 128 } });
    assert.ok(explicit instanceof LpipsMetric);
    assert.equal(explicit.maxSide, 128);
    await explicit.release?.();

    const fromEnv = await chooseMetric({ device: 'cpu', env: { [LPIPS_ENV_VAR]: TINY_LPIPS }, home, onWarning });
    assert.equal(fromEnv.name, 'lpips');
    await fromEnv.release?.();

    // a named model that is missing is an error, not a fallback
    await assert.rejects(chooseMetric({ device: 'cpu', env: {}, home, lpipsModel: join(home, 'nope.onnx') }), LatentBlendError);
    await assert.rejects(
      chooseMetric({ device: 'cpu', env: { [LPIPS_ENV_VAR]: join(home, 'nope.onnx') }, home }),
      (error: unknown) => error instanceof LatentBlendError && error.message.startsWith(`${LPIPS_ENV_VAR}: `),
    );
    await assert.rejects(chooseMetric({ device: 'cpu', env: {}, home, lpipsModel: NOT_LPIPS }), /not an LPIPS model/);

    const cached = defaultLpipsPath(home);
    assert.equal(cached, join(home, '.cache', 'latentblend', 'lpips-alex.onnx'));
    mkdirSync(join(home, '.cache', 'latentblend'), { recursive: true });
    copyFileSync(TINY_LPIPS, cached);
    const fromCache = await chooseMetric({ device: 'cpu', env: {}, home, onWarning });
    assert.equal(fromCache.name, 'lpips');
    assert.ok((await fromCache.distance(pattern(64, 64, 0), pattern(64, 64, 5))) > 0);
    await fromCache.release?.();
    assert.deepEqual(warnings, []);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
