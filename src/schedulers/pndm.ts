/**
 * diffusers' PNDMScheduler with skip_prk_steps = true, i.e. PLMS (pseudo linear multistep, Liu et
 * al. 2022), Stable Diffusion 1.x's default. Deterministic (no step noise).
 *
 * diffusers' PLMS has a warm-up that shapes its timestep list: for n >= 2 inference steps it has
 * n + 1 timesteps, the second one repeated, e.g. leading spacing, n = 10, steps_offset = 1:
 * [901, 801, 801, 701, ..., 1]. So `numInferenceSteps` (and the number of `step` calls per
 * trajectory) is n + 1. Per step index i of a full trajectory:
 * - i = 0: first-order (DDIM-like) step from t_0 to t_0 - T // n with the model output e_0;
 * - i = 1 (timestep repeated): a Heun-like correction that redoes step 0 from the *original*
 *   x_{t_0} with the mean of e_0 and e_1 (this step's output, taken at step 0's result);
 * - i >= 2: Adams-Bashforth steps from t_i to t_i - T // n on the stored outputs
 *   (e_1 is not stored), of order 2, 3, then 4.
 * diffusers always steps back by T // n, whatever the spacing; so does this.
 *
 * Multistep memory travels in `state`. A trajectory started with `state` undefined at step k:
 * - k = 0 or k >= 2: diffusers' first-step update (first order with this step's output); the
 *   Adams-Bashforth order then grows by one per step (2, 3, 4), as after diffusers' warm-up, but
 *   there is no Heun correction (it only exists at index 1 of the grid);
 * - k = 1: the latent entering step 1 already sits at step 1's output noise level (step 0's
 *   estimate), and the correction needs x_{t_0}, which a new trajectory lacks; so the step returns
 *   the sample unchanged and the model output is not used. Start at 0 or >= 2 to avoid wasting it.
 */
import type { NoiseLevel, Scheduler, StepInput, StepOutput } from './scheduler.ts';
import type { SchedulerConfig } from './config.ts';
import { checkStepInput } from './betas.ts';
import { alphaNoiseLevel, checkLevelIndex, alphaSchedule, checkedTimesteps, prevAlphaProd, previousState, unscaledModelInput, type AlphaSchedule } from './common.ts';

/** What PLMS remembers between steps of one trajectory. */
interface PndmState {
  readonly kind: 'PNDMScheduler';
  /** Index of the step that produced this state. */
  readonly stepIndex: number;
  /** Raw model outputs used by the Adams-Bashforth formulas, oldest first, at most 4. */
  readonly ets: readonly Float32Array[];
  /** The sample entering step 0, kept for the correction at step 1. */
  readonly firstSample?: Float32Array;
  /**
   * diffusers' warm-up counter restarted at a later step (its img2img pipelines): the first step
   * run is first order and the second redoes it (the correction of step 1), whatever their index.
   */
  readonly restarted?: boolean;
}

/** PNDMScheduler (PLMS) prepared for a number of inference steps. */
export class PNDMScheduler implements Scheduler {
  readonly className = 'PNDMScheduler';
  /** Number of `step` calls per trajectory: n + 1 for n >= 2 requested steps (see the file comment). */
  readonly numInferenceSteps: number;
  /** The inference step count asked for (diffusers' `num_inference_steps`). */
  readonly requestedSteps: number;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;
  readonly needsStepNoise = false;
  private readonly alphas: AlphaSchedule;
  private readonly stepRatio: number;
  private readonly predictionType: SchedulerConfig['predictionType'];

  constructor(config: SchedulerConfig, steps: number) {
    const descending = checkedTimesteps(this.className, config, steps, true);
    // Descending with the second timestep repeated (diffusers' plms_timesteps).
    this.timesteps = steps === 1 ? descending : [descending[0]!, descending[1]!, ...descending.slice(1)];
    this.numInferenceSteps = this.timesteps.length;
    this.requestedSteps = steps;
    this.alphas = alphaSchedule(config);
    this.stepRatio = Math.floor(config.numTrainTimesteps / steps);
    this.predictionType = config.predictionType;
  }

  /** PNDM needs no input scaling. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    return unscaledModelInput(this.className, this.numInferenceSteps, sample, stepIndex);
  }

  /** sqrt(alphas_cumprod[t]) and sqrt(1 - alphas_cumprod[t]); after the last step, the final alpha. */
  noiseLevel(stepIndex: number): NoiseLevel {
    checkLevelIndex(this.className, this.numInferenceSteps, stepIndex);
    if (stepIndex === this.numInferenceSteps) return alphaNoiseLevel(this.alphas.finalAlphaCumprod);
    return alphaNoiseLevel(this.alphas.alphasCumprod[this.timesteps[stepIndex]!]!);
  }

  /**
   * The state diffusers' img2img pipelines give a trajectory that starts at `fromStep` > 0: PLMS's
   * warm-up counter restarts there, so the second step run is a correction of the first (at that
   * point the sample's level and the listed timesteps drift apart by one step, as in diffusers).
   * The blending engine does not use this (see the file comment for its mid-trajectory starts).
   */
  img2imgState(fromStep: number): PndmState | undefined {
    return fromStep > 0 ? { kind: this.className, stepIndex: fromStep - 1, ets: [], restarted: true } : undefined;
  }

  step(input: StepInput): StepOutput {
    checkStepInput(this.className, this.numInferenceSteps, input);
    const { modelOutput, sample, stepIndex } = input;
    const previous = previousState<PndmState>(this.className, stepIndex, input.state);
    const timestep = this.timesteps[stepIndex]!;

    if (previous?.restarted === true && this.numInferenceSteps > 1) {
      if (previous.firstSample === undefined) {
        // diffusers' counter 0: first order with this output, remember the sample for the correction.
        const { prevSample, x0 } = this.update(sample, timestep, timestep - this.stepRatio, modelOutput);
        return { prevSample, predictedOriginal: x0, state: { kind: this.className, stepIndex, ets: [modelOutput], firstSample: sample.slice(), restarted: true } };
      }
      // diffusers' counter 1: redo the previous step from its input with the mean of both outputs.
      const first = previous.ets[previous.ets.length - 1]!;
      const mean = modelOutput.map((m, k) => (m + first[k]!) / 2);
      const { prevSample, x0 } = this.update(previous.firstSample, timestep + this.stepRatio, timestep, mean);
      return { prevSample, predictedOriginal: x0, state: { kind: this.className, stepIndex, ets: previous.ets } };
    }

    if (stepIndex === 1 && this.numInferenceSteps > 1) {
      if (previous?.firstSample === undefined) {
        // New trajectory at the repeated timestep: nothing to correct (see the file comment).
        const predictedOriginal = this.update(sample, timestep, timestep, modelOutput).x0;
        return { prevSample: sample.slice(), predictedOriginal, state: { kind: this.className, stepIndex, ets: [] } };
      }
      // Redo step 0 from its input with the mean of the two model outputs.
      const first = previous.ets[previous.ets.length - 1]!;
      const mean = modelOutput.map((m, k) => (m + first[k]!) / 2);
      const { prevSample, x0 } = this.update(previous.firstSample, timestep + this.stepRatio, timestep, mean);
      return { prevSample, predictedOriginal: x0, state: { kind: this.className, stepIndex, ets: previous.ets } };
    }

    const ets = [...(previous?.ets ?? []).slice(-3), modelOutput];
    let combined: Float32Array;
    const e = (back: number, k: number): number => ets[ets.length - back]![k]!;
    switch (ets.length) {
      case 1:
        combined = modelOutput;
        break;
      case 2:
        combined = modelOutput.map((_, k) => (3 * e(1, k) - e(2, k)) / 2);
        break;
      case 3:
        combined = modelOutput.map((_, k) => (23 * e(1, k) - 16 * e(2, k) + 5 * e(3, k)) / 12);
        break;
      default:
        combined = modelOutput.map((_, k) => (1 / 24) * (55 * e(1, k) - 59 * e(2, k) + 37 * e(3, k) - 9 * e(4, k)));
    }
    const { prevSample, x0 } = this.update(sample, timestep, timestep - this.stepRatio, combined);
    const state: PndmState =
      stepIndex === 0 ? { kind: this.className, stepIndex, ets, firstSample: sample.slice() } : { kind: this.className, stepIndex, ets };
    return { prevSample, predictedOriginal: x0, state };
  }

  /**
   * diffusers' `_get_prev_sample` (PNDM paper, eq. 9) from timestep t to prevT with the (combined)
   * model output; also returns the matching x0 estimate.
   */
  private update(sample: Float32Array, t: number, prevT: number, output: Float32Array): { prevSample: Float32Array; x0: Float32Array } {
    const alphaProd = this.alphas.alphasCumprod[t]!;
    const alphaProdPrev = prevAlphaProd(this.alphas, prevT);
    const betaProd = 1 - alphaProd;
    const betaProdPrev = 1 - alphaProdPrev;
    const sampleCoeff = Math.sqrt(alphaProdPrev / alphaProd);
    const denominator = alphaProd * Math.sqrt(betaProdPrev) + Math.sqrt(alphaProd * betaProd * alphaProdPrev);
    const prevSample = new Float32Array(sample.length);
    const x0 = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k]!;
      const o = output[k]!;
      const eps = this.predictionType === 'v_prediction' ? Math.sqrt(alphaProd) * o + Math.sqrt(betaProd) * x : o;
      prevSample[k] = sampleCoeff * x - ((alphaProdPrev - alphaProd) * eps) / denominator;
      x0[k] = (x - Math.sqrt(betaProd) * eps) / Math.sqrt(alphaProd);
    }
    return { prevSample, x0 };
  }
}
