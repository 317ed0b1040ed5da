/**
 * The checks the IP-Adapter conformance tests (plain and plus) share: one golden case generated
 * with its image prompt against diffusers' recorded latents and image.
 */
import assert from 'node:assert/strict';
import type { DiffusionPipeline } from '../../src/pipeline/pipeline.ts';
import type { LoadedIpAdapter } from '../../src/pipeline/ip-adapter.ts';
import type { RgbImage } from '../../src/pipeline/vae.ts';
import { floats, goldenGenerateOptions, maxAbs, maxAbsDiff, tensor, type GoldenCase } from './golden.ts';

/** A golden case recorded with an image prompt (tools/fixtures/make_ip_adapter*.py). */
export type IpAdapterGoldenCase = GoldenCase & { ip_adapter_image: string; ip_adapter_scale: number };

/**
 * Generates `golden` (of fixture `name`) with `picture` as its image prompt and checks every
 * step's latents (relative 2e-4), the image (within one level of 255) and that without the image
 * prompt the last latents differ (by more than 1e-2: the adapter matters).
 */
export async function checkIpAdapterGeneration(pipeline: DiffusionPipeline, ip: LoadedIpAdapter, name: string, golden: IpAdapterGoldenCase, picture: RgbImage): Promise<void> {
  const latents = floats(name, golden, 'latents');
  const steps = pipeline.scheduler(golden.num_inference_steps).timesteps.length;
  const stepLength = latents.length / steps;
  const result = await pipeline.generate({
    ...goldenGenerateOptions(golden),
    startLatents: floats(name, golden, 'start_latents'),
    ipAdapter: { adapter: ip.adapter, picture, scale: golden.ip_adapter_scale },
  });
  assert.equal(result.trajectory.length, steps);
  result.trajectory.forEach((step, index) => {
    const expected = latents.subarray(index * stepLength, (index + 1) * stepLength);
    const diff = maxAbsDiff(step, expected);
    assert.ok(diff <= 2e-4 * Math.max(1, maxAbs(expected)), `latents after step ${index}: max abs diff ${diff.toExponential(3)}`);
  });
  const u8 = tensor(name, golden, 'image_u8').data as Uint8Array;
  assert.ok(maxAbsDiff(result.image.data, u8) <= 1, 'image within one level');
  const plain = await pipeline.generate({
    prompt: golden.prompt,
    steps: golden.num_inference_steps,
    guidanceScale: golden.guidance_scale,
    width: 64,
    height: 64,
    startLatents: floats(name, golden, 'start_latents'),
    ...(golden.negative_prompt !== null ? { negativePrompt: golden.negative_prompt } : {}),
  });
  assert.ok(maxAbsDiff(plain.trajectory.at(-1)!, latents.subarray(latents.length - stepLength)) > 1e-2, 'the image prompt changes the result');
}
