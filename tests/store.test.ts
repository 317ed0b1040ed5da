/** Saved transitions: reload exactly, refine without recomputing, never half-written. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { saveTransition, loadTransition, modelStamp, checkSameModel } from '../src/io/store.ts';
import type { SimilarityMetric } from '../src/engine/metric.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { LatentBlendError } from '../src/errors.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const metric: SimilarityMetric = {
  name: 'mean-abs',
  async distance(a: RgbImage, b: RgbImage) {
    let sum = 0;
    for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
    return sum / a.data.length / 255;
  },
};

test('save, load and refine a transition: nothing recomputed, same result as refining in memory', async () => {
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sdxl-turbo') });
  const engine = new BlendingEngine(pipeline, metric);
  const options = { keyframeA: { prompt: 'a boat', seed: 3 }, keyframeB: { prompt: 'a castle', seed: 4 }, maxBranches: 5 };
  const transition = await engine.runTransition(options);
  const stamp = modelStamp(modelDir('tiny-sdxl-turbo'), pipeline, pipeline.latentShape(64, 64));
  const work = mkdtempSync(join(tmpdir(), 'latentblend-store-'));
  const dir = join(work, 'boat-to-castle');
  await saveTransition(dir, transition, stamp);
  assert.deepEqual(readdirSync(work), ['boat-to-castle'], 'no temporary folder left');

  const loaded = await loadTransition(dir);
  checkSameModel(loaded.model, stamp);
  assert.deepEqual(loaded.transition.options, transition.options);
  assert.deepEqual(loaded.transition.tree.gapDistances, transition.tree.gapDistances);
  loaded.transition.tree.branches.forEach((branch, index) => {
    const original = transition.tree.branches[index]!;
    assert.equal(branch.fract, original.fract);
    assert.deepEqual(branch.latents, original.latents, `latents of branch ${index}`);
    assert.deepEqual(loaded.transition.images[index]!.data, transition.images[index]!.data, `image ${index}`);
  });

  const fromDisk = await engine.refine(loaded.transition, 2);
  const inMemory = await engine.refine(transition, 2);
  assert.equal(fromDisk.stats.unetEvaluations, 2 * 2, 'only the new branches run');
  assert.deepEqual(fromDisk.frames.map((frame) => frame.fract), inMemory.frames.map((frame) => frame.fract));
  fromDisk.frames.forEach((frame, index) => assert.deepEqual(frame.image.data, inMemory.frames[index]!.image.data));

  await assert.rejects(saveTransition(dir, fromDisk, stamp), /already exists; use --force/);
  await saveTransition(dir, fromDisk, stamp, { replace: true });
  assert.equal((await loadTransition(dir)).transition.frames.length, 7);
});

test('a broken transition folder gets an error naming the file', async () => {
  const work = mkdtempSync(join(tmpdir(), 'latentblend-store-'));
  await assert.rejects(loadTransition(work), /is not a saved transition: .*transition\.json is missing/);
  writeFileSync(join(work, 'transition.json'), '{"format": "latentblend-transition", "version": 1}');
  await assert.rejects(loadTransition(work), (error: unknown) => error instanceof LatentBlendError && /model: /.test(error.message));

  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
  const transition = await new BlendingEngine(pipeline, metric).runTransition({ keyframeA: { prompt: 'a', seed: 1 }, keyframeB: { prompt: 'b', seed: 2 }, maxBranches: 3 });
  const dir = join(work, 't');
  await saveTransition(dir, transition, modelStamp('tiny-sd-turbo', pipeline, pipeline.latentShape(64, 64)));
  truncateSync(join(dir, 'latents.bin'), 100);
  await assert.rejects(loadTransition(dir), /latents\.bin is missing or has the wrong size/);
  assert.throws(
    () => checkSameModel(modelStamp('x', pipeline, [4, 8, 8]), { source: 'y', family: 'sdxl', preset: 'turbo', schedulerClass: 'EulerAncestralDiscreteScheduler', latentShape: [4, 8, 8] }),
    /made with another model .*family sd vs sdxl/,
  );
  assert.ok(existsSync(dir));
});
