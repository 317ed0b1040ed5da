/** "Plus" IP-Adapter image prompts in the blending engine (tiny-sd15 + tiny-sd15-ip-adapter-plus). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import type { LoadedIpAdapter } from '../src/pipeline/ip-adapter.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { FIXTURES, maxAbsDiff, modelDir } from './helpers/golden.ts';
import { rmsMetric, SMALL_TRANSITION } from './helpers/engine.ts';
import { nodePlatform } from '../src/node/platform.ts';

const options = { ...SMALL_TRANSITION, maxBranches: 4 };
let pipeline: DiffusionPipeline;
let ip: LoadedIpAdapter;
let pictureA: RgbImage;
let pictureB: RgbImage;
before(async () => {
  pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), scheduler: 'DDIMScheduler' });
  ip = await pipeline.loadIpAdapter(join(FIXTURES, 'models', 'tiny-sd15-ip-adapter-plus', 'onnx'));
  pictureA = await readControlPicture(join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-a.png'));
  pictureB = await readControlPicture(join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-b.png'));
});
after(async () => {
  for (const model of [...pipeline.models, ...ip.models]) await model.session.release();
});

test('a transition with plus image prompts: its keyframes are what generate gives (guided, so the negative side is the encoding of zero pixels)', async () => {
  assert.ok(SMALL_TRANSITION.guidanceScale > 1, 'the check needs classifier-free guidance');
  const engine = new BlendingEngine(pipeline, rmsMetric);
  const result = await engine.runTransition(options, { ipAdapter: { adapter: ip.adapter, pictureA, pictureB, scaleA: 0.9, scaleB: 0.5 } });
  const common = { steps: SMALL_TRANSITION.steps, guidanceScale: SMALL_TRANSITION.guidanceScale, width: SMALL_TRANSITION.width, height: SMALL_TRANSITION.height };
  const a = await pipeline.generate({ ...common, prompt: options.keyframeA.prompt, seed: options.keyframeA.seed, ipAdapter: { adapter: ip.adapter, picture: pictureA, scale: 0.9 } });
  const b = await pipeline.generate({ ...common, prompt: options.keyframeB.prompt, seed: options.keyframeB.seed, ipAdapter: { adapter: ip.adapter, picture: pictureB, scale: 0.5 } });
  assert.deepEqual(result.frames[0]!.image.data, a.image.data, 'frame A');
  assert.deepEqual(result.frames.at(-1)!.image.data, b.image.data, 'frame B');
  const plain = await engine.runTransition(options);
  assert.equal(result.stats.unetEvaluations, plain.stats.unetEvaluations, 'same UNet work as without image prompts');
  assert.ok(maxAbsDiff(result.frames[1]!.image.data, plain.frames[1]!.image.data) > 5, 'the image prompts act on the branches');
});
