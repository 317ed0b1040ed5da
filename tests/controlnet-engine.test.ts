/**
 * ControlNet in the blending engine (tiny-sd15 + its tiny ControlNet): one control picture per
 * transition or one per keyframe, determinism, save/refine/continue, and refusals before any
 * UNet call.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import type { LoadedControlNet } from '../src/pipeline/controlnet.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import { canny } from '../src/image/canny.ts';
import { saveTransition, loadTransition, modelStamp } from '../src/io/store.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { FIXTURES, maxAbsDiff, modelDir } from './helpers/golden.ts';
import { rmsMetric, SMALL_TRANSITION } from './helpers/engine.ts';
import { nodePlatform } from '../src/node/platform.ts';

const metric = rmsMetric;

const PICTURES = join(FIXTURES, 'goldens', 'tiny-sd15-controlnet');
const options = {
  ...SMALL_TRANSITION,
  parentalCrossfeed: { power: 0, range: 0, decay: 0 },
};

let pipeline: DiffusionPipeline;
let control: LoadedControlNet;
let pictureA: RgbImage;
let pictureB: RgbImage;
const scratch = mkdtempSync(join(tmpdir(), 'latentblend-cn-'));

before(async () => {
  pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), scheduler: 'DDIMScheduler' });
  control = await pipeline.loadControlNet(join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx'));
  pictureA = await readControlPicture(join(PICTURES, 'control-64.png'));
  pictureB = canny(await readControlPicture(join(PICTURES, 'control-96x80.png')), { low: 30, high: 60 });
});
after(async () => {
  for (const model of [...pipeline.models, ...control.models]) await model.session.release();
  rmSync(scratch, { recursive: true, force: true });
});

const generateWith = (prompt: string, seed: number, picture: RgbImage, scale: number) =>
  pipeline.generate({ prompt, seed, steps: 4, guidanceScale: 3, width: 64, height: 64, control: { controlNet: control.controlNet, picture, scale } });

describe('transitions with a ControlNet', () => {
  test('one picture: the keyframes are what generate gives with that picture, and the ControlNet changes them', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const result = await engine.runTransition({ ...options, maxBranches: 3 }, { controlNet: { controlNet: control.controlNet, pictureA, scaleA: 0.9 } });
    const a = await generateWith(options.keyframeA.prompt, 11, pictureA, 0.9);
    const b = await generateWith(options.keyframeB.prompt, 22, pictureA, 0.9);
    assert.deepEqual(result.frames[0]!.image.data, a.image.data, 'frame A');
    assert.deepEqual(result.frames.at(-1)!.image.data, b.image.data, 'frame B');
    const plain = await engine.runTransition({ ...options, maxBranches: 3 });
    assert.ok(maxAbsDiff(plain.frames[0]!.image.data, result.frames[0]!.image.data) > 10, 'the ControlNet acts on the frames');
    assert.equal(result.control?.pictureB, null);
    assert.equal(result.control?.scaleA, 0.9);
  });

  test('one picture per keyframe: ends match generate with their own picture and scale; branches between cost two ControlNet rows per UNet row', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const before = control.controlNet.evaluations;
    const settings = { controlNet: control.controlNet, pictureA, pictureB, scaleA: 1.2, scaleB: 0.6 };
    const result = await engine.runTransition({ ...options, maxBranches: 4 }, { controlNet: settings });
    const controlRows = control.controlNet.evaluations - before;
    const a = await generateWith(options.keyframeA.prompt, 11, pictureA, 1.2);
    const b = await generateWith(options.keyframeB.prompt, 22, pictureB, 0.6);
    assert.deepEqual(result.frames[0]!.image.data, a.image.data, 'frame A: picture A at scale A');
    assert.deepEqual(result.frames.at(-1)!.image.data, b.image.data, 'frame B: picture B at scale B');
    // keyframes: 4 steps x 2 rows (guidance) with one picture; 2 branches from k0 with two pictures
    const middleRows = result.frames.slice(1, -1).reduce((sum, frame) => sum + (4 - frame.injectionStep) * 2, 0);
    assert.ok(middleRows > 0);
    assert.equal(controlRows, 2 * 4 * 2 + 2 * middleRows);
    assert.equal(result.stats.unetEvaluations, 2 * 4 * 2 + middleRows, 'one UNet row per ControlNet mix');
  });

  test('the same picture for both keyframes gives the one-picture transition (residuals mixed by fract)', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const one = await engine.runTransition({ ...options, maxBranches: 4 }, { controlNet: { controlNet: control.controlNet, pictureA, scaleA: 0.8 } });
    const two = await engine.runTransition({ ...options, maxBranches: 4 }, { controlNet: { controlNet: control.controlNet, pictureA, pictureB: pictureA, scaleA: 0.8 } });
    assert.deepEqual(one.frames.map((frame) => frame.fract), two.frames.map((frame) => frame.fract));
    one.frames.forEach((frame, index) => assert.ok(maxAbsDiff(frame.image.data, two.frames[index]!.image.data) <= 1, `frame ${index}`));
  });

  test('batched branches (batchSize 2) give the frames of one-at-a-time branches', async () => {
    const settings = { controlNet: control.controlNet, pictureA, pictureB, scaleA: 1, scaleB: 0.6 };
    const single = await new BlendingEngine(pipeline, metric).runTransition({ ...options, maxBranches: 4 }, { controlNet: settings });
    const batched = await new BlendingEngine(pipeline, metric).runTransition({ ...options, maxBranches: 4, batchSize: 2 }, { controlNet: settings });
    assert.deepEqual(batched.frames.map((frame) => frame.fract), single.frames.map((frame) => frame.fract));
    assert.ok(batched.stats.unetCalls < single.stats.unetCalls, 'fewer UNet calls');
    batched.frames.forEach((frame, index) => assert.ok(maxAbsDiff(frame.image.data, single.frames[index]!.image.data) <= 1, `frame ${index}`));
  });

  test('the same settings give bit-identical frames twice', async () => {
    const settings = { controlNet: control.controlNet, pictureA, pictureB, scaleA: 1, scaleB: 0.5, guidanceEnd: 0.75 };
    const first = await new BlendingEngine(pipeline, metric).runTransition({ ...options, maxBranches: 5 }, { controlNet: settings });
    const second = await new BlendingEngine(pipeline, metric).runTransition({ ...options, maxBranches: 5 }, { controlNet: { ...settings } });
    assert.deepEqual(first.frames.map((frame) => frame.fract), second.frames.map((frame) => frame.fract));
    first.frames.forEach((frame, index) => assert.deepEqual(frame.image.data, second.frames[index]!.image.data, `frame ${index}`));
  });

  test('saved and loaded, a ControlNet transition refines only with the same control; a film continues only from the same control', async () => {
    const engine = new BlendingEngine(pipeline, metric);
    const settings = { controlNet: control.controlNet, pictureA, pictureB, scaleA: 1, scaleB: 0.7 };
    const base = await engine.runTransition({ ...options, maxBranches: 3 }, { controlNet: settings });
    const dir = join(scratch, 'saved');
    await saveTransition(dir, base, modelStamp('tiny-sd15', pipeline, pipeline.latentShape(64, 64)));
    const { transition } = await loadTransition(dir);
    assert.deepEqual(transition.control, base.control, 'the control summary is saved');
    const calls = pipeline.unet.calls;
    await assert.rejects(engine.refine(transition, 2), /computed with a ControlNet/);
    await assert.rejects(engine.refine(transition, 2, { controlNet: { ...settings, scaleB: 0.9 } }), /same ControlNet, control pictures, scales/);
    assert.equal(pipeline.unet.calls, calls, 'refused before any UNet call');
    const refined = await engine.refine(transition, 2, { controlNet: settings });
    assert.equal(refined.frames.length, 5);
    assert.deepEqual(refined.control, base.control);
    // continuation: keyframe B of `base` was made with picture B at 0.7
    const nextOptions = { ...options, keyframeA: options.keyframeB, keyframeB: { prompt: 'a desert', seed: 33 }, maxBranches: 2 };
    await assert.rejects(
      engine.runTransition(nextOptions, { startFrom: base, controlNet: { controlNet: control.controlNet, pictureA, scaleA: 0.7 } }),
      /control of the shared keyframe differs/,
    );
    const next = await engine.runTransition(nextOptions, { startFrom: base, controlNet: { controlNet: control.controlNet, pictureA: pictureB, scaleA: 0.7 } });
    assert.deepEqual(next.frames[0]!.image.data, base.frames.at(-1)!.image.data);
    assert.equal(next.stats.unetEvaluations, 4 * 2, 'only keyframe B is computed');
  });
});

describe('refusals before any UNet call', () => {
  test('a ControlNet of another family, or a model without unet_controlnet, is refused at load', async () => {
    const calls = pipeline.unet.calls;
    await assert.rejects(pipeline.loadControlNet(join(FIXTURES, 'models', 'tiny-sdxl-controlnet', 'onnx')), /is for SDXL models but the model is SD 1\.x\/2\.x.*text conditioning is 72 wide but the model's UNet takes 32/);
    await assert.rejects(pipeline.loadControlNet(modelDir('tiny-sd15')), /text-to-image model, not a ControlNet/);
    await assert.rejects(pipeline.loadControlNet(join(scratch, 'nothing')), /does not exist/);
    const turbo = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
    try {
      await assert.rejects(turbo.loadControlNet(join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx')), /has no unet_controlnet\/model\.onnx.*export_controlnet\.py unet/);
    } finally {
      for (const model of turbo.models) await model.session.release();
    }
    assert.equal(pipeline.unet.calls, calls);
  });

  test('bad control pictures and settings are refused with the file or key named', async () => {
    const text = join(scratch, 'not-a-picture.png');
    writeFileSync(text, 'hello');
    await assert.rejects(readControlPicture(text), (error: Error) => error.name === 'LatentBlendError' && error.message.includes(text) && /not a picture/.test(error.message));
    await assert.rejects(readControlPicture(join(scratch, 'missing.png')), /does not exist/);
    const engine = new BlendingEngine(pipeline, metric);
    const calls = pipeline.unet.calls;
    const broken = { width: 10, height: 10, data: new Uint8Array(12) };
    await assert.rejects(engine.runTransition(options, { controlNet: { controlNet: control.controlNet, pictureA: broken } }), /pictureA: expected an RGB8 picture/);
    await assert.rejects(engine.runTransition(options, { controlNet: { controlNet: control.controlNet, pictureA, scaleA: 9 } }), /scaleA: expected a ControlNet conditioning scale from 0 to 5/);
    await assert.rejects(
      engine.runTransition(options, { controlNet: { controlNet: control.controlNet, pictureA, guidanceStart: 0.6, guidanceEnd: 0.4 } }),
      /control guidance start \(0\.6\) must be below its end \(0\.4\)/,
    );
    assert.equal(pipeline.unet.calls, calls, 'no UNet call');
  });
});
