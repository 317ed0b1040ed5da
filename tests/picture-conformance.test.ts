/**
 * Pictures as input, against diffusers (goldens from tools/fixtures/make_picture_goldens.py):
 * img2img (StableDiffusionImg2ImgPipeline / StableDiffusionXLImg2ImgPipeline) with and without
 * guidance, every step's latents and the image; DDIM inversion (DDIMInverseScheduler) latents.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { pictureLatents } from '../src/pipeline/picture-latents.ts';
import { invertLatents } from '../src/pipeline/inversion.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { FIXTURES, goldenModels, goldenGenerateOptions, modelDir, readJson, floats, tensor, maxAbsDiff, maxAbs, type TensorEntry } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

interface Img2ImgGolden {
  case: string;
  prompt: string;
  negative_prompt: string | null;
  guidance_scale: number;
  num_inference_steps: number;
  strength: number;
  width: number;
  height: number;
  scheduler: { class_name: string; config: Record<string, unknown> };
  tensors: Record<string, TensorEntry>;
}

const LATENT_RELATIVE_TOLERANCE = 2e-4;

/** Golden tensor files lie under goldens/<model>/pictures/. */
const inPictures = (model: string) => `${model}/pictures`;

function picture(model: string, golden: { tensors: Record<string, TensorEntry> }): RgbImage {
  const data = tensor(inPictures(model), golden, 'picture_u8').data as Uint8Array;
  return { width: 64, height: 64, data };
}

for (const model of goldenModels()) {
  const dir = join(FIXTURES, 'goldens', model, 'pictures');
  if (!existsSync(dir)) continue;
  const cases = readdirSync(dir).filter((name) => name.startsWith('img2img-') && name.endsWith('.json')).sort();
  describe(`pictures: ${model}`, () => {
    const pipelines: DiffusionPipeline[] = [];
    const load = async (scheduler: string, config: Record<string, unknown>) => {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(model), scheduler, schedulerConfig: config });
      pipelines.push(pipeline);
      return pipeline;
    };
    after(async () => {
      for (const pipeline of pipelines) for (const onnx of pipeline.models) await onnx.session.release();
    });

    for (const name of cases) {
      const golden = readJson<Img2ImgGolden>('goldens', model, 'pictures', name);
      const key = `pictures/${golden.case}`;
      test(`${golden.case}: img2img latents of every step and the image match diffusers`, async () => {
        const pipeline = await load(golden.scheduler.class_name, golden.scheduler.config);
        const at = (entry: string) => floats(inPictures(model), { tensors: golden.tensors }, entry);
        const image = picture(model, golden);
        // The picture's latents: posterior sample with diffusers' own draw.
        const init = await pictureLatents(pipeline, image, { mode: 'sample', posteriorNoise: at('posterior_noise') });
        assert.ok(maxAbsDiff(init, at('init_latents')) < 1e-4, `init latents differ by ${maxAbsDiff(init, at('init_latents'))}`);
        const latents = at('latents');
        const stepLength = init.length;
        const run = latents.length / stepLength;
        const stepNoise = golden.tensors.step_noise !== undefined ? at('step_noise') : undefined;
        const scheduler = pipeline.scheduler(golden.num_inference_steps);
        const first = scheduler.timesteps.length - run;
        assert.deepEqual(scheduler.timesteps.slice(first).map(Math.fround), [...at('timesteps')], 'the steps img2img runs');
        const result = await pipeline.generate({
          ...goldenGenerateOptions(golden),
          image,
          strength: golden.strength,
          posteriorNoise: at('posterior_noise'),
          startLatents: at('noise'),
          ...(stepNoise !== undefined ? { stepNoise: (stepIndex: number) => stepNoise.subarray((stepIndex - first) * stepLength, (stepIndex - first + 1) * stepLength) } : {}),
        });
        assert.equal(result.trajectory.length, run, 'steps run');
        result.trajectory.forEach((step, index) => {
          const expected = latents.subarray(index * stepLength, (index + 1) * stepLength);
          const diff = maxAbsDiff(step, expected);
          assert.ok(diff <= LATENT_RELATIVE_TOLERANCE * Math.max(1, maxAbs(expected)), `${key}: latents after step ${first + index} differ by ${diff}`);
        });
        const u8 = tensor(inPictures(model), { tensors: golden.tensors }, 'image_u8').data as Uint8Array;
        assert.ok(maxAbsDiff(result.image.data, u8) <= 1, `${key}: RGB8 image within 1 level (${maxAbsDiff(result.image.data, u8)})`);
      });
    }
  });
}

interface InversionGolden {
  prompt: string;
  num_inference_steps: number;
  width: number;
  height: number;
  forward_scheduler_config: Record<string, unknown>;
  tensors: Record<string, TensorEntry>;
}

for (const model of goldenModels()) {
  if (!existsSync(join(FIXTURES, 'goldens', model, 'pictures', 'inversion.json'))) continue;
  test(`${model}: DDIM inversion matches diffusers' DDIMInverseScheduler at every step`, async () => {
    const golden = readJson<InversionGolden>('goldens', model, 'pictures', 'inversion.json');
    const at = (entry: string) => floats(inPictures(model), golden, entry);
    // Our inversion runs at the levels of the model's scheduler; with DDIMScheduler they are DDIMInverseScheduler's.
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(model), scheduler: 'DDIMScheduler', schedulerConfig: golden.forward_scheduler_config });
    try {
      const image = picture(model, golden);
      const x0 = await pictureLatents(pipeline, image);
      assert.ok(maxAbsDiff(x0, at('x0')) < 1e-4, `picture latents differ by ${maxAbsDiff(x0, at('x0'))}`);
      const scheduler = pipeline.scheduler(golden.num_inference_steps);
      const steps = scheduler.timesteps.length;
      assert.deepEqual([...at('timesteps')], [...scheduler.timesteps].reverse(), 'inverse timesteps = forward ones reversed');
      const { positive } = await pipeline.encode(golden.prompt, undefined, { width: golden.width, height: golden.height, guided: false });
      const result = await invertLatents(pipeline, {
        latents: at('x0'),
        latentShape: pipeline.latentShape(golden.width, golden.height),
        scheduler,
        conditioning: positive,
        toStep: 0,
      });
      assert.equal(result.unetCalls, steps);
      const latents = at('latents');
      const length = x0.length;
      for (let j = 0; j < steps; j++) {
        const expected = latents.subarray(j * length, (j + 1) * length);
        const ours = result.samples[steps - 1 - j]!;
        const diff = maxAbsDiff(ours, expected);
        assert.ok(diff <= LATENT_RELATIVE_TOLERANCE * Math.max(1, maxAbs(expected)), `inverse step ${j}: differs by ${diff}`);
      }
    } finally {
      for (const onnx of pipeline.models) await onnx.session.release();
    }
  });
}
