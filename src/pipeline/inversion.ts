/**
 * Deterministic DDIM inversion (Song et al. 2020; diffusers' DDIMInverseScheduler) of a picture's
 * latents, run at the noise levels of the model's own scheduler so that the result is a trajectory
 * that scheduler can continue from at any step.
 *
 * Every scheduler's sample at step i is c_i * x_i with x_i = sqrt(a_i) * x0 + sqrt(1 - a_i) * eps
 * (read from `noiseLevel`: signal s, noise n give a = s^2 / (s^2 + n^2), c = sqrt(s^2 + n^2)), so
 * the inversion works on x and rescales. Going from level i + 1 (less noisy) to level i, the UNet
 * is told step i's timestep, as diffusers' inverse step does; x0 and eps are estimated at level
 * i + 1 and recombined at level i. With DDIMScheduler as the model's scheduler this is exactly
 * DDIMInverseScheduler with the same config and step count (tests/picture-conformance.test.ts).
 */
import type { DiffusionPipeline } from './pipeline.ts';
import type { Conditioning } from '../adapters/adapter.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import { parseSchedulerConfig, type SchedulerClassName } from '../schedulers/config.ts';
import { alphaSpaceEstimates } from '../schedulers/ddim.ts';
import { clipPredictedOriginal } from '../schedulers/common.ts';
import { throwIfAborted } from './denoise.ts';

/** The variance-preserving view of a scheduler level: alpha_prod and the sample's scale. */
function vpLevel(scheduler: Scheduler, stepIndex: number): { alphaProd: number; scale: number } {
  const { signal, noise } = scheduler.noiseLevel(stepIndex);
  const norm = signal * signal + noise * noise;
  return { alphaProd: (signal * signal) / norm, scale: Math.sqrt(norm) };
}

export interface InversionRequest {
  /** The picture's latents (scaled), taken as the sample after the last step. */
  readonly latents: Float32Array;
  readonly latentShape: readonly [number, number, number];
  readonly scheduler: Scheduler;
  /** Conditioning of the keyframe's prompt (no guidance). */
  readonly conditioning: Conditioning;
  /** The lowest step index whose entering sample is wanted (0 = the noisiest; default 1). */
  readonly toStep?: number;
  readonly signal?: AbortSignal;
}

export interface InversionResult {
  /** samples[i] = the sample entering step i (scheduler parameterisation), for i >= toStep; undefined below. */
  readonly samples: readonly (Float32Array | undefined)[];
  /** UNet calls made (numInferenceSteps - toStep). */
  readonly unetCalls: number;
}

/** Inverts `latents` to every level from the last step up to `toStep`; one UNet call per level. */
export async function invertLatents(pipeline: DiffusionPipeline, request: InversionRequest): Promise<InversionResult> {
  const { scheduler, latentShape, conditioning } = request;
  const steps = scheduler.timesteps.length;
  const toStep = request.toStep ?? 1;
  const config = parseSchedulerConfig(pipeline.schedulerClass as SchedulerClassName, pipeline.schedulerConfig);
  const samples: (Float32Array | undefined)[] = new Array(steps).fill(undefined);
  const end = vpLevel(scheduler, steps);
  let x = Float32Array.from(request.latents, (value) => value / end.scale);
  let alphaProd = end.alphaProd;
  let unetCalls = 0;
  for (let stepIndex = steps - 1; stepIndex >= toStep; stepIndex--) {
    throwIfAborted(request.signal);
    const target = vpLevel(scheduler, stepIndex);
    const output = await pipeline.unet.predict({ data: x, dims: [1, ...latentShape] }, scheduler.timesteps[stepIndex]!, conditioning);
    unetCalls += 1;
    const sqrtTarget = Math.sqrt(target.alphaProd);
    const sqrtTargetBeta = Math.sqrt(1 - target.alphaProd);
    const next = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const estimate = alphaSpaceEstimates(config.predictionType, output[k]!, x[k]!, alphaProd);
      const x0 = clipPredictedOriginal(estimate.x0, config.clipSample, config.clipSampleRange);
      next[k] = sqrtTarget * x0 + sqrtTargetBeta * estimate.eps;
    }
    x = next;
    alphaProd = target.alphaProd;
    samples[stepIndex] = target.scale === 1 ? x : Float32Array.from(x, (value) => value * target.scale);
  }
  return { samples, unetCalls };
}
