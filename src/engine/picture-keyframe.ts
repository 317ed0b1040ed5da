/**
 * Picture keyframes: the trajectory a picture keyframe contributes to the blending tree.
 *
 * A keyframe trajectory holds the sample after every step; branches are injected at step k from
 * the samples after step k - 1. For a picture, the sample after the last step is the picture's own
 * latents (posterior mean times the scaling factor), so the film's end frame is exactly
 * decode(encode(picture)). The samples before it are built one of two ways:
 *
 * - `noise`: the scheduler's add_noise of the picture latents with the keyframe's seeded unit
 *   noise, at each step's level. No UNet call. The noised samples are not on the model's own
 *   trajectories, so branches regenerate detail; good for Turbo models (few steps, where
 *   img2img-style noising is how they are used) and whenever speed matters.
 * - `inversion`: deterministic DDIM inversion conditioned on the keyframe's prompt (N - 1 UNet
 *   calls). The samples are close to a trajectory the model itself would denoise back to the
 *   picture, so branches near the picture stay closer to it; good for standard models with many
 *   steps. Inversion ignores the seed.
 */
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import type { Conditioning } from '../adapters/adapter.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import { addNoise } from '../schedulers/common.ts';
import { pictureLatents } from '../pipeline/picture-latents.ts';
import { invertLatents } from '../pipeline/inversion.ts';
import { gaussianNoise } from '../math/noise.ts';
import { LatentBlendError } from '../errors.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { ImageMethod, Keyframe, KeyframeImage } from './options.ts';
import type { Platform } from '../runtime/platform.ts';

export interface PictureTrajectory {
  /** latents[i] = the sample after step i; the last one is the picture's own latents. */
  readonly latents: Float32Array[];
  /** SHA-256 of the picture file. */
  readonly hash: string;
  readonly method: ImageMethod;
  /** UNet calls spent (inversion only). */
  readonly unetCalls: number;
}

/** A keyframe's picture read at the transition size, with its content hash. */
export interface KeyframePicture {
  readonly keyframe: Keyframe & { image: KeyframeImage };
  readonly image: RgbImage;
  readonly hash: string;
}

/**
 * Reads the keyframe's picture at the transition size (before any model work). Throws a
 * LatentBlendError when the picture cannot be read or its content no longer matches `image.hash`.
 */
export async function readKeyframePicture(
  platform: Platform,
  keyframe: Keyframe & { image: KeyframeImage },
  width: number,
  height: number,
): Promise<KeyframePicture> {
  const loadPicture = platform.pictures;
  if (loadPicture === undefined) throw new LatentBlendError(`${keyframe.image.path}: picture keyframes cannot be read on this platform (${platform.runtime.name}).`, 'unsupported');
  const { image, hash } = await loadPicture(keyframe.image.path, { width, height, fit: keyframe.image.fit });
  if (keyframe.image.hash !== undefined && keyframe.image.hash !== hash) {
    throw new LatentBlendError(`${keyframe.image.path}: the picture changed since this transition was planned (content hash differs); render it again.`);
  }
  return { keyframe, image, hash };
}

/** Builds a picture keyframe's trajectory (see the module comment). */
export async function pictureTrajectory(
  pipeline: DiffusionPipeline,
  request: {
    picture: KeyframePicture;
    scheduler: Scheduler;
    shape: readonly [number, number, number];
    conditioning: Conditioning;
    signal?: AbortSignal;
  },
): Promise<PictureTrajectory> {
  const { scheduler, shape } = request;
  const { keyframe, image, hash } = request.picture;
  const x0 = await pictureLatents(pipeline, image);
  const steps = scheduler.timesteps.length;
  const method = keyframe.image.method ?? 'noise';
  const latents: Float32Array[] = [];
  let unetCalls = 0;
  if (method === 'noise') {
    const noise = gaussianNoise(keyframe.seed, x0.length);
    for (let step = 1; step < steps; step++) latents.push(addNoise(scheduler, x0, noise, step));
  } else {
    const inverted = await invertLatents(pipeline, {
      latents: x0,
      latentShape: shape,
      scheduler,
      conditioning: request.conditioning,
      toStep: 1,
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
    });
    unetCalls = inverted.unetCalls;
    for (let step = 1; step < steps; step++) latents.push(inverted.samples[step]!);
  }
  latents.push(x0);
  return { latents, hash, method, unetCalls };
}

/** The keyframe with its picture's content hash filled in (what a finished transition records). */
export function withPictureHash(keyframe: Keyframe, hash: string | undefined): Keyframe {
  return keyframe.image === undefined || hash === undefined ? keyframe : { ...keyframe, image: { ...keyframe.image, hash } };
}
