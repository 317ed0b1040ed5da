/**
 * Conformance with diffusers: every golden case recorded by tools/fixtures is replayed through
 * our TypeScript pipeline on the ONNX export of the same tiny model. Conditioning, every step's
 * latents and the decoded image must match diffusers within the tolerances below.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DiffusionPipeline, type PipelineEvent } from '../src/pipeline/pipeline.ts';
import { loadClipTokenizer } from '../src/model/tokenizer.ts';
import { goldenCases, goldenModels, goldenGenerateOptions, modelDir, tensor, floats, hasTensor, maxAbsDiff, maxAbs, readJson, type GoldenCase } from './helpers/golden.ts';
import { join } from 'node:path';
import { nodeFiles, nodePlatform } from '../src/node/platform.ts';

// Float32 ONNX vs float32 PyTorch differ by ~1e-6 per call (see fixtures/index.json); errors
// compound over steps, so latents are compared relative to their magnitude.
const EMBEDDING_TOLERANCE = 2e-5;
const LATENT_RELATIVE_TOLERANCE = 2e-4;
const IMAGE_TOLERANCE = 2e-4;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= tolerance, `${what}: max abs diff ${diff.toExponential(3)} > ${tolerance.toExponential(1)}`);
}

for (const model of goldenModels()) {
  describe(`conformance: ${model}`, () => {
    const pipelines = new Map<string, DiffusionPipeline>();
    const warnings: string[] = [];
    const load = async (golden: GoldenCase): Promise<DiffusionPipeline> => {
      const key = `${golden.scheduler.class_name}:${JSON.stringify(golden.scheduler.config)}`;
      let pipeline = pipelines.get(key);
      if (pipeline === undefined) {
        pipeline = await DiffusionPipeline.load(nodePlatform, 
          { modelDir: modelDir(model), scheduler: golden.scheduler.class_name, schedulerConfig: golden.scheduler.config },
          (event: PipelineEvent) => {
            if (event.type === 'warning') warnings.push(event.message);
          },
        );
        pipelines.set(key, pipeline);
      }
      return pipeline;
    };

    test('tokenizers give the ids diffusers gives', () => {
      const goldens = readJson<{
        tokenizers: Record<string, unknown>;
        prompts: ({ prompt: string } & Record<string, { input_ids: number[] } | string>)[];
      }>('goldens', model, 'tokenizer.json');
      let checked = 0;
      for (const name of Object.keys(goldens.tokenizers)) {
        const tokenizer = loadClipTokenizer(nodeFiles, join(modelDir(model), name));
        for (const item of goldens.prompts) {
          const expected = item[name] as { input_ids: number[] };
          const { ids } = tokenizer.tokenize(item.prompt);
          assert.deepEqual([...ids], expected.input_ids, `${name}: ${JSON.stringify(item.prompt)}`);
          checked++;
        }
      }
      assert.ok(checked >= 10, `only ${checked} tokenizer cases found`);
    });

    for (const golden of goldenCases(model)) {
      test(`${golden.case}: conditioning, every step's latents and the image match diffusers`, async () => {
        const pipeline = await load(golden);
        const guided = golden.guidance_scale > 1;
        const options = {
          width: golden.width,
          height: golden.height,
          guided,
          ...(golden.clip_skip !== null ? { clipSkip: golden.clip_skip } : {}),
        };
        const { positive, negative } = await pipeline.encode(golden.prompt, golden.negative_prompt ?? undefined, options);
        assertClose(positive.get('encoder_hidden_states')!.data, floats(model, golden, 'prompt_embeds'), EMBEDDING_TOLERANCE, 'prompt_embeds');
        if (hasTensor(golden, 'pooled_prompt_embeds')) {
          assertClose(positive.get('text_embeds')!.data, floats(model, golden, 'pooled_prompt_embeds'), EMBEDDING_TOLERANCE, 'pooled_prompt_embeds');
        }
        if (hasTensor(golden, 'add_time_ids')) {
          assert.deepEqual([...positive.get('time_ids')!.data], [...floats(model, golden, 'add_time_ids')].slice(0, 6), 'add_time_ids');
        }
        if (guided) {
          assert.ok(negative !== undefined);
          assertClose(negative.get('encoder_hidden_states')!.data, floats(model, golden, 'negative_prompt_embeds'), EMBEDDING_TOLERANCE, 'negative_prompt_embeds');
          if (hasTensor(golden, 'negative_pooled_prompt_embeds')) {
            assertClose(negative.get('text_embeds')!.data, floats(model, golden, 'negative_pooled_prompt_embeds'), EMBEDDING_TOLERANCE, 'negative_pooled_prompt_embeds');
          }
        }

        const eta = golden.eta ?? undefined;
        const scheduler = pipeline.scheduler(golden.num_inference_steps, eta !== undefined ? { eta } : {});
        assertClose(scheduler.timesteps, floats(model, golden, 'timesteps'), 1e-3, 'timesteps');
        const latents = floats(model, golden, 'latents');
        const stepLength = latents.length / scheduler.timesteps.length;
        assert.equal(latents.length % scheduler.timesteps.length, 0, 'latents per step');
        const noise = hasTensor(golden, 'step_noise') ? floats(model, golden, 'step_noise') : undefined;
        const result = await pipeline.generate({
          ...goldenGenerateOptions(golden),
          ...(golden.clip_skip !== null ? { clipSkip: golden.clip_skip } : {}),
          startLatents: floats(model, golden, 'start_latents'),
          ...(eta !== undefined ? { eta } : {}),
          ...(noise !== undefined
            ? { stepNoise: (stepIndex: number) => noise.subarray(stepIndex * stepLength, (stepIndex + 1) * stepLength) }
            : {}),
        });
        assert.equal(result.trajectory.length, scheduler.timesteps.length, 'one latent per step');
        result.trajectory.forEach((step, index) => {
          const expected = latents.subarray(index * stepLength, (index + 1) * stepLength);
          const tolerance = LATENT_RELATIVE_TOLERANCE * Math.max(1, maxAbs(expected));
          assertClose(step, expected, tolerance, `latents after step ${index}`);
        });

        const raw = await pipeline.vae.decodeRaw(result.trajectory.at(-1)!, pipeline.latentShape(golden.width, golden.height));
        const plane = golden.width * golden.height;
        const image = floats(model, golden, 'image');
        let worst = 0;
        for (let pixel = 0; pixel < plane; pixel++) {
          for (let channel = 0; channel < 3; channel++) {
            const ours = Math.min(1, Math.max(0, raw[channel * plane + pixel]! / 2 + 0.5));
            worst = Math.max(worst, Math.abs(ours - image[pixel * 3 + channel]!));
          }
        }
        assert.ok(worst <= IMAGE_TOLERANCE, `image: max abs diff ${worst}`);
        const u8 = tensor(model, golden, 'image_u8').data as Uint8Array;
        assert.ok(maxAbsDiff(result.image.data, u8) <= 1, 'RGB8 image within 1 level');
      });
    }

    after(async () => {
      for (const pipeline of pipelines.values()) for (const onnx of pipeline.models) await onnx.session.release();
    });
    before(() => warnings.splice(0));
  });
}
