/** Batched VAE decoding (issue #12): one decoder call for a round gives each item's own decode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { modelDir, maxAbsDiff } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

test('decodeBatch decodes every item as decode does, in one decoder call', async () => {
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sdxl-turbo') });
  try {
    const shape = pipeline.latentShape(64, 64);
    const length = shape[0] * shape[1] * shape[2];
    const items = [1, 2, 3].map((seed) => new KeyframeNoise(seed).start(length));
    const single = [];
    for (const latents of items) single.push(await pipeline.vae.decodeRaw(latents, shape));
    const callsBefore = pipeline.vae.decoder.stats.calls;
    const decodesBefore = pipeline.vae.decodes;
    const batched = await pipeline.vae.decodeRawBatch(items, shape);
    assert.equal(pipeline.vae.decoder.stats.calls - callsBefore, 1);
    assert.equal(pipeline.vae.decodes - decodesBefore, 3);
    const plane = single[0]!.length;
    assert.equal(batched.length, 3 * plane);
    for (let item = 0; item < 3; item++) {
      const diff = maxAbsDiff(batched.subarray(item * plane, (item + 1) * plane), single[item]!);
      assert.ok(diff < 1e-5, `item ${item} differs by ${diff}`);
    }
    assert.ok(maxAbsDiff(single[0]!, single[1]!) > 1e-3, 'different latents decode differently');
    const images = await pipeline.vae.decodeBatch(items, shape);
    assert.equal(images.length, 3);
    for (let item = 0; item < 3; item++) {
      const own = await pipeline.vae.decode(items[item]!, shape);
      assert.equal(images[item]!.width, own.width);
      const worst = images[item]!.data.reduce((max, value, k) => Math.max(max, Math.abs(value - own.data[k]!)), 0);
      assert.ok(worst <= 1, `RGB of item ${item} differs by ${worst}`);
    }
    assert.deepEqual(await pipeline.vae.decodeBatch([], shape), []);
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
});
