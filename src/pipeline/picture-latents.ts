/**
 * Pictures into latent space: the VAE encoder's posterior (mean and standard deviation), the
 * picture's latents (posterior mean, or a seeded sample as diffusers' img2img draws it) and the
 * start of an image-to-image run (diffusers' get_timesteps + add_noise).
 */
import type { DiffusionPipeline } from './pipeline.ts';
import type { RgbImage } from './vae.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import { addNoise } from '../schedulers/common.ts';
import { floatTensor, runModel, toFloat32, type OnnxModel } from '../runtime/onnx.ts';
import { gaussianNoise, stepNoise } from '../math/noise.ts';
import { LatentBlendError } from '../errors.ts';

/**
 * How a picture's latents are taken from the VAE posterior: `mean` (diffusers' sample_mode
 * "argmax"; what picture keyframes use, so the film's end frame is decode(encode(picture))) or
 * `sample` (mean + std * seeded noise, diffusers' img2img default).
 */
export type PosteriorMode = 'mean' | 'sample';

/** The VAE posterior of a picture, before the scaling factor: [C, h, w] each. */
export interface Posterior {
  readonly mean: Float32Array;
  /** exp(0.5 * clamp(logvar, -30, 20)), as diffusers' DiagonalGaussianDistribution. */
  readonly std: Float32Array;
}

/**
 * The VAE encoder of a pipeline: the one place picture code reaches it (the encoder may be loaded
 * lazily by the pipeline; change only this function then).
 */
export async function vaeEncoderOf(pipeline: DiffusionPipeline): Promise<OnnxModel> {
  if (pipeline.folder.vaeEncoder === undefined) {
    throw new LatentBlendError(`${pipeline.folder.dir}: this model folder has no vae_encoder/model.onnx, so pictures cannot be used.`, 'model_folder');
  }
  return pipeline.vaeEncoder();
}

/** Runs the VAE encoder on an RGB8 picture (diffusers' preprocessing: x / 255 * 2 - 1). */
export async function encodePosterior(pipeline: DiffusionPipeline, image: RgbImage): Promise<Posterior> {
  const encoder = await vaeEncoderOf(pipeline);
  const { width, height, data } = image;
  const scale = pipeline.defaults.vaeScaleFactor;
  if (width % scale !== 0 || height % scale !== 0) {
    throw new LatentBlendError(`The picture is ${width}×${height}; both sides must be multiples of ${scale} for this model.`);
  }
  const plane = width * height;
  const pixels = new Float32Array(plane * 3);
  for (let pixel = 0; pixel < plane; pixel++) {
    for (let channel = 0; channel < 3; channel++) pixels[channel * plane + pixel] = (data[pixel * 3 + channel]! / 255) * 2 - 1;
  }
  const type = encoder.inputTypes.get('sample') ?? 'float32';
  const outputs = await runModel(encoder, { sample: floatTensor(type, pixels, [1, 3, height, width]) });
  const parameters = toFloat32(outputs.latent_parameters ?? outputs.latent_sample ?? Object.values(outputs)[0]!);
  const length = pipeline.defaults.latentChannels * (plane / (scale * scale));
  if (parameters.length < 2 * length) {
    throw new LatentBlendError(`${encoder.path}: the VAE encoder returned ${parameters.length} values, expected mean and log-variance (${2 * length}).`, 'model_folder');
  }
  const mean = parameters.slice(0, length);
  const std = Float32Array.from(parameters.subarray(length, 2 * length), (logvar) => Math.exp(0.5 * Math.min(20, Math.max(-30, logvar))));
  return { mean, std };
}

/**
 * A picture's latents [C, h, w] as the scheduler's clean sample: the posterior mean (or, with
 * `mode: 'sample'`, mean + std * posteriorNoise) times the VAE scaling factor.
 */
export async function pictureLatents(
  pipeline: DiffusionPipeline,
  image: RgbImage,
  options: { mode?: PosteriorMode; posteriorNoise?: Float32Array } = {},
): Promise<Float32Array> {
  const { mean, std } = await encodePosterior(pipeline, image);
  const factor = pipeline.vae.scalingFactor;
  if ((options.mode ?? 'mean') === 'mean') return Float32Array.from(mean, (value) => value * factor);
  const noise = options.posteriorNoise;
  if (noise === undefined || noise.length !== mean.length) throw new RangeError(`pictureLatents: posteriorNoise must have ${mean.length} values.`);
  return Float32Array.from(mean, (value, k) => Math.fround(value + Math.fround(std[k]! * noise[k]!)) * factor);
}

/**
 * The first step an image-to-image run executes (diffusers' get_timesteps): of `steps` requested
 * steps the last floor(steps * strength) run. Throws when strength leaves no step.
 *
 * @param steps requested inference steps (PNDM runs one more; its extra step stays at the start)
 * @param strength 0 to 1: 1 ignores the picture (full noise), small values keep it
 */
export function img2imgFirstStep(scheduler: Scheduler, steps: number, strength: number): number {
  const initTimestep = Math.min(Math.floor(steps * strength), steps);
  const first = Math.max(steps - initTimestep, 0);
  if (first >= scheduler.timesteps.length || initTimestep < 1) {
    throw new LatentBlendError(`strength ${strength} with ${steps} steps runs no denoising step; use a larger strength or more steps (steps × strength ≥ 1).`);
  }
  return first;
}

/** Seeded posterior noise of a keyframe or img2img seed, independent of its start and step noise. */
export function posteriorNoise(seed: number, length: number): Float32Array {
  // Stream 1 of the seed's step noise family (stream 0 is the schedulers' step noise).
  return stepNoise(seed, 1, 0, length);
}

/** Where an image-to-image run starts: its first step and the noised picture latents entering it. */
export interface Img2ImgStart {
  readonly fromStep: number;
  /** The picture's latents (clean, scaled). */
  readonly pictureLatents: Float32Array;
  /** add_noise(pictureLatents, noise, fromStep). */
  readonly latents: Float32Array;
}

/**
 * diffusers' img2img start: picture latents (posterior `sample` by default, as diffusers'
 * retrieve_latents; `mean` on request), then the scheduler's add_noise at the first step run.
 * Noise comes from the seed unless given (tests replay diffusers' draws).
 */
export async function img2imgStart(
  pipeline: DiffusionPipeline,
  scheduler: Scheduler,
  options: {
    image: RgbImage;
    steps: number;
    strength: number;
    seed: number;
    mode?: PosteriorMode;
    posteriorNoise?: Float32Array;
    noise?: Float32Array;
  },
): Promise<Img2ImgStart> {
  const fromStep = img2imgFirstStep(scheduler, options.steps, options.strength);
  const [channels, h, w] = pipeline.latentShape(options.image.width, options.image.height);
  const length = channels * h * w;
  const mode = options.mode ?? 'sample';
  const latents0 = await pictureLatents(pipeline, options.image, {
    mode,
    ...(mode === 'sample' ? { posteriorNoise: options.posteriorNoise ?? posteriorNoise(options.seed, length) } : {}),
  });
  const noise = options.noise ?? gaussianNoise(options.seed, length);
  return { fromStep, pictureLatents: latents0, latents: addNoise(scheduler, latents0, noise, fromStep) };
}
