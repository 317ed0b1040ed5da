/** VAE encode and decode against diffusers' recorded round trip, for every fixture. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { goldenModels, modelDir, readJson, floats, maxAbsDiff } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

for (const model of goldenModels()) {
  test(`${model}: VAE encoder mean and decoder output match diffusers`, async () => {
    const golden = readJson<{ scaling_factor: number; tensors: Record<string, { file: string; dtype: 'float32'; shape: number[] }> }>('goldens', model, 'vae.json');
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(model) });
    assert.equal(pipeline.vae.scalingFactor, golden.scaling_factor, 'scaling factor from the VAE config');
    const mean = await pipeline.vae.encodeMean(floats(model, golden, 'image'), 64, 64);
    const expectedMean = floats(model, golden, 'latent_mean');
    assert.ok(maxAbsDiff(mean, expectedMean) < 1e-4, `latent mean differs by ${maxAbsDiff(mean, expectedMean)}`);
    // decodeRaw divides pipeline latents by the scaling factor first, as diffusers does.
    const decoderInput = floats(model, golden, 'decoder_input');
    const latents = Float32Array.from(decoderInput, (value) => value * golden.scaling_factor);
    const decoded = await pipeline.vae.decodeRaw(latents, [4, 8, 8]);
    const expected = floats(model, golden, 'decoded');
    assert.ok(maxAbsDiff(decoded, expected) < 1e-4, `decoded differs by ${maxAbsDiff(decoded, expected)}`);
    // The RGB8 path: encode(image) = mean of its pixels times the scaling factor.
    const image = await pipeline.vae.decode(latents, [4, 8, 8]);
    const encoded = await pipeline.vae.encode(image);
    const planar = new Float32Array(3 * 64 * 64);
    for (let pixel = 0; pixel < 64 * 64; pixel++) for (let c = 0; c < 3; c++) planar[c * 64 * 64 + pixel] = (image.data[pixel * 3 + c]! / 255) * 2 - 1;
    const reference = await pipeline.vae.encodeMean(planar, 64, 64);
    assert.ok(maxAbsDiff(encoded, Float32Array.from(reference, (value) => value * golden.scaling_factor)) < 1e-6);
  });
}
