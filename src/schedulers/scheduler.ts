/**
 * The scheduler contract shared by every scheduler file in this folder.
 *
 * Schedulers follow diffusers' formulas and config fields, but unlike diffusers they keep no
 * hidden per-run state: whatever a multistep method remembers between steps travels in an
 * opaque `state` value owned by the caller. The blending tree needs this, because many
 * trajectories (branches) share one scheduler and a branch may start at any step.
 */

/** What the denoiser's output means (diffusers `prediction_type`). */
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

/** Opaque per-trajectory memory of a multistep scheduler; `undefined` at the trajectory's first step. */
export type SchedulerState = unknown;

export interface StepInput {
  /** Denoiser output for this item (after classifier-free guidance), same length as `sample`. */
  readonly modelOutput: Float32Array;
  /** Current latents x_t for this item. */
  readonly sample: Float32Array;
  /** Index into `timesteps`, 0 <= stepIndex < numInferenceSteps. */
  readonly stepIndex: number;
  /**
   * Standard-normal noise for stochastic schedulers (see `needsStepNoise`), same length as
   * `sample`. Required when `needsStepNoise` is true and the step adds noise; ignored otherwise.
   */
  readonly noise?: Float32Array;
  /** State returned by this trajectory's previous step; undefined when it starts here. */
  readonly state?: SchedulerState;
}

export interface StepOutput {
  /** Latents after this step (x_{t-1}). A new array; inputs are never modified. */
  readonly prevSample: Float32Array;
  /** The model's estimate of the clean latents x_0 at this step. */
  readonly predictedOriginal: Float32Array;
  /** State to hand to this trajectory's next step. */
  readonly state: SchedulerState;
}

/**
 * The noise level of a sample in a scheduler's own parameterisation: sample = signal * x0 +
 * noise * eps (diffusers' `add_noise` coefficients). Alpha schedulers (DDIM, PNDM, LCM, DPM-Solver):
 * signal = sqrt(alpha_prod), noise = sqrt(1 - alpha_prod); Euler schedulers: signal = 1, noise = sigma.
 */
export interface NoiseLevel {
  readonly signal: number;
  readonly noise: number;
}

/** A scheduler prepared for a fixed number of inference steps (diffusers `set_timesteps` done). */
export interface Scheduler {
  /** diffusers class name, e.g. "EulerAncestralDiscreteScheduler". */
  readonly className: string;
  /**
   * Number of `step` calls in a full trajectory, always `timesteps.length`. Equal to the requested
   * step count, except PNDMScheduler: n + 1 for n >= 2 (its PLMS warm-up repeats a timestep).
   */
  readonly numInferenceSteps: number;
  /** Denoiser timestep at each step index, as diffusers computes it (may be fractional). */
  readonly timesteps: readonly number[];
  /** Factor applied to unit-Gaussian start noise (diffusers `init_noise_sigma`). */
  readonly initNoiseSigma: number;
  /** True when `step` consumes fresh noise (ancestral Euler, LCM, DDIM with eta > 0). */
  readonly needsStepNoise: boolean;
  /** The denoiser input for step `stepIndex` (diffusers `scale_model_input`). Returns a new array. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array;
  /** One denoising step for one item (diffusers `step`). */
  step(input: StepInput): StepOutput;
  /**
   * Noise level of the sample that enters step `stepIndex` (what diffusers' `add_noise` uses at
   * `timesteps[stepIndex]` after `set_begin_index(stepIndex)`); `stepIndex = numInferenceSteps`
   * is the level after the last step (the scheduler's final alpha or sigma).
   */
  noiseLevel(stepIndex: number): NoiseLevel;
  /**
   * The state diffusers' image-to-image pipelines start a trajectory with at step `fromStep`
   * (only multistep schedulers whose warm-up restarts there have one; undefined otherwise).
   */
  img2imgState?(fromStep: number): SchedulerState;
}
