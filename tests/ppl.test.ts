/** Perceptual path length: positions, float resizing and distances, and frames generated at any fract. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { PixelMetric } from '../src/engine/metric.ts';
import { decodedToRgb } from '../src/pipeline/vae.ts';
import { floatFrameDistance, pplPositions, resizePlanar, transitionPathLength } from '../src/eval/ppl.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

test('pplPositions: N distinct positions in [0, 1 − ε], spread over the whole range', () => {
  const positions = pplPositions(50, 1e-4);
  assert.equal(positions.length, 50);
  assert.equal(new Set(positions).size, 50);
  for (const alpha of positions) assert.ok(alpha >= 0 && alpha <= 1 - 1e-4);
  // Every tenth of [0, 1) gets 5 ± 1 of 50 points (the golden-ratio sequence is that even).
  for (let tenth = 0; tenth < 10; tenth++) {
    const count = positions.filter((alpha) => alpha >= tenth / 10 && alpha < (tenth + 1) / 10).length;
    assert.ok(count >= 4 && count <= 6, `tenth ${tenth}: ${count} points`);
  }
  assert.throws(() => pplPositions(0), /whole number of samples/);
});

test('resizePlanar: identity, and a 2x2 → 1x1 bilinear average worked by hand', () => {
  const data = Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40]); // 2 channels, 2x2
  assert.equal(resizePlanar(data, 2, 2, 2, 2, 2), data);
  // The 1x1 output's centre maps to (0.5, 0.5) in the source: the mean of the four pixels.
  assert.deepEqual(Array.from(resizePlanar(data, 2, 2, 2, 1, 1)), [2.5, 25]);
  // 2x1 → 4x1: centres at x = −0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1 → 1, 1.25, 1.75, 2.
  assert.deepEqual(Array.from(resizePlanar(Float32Array.from([1, 2]), 1, 2, 1, 4, 1)), [1, 1.25, 1.75, 2]);
});

test('floatFrameDistance with rms-pixel: unrounded, on [0, 1] values', async () => {
  // 1x1 pixel: a = (−1, 0, 1) → units (0, 0.5, 1); b = (−1, 0.0002, 0.5) → (0, 0.5001, 0.75).
  // Squared differences 0, 1e-8, 0.0625 → mean (0.0625 + 1e-8) / 3.
  const d = await floatFrameDistance(new PixelMetric(), Float32Array.from([-1, 0, 1]), Float32Array.from([-1, 0.0002, 0.5]), 1, 1);
  assert.ok(Math.abs(d - Math.sqrt((0.0625 + 1e-8) / 3)) < 1e-7, String(d));
  // A change far below one 8-bit level is still measured.
  const tiny = await floatFrameDistance(new PixelMetric(), Float32Array.from([0, 0, 0]), Float32Array.from([0.0001, 0.0001, 0.0001]), 1, 1);
  assert.ok(Math.abs(tiny - 0.00005) < 1e-9, String(tiny));
});

test('rawFramesAt makes the branch the engine would insert; path length runs on it', async () => {
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
  try {
    const engine = new BlendingEngine(pipeline, new PixelMetric());
    const keyframes = { keyframeA: { prompt: 'a red house', seed: 3 }, keyframeB: { prompt: 'a green forest', seed: 4 } };
    const three = await engine.runTransition({ ...keyframes, maxBranches: 3 });
    const two = await engine.runTransition({ ...keyframes, maxBranches: 2 });
    const middle = three.frames[1]!;
    assert.equal(middle.fract, 0.5);
    // From A and B alone, a frame at 0.5 injected where the engine injected its first branch.
    const { width, height, frames } = await engine.rawFramesAt(two, [0.5], { injectionStep: middle.injectionStep });
    assert.deepEqual(decodedToRgb(frames[0]!, width, height).data, middle.image.data);
    const result = await transitionPathLength(engine, three, new PixelMetric(), { samples: 4 });
    assert.equal(result.samples, 4);
    assert.equal(result.distances.length, 4);
    assert.ok(result.mean > 0 && Number.isFinite(result.mean));
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
});
