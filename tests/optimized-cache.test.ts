/** The opt-in cache of ONNX Runtime's optimised graphs (issue #12: start-up). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createThroughCache, optimizedCacheEntry } from '../src/node/optimized-cache.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const unetPath = join(modelDir('tiny-sd-turbo'), 'unet', 'model.onnx');
const create = (path: string, options: ort.InferenceSession.SessionOptions) => ort.InferenceSession.create(path, options);

test('the cache key changes with the model file, the provider, the level and the onnxruntime version', () => {
  const base = { executionProviders: ['cpu'], graphOptimizationLevel: 'extended' } as const;
  const entry = optimizedCacheEntry('/cache', unetPath, base, '1.30.0');
  assert.equal(optimizedCacheEntry('/cache', unetPath, { ...base }, '1.30.0'), entry, 'stable');
  assert.notEqual(optimizedCacheEntry('/cache', join(modelDir('tiny-sd-turbo'), 'vae_decoder', 'model.onnx'), base, '1.30.0'), entry);
  assert.notEqual(optimizedCacheEntry('/cache', unetPath, { ...base, graphOptimizationLevel: 'all' }, '1.30.0'), entry);
  assert.notEqual(optimizedCacheEntry('/cache', unetPath, { ...base, executionProviders: ['cuda'] }, '1.30.0'), entry);
  assert.notEqual(optimizedCacheEntry('/cache', unetPath, base, '1.31.0'), entry);
});

test('first session saves the optimised graph, the next loads it; a pipeline through the cache generates the same image', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'latentblend-optcache-'));
  try {
    const options = { executionProviders: ['cpu'], graphOptimizationLevel: 'extended' } as const;
    const first = await createThroughCache(create, cache, unetPath, options, '1.30.0');
    assert.equal(first.cached, false);
    const entry = optimizedCacheEntry(cache, unetPath, options, '1.30.0');
    assert.ok(existsSync(join(entry, 'model.onnx')), 'saved');
    assert.deepEqual(readdirSync(cache), [entry.slice(cache.length + 1)], 'no partial folder left');
    const second = await createThroughCache(create, cache, unetPath, options, '1.30.0');
    assert.equal(second.cached, true);
    assert.deepEqual(second.session.inputNames, first.session.inputNames);
    await first.session.release();
    await second.session.release();

    const generate = { prompt: 'a red cube', steps: 2, width: 64, height: 64, seed: 5 };
    const plain = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
    const expected = await plain.generate(generate);
    for (const model of plain.models) await model.session.release();
    for (let run = 0; run < 2; run++) {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo'), optimizedModelCache: cache });
      const result = await pipeline.generate(generate);
      for (const model of pipeline.models) await model.session.release();
      assert.deepEqual(result.image.data, expected.image.data, `run ${run}`);
      // the UNet entry from above plus the text encoder and the VAE decoder (its level is `all`)
      assert.equal(readdirSync(cache).length, 3, `run ${run}: ${readdirSync(cache).join(', ')}`);
    }
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
