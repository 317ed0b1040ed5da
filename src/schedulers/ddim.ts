/**
 * diffusers' DDIMScheduler (Song et al. 2020) with its `eta` step argument: eta = 0 is the
 * deterministic DDIM sampler; eta > 0 adds fresh noise with std eta * sigma_t(DDPM posterior), so
 * `noise` is then needed at every step whose variance is non-zero (all but a last step that lands
 * on alpha = 1). Stateless.
 */
import type { NoiseLevel, Scheduler, StepInput, StepOutput } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import { checkStepInput, requireNoise } from './betas.ts';
import {
  alphaSchedule,
  checkedTimesteps,
  clipPredictedOriginal,
  prevAlphaProd,
  unscaledModelInput,
  alphaNoiseLevel,
  checkLevelIndex,
  type AlphaSchedule,
} from './common.ts';
import { LatentBlendError } from '../errors.ts';

/** Options of DDIM that diffusers passes to `step` rather than keeping in the config. */
export interface DdimOptions {
  /** Weight of the stochastic term in [0, 1] (0: deterministic DDIM, 1: DDPM-like). */
  readonly eta?: number;
}

/**
 * x0 and epsilon estimates from the model output, for schedulers parameterised by
 * alpha_prod_t (x = sqrt(alpha) * x0 + sqrt(1 - alpha) * eps).
 */
export function alphaSpaceEstimates(
  predictionType: SchedulerConfig['predictionType'],
  modelOutput: number,
  sample: number,
  alphaProd: number,
): { x0: number; eps: number } {
  const sqrtAlpha = Math.sqrt(alphaProd);
  const sqrtBeta = Math.sqrt(1 - alphaProd);
  switch (predictionType) {
    case 'epsilon':
      return { x0: (sample - sqrtBeta * modelOutput) / sqrtAlpha, eps: modelOutput };
    case 'sample':
      return { x0: modelOutput, eps: (sample - sqrtAlpha * modelOutput) / sqrtBeta };
    case 'v_prediction':
      return { x0: sqrtAlpha * sample - sqrtBeta * modelOutput, eps: sqrtAlpha * modelOutput + sqrtBeta * sample };
  }
}

/** DDIMScheduler prepared for a number of inference steps. */
export class DDIMScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly numInferenceSteps: number;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly needsStepNoise: boolean;
  readonly eta: number;
  private readonly alphas: AlphaSchedule;
  private readonly stepRatio: number;
  private readonly config: SchedulerConfig;

  constructor(config: SchedulerConfig, steps: number, options: DdimOptions = {}) {
    const eta = options.eta ?? 0;
    if (!(eta >= 0 && eta <= 1)) {
      throw new LatentBlendError(`DDIMScheduler: eta = ${eta} is not supported; allowed: a number from 0 to 1.`);
    }
    const timesteps = checkedTimesteps(this.className, config, steps, true);
    this.alphas = alphaSchedule(config);
    // diffusers steps back by T // n whatever the spacing, not to the next listed timestep.
    this.stepRatio = Math.floor(config.numTrainTimesteps / steps);
    this.timesteps = timesteps;
    this.numInferenceSteps = steps;
    this.eta = eta;
    this.needsStepNoise = eta > 0;
    this.config = config;
  }

  /** DDIM needs no input scaling. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    return unscaledModelInput(this.className, this.numInferenceSteps, sample, stepIndex);
  }

  /** sqrt(alphas_cumprod[t]) and sqrt(1 - alphas_cumprod[t]); after the last step, the final alpha. */
  noiseLevel(stepIndex: number): NoiseLevel {
    checkLevelIndex(this.className, this.numInferenceSteps, stepIndex);
    const alphaProd = stepIndex === this.numInferenceSteps ? this.alphas.finalAlphaCumprod : this.alphas.alphasCumprod[this.timesteps[stepIndex]!]!;
    return alphaNoiseLevel(alphaProd);
  }

  step(input: StepInput): StepOutput {
    checkStepInput(this.className, this.numInferenceSteps, input);
    const { modelOutput, sample, stepIndex } = input;
    const t = this.timesteps[stepIndex]!;
    const prevT = t - this.stepRatio;
    const alphaProd = this.alphas.alphasCumprod[t]!;
    const alphaProdPrev = prevAlphaProd(this.alphas, prevT);
    const variance = ((1 - alphaProdPrev) / (1 - alphaProd)) * (1 - alphaProd / alphaProdPrev);
    const stdDev = this.eta * Math.sqrt(variance);
    const directionScale = Math.sqrt(1 - alphaProdPrev - stdDev * stdDev);
    const sqrtAlphaPrev = Math.sqrt(alphaProdPrev);
    const noise = stdDev > 0 ? requireNoise(this.className, stepIndex, input.noise) : undefined;
    const { predictionType, clipSample, clipSampleRange } = this.config;
    const prevSample = new Float32Array(sample.length);
    const predictedOriginal = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      let { x0, eps } = alphaSpaceEstimates(predictionType, modelOutput[k]!, sample[k]!, alphaProd);
      // Clipping changes x0 only; epsilon stays the model's (use_clipped_model_output=False).
      x0 = clipPredictedOriginal(x0, clipSample, clipSampleRange);
      let next = sqrtAlphaPrev * x0 + directionScale * eps;
      if (noise !== undefined) next += stdDev * noise[k]!;
      prevSample[k] = next;
      predictedOriginal[k] = x0;
    }
    return { prevSample, predictedOriginal, state: undefined };
  }
}
