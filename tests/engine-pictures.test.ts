/** Picture keyframes in the engine: exact ends, same picture, picture ↔ prompt, both trajectory methods. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine, pictureEndStep, type Transition } from '../src/engine/engine.ts';
import type { SimilarityMetric } from '../src/engine/metric.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { readPicture, pictureHash } from '../src/io/picture.ts';
import { LatentBlendError } from '../src/errors.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

class RmsMetric implements SimilarityMetric {
  readonly name = 'rms';
  async distance(a: RgbImage, b: RgbImage): Promise<number> {
    let sum = 0;
    for (let i = 0; i < a.data.length; i++) sum += ((a.data[i]! - b.data[i]!) / 255) ** 2;
    return Math.sqrt(sum / a.data.length);
  }
}

/** The end jump: distance of each end frame to its neighbour over the median neighbour distance. */
function endJumps(transition: Transition): { start: number; end: number } {
  const gaps = [...transition.tree.gapDistances];
  const sorted = [...gaps].sort((x, y) => x - y);
  const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return { start: gaps[0]! / median, end: gaps.at(-1)! / median };
}

let dir = '';
let pictureA = '';
let pictureB = '';
let turbo: DiffusionPipeline;
let sd15: DiffusionPipeline;

async function writePicture(path: string, hue: number): Promise<void> {
  const data = Buffer.alloc(80 * 64 * 3);
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 80; x++) {
      const disc = (x - 40) ** 2 + (y - 28) ** 2 < 300 ? 1 : 0;
      data.set([(hue + x * 2) % 256, 60 + y * 2 + disc * 80, 200 - disc * 150], (y * 80 + x) * 3);
    }
  }
  await sharp(data, { raw: { width: 80, height: 64, channels: 3 } }).png().toFile(path);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latentblend-engine-pictures-'));
  pictureA = join(dir, 'a.png');
  pictureB = join(dir, 'b.png');
  await writePicture(pictureA, 0);
  await writePicture(pictureB, 140);
  turbo = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sdxl-turbo') });
  sd15 = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), scheduler: 'DDIMScheduler' });
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const pipeline of [turbo, sd15]) for (const onnx of pipeline.models) await onnx.session.release();
});

async function roundTrip(pipeline: DiffusionPipeline, path: string): Promise<RgbImage> {
  const image = await readPicture(path, { width: 64, height: 64, fit: 'cover' });
  return pipeline.vae.decode(await pipeline.vae.encode(image), pipeline.latentShape(64, 64));
}

describe('picture keyframes', () => {
  test('the end frames are decode(encode(picture)), bit for bit; a prompt end is the plain image', async () => {
    const engine = new BlendingEngine(turbo, new RmsMetric());
    const result = await engine.runTransition({
      keyframeA: { prompt: '', seed: 5, image: { path: pictureA } },
      keyframeB: { prompt: 'a green forest at night', seed: 22 },
      maxBranches: 5,
    });
    assert.deepEqual(Buffer.from(result.frames[0]!.image.data), Buffer.from((await roundTrip(turbo, pictureA)).data), 'first frame');
    const plain = await turbo.generate({ prompt: 'a green forest at night', seed: 22 });
    assert.deepEqual(Buffer.from(result.frames.at(-1)!.image.data), Buffer.from(plain.image.data), 'prompt keyframe B unchanged');
    assert.equal(result.options.keyframeA.image?.method, 'noise', 'Turbo preset: noise by default');
    assert.equal(result.options.keyframeA.image?.hash, await pictureHash(pictureA), 'content hash recorded');
    assert.equal(result.frames.length, 5);
    // Keyframe A costs no UNet call: B (4 steps) and the branches (from their injection step on).
    const branchCalls = result.frames.slice(1, -1).reduce((sum, frame) => sum + (4 - frame.injectionStep), 0);
    assert.equal(result.stats.unetCalls, 4 + branchCalls);
    // Branches next to the picture start one step deeper than their inner neighbour (graded end).
    const steps = result.frames.map((frame) => frame.injectionStep);
    assert.equal(steps[0], 0);
    assert.ok(steps.slice(1, -1).every((step) => step === 2 || step === 3), `injection steps ${steps.join(',')}`);
    if (steps[2] !== 0 && steps[1] !== 2) assert.equal(steps[1], Math.min(3, steps[2]! + 1), 'graded towards the picture');
    assert.equal(result.stats.inversionUnetCalls, undefined);
  });

  test('picture → same picture with the same seed: identical first and last frames', async () => {
    const engine = new BlendingEngine(turbo, new RmsMetric());
    const keyframe = { prompt: 'a photo', seed: 9, image: { path: pictureB } };
    const result = await engine.runTransition({ keyframeA: keyframe, keyframeB: keyframe, maxBranches: 3 });
    assert.deepEqual(Buffer.from(result.frames[0]!.image.data), Buffer.from(result.frames.at(-1)!.image.data));
    assert.deepEqual(Buffer.from(result.frames[0]!.image.data), Buffer.from((await roundTrip(turbo, pictureB)).data));
  });

  test('inversion (default for standard models): N - 1 UNet calls per picture, reported; exact ends', async () => {
    const engine = new BlendingEngine(sd15, new RmsMetric());
    const steps = 6;
    const result = await engine.runTransition({
      keyframeA: { prompt: 'a house', seed: 1, image: { path: pictureA } },
      keyframeB: { prompt: 'a forest', seed: 2, image: { path: pictureB, fit: 'contain' } },
      steps,
      guidanceScale: 1,
      maxBranches: 4,
    });
    assert.equal(result.options.keyframeA.image?.method, 'inversion');
    assert.equal(result.stats.inversionUnetCalls, 2 * (steps - 1));
    const branchCalls = result.frames.slice(1, -1).reduce((sum, frame) => sum + (steps - frame.injectionStep), 0);
    assert.equal(result.stats.unetCalls, 2 * (steps - 1) + branchCalls, 'inversion calls are counted in unetCalls');
    assert.deepEqual(Buffer.from(result.frames[0]!.image.data), Buffer.from((await roundTrip(sd15, pictureA)).data));
    const contained = await readPicture(pictureB, { width: 64, height: 64, fit: 'contain' });
    const endB = await sd15.vae.decode(await sd15.vae.encode(contained), sd15.latentShape(64, 64));
    assert.deepEqual(Buffer.from(result.frames.at(-1)!.image.data), Buffer.from(endB.data), 'fit: contain');
  });

  test('end-gap injection steps: one deeper than the inner neighbour next to a picture end, the plan elsewhere', () => {
    const branch = (fract: number, injectionStep: number) => ({ fract, injectionStep, latents: [] as Float32Array[] });
    const tree = { numInferenceSteps: 10, branches: [branch(0, 0), branch(0.25, 6), branch(0.5, 5), branch(1, 0)], gapDistances: [1, 1, 1] };
    const options = (a: boolean, b: boolean) =>
      ({ keyframeA: { prompt: '', seed: 0, ...(a ? { image: { path: 'a.png', fit: 'cover' as const } } : {}) }, keyframeB: { prompt: '', seed: 1, ...(b ? { image: { path: 'b.png', fit: 'cover' as const } } : {}) } }) as unknown as Transition['options'];
    assert.equal(pictureEndStep({ options: options(true, false), steps: 10 }, tree, 0, 5), 7, 'next to picture A: inner step 6 + 1');
    assert.equal(pictureEndStep({ options: options(false, false), steps: 10 }, tree, 0, 5), 5, 'prompt keyframes: the plan');
    assert.equal(pictureEndStep({ options: options(true, false), steps: 10 }, tree, 1, 5), 5, 'inner gaps: the plan');
    assert.equal(pictureEndStep({ options: options(false, true), steps: 10 }, tree, 2, 4), 6, 'next to picture B: inner step 5 + 1');
    const deep = { ...tree, branches: [branch(0, 0), branch(0.1, 9), branch(0.5, 5), branch(1, 0)] };
    assert.equal(pictureEndStep({ options: options(true, true), steps: 10 }, deep, 0, 5), 9, 'at most N - 1');
    const first = { ...tree, branches: [branch(0, 0), branch(1, 0)], gapDistances: [1] };
    assert.equal(pictureEndStep({ options: options(true, true), steps: 10 }, first, 0, 5), 5, 'the first branch: the plan');
  });

  test('a picture whose content changed since its hash was taken is refused', async () => {
    const engine = new BlendingEngine(turbo, new RmsMetric());
    await assert.rejects(
      engine.runTransition({
        keyframeA: { prompt: '', seed: 1, image: { path: pictureA, hash: '0'.repeat(64) } },
        keyframeB: { prompt: 'x', seed: 2 },
        maxBranches: 2,
      }),
      (error: Error) => error instanceof LatentBlendError && /a\.png: the picture changed/.test(error.message),
    );
    await assert.rejects(
      engine.runTransition({ keyframeA: { prompt: '', seed: 1, image: { path: join(dir, 'missing.png') } }, keyframeB: { prompt: 'x', seed: 2 }, maxBranches: 2 }),
      (error: Error) => error instanceof LatentBlendError && /missing\.png: cannot read the picture/.test(error.message),
    );
    // A truncated picture B is found before picture A is inverted: no UNet call is spent.
    const whole = await sharp(pictureB).toBuffer();
    writeFileSync(join(dir, 'truncated.png'), whole.subarray(0, whole.length - 60));
    const calls = sd15.unet.calls;
    await assert.rejects(
      new BlendingEngine(sd15, new RmsMetric()).runTransition({
        keyframeA: { prompt: 'a house', seed: 1, image: { path: pictureA, method: 'inversion' } },
        keyframeB: { prompt: '', seed: 2, image: { path: join(dir, 'truncated.png') } },
        steps: 4,
        maxBranches: 2,
      }),
      (error: Error) => error instanceof LatentBlendError && /truncated\.png: the picture cannot be decoded/.test(error.message),
    );
    assert.equal(sd15.unet.calls, calls, 'no UNet call before the pictures are read');
  });

  test('end jump of both methods, measured (end frame ↔ neighbour over the median neighbour distance)', async (t) => {
    for (const [name, pipeline, steps] of [
      ['tiny-sdxl-turbo', turbo, undefined],
      ['tiny-sd15 (DDIM)', sd15, 10],
    ] as const) {
      for (const method of ['noise', 'inversion'] as const) {
        const result = await new BlendingEngine(pipeline, new RmsMetric()).runTransition({
          keyframeA: { prompt: 'a house', seed: 3, image: { path: pictureA, method } },
          keyframeB: { prompt: 'a forest', seed: 4, image: { path: pictureB, method } },
          ...(steps !== undefined ? { steps, guidanceScale: 1 } : {}),
          maxBranches: 9,
        });
        const jumps = endJumps(result);
        t.diagnostic(`${name} ${method}: start ${jumps.start.toFixed(2)}, end ${jumps.end.toFixed(2)} × median gap; injection steps ${result.frames.map((f) => f.injectionStep).join(',')}`);
        assert.ok(Number.isFinite(jumps.start) && Number.isFinite(jumps.end));
      }
    }
  });
});
