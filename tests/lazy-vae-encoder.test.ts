/** The VAE encoder is loaded only when a picture is encoded (issue #12: start-up). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline, type PipelineEvent } from '../src/pipeline/pipeline.ts';
import { LatentBlendError } from '../src/errors.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

function loads(events: PipelineEvent[]): string[] {
  return events.flatMap((event) => (event.type === 'load' ? [event.part] : []));
}

test('generate does not load the VAE encoder; the first encode loads it once', async () => {
  const events: PipelineEvent[] = [];
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') }, (event) => events.push(event));
  try {
    assert.ok(pipeline.vae.hasEncoder);
    const { image } = await pipeline.generate({ prompt: 'a red cube', steps: 1, width: 64, height: 64 });
    assert.ok(!loads(events).includes('VAE encoder'), `loaded: ${loads(events).join(', ')}`);
    assert.ok(!pipeline.models.some((model) => model.role === 'VAE encoder'));
    assert.equal(pipeline.vae.loadedEncoder, undefined);

    // Two concurrent encodes share one load.
    const [first, second] = await Promise.all([pipeline.vae.encode(image), pipeline.vae.encode(image)]);
    assert.deepEqual(first, second);
    assert.equal(loads(events).filter((part) => part === 'VAE encoder').length, 1);
    const encoder = await pipeline.vaeEncoder();
    assert.equal(encoder.role, 'VAE encoder');
    assert.equal(pipeline.vae.loadedEncoder, encoder);
    assert.ok(pipeline.models.includes(encoder), 'the loaded encoder is counted and released with the others');
    assert.equal(encoder.stats.calls, 2);
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
});

test('a folder without vae_encoder loads and generates; encoding fails with a clear error', async () => {
  const source = modelDir('tiny-sd-turbo');
  const dir = mkdtempSync(join(tmpdir(), 'latentblend-no-encoder-'));
  try {
    for (const entry of readdirSync(source)) if (entry !== 'vae_encoder') symlinkSync(join(source, entry), join(dir, entry));
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir });
    assert.equal(pipeline.vae.hasEncoder, false);
    const { image } = await pipeline.generate({ prompt: 'a red cube', steps: 1, width: 64, height: 64 });
    await assert.rejects(pipeline.vaeEncoder(), (error: unknown) => error instanceof LatentBlendError && error.code === 'model_folder' && /no vae_encoder/.test(error.message));
    await assert.rejects(pipeline.vae.encode(image), /no vae_encoder/);
    for (const model of pipeline.models) await model.session.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
