/** IP-Adapter image prompts in the blending engine (tiny-sd15 + its tiny IP-Adapter). */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import type { LoadedIpAdapter } from '../src/pipeline/ip-adapter.ts';
import type { LoadedControlNet } from '../src/pipeline/controlnet.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import { saveTransition, loadTransition, modelStamp } from '../src/io/store.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { FIXTURES, maxAbsDiff, modelDir } from './helpers/golden.ts';
import { rmsMetric, SMALL_TRANSITION } from './helpers/engine.ts';
import { nodePlatform } from '../src/node/platform.ts';

const metric = rmsMetric;
const IP_DIR = join(FIXTURES, 'models', 'tiny-sd15-ip-adapter', 'onnx');
const options = {
  ...SMALL_TRANSITION,
  maxBranches: 4,
};

let pipeline: DiffusionPipeline;
let ip: LoadedIpAdapter;
let pictureA: RgbImage;
let pictureB: RgbImage;
const scratch = mkdtempSync(join(tmpdir(), 'latentblend-ip-'));
before(async () => {
  pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), scheduler: 'DDIMScheduler' });
  ip = await pipeline.loadIpAdapter(IP_DIR);
  pictureA = await readControlPicture(join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-a.png'));
  pictureB = await readControlPicture(join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-b.png'));
});
after(async () => {
  for (const model of [...pipeline.models, ...ip.models]) await model.session.release();
  rmSync(scratch, { recursive: true, force: true });
});

describe('transitions with image prompts', () => {
  test('the keyframes are what generate gives with their image prompt; between them the prompts blend at no extra UNet cost', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const settings = { adapter: ip.adapter, pictureA, pictureB, scaleA: 0.9, scaleB: 0.5 };
    const result = await engine.runTransition(options, { ipAdapter: settings });
    const a = await pipeline.generate({ prompt: options.keyframeA.prompt, seed: 11, steps: 4, guidanceScale: 3, width: 64, height: 64, ipAdapter: { adapter: ip.adapter, picture: pictureA, scale: 0.9 } });
    const b = await pipeline.generate({ prompt: options.keyframeB.prompt, seed: 22, steps: 4, guidanceScale: 3, width: 64, height: 64, ipAdapter: { adapter: ip.adapter, picture: pictureB, scale: 0.5 } });
    assert.deepEqual(result.frames[0]!.image.data, a.image.data, 'frame A');
    assert.deepEqual(result.frames.at(-1)!.image.data, b.image.data, 'frame B');
    const plain = await engine.runTransition(options);
    assert.equal(result.stats.unetEvaluations, plain.stats.unetEvaluations, 'same UNet work as without image prompts');
    assert.deepEqual(result.frames.map((f) => f.fract), result.frames.map((f) => f.fract).sort((x, y) => x - y));
    assert.ok(maxAbsDiff(result.frames[1]!.image.data, plain.frames[1]!.image.data) > 5, 'the image prompts act on the branches');
    assert.equal(result.ipAdapter?.scaleB, 0.5);
  });

  test('one picture for both keyframes equals giving it twice; the same settings give identical frames', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const once = await engine.runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA, scaleA: 0.7 } });
    const twice = await engine.runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA, pictureB: pictureA, scaleA: 0.7 } });
    once.frames.forEach((frame, index) => assert.ok(maxAbsDiff(frame.image.data, twice.frames[index]!.image.data) <= 1, `frame ${index}`));
    const again = await new BlendingEngine(pipeline, metric).runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA, scaleA: 0.7 } });
    once.frames.forEach((frame, index) => assert.deepEqual(frame.image.data, again.frames[index]!.image.data, `frame ${index} deterministic`));
  });

  test('saved, refined only with the same image prompts; a film continues only from the same one', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const settings = { adapter: ip.adapter, pictureA, pictureB, scaleA: 1, scaleB: 0.6 };
    const base = await engine.runTransition({ ...options, maxBranches: 3 }, { ipAdapter: settings });
    const dir = join(scratch, 'saved');
    await saveTransition(dir, base, modelStamp('tiny-sd15', pipeline, pipeline.latentShape(64, 64)));
    const { transition } = await loadTransition(dir);
    assert.deepEqual(transition.ipAdapter, base.ipAdapter);
    const calls = pipeline.unet.calls;
    await assert.rejects(engine.refine(transition, 1), /computed with an IP-Adapter/);
    await assert.rejects(engine.refine(transition, 1, { ipAdapter: { ...settings, pictureB: pictureA } }), /same IP-Adapter, image prompts and scales/);
    assert.equal(pipeline.unet.calls, calls);
    const refined = await engine.refine(transition, 1, { ipAdapter: settings });
    assert.equal(refined.frames.length, 4);
    const next = { ...options, keyframeA: options.keyframeB, keyframeB: { prompt: 'a desert', seed: 33 }, maxBranches: 2 };
    await assert.rejects(engine.runTransition(next, { startFrom: base }), /image prompt of the shared keyframe differs/);
    const continued = await engine.runTransition(next, { startFrom: base, ipAdapter: { adapter: ip.adapter, pictureA: pictureB, scaleA: 0.6 } });
    assert.deepEqual(continued.frames[0]!.image.data, base.frames.at(-1)!.image.data);
  });
});

describe('refusals before any UNet call', () => {
  test('an IP-Adapter for another model, a ControlNet together with one, bad settings', async () => {
    const calls = pipeline.unet.calls;
    const copy = join(scratch, 'xl-ip');
    cpSync(IP_DIR, copy, { recursive: true });
    const description = JSON.parse(readFileSync(join(IP_DIR, 'latentblend-ip-adapter.json'), 'utf8'));
    writeFileSync(join(copy, 'latentblend-ip-adapter.json'), JSON.stringify({ ...description, family: 'sdxl' }));
    await assert.rejects(pipeline.loadIpAdapter(copy), /is for SDXL models but the model is SD 1\.x\/2\.x/);
    await assert.rejects(pipeline.loadIpAdapter(join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx')), /latentblend-ip-adapter\.json: expected the IP-Adapter description/);
    const sdxl = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sdxl') });
    try {
      await assert.rejects(sdxl.loadIpAdapter(IP_DIR), /is for SD 1\.x\/2\.x models but the model is SDXL/);
    } finally {
      for (const model of sdxl.models) await model.session.release();
    }
    const engine = new BlendingEngine(pipeline, metric);
    let control: LoadedControlNet | undefined;
    try {
      control = await pipeline.loadControlNet(join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx'));
      await assert.rejects(
        engine.runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA }, controlNet: { controlNet: control.controlNet, pictureA } }),
        /ControlNet and an IP-Adapter together are not supported/,
      );
      await assert.rejects(
        pipeline.generate({ prompt: 'x', steps: 4, width: 64, height: 64, control: { controlNet: control.controlNet, picture: pictureA }, ipAdapter: { adapter: ip.adapter, picture: pictureA } }),
        /ControlNet and an IP-Adapter together are not supported yet/,
      );
    } finally {
      if (control !== undefined) await control.controlNet.model.session.release();
    }
    await assert.rejects(engine.runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA, scaleA: -1 } }), /scaleA: expected an IP-Adapter scale from 0 to 5/);
    await assert.rejects(engine.runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA: { width: 3, height: 3, data: new Uint8Array(2) } } }), /pictureA: expected an RGB8 picture/);
    assert.equal(pipeline.unet.calls, calls, 'no UNet call');
  });
});
