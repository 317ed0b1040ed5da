/**
 * diffusers' EulerDiscreteScheduler (Karras et al. 2022, Algorithm 2 without churn): a
 * deterministic first-order step in sigma space. Stateless: `state` is ignored and returned as
 * undefined.
 */
import type { NoiseLevel, Scheduler, StepInput, StepOutput } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import { checkStepInput, interpOnIndexGrid, karrasSigmas, noiseTables, sigmaToT, torchLinspaceF32, trainSigmas, logTrainSigmas } from './betas.ts';
import { checkLevelIndex, sigmaNoiseLevel, checkedTimesteps, finalSigma, sigmaInitNoiseSigma, sigmaScaledModelInput } from './common.ts';

const f32 = Math.fround;

/** Estimate of x0 from the model output at noise level sigma (Euler parameterisation x = x0 + sigma * eps). */
export function sigmaSpacePredictedOriginal(
  predictionType: SchedulerConfig['predictionType'],
  modelOutput: number,
  sample: number,
  sigma: number,
): number {
  switch (predictionType) {
    case 'epsilon':
      return sample - sigma * modelOutput;
    case 'v_prediction':
      return modelOutput * (-sigma / Math.sqrt(sigma * sigma + 1)) + sample / (sigma * sigma + 1);
    case 'sample':
      return modelOutput;
  }
}

/** EulerDiscreteScheduler prepared for a number of inference steps. */
export class EulerDiscreteScheduler implements Scheduler {
  readonly className = 'EulerDiscreteScheduler';
  readonly numInferenceSteps: number;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma: number;
  readonly needsStepNoise = false;
  /** Noise level at each step, plus the level after the last step. */
  readonly sigmas: Float64Array;
  private readonly predictionType: SchedulerConfig['predictionType'];

  constructor(config: SchedulerConfig, steps: number) {
    const T = config.numTrainTimesteps;
    const { alphasCumprod } = noiseTables(config, true);
    const train = trainSigmas(alphasCumprod);
    let timesteps = checkedTimesteps(this.className, config, steps, false);

    let sigmas: number[];
    if (config.interpolationType === 'linear') {
      sigmas = timesteps.map((t) => interpOnIndexGrid(t, train));
    } else {
      // diffusers' log_linear: n + 1 float32 levels log-spaced over the whole training range,
      // independent of the timesteps (the last step then ends at the smallest training sigma).
      const logMin = f32(Math.log(f32(train[0]!)));
      const logMax = f32(Math.log(f32(train[T - 1]!)));
      sigmas = Array.from(torchLinspaceF32(logMax, logMin, steps + 1), (v) => f32(Math.exp(v)));
    }
    if (config.useKarrasSigmas) {
      const sigmaMin = config.sigmaMin ?? sigmas[sigmas.length - 1]!;
      const sigmaMax = config.sigmaMax ?? sigmas[0]!;
      sigmas = karrasSigmas(sigmaMin, sigmaMax, steps);
      const logSigmas = logTrainSigmas(train);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, logSigmas)));
    }
    // The final level: 0, or the smallest training sigma.
    sigmas.push(finalSigma(config.finalSigmasType, train));

    this.sigmas = Float64Array.from(sigmas, f32);
    if (config.timestepType === 'continuous' && config.predictionType === 'v_prediction') {
      timesteps = Array.from(this.sigmas.subarray(0, -1), (s) => f32(0.25 * f32(Math.log(s))));
    }
    this.timesteps = timesteps;
    this.numInferenceSteps = timesteps.length;
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
    const sigma = this.sigmas[stepIndex]!;
    const dt = this.sigmas[stepIndex + 1]! - sigma;
    const prevSample = new Float32Array(sample.length);
    const predictedOriginal = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k]!;
      const x0 = sigmaSpacePredictedOriginal(this.predictionType, modelOutput[k]!, x, sigma);
      const derivative = (x - x0) / sigma;
      prevSample[k] = x + derivative * dt;
      predictedOriginal[k] = x0;
    }
    return { prevSample, predictedOriginal, state: undefined };
  }
}
