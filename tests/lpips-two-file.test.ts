/**
 * The two-file LPIPS form (deepghs/imgutils-models' lpips/ layout) against the one-file form, on
 * the tiny LPIPS fixture exported both ways by tools/export_lpips.py (--two-file --weights-from
 * fixtures/lpips/tiny-lpips.onnx): same network, so the distances must agree.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLpipsMetric, type LpipsMetric } from '../src/engine/lpips.ts';
import { loadTwoFileLpipsMetric, twoFileLpipsPaths, type TwoFileLpipsMetric } from '../src/node/lpips-two-file.ts';
import { chooseMetric, loadAnyLpipsMetric } from '../src/node/metric.ts';
import { resizeRgb } from '../src/engine/pixel-metric.ts';
import { rgbToLpipsInput } from '../src/engine/lpips.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { LatentBlendError } from '../src/errors.ts';
import { FIXTURES } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

/** The bound for the two forms of one network. */
const AGREEMENT = 1e-5;
const LPIPS_DIR = join(FIXTURES, 'lpips');
const TWO_FILE = join(LPIPS_DIR, 'tiny-two-file');
const TWO_FILE_400 = join(LPIPS_DIR, 'tiny-two-file-400');

const golden = JSON.parse(readFileSync(join(LPIPS_DIR, 'golden.json'), 'utf8')) as {
  pairs: { name: string; img0: string; img1: string; distance: number }[];
  tensors: Record<string, { file: string; shape: number[] }>;
};
function tensor(name: string): { data: Float32Array; dims: [number, number, number, number] } {
  const entry = golden.tensors[name]!;
  const bytes = readFileSync(join(LPIPS_DIR, entry.file));
  return { data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), dims: entry.shape as [number, number, number, number] };
}

function pattern(width: number, height: number, phase: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = (y * width + x) * 3;
      data[k] = Math.round(127.5 + 127.5 * Math.sin((x + phase) / 6));
      data[k + 1] = Math.round(127.5 + 127.5 * Math.cos((y - 2 * phase) / 9));
      data[k + 2] = (x * 3 + y * 5 + phase * 17) % 256;
    }
  }
  return { width, height, data };
}

const toRelease: { release(): Promise<void> }[] = [];
async function track<T extends { release(): Promise<void> }>(metric: Promise<T>): Promise<T> {
  const loaded = await metric;
  toRelease.push(loaded);
  return loaded;
}
after(async () => {
  for (const metric of toRelease) await metric.release();
});

function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} (diff ${Math.abs(actual - expected)})`);
}

test('two-file and one-file exports of the tiny LPIPS agree within 1e-5 on the golden pairs, alone and batched', async () => {
  const one: LpipsMetric = await track(loadLpipsMetric(nodePlatform, join(LPIPS_DIR, 'tiny-lpips.onnx'), 'cpu'));
  const two: TwoFileLpipsMetric = await track(loadTwoFileLpipsMetric(twoFileLpipsPaths(TWO_FILE)!, 'cpu'));
  assert.equal(two.fixedSize, undefined);
  const inputs = golden.pairs.map((pair) => [tensor(pair.img0), tensor(pair.img1)] as const);
  for (const [index, [x, y]] of inputs.entries()) {
    const [fromOne] = await one.distanceTensors(x.data, y.data, x.dims);
    const [fromTwo] = await two.distanceTensors(x.data, y.data, x.dims);
    near(fromTwo!, fromOne!, AGREEMENT, `pair ${index}: two-file vs one-file`);
    near(fromTwo!, golden.pairs[index]!.distance, AGREEMENT, `pair ${index}: two-file vs torch`);
    assert.ok(fromOne! > 1e-4, 'a distance that can tell the forms apart');
  }
  const [x0, y0] = inputs[0]!;
  const [x1, y1] = inputs[1]!;
  const [, , h, w] = x0.dims;
  const batched = await two.distanceTensors(new Float32Array([...x0.data, ...x1.data]), new Float32Array([...y0.data, ...y1.data]), [2, 3, h, w]);
  near(batched[0]!, golden.pairs[0]!.distance, AGREEMENT, 'batched item 0');
  near(batched[1]!, golden.pairs[1]!.distance, AGREEMENT, 'batched item 1');
});

test('on RGB8 frames both forms agree, at any frame size; features are reused across calls', async () => {
  const one = await track(loadLpipsMetric(nodePlatform, join(LPIPS_DIR, 'tiny-lpips.onnx'), 'cpu'));
  const two = await track(loadTwoFileLpipsMetric(twoFileLpipsPaths(TWO_FILE)!, 'cpu'));
  const frames = [pattern(96, 64, 0), pattern(96, 64, 1), pattern(96, 64, 4)];
  const pairs = [[frames[0]!, frames[1]!], [frames[1]!, frames[2]!], [frames[0]!, frames[2]!]] as const;
  const expected = await one.distances(pairs);
  const callsBefore = two.feature.stats.calls;
  const got = await two.distances(pairs);
  assert.equal(two.feature.stats.calls - callsBefore, 1, 'three distinct frames, one feature call');
  got.forEach((value, index) => near(value, expected[index]!, AGREEMENT, `pair ${index}`));
  const again = await two.distance(frames[0]!, frames[2]!);
  assert.equal(two.feature.stats.calls - callsBefore, 1, 'features of frames seen just before are not recomputed');
  near(again, expected[2]!, AGREEMENT, 'same value from cached features');
  near(await two.distance(frames[1]!, { ...frames[1]!, data: frames[1]!.data.slice() }), 0, 1e-9, 'identical frames');
});

test('a feature model with a fixed input size (imgutils: 400x400) gets every frame resized to it', async () => {
  const one = await track(loadLpipsMetric(nodePlatform, join(LPIPS_DIR, 'tiny-lpips.onnx'), 'cpu'));
  const two = await track(loadTwoFileLpipsMetric(twoFileLpipsPaths(TWO_FILE_400)!, 'cpu'));
  assert.deepEqual(two.fixedSize, { width: 400, height: 400 });
  const a = pattern(80, 48, 2);
  const b = pattern(80, 48, 5);
  // The one-file form on the same 400x400 resize.
  const [ra, rb] = [await resizeRgb(a, 400, 400), await resizeRgb(b, 400, 400)];
  const [expected] = await one.distanceTensors(rgbToLpipsInput(ra), rgbToLpipsInput(rb), [1, 3, 400, 400]);
  near(await two.distance(a, b), expected!, AGREEMENT, 'fixed-size two-file vs one-file at 400 px');
  await assert.rejects(two.distanceTensors(new Float32Array(3 * 64 * 64), new Float32Array(3 * 64 * 64), [1, 3, 64, 64]), /takes 400x400 px only/);
});

test('the two-file form is found from its folder or either file, through --lpips and LATENTBLEND_LPIPS', async () => {
  for (const path of [TWO_FILE, join(TWO_FILE, 'lpips_feature.onnx'), join(TWO_FILE, 'lpips_diff.onnx')]) {
    const metric = await track(loadAnyLpipsMetric(path, 'cpu') as Promise<TwoFileLpipsMetric>);
    assert.equal(metric.constructor.name, 'TwoFileLpipsMetric');
  }
  const viaEnv = await track(chooseMetric({ device: 'cpu', env: { LATENTBLEND_LPIPS: TWO_FILE }, home: tmpdir() }) as Promise<TwoFileLpipsMetric>);
  assert.equal(viaEnv.name, 'lpips');
  const lonely = mkdtempSync(join(tmpdir(), 'latentblend-lpips-half-'));
  copyFileSync(join(TWO_FILE, 'lpips_feature.onnx'), join(lonely, 'lpips_feature.onnx'));
  assert.throws(() => twoFileLpipsPaths(lonely), (error: unknown) => error instanceof LatentBlendError && /lpips_diff\.onnx missing/.test(error.message));
  // Swapped files are refused with the names of what is there.
  const swapped = mkdtempSync(join(tmpdir(), 'latentblend-lpips-swapped-'));
  copyFileSync(join(TWO_FILE, 'lpips_feature.onnx'), join(swapped, 'lpips_diff.onnx'));
  copyFileSync(join(TWO_FILE, 'lpips_diff.onnx'), join(swapped, 'lpips_feature.onnx'));
  await assert.rejects(loadAnyLpipsMetric(swapped, 'cpu'), /not part of a two-file LPIPS model: no tensor input "input"/);
});
