/**
 * What makes a pooled film the same as a single-process one, in process (no Redis): a keyframe
 * computed alone (engine.runKeyframe), saved to and read back from the work folder, gives the
 * transition the same frames and latents as computing it inside runTransition.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine, type Transition } from '../src/engine/engine.ts';
import type { SimilarityMetric } from '../src/engine/metric.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { modelStamp } from '../src/io/store.ts';
import { hasKeyframe, loadKeyframe, saveKeyframe } from '../src/queue/keyframe-store.ts';
import { LatentBlendError } from '../src/errors.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const rms: SimilarityMetric = {
  name: 'test-rms',
  async distance(a: RgbImage, b: RgbImage) {
    let sum = 0;
    for (let i = 0; i < a.data.length; i++) sum += ((a.data[i]! - b.data[i]!) / 255) ** 2;
    return Math.sqrt(sum / a.data.length);
  },
};

function assertSameTransition(actual: Transition, expected: Transition): void {
  assert.equal(actual.tree.branches.length, expected.tree.branches.length);
  for (const [index, branch] of expected.tree.branches.entries()) {
    const other = actual.tree.branches[index]!;
    assert.deepEqual([other.fract, other.injectionStep], [branch.fract, branch.injectionStep]);
    for (const [step, latent] of branch.latents.entries()) {
      if (latent === null) assert.equal(other.latents[step], null);
      else assert.deepEqual(other.latents[step], latent, `branch ${index} step ${step}`);
    }
    assert.deepEqual(actual.images[index]!.data, expected.images[index]!.data, `image ${index}`);
  }
  assert.deepEqual(actual.tree.gapDistances, expected.tree.gapDistances);
}

describe('keyframes computed apart', () => {
  let pipeline: DiffusionPipeline;
  let engine: BlendingEngine;
  before(async () => {
    pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
    engine = new BlendingEngine(pipeline, rms);
  });
  const base = { keyframeA: { prompt: 'a red house', seed: 3 }, keyframeB: { prompt: 'a green forest', seed: 4 }, maxBranches: 5 };

  test('runKeyframe + the work folder give runTransition the same keyframes it computes itself', async () => {
    const whole = await engine.runTransition(base);
    const work = mkdtempSync(join(tmpdir(), 'latentblend-keyframes-'));
    const stamp = modelStamp('tiny', pipeline, pipeline.latentShape(64, 64));
    for (const end of ['A', 'B'] as const) saveKeyframe(work, end, await engine.runKeyframe(base, end), stamp);
    assert.ok(hasKeyframe(work, 'A') && hasKeyframe(work, 'B'));
    const calls = pipeline.unet.calls;
    const apart = await engine.runTransition(base, { keyframeA: loadKeyframe(work, 'A', stamp), keyframeB: loadKeyframe(work, 'B', stamp) });
    assertSameTransition(apart, whole);
    // Only the branches between the keyframes were computed: 3 branches x (4 - 2) steps.
    assert.equal(pipeline.unet.calls - calls, 3 * 2);
  });

  test('with branch-1 crossfeed, keyframe B computed from keyframe A matches too, and needs it', async () => {
    const options = { ...base, branch1Crossfeed: { power: 0.6, range: 0.8, decay: 0.5 } };
    const whole = await engine.runTransition(options);
    const a = await engine.runKeyframe(options, 'A');
    await assert.rejects(engine.runKeyframe(options, 'B'), LatentBlendError);
    const b = await engine.runKeyframe(options, 'B', { crossfeedFrom: a.latents });
    assertSameTransition(await engine.runTransition(options, { keyframeA: a, keyframeB: b }), whole);
    // Without crossfeed B would differ: the test can fail.
    const plainB = await engine.runKeyframe(base, 'B');
    assert.notDeepEqual(plainB.latents.at(-1), b.latents.at(-1));
  });

  test('a keyframe made with another model is refused', async () => {
    const work = mkdtempSync(join(tmpdir(), 'latentblend-keyframes-'));
    const stamp = modelStamp('tiny', pipeline, pipeline.latentShape(64, 64));
    saveKeyframe(work, 'A', await engine.runKeyframe(base, 'A'), stamp);
    assert.throws(() => loadKeyframe(work, 'A', { ...stamp, latentShape: [4, 16, 16] }), /another model/);
  });
});
