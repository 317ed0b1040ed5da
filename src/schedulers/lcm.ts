/**
 * diffusers' LCMScheduler (latent consistency models, multistep sampling): each step maps x_t to a
 * consistency-model estimate of x0 ("denoised") and, except at the last step, re-noises it to the
 * next timestep with fresh standard-normal `noise`. Stateless.
 */
import type { NoiseLevel, Scheduler, StepInput, StepOutput } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import { checkStepInput, numpyLinspace, requireNoise } from './betas.ts';
import { alphaNoiseLevel, checkLevelIndex, alphaSchedule, clipPredictedOriginal, prevAlphaProd, unscaledModelInput, type AlphaSchedule } from './common.ts';
import { alphaSpaceEstimates } from './ddim.ts';
import { LatentBlendError } from '../errors.ts';

/** LCMScheduler prepared for a number of inference steps. */
export class LCMScheduler implements Scheduler {
  readonly className = 'LCMScheduler';
  readonly numInferenceSteps: number;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly needsStepNoise: boolean;
  private readonly alphas: AlphaSchedule;
  private readonly config: SchedulerConfig;

  constructor(config: SchedulerConfig, steps: number) {
    const T = config.numTrainTimesteps;
    const original = config.originalInferenceSteps;
    if (steps > original) {
      throw new LatentBlendError(
        `LCMScheduler: ${steps} inference steps is more than original_inference_steps (${original}); allowed: an integer from 1 to ${original}.`,
      );
    }
    // The distillation grid: (1..original) * (T // original) - 1, descending; the inference
    // timesteps are taken from it at evenly spaced (floored) positions. LCM ignores
    // timestep_spacing and steps_offset, as diffusers does.
    const k = Math.floor(T / original);
    const origin: number[] = [];
    for (let i = original; i >= 1; i--) origin.push(i * k - 1);
    this.timesteps = numpyLinspace(0, origin.length, steps, false).map((x) => origin[Math.floor(x)]!);
    this.numInferenceSteps = steps;
    this.needsStepNoise = steps > 1;
    this.alphas = alphaSchedule(config);
    this.config = config;
  }

  /** LCM needs no input scaling. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    return unscaledModelInput(this.className, this.numInferenceSteps, sample, stepIndex);
  }

  /** sqrt(alphas_cumprod[t]) and sqrt(1 - alphas_cumprod[t]); after the last step, the clean sample (the last step returns its x0 estimate). */
  noiseLevel(stepIndex: number): NoiseLevel {
    checkLevelIndex(this.className, this.numInferenceSteps, stepIndex);
    if (stepIndex === this.numInferenceSteps) return { signal: 1, noise: 0 };
    return alphaNoiseLevel(this.alphas.alphasCumprod[this.timesteps[stepIndex]!]!);
  }

  step(input: StepInput): StepOutput {
    checkStepInput(this.className, this.numInferenceSteps, input);
    const { modelOutput, sample, stepIndex } = input;
    const t = this.timesteps[stepIndex]!;
    const last = stepIndex === this.numInferenceSteps - 1;
    const prevT = last ? t : this.timesteps[stepIndex + 1]!;
    const alphaProd = this.alphas.alphasCumprod[t]!;
    const alphaProdPrev = prevAlphaProd(this.alphas, prevT);
    // Consistency-model boundary condition with sigma_data = 0.5.
    const scaled = t * this.config.timestepScaling;
    const cSkip = 0.25 / (scaled * scaled + 0.25);
    const cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
    const noise = last ? undefined : requireNoise(this.className, stepIndex, input.noise);
    const sqrtAlphaPrev = Math.sqrt(alphaProdPrev);
    const sqrtBetaPrev = Math.sqrt(1 - alphaProdPrev);
    const { predictionType, clipSample, clipSampleRange } = this.config;
    const prevSample = new Float32Array(sample.length);
    const denoised = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k]!;
      let { x0 } = alphaSpaceEstimates(predictionType, modelOutput[k]!, x, alphaProd);
      x0 = clipPredictedOriginal(x0, clipSample, clipSampleRange);
      const d = cOut * x0 + cSkip * x;
      denoised[k] = d;
      prevSample[k] = noise === undefined ? d : sqrtAlphaPrev * d + sqrtBetaPrev * noise[k]!;
    }
    return { prevSample, predictedOriginal: denoised, state: undefined };
  }
}
