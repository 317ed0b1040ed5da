/**
 * How a batched round's frames are decoded: one VAE call for the round on GPU providers, one per
 * frame on the CPU, and one per frame again after a batched decode ran out of memory. The
 * pipeline runs on the CPU here; its `device` is overridden to take the GPU rule's path.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { nodePlatform } from '../src/node/platform.ts';
import { BlendingEngine, type Transition } from '../src/engine/engine.ts';
import { LatentBlendError } from '../src/errors.ts';
import type { Device } from '../src/runtime/onnx.ts';
import { modelDir } from './helpers/golden.ts';
import { rmsMetric, SMALL_TRANSITION } from './helpers/engine.ts';

const OPTIONS = { keyframeA: SMALL_TRANSITION.keyframeA, keyframeB: SMALL_TRANSITION.keyframeB, width: 64, height: 64, maxBranches: 7, batchSize: 2 };

async function pipelineAs(device: Device): Promise<DiffusionPipeline> {
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sdxl-turbo') });
  // The rule reads the provider's name only; the sessions stay on the CPU.
  Object.defineProperty(pipeline, 'device', { value: device });
  return pipeline;
}

function maxPixelDifference(a: Transition, b: Transition): number {
  assert.equal(a.images.length, b.images.length);
  let max = 0;
  a.images.forEach((image, index) => {
    for (let k = 0; k < image.data.length; k++) max = Math.max(max, Math.abs(image.data[k]! - b.images[index]!.data[k]!));
  });
  return max;
}

let onCpu: Transition;
let cpuDecoderCalls: number;

before(async () => {
  const pipeline = await pipelineAs('cpu');
  onCpu = await new BlendingEngine(pipeline, rmsMetric).runTransition(OPTIONS);
  cpuDecoderCalls = pipeline.vae.decoder.stats.calls;
});

test('on the CPU every frame has its own decoder call', () => {
  assert.equal(onCpu.images.length, 7);
  assert.equal(onCpu.stats.decodes, 7);
  assert.equal(cpuDecoderCalls, 7);
});

test('on a GPU provider each batched round is decoded in one call, with the same frames', async () => {
  const pipeline = await pipelineAs('cuda');
  const batched = await new BlendingEngine(pipeline, rmsMetric).runTransition(OPTIONS);
  assert.equal(batched.stats.decodes, 7);
  // The two keyframes alone, then rounds of 2 + 2 + 1 branches: 2 + 3 calls for 7 frames.
  assert.equal(pipeline.vae.decoder.stats.calls, 5);
  assert.deepEqual(
    batched.tree.branches.map((branch) => [branch.fract, branch.injectionStep]),
    onCpu.tree.branches.map((branch) => [branch.fract, branch.injectionStep]),
  );
  assert.ok(maxPixelDifference(batched, onCpu) <= 1, 'a batch changes rounding at most');
});

test('a batched decode that runs out of memory is done one by one, for that round and the later ones', async () => {
  const pipeline = await pipelineAs('cuda');
  let batchedTries = 0;
  pipeline.vae.decodeBatch = async () => {
    batchedTries++;
    throw new LatentBlendError('Not enough memory to run the VAE decoder (test)', 'out_of_memory');
  };
  const fallback = await new BlendingEngine(pipeline, rmsMetric).runTransition(OPTIONS);
  assert.equal(batchedTries, 1, 'tried once, then not again');
  assert.equal(pipeline.vae.decoder.stats.calls, 7);
  assert.equal(maxPixelDifference(fallback, onCpu), 0);
});

test('any batch failure falls back (a decoder exported for batch 1); a fault of the decoder itself still surfaces', async () => {
  const pipeline = await pipelineAs('cuda');
  pipeline.vae.decodeBatch = async () => {
    throw new Error('Got invalid dimensions for input: latent_sample for the following indices index: 0 Got: 2 Expected: 1');
  };
  const fallback = await new BlendingEngine(pipeline, rmsMetric).runTransition(OPTIONS);
  assert.equal(maxPixelDifference(fallback, onCpu), 0);
  const broken = await pipelineAs('cuda');
  broken.vae.decodeBatch = async () => {
    throw new Error('batch failed');
  };
  broken.vae.decode = async () => {
    throw new LatentBlendError('the VAE decoder produced NaN values (test)', 'numerics');
  };
  await assert.rejects(new BlendingEngine(broken, rmsMetric).runTransition(OPTIONS), /NaN values \(test\)/);
});
