/**
 * Parses a diffusers `scheduler_config.json` object into a typed, fully defaulted config for one
 * scheduler class. Like diffusers' `from_config`, each class reads only its own keys (with its own
 * defaults) and ignores the rest, so a model's config can be reused with another scheduler class.
 * A key the class reads with a value this project does not implement is an error naming the key,
 * the value and what is allowed.
 */
import { z } from 'zod';
import { LatentBlendError } from '../errors.ts';
import type { BetaSchedule, TimestepSpacing } from './betas.ts';
import type { PredictionType } from './scheduler.ts';

/** diffusers class names implemented here. */
export type SchedulerClassName =
  | 'EulerDiscreteScheduler'
  | 'EulerAncestralDiscreteScheduler'
  | 'DDIMScheduler'
  | 'LCMScheduler'
  | 'DPMSolverMultistepScheduler'
  | 'PNDMScheduler';

/** A scheduler config with every field resolved (diffusers' defaults for the class filled in). */
export interface SchedulerConfig {
  readonly className: SchedulerClassName;
  readonly numTrainTimesteps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly betaSchedule: BetaSchedule;
  readonly trainedBetas: readonly number[] | null;
  readonly predictionType: PredictionType;
  readonly timestepSpacing: TimestepSpacing;
  readonly stepsOffset: number;
  readonly rescaleBetasZeroSnr: boolean;
  /** DDIM, LCM, PNDM: alphas_cumprod "before" t = 0 is 1 (true) or alphas_cumprod[0] (false). */
  readonly setAlphaToOne: boolean;
  /** DDIM, LCM: clamp the predicted x0 to [-clipSampleRange, clipSampleRange]. */
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  /** Euler: how sigmas are taken from the training table. */
  readonly interpolationType: 'linear' | 'log_linear';
  /** Euler, DPM-Solver: Karras et al. noise levels. */
  readonly useKarrasSigmas: boolean;
  /** Euler: bounds of the Karras schedule (null: the schedule's own ends). */
  readonly sigmaMin: number | null;
  readonly sigmaMax: number | null;
  /** Euler, DPM-Solver: noise level after the last step. */
  readonly finalSigmasType: 'zero' | 'sigma_min';
  /** Euler: "continuous" with v_prediction feeds 0.25 * log(sigma) as the timestep. */
  readonly timestepType: 'discrete' | 'continuous';
  /** PNDM: only true (PLMS) is implemented. */
  readonly skipPrkSteps: boolean;
  /** DPM-Solver. */
  readonly solverOrder: number;
  readonly algorithmType: 'dpmsolver++';
  readonly solverType: 'midpoint' | 'heun';
  readonly lowerOrderFinal: boolean;
  readonly eulerAtFinal: boolean;
  readonly lambdaMinClipped: number;
  /** LCM. */
  readonly originalInferenceSteps: number;
  readonly timestepScaling: number;
  /** Keys present in the input that this class does not read (diffusers ignores them too). */
  readonly ignoredKeys: readonly string[];
}

const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;
const SPACINGS = ['linspace', 'leading', 'trailing'] as const;

// Every key any supported class reads. Values may be null (diffusers writes null for "unset").
const rawSchema = z.object({
  num_train_timesteps: z.number().int().positive().nullish(),
  beta_start: z.number().positive().nullish(),
  beta_end: z.number().positive().nullish(),
  beta_schedule: z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2']).nullish(),
  trained_betas: z.array(z.number().gt(0).lte(1)).nullish(),
  prediction_type: z.enum(PREDICTION_TYPES).nullish(),
  timestep_spacing: z.enum(SPACINGS).nullish(),
  steps_offset: z.number().int().nonnegative().nullish(),
  rescale_betas_zero_snr: z.boolean().nullish(),
  set_alpha_to_one: z.boolean().nullish(),
  clip_sample: z.boolean().nullish(),
  clip_sample_range: z.number().positive().nullish(),
  thresholding: z.literal(false).nullish(),
  interpolation_type: z.enum(['linear', 'log_linear']).nullish(),
  use_karras_sigmas: z.boolean().nullish(),
  use_exponential_sigmas: z.literal(false).nullish(),
  use_beta_sigmas: z.literal(false).nullish(),
  sigma_min: z.number().positive().nullish(),
  sigma_max: z.number().positive().nullish(),
  final_sigmas_type: z.enum(['zero', 'sigma_min']).nullish(),
  timestep_type: z.enum(['discrete', 'continuous']).nullish(),
  skip_prk_steps: z.literal(true).nullish(),
  solver_order: z.number().int().min(1).max(3).nullish(),
  // "deis" is accepted because diffusers silently maps it to "dpmsolver++".
  algorithm_type: z.enum(['dpmsolver++', 'deis']).nullish(),
  // Legacy names that diffusers maps to "midpoint".
  solver_type: z.enum(['midpoint', 'heun', 'logrho', 'bh1', 'bh2']).nullish(),
  lower_order_final: z.boolean().nullish(),
  euler_at_final: z.boolean().nullish(),
  use_lu_lambdas: z.literal(false).nullish(),
  use_flow_sigmas: z.literal(false).nullish(),
  use_dynamic_shifting: z.literal(false).nullish(),
  variance_type: z.null().optional(),
  // diffusers writes its default as -Infinity (Python JSON), which plain z.number() rejects.
  lambda_min_clipped: z.union([z.number(), z.literal(-Infinity)]).nullish(),
  original_inference_steps: z.number().int().positive().nullish(),
  timestep_scaling: z.number().positive().nullish(),
});
type RawKey = keyof z.infer<typeof rawSchema>;

// Human-readable "allowed" text for values that the schema restricts to a single literal.
const LITERAL_HINTS: Partial<Record<RawKey, string>> = {
  thresholding: 'false (dynamic thresholding is not implemented)',
  use_exponential_sigmas: 'false (exponential sigmas are not implemented; use_karras_sigmas is)',
  use_beta_sigmas: 'false (beta sigmas are not implemented; use_karras_sigmas is)',
  skip_prk_steps: 'true (PNDM is implemented as PLMS only, as Stable Diffusion configures it)',
  use_lu_lambdas: 'false (Lu lambdas are not implemented)',
  use_flow_sigmas: 'false (flow-matching sigmas are not implemented)',
  use_dynamic_shifting: 'false (dynamic shifting is not implemented)',
  variance_type: 'null (learned variance outputs are not implemented)',
  algorithm_type: '"dpmsolver++" (or "deis", which diffusers maps to it); dpmsolver, sde-dpmsolver and sde-dpmsolver++ are not implemented',
  solver_order: 'an integer 1, 2 or 3',
  trained_betas: 'an array of num_train_timesteps numbers, each in (0, 1]',
};

const COMMON_KEYS: readonly RawKey[] = [
  'num_train_timesteps',
  'beta_start',
  'beta_end',
  'beta_schedule',
  'trained_betas',
  'prediction_type',
  'timestep_spacing',
  'steps_offset',
];

/** Keys each class reads, and the prediction types it supports (diffusers' own limits). */
const CLASSES: Record<SchedulerClassName, { keys: readonly RawKey[]; predictions: readonly PredictionType[] }> = {
  EulerDiscreteScheduler: {
    keys: [
      ...COMMON_KEYS,
      'rescale_betas_zero_snr',
      'interpolation_type',
      'use_karras_sigmas',
      'use_exponential_sigmas',
      'use_beta_sigmas',
      'sigma_min',
      'sigma_max',
      'timestep_type',
      'final_sigmas_type',
    ],
    predictions: ['epsilon', 'v_prediction', 'sample'],
  },
  EulerAncestralDiscreteScheduler: {
    keys: [...COMMON_KEYS, 'rescale_betas_zero_snr'],
    predictions: ['epsilon', 'v_prediction'],
  },
  DDIMScheduler: {
    keys: [...COMMON_KEYS, 'rescale_betas_zero_snr', 'clip_sample', 'clip_sample_range', 'set_alpha_to_one', 'thresholding'],
    predictions: ['epsilon', 'v_prediction', 'sample'],
  },
  LCMScheduler: {
    keys: [
      ...COMMON_KEYS,
      'rescale_betas_zero_snr',
      'clip_sample',
      'clip_sample_range',
      'set_alpha_to_one',
      'thresholding',
      'original_inference_steps',
      'timestep_scaling',
    ],
    predictions: ['epsilon', 'v_prediction', 'sample'],
  },
  DPMSolverMultistepScheduler: {
    keys: [
      ...COMMON_KEYS,
      'rescale_betas_zero_snr',
      'thresholding',
      'solver_order',
      'algorithm_type',
      'solver_type',
      'lower_order_final',
      'euler_at_final',
      'use_karras_sigmas',
      'use_exponential_sigmas',
      'use_beta_sigmas',
      'use_lu_lambdas',
      'use_flow_sigmas',
      'use_dynamic_shifting',
      'final_sigmas_type',
      'lambda_min_clipped',
      'variance_type',
    ],
    predictions: ['epsilon', 'v_prediction', 'sample'],
  },
  PNDMScheduler: {
    keys: [...COMMON_KEYS, 'skip_prk_steps', 'set_alpha_to_one'],
    predictions: ['epsilon', 'v_prediction'],
  },
};

/** diffusers class names this project implements. */
export const SCHEDULER_CLASS_NAMES = Object.keys(CLASSES) as readonly SchedulerClassName[];

/** True when `name` is an implemented diffusers scheduler class. */
export function isSchedulerClassName(name: string): name is SchedulerClassName {
  return Object.hasOwn(CLASSES, name);
}

/** What a failed zod check expected, in words. */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return issue.values.map((v) => JSON.stringify(v)).join(', ');
    case 'invalid_type':
      if (issue.expected === 'int') return 'an integer';
      if (issue.expected === 'boolean') return 'true or false';
      return issue.expected === 'number' ? 'a number' : `a value of type ${issue.expected}`;
    case 'too_small':
      return `a number ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `a number ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `an array of ${value.length} values`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function fail(className: string, key: string, value: unknown, allowed: string): never {
  throw new LatentBlendError(
    `${className} config: ${key} = ${show(value)} is not supported; allowed: ${allowed}.`,
  );
}

/**
 * Parses a diffusers scheduler config (the JSON object of `scheduler_config.json`) for `className`,
 * filling diffusers' defaults for that class. Throws LatentBlendError for a malformed config or for
 * a value of a key the class reads that is not supported here.
 */
export function parseSchedulerConfig(className: SchedulerClassName, raw: unknown): SchedulerConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LatentBlendError(`${className} config: expected a JSON object, got ${show(raw)}.`);
  }
  const input = raw as Record<string, unknown>;
  const spec = CLASSES[className];
  // Validate only the keys this class reads; others are ignored as diffusers ignores them.
  const relevant: Record<string, unknown> = {};
  for (const key of spec.keys) if (Object.hasOwn(input, key)) relevant[key] = input[key];
  const parsed = rawSchema.safeParse(relevant);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]) as RawKey;
    const value = relevant[key];
    let allowed = LITERAL_HINTS[key];
    if (allowed === undefined) {
      allowed = describeIssue(issue);
    }
    fail(className, key, value, allowed);
  }
  const c = parsed.data;
  const lcm = className === 'LCMScheduler';
  const numTrainTimesteps = c.num_train_timesteps ?? 1000;

  const predictionType = c.prediction_type ?? 'epsilon';
  if (!spec.predictions.includes(predictionType)) {
    fail(className, 'prediction_type', predictionType, spec.predictions.map((p) => JSON.stringify(p)).join(', '));
  }
  const trainedBetas = c.trained_betas ?? null;
  if (trainedBetas !== null && trainedBetas.length !== numTrainTimesteps) {
    fail(className, 'trained_betas', trainedBetas, `an array of num_train_timesteps (${numTrainTimesteps}) betas in (0, 1]`);
  }
  const originalInferenceSteps = c.original_inference_steps ?? 50;
  if (lcm && originalInferenceSteps > numTrainTimesteps) {
    fail(className, 'original_inference_steps', originalInferenceSteps, `an integer from 1 to num_train_timesteps (${numTrainTimesteps})`);
  }
  const useKarrasSigmas = c.use_karras_sigmas ?? false;
  const interpolationType = c.interpolation_type ?? 'linear';
  if (useKarrasSigmas && interpolationType === 'log_linear') {
    // diffusers would build Karras sigmas from the log-linear ones; nobody configures that.
    fail(className, 'interpolation_type', interpolationType, '"linear" when use_karras_sigmas is true');
  }
  const solverType = c.solver_type ?? 'midpoint';
  if (className === 'PNDMScheduler' && c.skip_prk_steps == null) {
    throw new LatentBlendError(
      `${className} config: skip_prk_steps is missing, and diffusers' default (false: Runge-Kutta warm-up steps) is not supported; allowed: ${LITERAL_HINTS.skip_prk_steps}.`,
    );
  }

  const ignoredKeys = Object.keys(input).filter((key) => !spec.keys.includes(key as RawKey));
  return {
    className,
    numTrainTimesteps,
    betaStart: c.beta_start ?? (lcm ? 0.00085 : 0.0001),
    betaEnd: c.beta_end ?? (lcm ? 0.012 : 0.02),
    betaSchedule: c.beta_schedule ?? (lcm ? 'scaled_linear' : 'linear'),
    trainedBetas,
    predictionType,
    timestepSpacing:
      c.timestep_spacing ??
      (className === 'DDIMScheduler' || className === 'LCMScheduler' || className === 'PNDMScheduler' ? 'leading' : 'linspace'),
    stepsOffset: c.steps_offset ?? 0,
    rescaleBetasZeroSnr: c.rescale_betas_zero_snr ?? false,
    setAlphaToOne: c.set_alpha_to_one ?? className !== 'PNDMScheduler',
    clipSample: c.clip_sample ?? className === 'DDIMScheduler',
    clipSampleRange: c.clip_sample_range ?? 1,
    interpolationType,
    useKarrasSigmas,
    sigmaMin: c.sigma_min ?? null,
    sigmaMax: c.sigma_max ?? null,
    finalSigmasType: c.final_sigmas_type ?? 'zero',
    timestepType: c.timestep_type ?? 'discrete',
    skipPrkSteps: true,
    solverOrder: c.solver_order ?? 2,
    algorithmType: 'dpmsolver++',
    solverType: solverType === 'heun' ? 'heun' : 'midpoint',
    lowerOrderFinal: c.lower_order_final ?? true,
    eulerAtFinal: c.euler_at_final ?? false,
    lambdaMinClipped: c.lambda_min_clipped ?? -Infinity,
    originalInferenceSteps,
    timestepScaling: c.timestep_scaling ?? 10,
    ignoredKeys,
  };
}
