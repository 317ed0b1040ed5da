/**
 * Options of a transition, validated once at the boundary, with the defaults of SPEC.md per
 * preset (Turbo or standard). User-given values always win over defaults.
 */
import { z } from 'zod';
import { parseOptions, seedSchema } from '../options/validate.ts';
import type { ModelDefaults } from '../model/preset.ts';
import type { CrossfeedParams } from '../blend/crossfeed.ts';
import { DEFAULT_TOTAL_FRAMES } from '../blend/plan.ts';
import { LatentBlendError } from '../errors.ts';

const unit = (what: string) =>
  z.number({ error: `expected ${what} in [0, 1]` }).min(0, { error: `expected ${what} in [0, 1]` }).max(1, { error: `expected ${what} in [0, 1]` });

const crossfeedSchema = z.strictObject({
  power: unit('a share'),
  range: unit('a fraction of the steps'),
  decay: unit('a fraction of the power'),
});

/** How a picture keyframe's trajectory is built (see src/engine/picture-keyframe.ts). */
export const IMAGE_METHODS = ['noise', 'inversion'] as const;
export type ImageMethod = (typeof IMAGE_METHODS)[number];

/** A picture as (part of) a keyframe: the file, how it is fitted, how its trajectory is built. */
export const keyframeImageSchema = z.strictObject({
  path: z.string({ error: 'expected the path of a picture file' }).min(1, { error: 'expected the path of a picture file' }),
  fit: z.enum(['cover', 'contain'], { error: 'expected cover or contain' }).default('cover'),
  /** Default: the preset's (Turbo: noise, standard: inversion). */
  method: z.enum(IMAGE_METHODS, { error: `expected one of ${IMAGE_METHODS.join(', ')}` }).optional(),
  /** SHA-256 of the file's content when known (the engine checks it and fills it in). */
  hash: z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a SHA-256 hex digest' }).optional(),
});
export type KeyframeImage = z.infer<typeof keyframeImageSchema>;

export const keyframeSchema = z.strictObject({
  /** What the keyframe shows; with a picture, what the picture shows ('' = nothing said). */
  prompt: z.string({ error: 'expected a prompt string' }),
  seed: seedSchema,
  image: keyframeImageSchema.optional(),
});
export type Keyframe = z.infer<typeof keyframeSchema>;

/** The image method a preset uses when a keyframe does not say: Turbo models noise, others inversion. */
export function defaultImageMethod(preset: ModelDefaults['preset']): ImageMethod {
  return preset === 'turbo' ? 'noise' : 'inversion';
}

function withImageDefaults(keyframe: Keyframe, preset: ModelDefaults['preset']): Keyframe {
  if (keyframe.image === undefined || keyframe.image.method !== undefined) return keyframe;
  return { ...keyframe, image: { ...keyframe.image, method: defaultImageMethod(preset) } };
}

const open01 = z
  .number({ error: 'expected a number in (0, 1)' })
  .gt(0, { error: 'expected a number in (0, 1)' })
  .lt(1, { error: 'expected a number in (0, 1)' });

export const transitionOptionsSchema = z
  .strictObject({
    keyframeA: keyframeSchema,
    keyframeB: keyframeSchema,
    negativePrompt: z.string({ error: 'expected a string' }).optional(),
    width: z.number().int({ error: 'expected an integer from 8 to 8192' }).min(8, { error: 'expected an integer from 8 to 8192' }).max(8192, { error: 'expected an integer from 8 to 8192' }).optional(),
    height: z.number().int({ error: 'expected an integer from 8 to 8192' }).min(8, { error: 'expected an integer from 8 to 8192' }).max(8192, { error: 'expected an integer from 8 to 8192' }).optional(),
    /** Denoising steps N (Turbo 4, others 30); at least 2, so that branches can be injected. */
    steps: z.number().int({ error: 'expected an integer from 2 to 1000' }).min(2, { error: 'expected an integer from 2 to 1000' }).max(1000, { error: 'expected an integer from 2 to 1000' }).optional(),
    guidanceScale: z.number({ error: 'expected a number from 0 to 50' }).min(0, { error: 'expected a number from 0 to 50' }).max(50, { error: 'expected a number from 0 to 50' }).optional(),
    /** SPEC "Guidance": the scale reaches 1 + (scale - 1) * midDamper at the middle; 1 = constant. */
    midDamper: z.number({ error: 'expected a number in (0, 1]' }).gt(0, { error: 'expected a number in (0, 1]' }).max(1, { error: 'expected a number in (0, 1]' }).optional(),
    /** First injection step k0 = round(N * depthStrength); low = more new structure, high = closer to a cross-fade. */
    depthStrength: open01.optional(),
    /** Total frames including A and B. Not together with timeBudget. */
    maxBranches: z.number().int({ error: 'expected an integer from 2 to 4096' }).min(2, { error: 'expected an integer from 2 to 4096' }).max(4096, { error: 'expected an integer from 2 to 4096' }).optional(),
    /** Compute budget in seconds. Not together with maxBranches. */
    timeBudget: z.number({ error: 'expected a number of seconds > 0' }).gt(0, { error: 'expected a number of seconds > 0' }).optional(),
    branch1Crossfeed: crossfeedSchema.optional(),
    parentalCrossfeed: crossfeedSchema.optional(),
    /** Branches computed together in one batched UNet call per step (same injection step). */
    batchSize: z.number().int({ error: 'expected an integer from 1 to 64' }).min(1, { error: 'expected an integer from 1 to 64' }).max(64, { error: 'expected an integer from 1 to 64' }).default(1),
    clipSkip: z.number().int({ error: 'expected an integer from 0 to 10' }).min(0, { error: 'expected an integer from 0 to 10' }).max(10, { error: 'expected an integer from 0 to 10' }).optional(),
    eta: unit('DDIM eta').optional(),
  })
  .refine((options) => !(options.maxBranches !== undefined && options.timeBudget !== undefined), {
    error: 'give either maxBranches or timeBudget, not both',
    path: ['maxBranches'],
  });
export type TransitionOptions = z.input<typeof transitionOptionsSchema>;

/** Options with every default applied: what a transition was computed with. */
export interface ResolvedTransitionOptions {
  readonly keyframeA: Keyframe;
  readonly keyframeB: Keyframe;
  readonly negativePrompt: string | undefined;
  readonly width: number;
  readonly height: number;
  readonly steps: number;
  readonly guidanceScale: number;
  readonly midDamper: number;
  readonly depthStrength: number;
  readonly maxBranches: number | undefined;
  readonly timeBudget: number | undefined;
  readonly branch1Crossfeed: CrossfeedParams;
  readonly parentalCrossfeed: CrossfeedParams;
  readonly batchSize: number;
  readonly clipSkip: number | undefined;
  readonly eta: number | undefined;
}

/** SPEC.md defaults: crossfeed per preset. */
export const CROSSFEED_DEFAULTS = {
  turbo: { branch1: { power: 0, range: 0, decay: 0 }, parental: { power: 1, range: 1, decay: 1 } },
  standard: { branch1: { power: 0, range: 0, decay: 0 }, parental: { power: 0.3, range: 0.6, decay: 0.9 } },
} as const;

/** Default depth strength: k0 = 2 of 4 for Turbo (SPEC.md), the middle of the ladder otherwise. */
export const DEFAULT_DEPTH_STRENGTH = 0.5;
/** Default mid-damper for guided models (the Python project's value); irrelevant without guidance. */
export const DEFAULT_MID_DAMPER = 0.5;

/**
 * The transition settings a model starts from (GET /api/model's `defaults`, for the studio's
 * server and its in-browser mode alike): its size (px), steps and guidance, the SPEC.md depth
 * strength and mid-damper (0..1), its preset's frame count and crossfeed (copies).
 */
export function modelTransitionDefaults(defaults: ModelDefaults) {
  const crossfeed = CROSSFEED_DEFAULTS[defaults.preset];
  return {
    width: defaults.width,
    height: defaults.height,
    steps: defaults.steps,
    guidanceScale: defaults.guidanceScale,
    depthStrength: DEFAULT_DEPTH_STRENGTH,
    midDamper: DEFAULT_MID_DAMPER,
    maxBranches: DEFAULT_TOTAL_FRAMES[defaults.preset],
    branch1Crossfeed: { ...crossfeed.branch1 },
    parentalCrossfeed: { ...crossfeed.parental },
  };
}

/**
 * Validates `input` and fills defaults from the model (size, steps, guidance) and its preset
 * (crossfeed). `roundSize` rounds width and height to the VAE grid (warning when it changes them).
 */
export function resolveTransitionOptions(
  input: unknown,
  defaults: ModelDefaults,
  roundSize: (value: number, name: string) => number,
): ResolvedTransitionOptions {
  const parsed = parseOptions(transitionOptionsSchema, input, 'transition options');
  const crossfeed = CROSSFEED_DEFAULTS[defaults.preset];
  const steps = parsed.steps ?? defaults.steps;
  if (steps < 2) throw new LatentBlendError(`steps: expected an integer from 2 to 1000, got ${steps}`);
  return {
    keyframeA: withImageDefaults(parsed.keyframeA, defaults.preset),
    keyframeB: withImageDefaults(parsed.keyframeB, defaults.preset),
    negativePrompt: parsed.negativePrompt,
    width: roundSize(parsed.width ?? defaults.width, 'width'),
    height: roundSize(parsed.height ?? defaults.height, 'height'),
    steps,
    guidanceScale: parsed.guidanceScale ?? defaults.guidanceScale,
    midDamper: parsed.midDamper ?? DEFAULT_MID_DAMPER,
    depthStrength: parsed.depthStrength ?? DEFAULT_DEPTH_STRENGTH,
    maxBranches: parsed.maxBranches,
    timeBudget: parsed.timeBudget,
    branch1Crossfeed: parsed.branch1Crossfeed ?? crossfeed.branch1,
    parentalCrossfeed: parsed.parentalCrossfeed ?? crossfeed.parental,
    batchSize: parsed.batchSize,
    clipSkip: parsed.clipSkip,
    eta: parsed.eta,
  };
}
