/** The blending engine on tiny fixtures: SPEC.md's algorithm, counted and replayed. */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine, type EngineEvent } from '../src/engine/engine.ts';
import type { SimilarityMetric } from '../src/engine/metric.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { denoise } from '../src/pipeline/denoise.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { slerp, lerp } from '../src/math/slerp.ts';
import { parentalCrossfeed } from '../src/blend/crossfeed.ts';
import { LatentBlendError } from '../src/errors.ts';
import { modelDir, FIXTURES } from './helpers/golden.ts';
import { loadLpipsMetric } from '../src/engine/metric.ts';
import { join } from 'node:path';
import { nodePlatform } from '../src/node/platform.ts';

/** RMS pixel distance that records every pair it measures. */
class SpyMetric implements SimilarityMetric {
  readonly name = 'spy-rms';
  calls = 0;
  async distance(a: RgbImage, b: RgbImage): Promise<number> {
    this.calls++;
    let sum = 0;
    for (let i = 0; i < a.data.length; i++) sum += ((a.data[i]! - b.data[i]!) / 255) ** 2;
    return Math.sqrt(sum / a.data.length);
  }
}

const turboOptions = {
  keyframeA: { prompt: 'a red house by the sea', seed: 11 },
  keyframeB: { prompt: 'a green forest at night', seed: 22 },
};

let turbo: DiffusionPipeline;
let sd15: DiffusionPipeline;
before(async () => {
  turbo = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sdxl-turbo') });
  sd15 = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd15'), scheduler: 'DDIMScheduler' });
});

describe('keyframes', () => {
  test('with crossfeed off, frames A and B equal plain generate images', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const result = await engine.runTransition({ ...turboOptions, maxBranches: 3, parentalCrossfeed: { power: 0, range: 0, decay: 0 } });
    const a = await turbo.generate({ prompt: turboOptions.keyframeA.prompt, seed: 11 });
    const b = await turbo.generate({ prompt: turboOptions.keyframeB.prompt, seed: 22 });
    assert.deepEqual(result.frames[0]!.image.data, a.image.data, 'frame A');
    assert.deepEqual(result.frames.at(-1)!.image.data, b.image.data, 'frame B');
    assert.equal(result.frames[0]!.fract, 0);
    assert.equal(result.frames.at(-1)!.fract, 1);
  });

  test('branch-1 crossfeed pulls B towards A', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const plain = await engine.runTransition({ ...turboOptions, maxBranches: 2 });
    const fed = await engine.runTransition({ ...turboOptions, maxBranches: 2, branch1Crossfeed: { power: 0.8, range: 1, decay: 1 } });
    const metric = new SpyMetric();
    const before = await metric.distance(plain.images[0]!, plain.images[1]!);
    const after = await metric.distance(fed.images[0]!, fed.images[1]!);
    assert.ok(after < before, `A–B distance ${after} should fall below ${before} with crossfeed`);
    assert.deepEqual(fed.images[0]!.data, plain.images[0]!.data, 'A itself is unchanged');
  });
});

describe('insertion', () => {
  test('maxBranches gives exactly that many frames, sorted by fract, injected at k0', async () => {
    for (const maxBranches of [2, 3, 7]) {
      const result = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches });
      assert.equal(result.frames.length, maxBranches);
      const fracts = result.frames.map((frame) => frame.fract);
      assert.deepEqual(fracts, [...fracts].sort((x, y) => x - y));
      assert.ok(result.frames.slice(1, -1).every((frame) => frame.injectionStep === 2), 'Turbo: every branch at k0 = 2 of 4');
    }
  });

  test('each branch goes into the gap whose neighbouring frames differ most', async () => {
    const events: EngineEvent[] = [];
    const metric = new SpyMetric();
    await new BlendingEngine(turbo, metric).runTransition({ ...turboOptions, maxBranches: 8 }, { onEvent: (event) => events.push(event) });
    const frames = events.filter((event): event is Extract<EngineEvent, { type: 'frame' }> => event.type === 'frame');
    assert.equal(frames.length, 8);
    // Replay: keep the frames in fract order, measure the gaps with an independent metric.
    const row: { fract: number; image: RgbImage }[] = [frames[0]!, frames[1]!].sort((x, y) => x.fract - y.fract);
    const check = new SpyMetric();
    for (const frame of frames.slice(2)) {
      const gaps: number[] = [];
      for (let i = 0; i + 1 < row.length; i++) gaps.push(await check.distance(row[i]!.image, row[i + 1]!.image));
      const largest = gaps.indexOf(Math.max(...gaps));
      assert.equal(frame.fract, (row[largest]!.fract + row[largest + 1]!.fract) / 2, 'midpoint of the largest gap');
      row.splice(largest + 1, 0, frame);
    }
    assert.equal(metric.calls, 1 + 2 * 6, 'one distance for A–B, two per branch');
  });

  test('a branch starts from the slerp of its parents at k-1 and follows the parental crossfeed (replayed by hand)', async () => {
    const parental = { power: 0.6, range: 1, decay: 0.5 };
    const result = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 3, parentalCrossfeed: parental });
    const [a, middle, b] = result.tree.branches;
    assert.equal(middle!.fract, 0.5);
    const k = middle!.injectionStep;
    // Replay SPEC.md 4d–e with the library's parts: parents A and B, t = 0.5.
    const scheduler = turbo.scheduler(4);
    const shape = turbo.latentShape(64, 64);
    const length = shape[0] * shape[1] * shape[2];
    const { positive: ca } = await turbo.encode(turboOptions.keyframeA.prompt, undefined, { width: 64, height: 64, guided: false });
    const { positive: cb } = await turbo.encode(turboOptions.keyframeB.prompt, undefined, { width: 64, height: 64, guided: false });
    const conditioning = new Map([...ca].map(([name, tensor]) => [name, { data: lerp(tensor.data, cb.get(name)!.data, 0.5), dims: tensor.dims }]));
    const mix = (i: number) => slerp(a!.latents[i]!, b!.latents[i]!, 0.5);
    const weights = parentalCrossfeed(4, k, parental);
    const noiseA = new KeyframeNoise(11);
    const noiseB = new KeyframeNoise(22);
    const replay = await denoise({
      unet: turbo.unet,
      scheduler,
      latentShape: shape,
      items: [{ latents: mix(k - 1), conditioning, guidanceScale: 0, stepNoise: (i) => slerp(noiseA.step(i, length), noiseB.step(i, length), 0.5) }],
      fromStep: k,
      toStep: 4,
      beforeStep: (i, latents) => (i > k && weights[i]! > 0 ? [slerp(latents[0]!, mix(i - 1), weights[i]!)] : undefined),
    });
    for (let i = k; i < 4; i++) assert.deepEqual(middle!.latents[i], replay.trajectories[0]![i - k], `latents after step ${i}`);
    assert.ok(middle!.latents.slice(0, k).every((latent) => latent === null), 'no latents before the injection step');
  });
});

describe('with the LPIPS fixture', () => {
  test('distances come from LPIPS through ONNX Runtime: one for A–B, two per branch', async () => {
    const metric = await loadLpipsMetric(nodePlatform, join(FIXTURES, 'lpips', 'tiny-lpips.onnx'), 'cpu');
    const result = await new BlendingEngine(turbo, metric).runTransition({ ...turboOptions, maxBranches: 5 });
    assert.equal(result.metric, 'lpips');
    assert.equal(result.stats.metricEvaluations, 1 + 2 * 3);
    const direct = await metric.distance(result.images[0]!, result.images[1]!);
    assert.ok(Math.abs(result.tree.gapDistances[0]! - direct) < 1e-6, 'the stored gap distance is the LPIPS distance of the two frames');
    assert.ok(result.tree.gapDistances.every((distance) => distance > 0));
    await metric.release?.();
  });
});

describe('counting and determinism', () => {
  test('UNet evaluations equal what the plan predicts (Turbo)', async () => {
    const result = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions });
    assert.equal(result.frames.length, 10, 'Turbo default: 10 frames');
    assert.equal(result.plan.unetEvaluations, 24, 'SPEC: 2*4 + 8*2');
    assert.equal(result.stats.unetEvaluations, result.plan.unetEvaluations);
    assert.equal(result.stats.decodes, 10);
  });

  test('UNet evaluations equal the plan with classifier-free guidance and a ladder (SD 1.5, DDIM)', async () => {
    const result = await new BlendingEngine(sd15, new SpyMetric()).runTransition({
      ...turboOptions,
      steps: 10,
      guidanceScale: 5,
      midDamper: 1,
      maxBranches: 9,
      negativePrompt: 'blurry',
    });
    assert.equal(result.frames.length, 9);
    assert.equal(result.plan.guidanceFactor, 2);
    assert.equal(result.stats.unetEvaluations, result.plan.unetEvaluations);
    const steps = new Set(result.frames.slice(1, -1).map((frame) => frame.injectionStep));
    assert.ok(steps.size > 1, `standard preset uses a ladder of injection steps, got ${[...steps]}`);
  });

  test('same seeds and options give bit-identical frames twice', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const first = await engine.runTransition({ ...turboOptions, maxBranches: 6 });
    const second = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 6 });
    assert.deepEqual(first.frames.map((frame) => frame.fract), second.frames.map((frame) => frame.fract));
    first.frames.forEach((frame, index) => assert.deepEqual(frame.image.data, second.frames[index]!.image.data, `frame ${index}`));
  });

  test('batchSize 4 computes the same number of branches in fewer UNet calls', async () => {
    const single = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 10 });
    const batched = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 10, batchSize: 4 });
    assert.equal(batched.frames.length, 10);
    assert.equal(batched.stats.unetEvaluations, single.stats.unetEvaluations);
    assert.ok(batched.stats.unetCalls < single.stats.unetCalls, `${batched.stats.unetCalls} calls vs ${single.stats.unetCalls}`);
    // Without branch-1 crossfeed, A and B share one call per step.
    const keyframesOnly = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 2, batchSize: 2 });
    assert.deepEqual([keyframesOnly.stats.unetCalls, keyframesOnly.stats.unetEvaluations], [4, 8]);
    const fed = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 2, batchSize: 2, branch1Crossfeed: { power: 0.5, range: 1, decay: 1 } });
    assert.equal(fed.stats.unetCalls, 8, 'B waits for A when it is crossfed from it');
  });
});

describe('films, refine, budget, cancel', () => {
  test('the next transition reuses keyframe B as its A without recomputing it', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const first = await engine.runTransition({ ...turboOptions, maxBranches: 4 });
    const second = await engine.runTransition(
      { keyframeA: turboOptions.keyframeB, keyframeB: { prompt: 'a desert', seed: 33 }, maxBranches: 4 },
      { startFrom: first },
    );
    assert.deepEqual(second.frames[0]!.image.data, first.frames.at(-1)!.image.data);
    assert.equal(second.stats.unetEvaluations, second.plan.unetEvaluations - 4, "A's 4 steps are not recomputed");
    await assert.rejects(
      engine.runTransition({ keyframeA: { prompt: 'something else', seed: 1 }, keyframeB: { prompt: 'x', seed: 2 } }, { startFrom: first }),
      /previous keyframe B is not this keyframe A/,
    );
  });

  test('the negative prompt blocks reuse only where guidance uses it', async () => {
    const turboEngine = new BlendingEngine(turbo, new SpyMetric());
    const first = await turboEngine.runTransition({ ...turboOptions, maxBranches: 2, negativePrompt: 'blurry' });
    const next = await turboEngine.runTransition(
      { keyframeA: turboOptions.keyframeB, keyframeB: { prompt: 'a desert', seed: 33 }, maxBranches: 2, negativePrompt: 'people' },
      { startFrom: first },
    );
    assert.equal(next.stats.unetEvaluations, 4, 'guidance 0: the negative prompt changes nothing, keyframe A is reused');
    const guided = { steps: 4, guidanceScale: 3, maxBranches: 2 };
    const sdEngine = new BlendingEngine(sd15, new SpyMetric());
    const guidedFirst = await sdEngine.runTransition({ ...turboOptions, ...guided, negativePrompt: 'blurry' });
    await assert.rejects(
      sdEngine.runTransition({ keyframeA: turboOptions.keyframeB, keyframeB: { prompt: 'a desert', seed: 33 }, ...guided, negativePrompt: 'people' }, { startFrom: guidedFirst }),
      /negativePrompt differs \(blurry vs people\)/,
    );
  });

  test('refine adds branches without recomputing existing ones', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const base = await engine.runTransition({ ...turboOptions, maxBranches: 4 });
    const refined = await engine.refine(base, 3);
    assert.equal(refined.frames.length, 7);
    assert.equal(refined.stats.unetEvaluations, 3 * (4 - 2), 'only the three new branches run');
    for (const branch of base.tree.branches) {
      const same = refined.tree.branches.find((candidate) => candidate.fract === branch.fract);
      assert.ok(same !== undefined, `branch at ${branch.fract} kept`);
      assert.equal(same.latents, branch.latents, 'the same trajectory object, not a recomputation');
    }
  });

  test('a time budget too small for any branch keeps A and B and warns', async () => {
    const warnings: string[] = [];
    const result = await new BlendingEngine(turbo, new SpyMetric()).runTransition(
      { ...turboOptions, timeBudget: 1e-6 },
      { onEvent: (event) => event.type === 'warning' && warnings.push(event.message) },
    );
    assert.equal(result.frames.length, 2);
    assert.match(warnings.join('\n'), /time budget of 0.000001 s is too small/);
  });

  test('cancelling stops the run with an AbortError and the engine still works after', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const controller = new AbortController();
    let frames = 0;
    await assert.rejects(
      engine.runTransition({ ...turboOptions, maxBranches: 10 }, {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'frame' && ++frames === 3) controller.abort();
        },
      }),
      (error: unknown) => (error as Error).name === 'AbortError',
    );
    assert.equal(frames, 3, 'no frame after the abort');
    const again = await engine.runTransition({ ...turboOptions, maxBranches: 4 });
    const fresh = await new BlendingEngine(turbo, new SpyMetric()).runTransition({ ...turboOptions, maxBranches: 4 });
    again.frames.forEach((frame, index) => assert.deepEqual(frame.image.data, fresh.frames[index]!.image.data));
  });

  test('bad options are rejected with the key, the value and the allowed range', async () => {
    const engine = new BlendingEngine(turbo, new SpyMetric());
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ depthStrength: 1.5 }, /depthStrength: expected a number in \(0, 1\), got 1.5/],
      [{ maxBranches: 1 }, /maxBranches: expected an integer from 2 to 4096, got 1/],
      [{ maxBranches: 5, timeBudget: 3 }, /either maxBranches or timeBudget, not both/],
      [{ parentalCrossfeed: { power: 2, range: 0.5, decay: 0.5 } }, /parentalCrossfeed.power: expected a share in \[0, 1\], got 2/],
      [{ batchSize: 0 }, /batchSize: expected an integer from 1 to 64, got 0/],
      [{ keyframeA: { prompt: 'x', seed: 'abc' } }, /keyframeA.seed: expected an integer seed, got "abc"/],
      [{ midDamper: 0 }, /midDamper: expected a number in \(0, 1\], got 0/],
      [{ colour: 'red' }, /unknown key "colour"/],
    ];
    for (const [change, message] of cases) {
      await assert.rejects(engine.runTransition({ ...turboOptions, ...change } as never), (error: unknown) => {
        assert.ok(error instanceof LatentBlendError, `LatentBlendError for ${JSON.stringify(change)}`);
        assert.match(error.message, message);
        return true;
      });
    }
  });
});

