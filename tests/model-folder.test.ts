/** Model folders: family and preset come from metadata; broken folders get errors naming the file. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectModelFolder } from '../src/model/folder.ts';
import { modelDefaults } from '../src/model/preset.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { LatentBlendError } from '../src/errors.ts';
import { modelDir, readJson } from './helpers/golden.ts';
import { nodeFiles, nodePlatform } from '../src/node/platform.ts';

describe('family and preset from the model metadata', () => {
  const index = readJson<{ models: Record<string, { family: string; turbo: boolean }> }>('index.json').models;
  for (const [model, facts] of Object.entries(index)) {
    test(model, () => {
      const folder = inspectModelFolder(nodeFiles, modelDir(model));
      assert.equal(folder.family, facts.family.startsWith('sdxl') ? 'sdxl' : 'sd');
      const defaults = modelDefaults(folder);
      assert.equal(defaults.preset, facts.turbo ? 'turbo' : 'standard');
      assert.equal(defaults.steps, facts.turbo ? 4 : 30);
      assert.equal(defaults.guidanceScale, facts.turbo ? 0 : 4);
      assert.equal(defaults.vaeScaleFactor, 8);
      assert.equal(defaults.width, 64, 'UNet sample size 8 times VAE scale 8');
      assert.equal(modelDefaults(folder, facts.turbo ? 'standard' : 'turbo').preset, facts.turbo ? 'standard' : 'turbo', 'explicit preset wins');
    });
  }

  test('a copy of a Turbo model under a name without "turbo" is still Turbo, and the reverse', () => {
    const work = mkdtempSync(join(tmpdir(), 'latentblend-name-'));
    cpSync(modelDir('tiny-sdxl-turbo'), join(work, 'plain-model'), { recursive: true });
    cpSync(modelDir('tiny-sdxl'), join(work, 'my-turbo-model'), { recursive: true });
    assert.equal(modelDefaults(inspectModelFolder(nodeFiles, join(work, 'plain-model'))).preset, 'turbo');
    assert.equal(modelDefaults(inspectModelFolder(nodeFiles, join(work, 'my-turbo-model'))).preset, 'standard');
    rmSync(work, { recursive: true, force: true });
  });
});

describe('broken model folders', () => {
  const breakages: [string, (dir: string) => void, RegExp][] = [
    ['missing model_index.json', (dir) => rmSync(join(dir, 'model_index.json')), /model_index\.json: expected the pipeline's model_index\.json/],
    ['model_index.json is not JSON', (dir) => writeFileSync(join(dir, 'model_index.json'), '{oops'), /model_index\.json is not valid JSON/],
    ['missing UNet', (dir) => rmSync(join(dir, 'unet', 'model.onnx')), /unet\/model\.onnx: expected the UNet as an ONNX model/],
    ['UNet is a safetensors file', (dir) => writeFileSync(join(dir, 'unet', 'model.onnx'), Buffer.concat([Buffer.alloc(8, 1), Buffer.from('{"__metadata__":{}}')])), /unet\/model\.onnx is a safetensors checkpoint: expected the UNet/],
    ['VAE decoder is a Git LFS pointer', (dir) => writeFileSync(join(dir, 'vae_decoder', 'model.onnx'), 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\n'), /vae_decoder\/model\.onnx is a Git LFS pointer/],
    ['second text encoder missing', (dir) => rmSync(join(dir, 'text_encoder_2', 'model.onnx')), /text_encoder_2\/model\.onnx: expected the text encoder 2/],
    ['tokenizer files missing', (dir) => { rmSync(join(dir, 'tokenizer_2', 'vocab.json')); }, /tokenizer_2 has neither tokenizer\.json nor vocab\.json \+ merges\.txt/],
    ['scheduler config without class', (dir) => writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), '{"num_train_timesteps": 1000}'), /scheduler_config\.json has no "_class_name"/],
    ['refiner-like folder (second encoder only)', (dir) => { rmSync(join(dir, 'text_encoder'), { recursive: true }); const index = JSON.parse(readFileSync(join(dir, 'model_index.json'), 'utf8')); index.text_encoder = [null, null]; writeFileSync(join(dir, 'model_index.json'), JSON.stringify(index)); }, /looks like an SDXL refiner/],
  ];
  for (const [name, breakIt, message] of breakages) {
    test(name, () => {
      const work = mkdtempSync(join(tmpdir(), 'latentblend-broken-'));
      const dir = join(work, 'model');
      cpSync(modelDir('tiny-sdxl-turbo'), dir, { recursive: true });
      breakIt(dir);
      assert.throws(() => inspectModelFolder(nodeFiles, dir), (error: unknown) => error instanceof LatentBlendError && message.test(error.message));
      rmSync(work, { recursive: true, force: true });
    });
  }

  test('an unsupported scheduler class lists the supported ones', async () => {
    const work = mkdtempSync(join(tmpdir(), 'latentblend-broken-'));
    const dir = join(work, 'model');
    cpSync(modelDir('tiny-sd15'), dir, { recursive: true });
    const configPath = join(dir, 'scheduler', 'scheduler_config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config._class_name = 'KDPM2AncestralDiscreteScheduler';
    writeFileSync(configPath, JSON.stringify(config));
    await assert.rejects(DiffusionPipeline.load(nodePlatform, { modelDir: dir }), (error: unknown) => {
      assert.ok(error instanceof LatentBlendError);
      assert.match(error.message, /KDPM2AncestralDiscreteScheduler .* is not supported; supported: /);
      for (const name of ['EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler', 'DDIMScheduler', 'LCMScheduler', 'DPMSolverMultistepScheduler', 'PNDMScheduler']) {
        assert.match(error.message, new RegExp(name));
      }
      return true;
    });
    // The same model loads when a supported scheduler is chosen explicitly.
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, scheduler: 'DDIMScheduler' });
    assert.equal(pipeline.scheduler(4).className, 'DDIMScheduler');
    rmSync(work, { recursive: true, force: true });
  });

  test('bad load options name the key and the value', async () => {
    await assert.rejects(DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), device: 'tpu' as never }), /device: expected one of cpu, cuda.*got "tpu"/);
    await assert.rejects(DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), preset: 'fast' as never }), /preset: expected one of turbo, standard, got "fast"/);
  });
});
