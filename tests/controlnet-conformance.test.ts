/**
 * ControlNet conformance with diffusers: every golden case recorded by
 * tools/fixtures/make_controlnet.py from StableDiffusion(XL)ControlNetPipeline is replayed through
 * our pipeline (base model ONNX + its unet_controlnet export + the ControlNet export); every step's
 * latents and the image must match.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import type { LoadedControlNet } from '../src/pipeline/controlnet.ts';
import { readControlPicture, controlTensor } from '../src/image/control-picture.ts';
import { FIXTURES, floats, goldenGenerateOptions, hasTensor, maxAbs, maxAbsDiff, modelDir, readJson, tensor, type GoldenCase, type TensorEntry } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

const LATENT_RELATIVE_TOLERANCE = 2e-4;

interface ControlGolden extends GoldenCase {
  readonly controlnet: string;
  readonly control_picture: string;
  readonly control_picture_tensor?: TensorEntry;
  readonly controlnet_conditioning_scale: number;
  readonly control_guidance_start: number;
  readonly control_guidance_end: number;
  readonly controlnet_keep: readonly number[];
}

const index = readJson<{ controlnets: Record<string, { base: string; cases: string[] }> }>('controlnet.json');

for (const [name, entry] of Object.entries(index.controlnets)) {
  describe(`ControlNet conformance: ${name} on ${entry.base}`, () => {
    const goldDir = join(FIXTURES, 'goldens', name);
    const goldens = readdirSync(goldDir)
      .filter((file) => file.endsWith('.json'))
      .sort()
      .map((file) => readJson<ControlGolden>('goldens', name, file));
    const opened: { pipeline: DiffusionPipeline; control: LoadedControlNet }[] = [];

    test('the control picture is prepared as diffusers prepares it (RGB, Pillow Lanczos resize, /255)', async () => {
      let checked = 0;
      for (const golden of goldens) {
        const entryTensor = golden.control_picture_tensor;
        if (entryTensor === undefined) continue;
        const picture = await readControlPicture(join(goldDir, golden.control_picture));
        assert.notEqual(picture.width, golden.width, 'this golden picture needs resizing');
        const ours = controlTensor(picture, golden.width, golden.height);
        const expected = tensor(name, { tensors: { picture: entryTensor } }, 'picture').data as Float32Array;
        assert.deepEqual(ours.dims, entryTensor.shape);
        assert.ok(maxAbsDiff(ours.data, expected) <= 1e-7, `control picture: max abs diff ${maxAbsDiff(ours.data, expected)}`);
        checked++;
      }
      // tiny-sd15's goldens hold the prepared resized picture (tiny-sdxl's use the same picture)
      if (name === 'tiny-sd15-controlnet') assert.ok(checked > 0, 'no resized control picture among the goldens');
    });

    for (const golden of goldens) {
      test(`${golden.case}: every step's latents and the image match diffusers (scale ${golden.controlnet_conditioning_scale}, guidance ${golden.control_guidance_start}–${golden.control_guidance_end})`, async () => {
        const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(entry.base), scheduler: golden.scheduler.class_name, schedulerConfig: golden.scheduler.config });
        const control = await pipeline.loadControlNet(join(FIXTURES, 'models', name, 'onnx'));
        opened.push({ pipeline, control });
        const picture = await readControlPicture(join(goldDir, golden.control_picture));
        const scheduler = pipeline.scheduler(golden.num_inference_steps);
        assert.equal(scheduler.timesteps.length, golden.controlnet_keep.length);
        const latents = floats(name, golden, 'latents');
        const stepLength = latents.length / scheduler.timesteps.length;
        const noise = hasTensor(golden, 'step_noise') ? floats(name, golden, 'step_noise') : undefined;
        const controlCallsBefore = control.controlNet.model.stats.calls;
        const result = await pipeline.generate({
          ...goldenGenerateOptions(golden),
          startLatents: floats(name, golden, 'start_latents'),
          ...(noise !== undefined ? { stepNoise: (stepIndex: number) => noise.subarray(stepIndex * stepLength, (stepIndex + 1) * stepLength) } : {}),
          control: {
            controlNet: control.controlNet,
            picture,
            scale: golden.controlnet_conditioning_scale,
            guidanceStart: golden.control_guidance_start,
            guidanceEnd: golden.control_guidance_end,
          },
        });
        // The ControlNet runs exactly on the steps diffusers keeps it on.
        const kept = golden.controlnet_keep.filter((keep) => keep > 0).length;
        assert.equal(control.controlNet.model.stats.calls - controlCallsBefore, kept, 'ControlNet calls');
        assert.equal(result.trajectory.length, scheduler.timesteps.length);
        result.trajectory.forEach((step, stepIndex) => {
          const expected = latents.subarray(stepIndex * stepLength, (stepIndex + 1) * stepLength);
          const diff = maxAbsDiff(step, expected);
          const tolerance = LATENT_RELATIVE_TOLERANCE * Math.max(1, maxAbs(expected));
          assert.ok(diff <= tolerance, `latents after step ${stepIndex}: max abs diff ${diff.toExponential(3)} > ${tolerance.toExponential(1)}`);
        });
        const u8 = tensor(name, golden, 'image_u8').data as Uint8Array;
        assert.ok(maxAbsDiff(result.image.data, u8) <= 1, `image: max level diff ${maxAbsDiff(result.image.data, u8)}`);
      });
    }

    after(async () => {
      for (const { pipeline, control } of opened) {
        for (const model of [...pipeline.models, ...control.models]) await model.session.release();
      }
    });
  });
}
