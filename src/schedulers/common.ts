/**
 * Small pieces that several scheduler classes share word for word: input scaling, the checked
 * timestep grid, the alphas_cumprod lookups of the alpha-parameterised schedulers, the sigma
 * schedulers' init_noise_sigma and final level, and the multistep state check. Each helper is the
 * same diffusers formula in every scheduler that uses it; formulas that merely look alike stay in
 * their own files.
 */
import type { NoiseLevel, Scheduler, SchedulerState } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import { checkScaleIndex, checkTimestepGrid, noiseTables, spacedTimesteps, type TimestepSpacing } from './betas.ts';

/**
 * `scaleModelInput` of the schedulers that need no input scaling (DDIM, LCM, PNDM, DPM-Solver):
 * checks the step index and returns a copy of `sample`.
 */
export function unscaledModelInput(className: string, numSteps: number, sample: Float32Array, stepIndex: number): Float32Array {
  checkScaleIndex(className, numSteps, stepIndex);
  return sample.slice();
}

/**
 * `scaleModelInput` of the Euler schedulers: x / sqrt(sigma^2 + 1) with sigma = `sigmas[stepIndex]`,
 * so that the denoiser sees unit-variance input.
 */
export function sigmaScaledModelInput(
  className: string,
  numSteps: number,
  sigmas: Float64Array,
  sample: Float32Array,
  stepIndex: number,
): Float32Array {
  checkScaleIndex(className, numSteps, stepIndex);
  const sigma = sigmas[stepIndex]!;
  const scale = 1 / Math.sqrt(sigma * sigma + 1);
  return sample.map((x) => x * scale);
}

/**
 * diffusers' `init_noise_sigma` of the Euler schedulers: the largest sigma for "linspace" and
 * "trailing" spacing, sqrt(max sigma^2 + 1) for "leading".
 */
export function sigmaInitNoiseSigma(spacing: TimestepSpacing, sigmas: Float64Array): number {
  const maxSigma = Math.max(...sigmas);
  return spacing === 'linspace' || spacing === 'trailing' ? maxSigma : Math.sqrt(maxSigma * maxSigma + 1);
}

/**
 * The final noise level of the Euler and DPM-Solver schedules (diffusers' `final_sigmas_type`):
 * 0, or the smallest training sigma `trainSigmas[0]`.
 */
export function finalSigma(finalSigmasType: SchedulerConfig['finalSigmasType'], trainSigmas: Float64Array): number {
  return finalSigmasType === 'zero' ? 0 : trainSigmas[0]!;
}

/**
 * The descending timesteps of `spacedTimesteps` for the config's spacing, training length and
 * steps_offset, after `checkTimestepGrid` has rejected a broken grid (Euler, Euler ancestral,
 * DDIM and PNDM; `roundLinspace` as in `spacedTimesteps`).
 */
export function checkedTimesteps(className: string, config: SchedulerConfig, steps: number, roundLinspace: boolean): number[] {
  const T = config.numTrainTimesteps;
  const timesteps = spacedTimesteps(config.timestepSpacing, T, steps, config.stepsOffset, roundLinspace);
  checkTimestepGrid(className, config.timestepSpacing, steps, steps, timesteps, T);
  return timesteps;
}

/** alphas_cumprod of an alpha-parameterised scheduler (DDIM, LCM, PNDM) and what stands before t = 0. */
export interface AlphaSchedule {
  /** alphas_cumprod[t], without the zero-SNR floor. */
  readonly alphasCumprod: Float64Array;
  /** diffusers' `final_alpha_cumprod`: 1 with set_alpha_to_one, else alphas_cumprod[0]. */
  readonly finalAlphaCumprod: number;
}

/** Builds the `AlphaSchedule` of a config. */
export function alphaSchedule(config: SchedulerConfig): AlphaSchedule {
  const { alphasCumprod } = noiseTables(config, false);
  return { alphasCumprod, finalAlphaCumprod: config.setAlphaToOne ? 1 : alphasCumprod[0]! };
}

/** alpha_prod_t_prev: alphas_cumprod[prevT], or `finalAlphaCumprod` when the step goes past t = 0 (prevT < 0). */
export function prevAlphaProd(schedule: AlphaSchedule, prevT: number): number {
  return prevT >= 0 ? schedule.alphasCumprod[prevT]! : schedule.finalAlphaCumprod;
}

/** The part of a multistep scheduler's state that `previousState` checks; `kind` is the class name. */
interface MultistepState {
  readonly kind: string;
  /** Index of the step that produced this state. */
  readonly stepIndex: number;
}

/**
 * The state a multistep scheduler (PNDM, DPM-Solver) receives at step `stepIndex`: undefined for a
 * new trajectory, else checked to come from the same class (`kind` = `className`) and from the
 * previous step. Violations are caller errors, so they throw RangeError.
 */
export function previousState<S extends MultistepState>(className: S['kind'], stepIndex: number, state: SchedulerState): S | undefined {
  if (state === undefined) return undefined;
  if (typeof state !== 'object' || state === null || (state as { kind?: unknown }).kind !== className) {
    throw new RangeError(`${className}.step: state does not come from this scheduler.`);
  }
  const previous = state as S;
  if (previous.stepIndex !== stepIndex - 1) {
    throw new RangeError(
      `${className}.step: state comes from step ${previous.stepIndex}, so the next step is ${previous.stepIndex + 1}, not ${stepIndex}.`,
    );
  }
  return previous;
}

/** diffusers' `clip_sample`: clamps an x0 estimate to [-range, range] when `clip` is set. */
export function clipPredictedOriginal(x0: number, clip: boolean, range: number): number {
  return clip ? Math.min(Math.max(x0, -range), range) : x0;
}

/** Rejects a noise-level index outside [0, numSteps] (numSteps = the level after the last step). */
export function checkLevelIndex(className: string, numSteps: number, stepIndex: number): void {
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex > numSteps) {
    throw new RangeError(`${className}.noiseLevel: stepIndex ${stepIndex} is outside [0, ${numSteps}].`);
  }
}

/** Noise level of an alpha-parameterised sample: sqrt(alpha_prod) * x0 + sqrt(1 - alpha_prod) * eps. */
export function alphaNoiseLevel(alphaProd: number): NoiseLevel {
  return { signal: Math.sqrt(alphaProd), noise: Math.sqrt(1 - alphaProd) };
}

/** Noise level of an Euler (sigma-space) sample: x0 + sigma * eps. */
export function sigmaNoiseLevel(sigma: number): NoiseLevel {
  return { signal: 1, noise: sigma };
}

/**
 * diffusers' `add_noise`: signal * original + noise * eps at the level of the sample entering step
 * `stepIndex` (img2img's start, the picture keyframe's trajectory). Float32 like torch.
 */
export function addNoise(scheduler: Scheduler, original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array {
  if (noise.length !== original.length) throw new RangeError(`addNoise: noise has ${noise.length} values, original ${original.length}.`);
  const level = scheduler.noiseLevel(stepIndex);
  const signal = Math.fround(level.signal);
  const scale = Math.fround(level.noise);
  const out = new Float32Array(original.length);
  for (let k = 0; k < out.length; k++) out[k] = Math.fround(signal * original[k]!) + Math.fround(scale * noise[k]!);
  return out;
}
