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
import { FIXTURES, floats, maxAbs, maxAbsDiff, modelDir, readJson, tensor } from './helpers/golden.ts';
import { checkIpAdapterGeneration, type IpAdapterGoldenCase } from './helpers/ip-adapter-golden.ts';
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
    .map((file) => readJson<IpAdapterGoldenCase>('goldens', NAME, file));
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
      await checkIpAdapterGeneration(pipeline, ip, NAME, golden, picture);
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
