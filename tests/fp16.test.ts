/**
 * Float16 ONNX exports: fixtures/models/tiny-sd-turbo-fp16 is tiny-sd-turbo with every model
 * converted to float16, float16 inputs and outputs included (made by tools/fixtures/make_fp16.py).
 * The library must feed and read those tensors and generate what the float32 model generates,
 * up to float16 rounding.
 *
 * Tolerance: float16 keeps 11 significant bits (unit roundoff 2^-11 ≈ 4.9e-4), and every model
 * rounds its inputs, weights and intermediate results to it. Errors are measured relative to the
 * largest magnitude of the float32 value (latents reach ~40 here, where float16's spacing is
 * 2^-5): max |fp16 - fp32| / max |fp32| <= 1e-2, about 20 roundoffs, leaves room for a few dozen
 * rounded operations in a row. tools/fixtures saw at most 2.2e-3 (fp16-check.json). Images: 1%
 * of 255 → at most 3 levels apart per channel.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DiffusionPipeline, type PipelineEvent } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { PixelMetric } from '../src/engine/metric.ts';
import { floatTensor, toFloat32 } from '../src/runtime/onnx.ts';
import { FIXTURES, modelDir, readJson } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const FP16_DIR = join(FIXTURES, 'models', 'tiny-sd-turbo-fp16', 'onnx');
const RELATIVE = 1e-2;
const IMAGE_LEVELS = 3;
const PROMPT = 'a photo of a cat sitting on a wooden table, highly detailed';
const SEED = 131;

/** max |value - reference| / max |reference|, failing on NaN. */
function relativeError(reference: Float32Array, value: Float32Array, what: string): number {
  assert.equal(value.length, reference.length, `${what}: length`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    assert.ok(Number.isFinite(value[i]!), `${what}: value ${i} is ${value[i]}`);
    diff = Math.max(diff, Math.abs(value[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  assert.ok(scale > 0, `${what}: the float32 reference is all zero`);
  return diff / scale;
}

function assertClose(reference: Float32Array, value: Float32Array, what: string): void {
  const error = relativeError(reference, value, what);
  assert.ok(error <= RELATIVE, `${what}: relative error ${error.toExponential(2)} > ${RELATIVE}`);
}

let fp16: DiffusionPipeline;
let fp32: DiffusionPipeline;
const loadEvents: PipelineEvent[] = [];
before(async () => {
  fp16 = await DiffusionPipeline.load(nodePlatform, { modelDir: FP16_DIR }, (event) => loadEvents.push(event));
  fp32 = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
});

describe('float16 tensors', () => {
  test('floatTensor and toFloat32 round-trip through float16 to the nearest half', () => {
    const values = Float32Array.from([0, -0, 1, -2.5, 1 / 3, 999, 65504, 6.1e-5, 1e-7, -1e9, Number.NaN]);
    const tensor = floatTensor('float16', values, [values.length]);
    assert.equal(tensor.type, 'float16');
    assert.deepEqual(tensor.dims, [values.length]);
    const back = toFloat32(tensor);
    // 1/3 → 0x3555 = 0.333251953125; 6.1e-5 and 1e-7 are below the smallest normal half (2^-14),
    // so they round to subnormals 1023·2^-24 and 2·2^-24; -1e9 overflows to -Infinity.
    const expected = [0, -0, 1, -2.5, 0.333251953125, 999, 65504, 1023 * 2 ** -24, 2 * 2 ** -24, Number.NEGATIVE_INFINITY];
    assert.deepEqual(Array.from(back.subarray(0, 10)), expected);
    assert.ok(Number.isNaN(back[10]!));
  });

  test('the fp16 fixture declares float16 inputs (ids stay int64)', async () => {
    const unet = fp16.unet.model.inputTypes;
    assert.equal(unet.get('sample'), 'float16');
    assert.equal(unet.get('timestep'), 'float16');
    assert.equal(unet.get('encoder_hidden_states'), 'float16');
    assert.equal(fp16.vae.decoder.inputTypes.get('latent_sample'), 'float16');
    assert.equal((await fp16.vaeEncoder()).inputTypes.get('sample'), 'float16');
    const textEncoder = fp16.models.find((model) => model.role === 'text encoder');
    assert.equal(textEncoder?.inputTypes.get('input_ids'), 'int64');
    assert.equal(fp32.unet.model.inputTypes.get('sample'), 'float32', 'the reference is float32');
  });

  test('loading an SD float16 export gives no warning (only the SDXL VAE overflows in float16)', () => {
    // The tiny VAE's config (like SD 2.x's) has force_upcast: true, diffusers' default.
    const warnings = loadEvents.filter((event): event is Extract<PipelineEvent, { type: 'warning' }> => event.type === 'warning');
    assert.deepEqual(warnings.map((warning) => warning.message), []);
  });
});

describe('float16 vs float32 on the same prompt and seed', () => {
  test('prompt embeddings', async () => {
    const options = { width: 64, height: 64, guided: false };
    const half = await fp16.encode(PROMPT, undefined, options);
    const full = await fp32.encode(PROMPT, undefined, options);
    const name = 'encoder_hidden_states';
    assert.deepEqual(half.positive.get(name)!.dims, full.positive.get(name)!.dims);
    assertClose(full.positive.get(name)!.data, half.positive.get(name)!.data, 'prompt embeddings');
  });

  test('latents after every step and the final image', async () => {
    const half = await fp16.generate({ prompt: PROMPT, seed: SEED });
    const full = await fp32.generate({ prompt: PROMPT, seed: SEED });
    assert.equal(half.steps, 4);
    assert.equal(half.trajectory.length, full.trajectory.length);
    half.trajectory.forEach((latents, step) => assertClose(full.trajectory[step]!, latents, `latents after step ${step}`));

    assert.equal(half.image.width, 64);
    assert.equal(half.image.height, 64);
    let worst = 0;
    let sum = 0;
    for (let i = 0; i < half.image.data.length; i++) {
      worst = Math.max(worst, Math.abs(half.image.data[i]! - full.image.data[i]!));
      sum += half.image.data[i]!;
    }
    assert.ok(worst <= IMAGE_LEVELS, `image: ${worst} levels apart`);
    const mean = sum / half.image.data.length;
    assert.ok(mean > 10 && mean < 245, `image mean ${mean}: not black or white`);
    assert.ok(new Set(half.image.data).size > 16, 'image is not flat');
  });

  test('the VAE encoder (image → latents)', async () => {
    const image = (await fp32.generate({ prompt: PROMPT, seed: SEED })).image;
    assertClose(await fp32.vae.encode(image), await fp16.vae.encode(image), 'encoded latents');
  });

  test('the fixture tool recorded fp16 differences within the same tolerance', () => {
    const check = readJson<{ per_model: Record<string, Record<string, { relative: number }>>; generate: Record<string, { relative?: number }> }>(
      'models',
      'tiny-sd-turbo-fp16',
      'fp16-check.json',
    );
    const relatives = [
      ...Object.values(check.per_model).flatMap((outputs) => Object.values(outputs).map((entry) => entry.relative)),
      check.generate.prompt_embeds!.relative!,
      check.generate.latents!.relative!,
      check.generate.image!.relative!,
    ];
    assert.ok(relatives.length >= 9);
    assert.ok(relatives.every((value) => value > 0 && value <= RELATIVE), relatives.join(', '));
  });
});

describe('blending on the float16 model', () => {
  test('a 3-frame transition', async () => {
    const result = await new BlendingEngine(fp16, new PixelMetric()).runTransition({
      keyframeA: { prompt: 'a red house by the sea', seed: 11 },
      keyframeB: { prompt: 'a green forest at night', seed: 22 },
      maxBranches: 3,
    });
    assert.equal(result.frames.length, 3);
    assert.deepEqual(
      result.frames.map((frame) => frame.fract),
      [0, 0.5, 1],
    );
    assert.equal(result.metric, 'rms-pixel');
    for (const frame of result.frames) {
      assert.equal(frame.image.data.length, 64 * 64 * 3);
      assert.ok(new Set(frame.image.data).size > 16, `frame ${frame.fract} is not flat`);
    }
    assert.ok(result.tree.gapDistances.every((distance) => Number.isFinite(distance) && distance > 0));
  });
});
