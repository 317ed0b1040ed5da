/**
 * "Plus" IP-Adapter conformance with diffusers: goldens recorded by
 * tools/fixtures/make_ip_adapter_plus.py from StableDiffusionPipeline(ip_adapter_image=…) with a tiny
 * random-weight plus adapter (IPAdapterPlusImageProjection), replayed on its export: the image
 * encoder's penultimate hidden states for the picture and for the negative side, every step's
 * latents and the image.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { inspectIpAdapterFolder, type LoadedIpAdapter } from '../src/pipeline/ip-adapter.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import { clipPixelValues } from '../src/image/clip-preprocess.ts';
import { LatentBlendError } from '../src/errors.ts';
import { FIXTURES, floats, maxAbs, maxAbsDiff, modelDir, readJson, tensor } from './helpers/golden.ts';
import { checkIpAdapterGeneration, type IpAdapterGoldenCase } from './helpers/ip-adapter-golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const NAME = 'tiny-sd15-ip-adapter-plus';
const index = readJson<{ ip_adapters: Record<string, { base: string; variant: string }> }>('ip-adapter-plus.json');
const entry = index.ip_adapters[NAME]!;
const adapterDir = join(FIXTURES, 'models', NAME, 'onnx');
const opened: { pipeline: DiffusionPipeline; ip: LoadedIpAdapter }[] = [];
after(async () => {
  for (const { pipeline, ip } of opened) for (const model of [...pipeline.models, ...ip.models]) await model.session.release();
});

describe(`IP-Adapter plus conformance: ${NAME} on ${entry.base}`, () => {
  const goldDir = join(FIXTURES, 'goldens', NAME);
  const goldens = readdirSync(goldDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => readJson<IpAdapterGoldenCase & { do_classifier_free_guidance: boolean }>('goldens', NAME, file));
  assert.ok(goldens.length >= 1);
  for (const golden of goldens) {
    test(`${golden.case}: pixel values, hidden states, every step's latents and the image match diffusers (scale ${golden.ip_adapter_scale})`, async () => {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(entry.base), scheduler: golden.scheduler.class_name, schedulerConfig: golden.scheduler.config });
      const ip = await pipeline.loadIpAdapter(adapterDir);
      opened.push({ pipeline, ip });
      assert.equal(ip.adapter.folder.variant, 'plus');
      const picture = await readControlPicture(join(goldDir, golden.ip_adapter_image), 'image prompt');
      const pixels = clipPixelValues(picture, ip.adapter.folder.preprocess);
      assert.ok(maxAbsDiff(pixels.data, floats(NAME, golden, 'pixel_values')) <= 1e-6, 'pixel values');
      const embeds = await ip.adapter.encode(picture);
      const expected = floats(NAME, golden, 'image_embeds');
      assert.deepEqual(embeds.dims, [1, 1, ...tensor(NAME, golden, 'image_embeds').shape.slice(1)]);
      assert.ok(maxAbsDiff(embeds.data, expected) <= 1e-5, `hidden states: ${maxAbsDiff(embeds.data, expected)}`);
      if (golden.do_classifier_free_guidance) {
        const negative = await ip.adapter.negativeEmbeds(embeds);
        const diff = maxAbsDiff(negative.data, floats(NAME, golden, 'negative_image_embeds'));
        assert.ok(diff <= 1e-5, `negative hidden states: ${diff}`);
        assert.ok(maxAbs(negative.data) > 0.1, 'plus adapters do not take zeros on the negative side');
      }
      await checkIpAdapterGeneration(pipeline, ip, NAME, golden, picture);
    });
  }
});

test('the plus description names the variant and the encoder output it needs', () => {
  const description = JSON.parse(readFileSync(join(adapterDir, 'latentblend-ip-adapter.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(description.format, 'latentblend-ip-adapter');
  assert.equal(description.variant, 'plus');
  assert.equal(entry.variant, 'plus');
  assert.equal(description.image_encoder_output, 'penultimate_hidden_states');
  assert.equal(inspectIpAdapterFolder(nodePlatform.files, adapterDir).variant, 'plus');
});

test('an IP-Adapter variant other than plain and plus is refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lb-ip-variant-'));
  try {
    cpSync(adapterDir, dir, { recursive: true, dereference: true });
    const path = join(dir, 'latentblend-ip-adapter.json');
    const description = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...description, variant: 'faceid' }));
    assert.throws(
      () => inspectIpAdapterFolder(nodePlatform.files, dir),
      (error: unknown) => error instanceof LatentBlendError && /variant "faceid" is not supported \(plain and plus only\)/.test(error.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
