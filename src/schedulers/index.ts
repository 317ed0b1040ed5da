/**
 * Entry point of the schedulers: builds a scheduler from a diffusers class name, the model's
 * `scheduler_config.json` object and a number of inference steps.
 */
import { LatentBlendError } from '../errors.ts';
import type { Scheduler } from './scheduler.ts';
import { isSchedulerClassName, parseSchedulerConfig, SCHEDULER_CLASS_NAMES } from './config.ts';
import { EulerDiscreteScheduler } from './euler.ts';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.ts';
import { DDIMScheduler } from './ddim.ts';
import { LCMScheduler } from './lcm.ts';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep.ts';
import { PNDMScheduler } from './pndm.ts';

export type { Scheduler, SchedulerState, StepInput, StepOutput, PredictionType, NoiseLevel } from './scheduler.ts';
export { addNoise } from './common.ts';
export { parseSchedulerConfig, type SchedulerConfig, type SchedulerClassName } from './config.ts';

/** diffusers scheduler class names that `createScheduler` accepts. */
export const SUPPORTED_SCHEDULERS: readonly string[] = SCHEDULER_CLASS_NAMES;

/** Options diffusers passes to `step` rather than keeping in the scheduler config. */
export interface SchedulerOptions {
  /** DDIMScheduler only: weight of the stochastic term, 0 (default, deterministic) to 1. */
  readonly eta?: number;
}

/**
 * Creates a scheduler prepared for `numInferenceSteps` steps (diffusers' `from_config` followed by
 * `set_timesteps`). `config` is the parsed JSON of the model's `scheduler_config.json`; keys the
 * class does not read are ignored, as diffusers does. Throws LatentBlendError for an unsupported
 * class, an unsupported config value, or an invalid step count.
 *
 * Note: the number of `step` calls per trajectory is the returned scheduler's `numInferenceSteps`
 * (= `timesteps.length`), which is n + 1 for PNDMScheduler with n >= 2.
 */
export function createScheduler(
  className: string,
  config: unknown,
  numInferenceSteps: number,
  options: SchedulerOptions = {},
): Scheduler {
  if (!isSchedulerClassName(className)) {
    throw new LatentBlendError(`Scheduler class "${className}" is not supported; supported: ${SCHEDULER_CLASS_NAMES.join(', ')}.`);
  }
  const parsed = parseSchedulerConfig(className, config);
  const T = parsed.numTrainTimesteps;
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > T) {
    const limit = className === 'LCMScheduler' ? Math.min(T, parsed.originalInferenceSteps) : T;
    throw new LatentBlendError(
      `${className}: number of inference steps ${String(numInferenceSteps)} is invalid; allowed: an integer from 1 to ${limit}.`,
    );
  }
  if (options.eta !== undefined && options.eta !== 0 && className !== 'DDIMScheduler') {
    throw new LatentBlendError(`${className}: eta = ${options.eta} is not supported; eta applies to DDIMScheduler only.`);
  }
  switch (className) {
    case 'EulerDiscreteScheduler':
      return new EulerDiscreteScheduler(parsed, numInferenceSteps);
    case 'EulerAncestralDiscreteScheduler':
      return new EulerAncestralDiscreteScheduler(parsed, numInferenceSteps);
    case 'DDIMScheduler':
      return new DDIMScheduler(parsed, numInferenceSteps, options);
    case 'LCMScheduler':
      return new LCMScheduler(parsed, numInferenceSteps);
    case 'DPMSolverMultistepScheduler':
      return new DPMSolverMultistepScheduler(parsed, numInferenceSteps);
    case 'PNDMScheduler':
      return new PNDMScheduler(parsed, numInferenceSteps);
  }
}
