/**
 * diffusers' DPMSolverMultistepScheduler with algorithm_type "dpmsolver++" (Lu et al. 2022):
 * solver_order 2 is "DPM-Solver++ 2M", 1 is the first-order (DDIM-equivalent) solver, 3 is 3M.
 * Deterministic (no step noise).
 *
 * Multistep memory (the x0 estimates of earlier steps) travels in `state`. With `state` undefined
 * the step behaves as diffusers' first step of a run (also when started mid-schedule with
 * `set_begin_index(k)`): a first-order update from sigma_k to sigma_{k+1}; the order then rises
 * by one per step of the trajectory up to solver_order, exactly as diffusers' `lower_order_nums`.
 */
import type { NoiseLevel, Scheduler, StepInput, StepOutput } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import {
  checkStepInput,
  checkTimestepGrid,
  interpOnIndexGrid,
  karrasSigmas,
  noiseTables,
  numpyArange,
  numpyLinspace,
  roundHalfEven,
  sigmaToT,
  trainSigmas,
  logTrainSigmas,
} from './betas.ts';
import { checkLevelIndex, finalSigma, previousState, unscaledModelInput } from './common.ts';

const f32 = Math.fround;

/** What DPM-Solver++ remembers between steps of one trajectory. */
interface DpmSolverState {
  readonly kind: 'DPMSolverMultistepScheduler';
  /** Index of the step that produced this state. */
  readonly stepIndex: number;
  /** x0 estimates of the latest steps, oldest first, at most solver_order of them. */
  readonly history: readonly Float32Array[];
  /** diffusers' `lower_order_nums`: steps taken in this trajectory, capped at solver_order. */
  readonly lowerOrderNums: number;
}

/** alpha_t, sigma_t and lambda_t = log(alpha_t / sigma_t) of the VP process at Karras noise level `sigma`. */
function vpCoefficients(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const s = sigma * alpha;
  return { alpha, sigma: s, lambda: Math.log(alpha) - Math.log(s) };
}

/** DPMSolverMultistepScheduler (dpmsolver++) prepared for a number of inference steps. */
export class DPMSolverMultistepScheduler implements Scheduler {
  readonly className = 'DPMSolverMultistepScheduler';
  readonly numInferenceSteps: number;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly needsStepNoise = false;
  /** Karras noise level at each step, plus the level after the last step. */
  readonly sigmas: Float64Array;
  private readonly config: SchedulerConfig;

  constructor(config: SchedulerConfig, steps: number) {
    const T = config.numTrainTimesteps;
    const { alphasCumprod } = noiseTables(config, true);
    const train = trainSigmas(alphasCumprod);

    // lambda_min_clipped drops the noisiest training timesteps (those with lambda below it).
    let clipped = 0;
    for (let t = T - 1; t >= 0; t--) {
      const a = alphasCumprod[t]!;
      const lambda = Math.log(Math.sqrt(a)) - Math.log(Math.sqrt(1 - a));
      if (lambda < config.lambdaMinClipped) clipped++;
      else break;
    }
    const lastTimestep = T - clipped;

    let timesteps: number[];
    switch (config.timestepSpacing) {
      case 'linspace':
        timesteps = numpyLinspace(0, lastTimestep - 1, steps + 1).map(roundHalfEven).reverse().slice(0, steps);
        break;
      case 'leading': {
        const ratio = Math.floor(lastTimestep / (steps + 1));
        timesteps = [];
        for (let i = steps; i >= 1; i--) timesteps.push(i * ratio + config.stepsOffset);
        break;
      }
      case 'trailing':
        timesteps = numpyArange(lastTimestep, 0, -T / steps).map((v) => roundHalfEven(v) - 1);
        break;
    }
    checkTimestepGrid(this.className, config.timestepSpacing, steps, steps, timesteps, T);

    let sigmas: number[];
    if (config.useKarrasSigmas) {
      sigmas = karrasSigmas(train[0]!, train[T - 1]!, steps);
      const logSigmas = logTrainSigmas(train);
      // diffusers rounds the fractional timesteps, except for the cosine schedule where the int64
      // cast truncates them.
      const toInt = config.betaSchedule === 'squaredcos_cap_v2' ? Math.trunc : roundHalfEven;
      timesteps = sigmas.map((s) => toInt(sigmaToT(s, logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpOnIndexGrid(t, train));
    }
    // The final level: 0, or the smallest training sigma.
    sigmas.push(finalSigma(config.finalSigmasType, train));
    this.sigmas = Float64Array.from(sigmas, f32);
    this.timesteps = timesteps;
    this.numInferenceSteps = steps;
    this.config = config;
  }

  /** DPM-Solver needs no input scaling. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    return unscaledModelInput(this.className, this.numInferenceSteps, sample, stepIndex);
  }

  /** alpha_t * x0 + sigma_t * eps with alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t (diffusers' _sigma_to_alpha_sigma_t). */
  noiseLevel(stepIndex: number): NoiseLevel {
    checkLevelIndex(this.className, this.numInferenceSteps, stepIndex);
    const sigma = this.sigmas[stepIndex]!;
    const alpha = 1 / Math.sqrt(sigma * sigma + 1);
    return { signal: alpha, noise: sigma * alpha };
  }

  step(input: StepInput): StepOutput {
    checkStepInput(this.className, this.numInferenceSteps, input);
    const { modelOutput, sample, stepIndex } = input;
    const { solverOrder, predictionType } = this.config;
    const previous = previousState<DpmSolverState>(this.className, stepIndex, input.state);
    const n = this.numInferenceSteps;
    const lowerOrderFinal =
      stepIndex === n - 1 &&
      (this.config.eulerAtFinal || (this.config.lowerOrderFinal && n < 15) || this.config.finalSigmasType === 'zero');
    const lowerOrderSecond = stepIndex === n - 2 && this.config.lowerOrderFinal && n < 15;
    const lowerOrderNums = previous?.lowerOrderNums ?? 0;

    // dpmsolver++ works on the x0 estimate.
    const s0 = vpCoefficients(this.sigmas[stepIndex]!);
    const x0 = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const m = modelOutput[k]!;
      const x = sample[k]!;
      x0[k] =
        predictionType === 'epsilon' ? (x - s0.sigma * m) / s0.alpha : predictionType === 'v_prediction' ? s0.alpha * x - s0.sigma * m : m;
    }
    const history = [...(previous?.history ?? []), x0].slice(-solverOrder);

    const target = vpCoefficients(this.sigmas[stepIndex + 1]!);
    const h = target.lambda - s0.lambda;
    const expm = Math.exp(-h) - 1; // e^{-h} - 1
    const ratio = target.sigma / s0.sigma;
    const prevSample = new Float32Array(sample.length);
    if (solverOrder === 1 || lowerOrderNums < 1 || lowerOrderFinal) {
      for (let k = 0; k < sample.length; k++) prevSample[k] = ratio * sample[k]! - target.alpha * expm * x0[k]!;
    } else if (solverOrder === 2 || lowerOrderNums < 2 || lowerOrderSecond) {
      const s1 = vpCoefficients(this.sigmas[stepIndex - 1]!);
      const r0 = (s0.lambda - s1.lambda) / h;
      const m0 = history[history.length - 1]!;
      const m1 = history[history.length - 2]!;
      const heun = this.config.solverType === 'heun';
      const d1Coefficient = heun ? target.alpha * (expm / h + 1) : -0.5 * target.alpha * expm;
      for (let k = 0; k < sample.length; k++) {
        const d0 = m0[k]!;
        const d1 = (1 / r0) * (m0[k]! - m1[k]!);
        prevSample[k] = ratio * sample[k]! - target.alpha * expm * d0 + d1Coefficient * d1;
      }
    } else {
      const s1 = vpCoefficients(this.sigmas[stepIndex - 1]!);
      const s2 = vpCoefficients(this.sigmas[stepIndex - 2]!);
      const r0 = (s0.lambda - s1.lambda) / h;
      const r1 = (s1.lambda - s2.lambda) / h;
      const m0 = history[history.length - 1]!;
      const m1 = history[history.length - 2]!;
      const m2 = history[history.length - 3]!;
      const c1 = target.alpha * (expm / h + 1);
      const c2 = target.alpha * ((expm + h) / (h * h) - 0.5);
      for (let k = 0; k < sample.length; k++) {
        const d10 = (1 / r0) * (m0[k]! - m1[k]!);
        const d11 = (1 / r1) * (m1[k]! - m2[k]!);
        const d1 = d10 + (r0 / (r0 + r1)) * (d10 - d11);
        const d2 = (1 / (r0 + r1)) * (d10 - d11);
        prevSample[k] = ratio * sample[k]! - target.alpha * expm * m0[k]! + c1 * d1 - c2 * d2;
      }
    }
    const state: DpmSolverState = {
      kind: 'DPMSolverMultistepScheduler',
      stepIndex,
      history,
      lowerOrderNums: Math.min(lowerOrderNums + 1, solverOrder),
    };
    return { prevSample, predictedOriginal: x0, state };
  }
}
