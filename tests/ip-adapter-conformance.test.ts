/**
 * IP-Adapter conformance with diffusers: goldens recorded by tools/fixtures/make_ip_adapter.py from
 * StableDiffusionPipeline(ip_adapter_image=…) replayed on the IP-Adapter export: the image
 * encoder's input and output, every step's latents and the image.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import type { LoadedIpAdapter } from '../src/pipeline/ip-adapter.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import { clipPixelValues } from '../src/image/clip-preprocess.ts';
import { FIXTURES, floats, goldenGenerateOptions, maxAbs, maxAbsDiff, modelDir, readJson, tensor, type GoldenCase } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const index = readJson<{ ip_adapters: Record<string, { base: string }> }>('ip-adapter.json');
const opened: { pipeline: DiffusionPipeline; ip: LoadedIpAdapter }[] = [];
after(async () => {
  for (const { pipeline, ip } of opened) for (const model of [...pipeline.models, ...ip.models]) await model.session.release();
});

for (const [NAME, entry] of Object.entries(index.ip_adapters)) describe(`IP-Adapter conformance: ${NAME} on ${entry.base}`, () => {
  const goldDir = join(FIXTURES, 'goldens', NAME);
  const goldens = readdirSync(goldDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => readJson<GoldenCase & { ip_adapter_image: string; ip_adapter_scale: number }>('goldens', NAME, file));
  assert.ok(goldens.length >= 1);
  for (const golden of goldens) {
    test(`${golden.case}: pixel values, image embeddings, every step's latents and the image match diffusers (scale ${golden.ip_adapter_scale})`, async () => {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(entry.base), scheduler: golden.scheduler.class_name, schedulerConfig: golden.scheduler.config });
      const ip = await pipeline.loadIpAdapter(join(FIXTURES, 'models', NAME, 'onnx'));
      opened.push({ pipeline, ip });
      const picture = await readControlPicture(join(goldDir, golden.ip_adapter_image), 'image prompt');
      const pixels = clipPixelValues(picture, ip.adapter.folder.preprocess);
      assert.ok(maxAbsDiff(pixels.data, floats(NAME, golden, 'pixel_values')) <= 1e-6, 'pixel values');
      const embeds = await ip.adapter.encode(picture);
      assert.ok(maxAbsDiff(embeds.data, floats(NAME, golden, 'image_embeds')) <= 1e-5, `image embeds: ${maxAbsDiff(embeds.data, floats(NAME, golden, 'image_embeds'))}`);
      const latents = floats(NAME, golden, 'latents');
      const steps = pipeline.scheduler(golden.num_inference_steps).timesteps.length;
      const stepLength = latents.length / steps;
      const result = await pipeline.generate({
        ...goldenGenerateOptions(golden),
        startLatents: floats(NAME, golden, 'start_latents'),
        ipAdapter: { adapter: ip.adapter, picture, scale: golden.ip_adapter_scale },
      });
      assert.equal(result.trajectory.length, steps);
      result.trajectory.forEach((step, index) => {
        const expected = latents.subarray(index * stepLength, (index + 1) * stepLength);
        const diff = maxAbsDiff(step, expected);
        assert.ok(diff <= 2e-4 * Math.max(1, maxAbs(expected)), `latents after step ${index}: max abs diff ${diff.toExponential(3)}`);
      });
      const u8 = tensor(NAME, golden, 'image_u8').data as Uint8Array;
      assert.ok(maxAbsDiff(result.image.data, u8) <= 1, 'image within one level');
      // and the adapter matters: without the image prompt the latents differ
      const plain = await pipeline.generate({ prompt: golden.prompt, steps: golden.num_inference_steps, guidanceScale: golden.guidance_scale, width: 64, height: 64, startLatents: floats(NAME, golden, 'start_latents'), ...(golden.negative_prompt !== null ? { negativePrompt: golden.negative_prompt } : {}) });
      assert.ok(maxAbsDiff(plain.trajectory.at(-1)!, latents.subarray(latents.length - stepLength)) > 1e-2, 'the image prompt changes the result');
    });
  }
});

test('the IP-Adapter descriptions name the layout and family', () => {
  assert.deepEqual(Object.keys(index.ip_adapters).sort(), ['tiny-sd15-ip-adapter', 'tiny-sdxl-ip-adapter']);
  for (const [name, entry] of Object.entries(index.ip_adapters)) {
    const description = JSON.parse(readFileSync(join(FIXTURES, 'models', name, 'onnx', 'latentblend-ip-adapter.json'), 'utf8')) as { format: string; family: string };
    assert.equal(description.format, 'latentblend-ip-adapter');
    assert.equal(description.family, entry.base === 'tiny-sdxl' ? 'sdxl' : 'sd');
  }
});
