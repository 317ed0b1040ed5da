/**
 * diffusers' EulerAncestralDiscreteScheduler: an Euler step down to sigma_down followed by fresh
 * noise of size sigma_up, so that the result has noise level sigma_next. Stateless; needs
 * standard-normal `noise` at every step except the last (where sigma_up = 0).
 */
import type { NoiseLevel, Scheduler, StepInput, StepOutput } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import { checkStepInput, interpOnIndexGrid, noiseTables, requireNoise, trainSigmas } from './betas.ts';
import { checkLevelIndex, sigmaNoiseLevel, checkedTimesteps, sigmaInitNoiseSigma, sigmaScaledModelInput } from './common.ts';
import { sigmaSpacePredictedOriginal } from './euler.ts';

/** EulerAncestralDiscreteScheduler prepared for a number of inference steps. */
export class EulerAncestralDiscreteScheduler implements Scheduler {
  readonly className = 'EulerAncestralDiscreteScheduler';
  readonly numInferenceSteps: number;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma: number;
  readonly needsStepNoise = true;
  /** Noise level at each step, plus 0 after the last. */
  readonly sigmas: Float64Array;
  private readonly predictionType: SchedulerConfig['predictionType'];

  constructor(config: SchedulerConfig, steps: number) {
    const { alphasCumprod } = noiseTables(config, true);
    const train = trainSigmas(alphasCumprod);
    const timesteps = checkedTimesteps(this.className, config, steps, false);
    this.sigmas = Float64Array.from([...timesteps.map((t) => interpOnIndexGrid(t, train)), 0], Math.fround);
    this.timesteps = timesteps;
    this.numInferenceSteps = steps;
    this.initNoiseSigma = sigmaInitNoiseSigma(config.timestepSpacing, this.sigmas);
    this.predictionType = config.predictionType;
  }

  /** x / sqrt(sigma^2 + 1): the denoiser sees unit-variance input. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    return sigmaScaledModelInput(this.className, this.numInferenceSteps, this.sigmas, sample, stepIndex);
  }

  /** x0 + sigma * eps with this step's sigma (after the last step: the final sigma). */
  noiseLevel(stepIndex: number): NoiseLevel {
    checkLevelIndex(this.className, this.numInferenceSteps, stepIndex);
    return sigmaNoiseLevel(this.sigmas[stepIndex]!);
  }

  step(input: StepInput): StepOutput {
    checkStepInput(this.className, this.numInferenceSteps, input);
    const { modelOutput, sample, stepIndex } = input;
    const sigmaFrom = this.sigmas[stepIndex]!;
    const sigmaTo = this.sigmas[stepIndex + 1]!;
    const sigmaUp = Math.sqrt((sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo)) / (sigmaFrom * sigmaFrom));
    // Mathematically sigma_to^2 - sigma_up^2 = sigma_to^4 / sigma_from^2 >= 0; clamp rounding residue.
    const sigmaDown = Math.sqrt(Math.max(0, sigmaTo * sigmaTo - sigmaUp * sigmaUp));
    const dt = sigmaDown - sigmaFrom;
    const noise = sigmaUp > 0 ? requireNoise(this.className, stepIndex, input.noise) : undefined;
    const prevSample = new Float32Array(sample.length);
    const predictedOriginal = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k]!;
      const x0 = sigmaSpacePredictedOriginal(this.predictionType, modelOutput[k]!, x, sigmaFrom);
      const derivative = (x - x0) / sigmaFrom;
      let next = x + derivative * dt;
      if (noise !== undefined) next += noise[k]! * sigmaUp;
      prevSample[k] = next;
      predictedOriginal[k] = x0;
    }
    return { prevSample, predictedOriginal, state: undefined };
  }
}
