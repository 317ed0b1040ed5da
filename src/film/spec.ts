/**
 * The film spec of `latentblend movie film.yaml`: global settings plus a list of keyframes,
 * read from YAML or JSON, validated once with messages that name the key path
 * (`keyframes[3].seed: expected an integer seed, got "abc"`), with the film defaults applied.
 *
 * Decisions (documented here because users meet them in error messages):
 * - Keys are camelCase only. snake_case spellings (`guidance_scale`) and the engine's or the
 *   Python project's names (`maxBranches`, `num_inference_steps`) are rejected with a hint
 *   naming the right key, like every other unknown key, so that a typo never passes silently.
 * - Every keyframe needs its own integer `seed`: there is no default, so a film spec alone
 *   says everything needed to render the same film again.
 * - `duration` and `negativePrompt` of a keyframe belong to the transition that follows it
 *   (the negative conditioning is shared by a whole transition). On the last keyframe both are
 *   errors, since no transition follows it.
 * - Settings that depend on the model (size, steps, guidance, crossfeed, frames per transition)
 *   stay undefined when not given; the engine fills them from the model's preset. Film-only
 *   settings (fps, transitionDuration, retiming, quality, batchSize) get their defaults here.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { z } from 'zod';
import { Document, parseDocument } from 'yaml';
import { LatentBlendError } from '../errors.ts';
import { PRESETS, type Preset } from '../model/preset.ts';
import { formatPath, parseOptions, seedSchema } from '../options/validate.ts';
import { checkNesting, checkSpecText, filmTimingProblems, isStackOverflow, nonDecimalNumbers } from './spec-guards.ts';
import type { Device } from '../runtime/onnx.ts';

/**
 * Execution providers a film may ask for. Kept here (not imported from the runtime) so that
 * reading a film spec does not load ONNX Runtime; the type checks keep both lists equal.
 */
const FILM_DEVICES = ['cpu', 'cuda', 'tensorrt', 'coreml', 'dml', 'webgpu'] as const satisfies readonly Device[];
type MissingDevice = Exclude<Device, (typeof FILM_DEVICES)[number]>;
/** Fails to compile when the runtime gains a device this list lacks. */
type AssertTrue<T extends true> = T;
type FilmDevicesComplete = AssertTrue<[MissingDevice] extends [never] ? true : false>;

/** How computed frames are spread over a transition's film time. */
export const RETIMING_MODES = ['perceptual', 'equal'] as const;
/** 'perceptual': constant perceptual change per second; 'equal': the same time for every gap. */
export type RetimingMode = (typeof RETIMING_MODES)[number];

/** Film defaults (the model-dependent ones are the engine's, see SPEC.md). */
export const FILM_DEFAULTS = {
  fps: 30,
  transitionDuration: 6,
  retiming: 'perceptual' as RetimingMode,
  quality: 75,
  batchSize: 1,
} as const;

/** Crossfeed parameters of a film spec, each in [0, 1] (SPEC.md "Crossfeed parameters"). */
export interface FilmCrossfeed {
  /** Share of the other trajectory's latents copied in at the start. */
  readonly power: number;
  /** Fraction of the denoising steps during which crossfeed is active. */
  readonly range: number;
  /** Power at the end of the range, as a fraction of `power`. */
  readonly decay: number;
}

/** One keyframe of a film: an image described by a prompt and a seed, or a picture (+ prompt) and a seed. */
export interface FilmKeyframe {
  /** '' when the keyframe is a picture without a prompt. */
  readonly prompt: string;
  /** A picture file as the keyframe (resolved against the spec file's folder when read). */
  readonly image?: string;
  /** How the picture fills the frame: cover (default, crop the centre) or contain (pad white). */
  readonly fit?: 'cover' | 'contain';
  /** How the picture's trajectory is built: noise or inversion (default: the preset's). */
  readonly imageMethod?: 'noise' | 'inversion';
  /** Integer seed of the keyframe's start noise (and step noise of stochastic schedulers). */
  readonly seed: number;
  /** Negative prompt of the transition that follows this keyframe (overrides the global one). */
  readonly negativePrompt?: string;
  /** Seconds of the transition that follows this keyframe (overrides `transitionDuration`). */
  readonly duration?: number;
  /** ControlNet control picture of this keyframe (overrides the spec's `controlImage`); relative to the spec file. */
  readonly controlImage?: string;
  /** ControlNet conditioning scale at this keyframe (overrides `controlnetScale`). */
  readonly controlnetScale?: number;
  /** IP-Adapter image prompt of this keyframe (overrides the spec's `ipImage`); relative to the spec file. */
  readonly ipImage?: string;
  /** IP-Adapter scale at this keyframe (overrides `ipAdapterScale`). */
  readonly ipAdapterScale?: number;
}

/** A validated film spec with the film defaults applied. */
export interface FilmSpec {
  /** Model folder or Hugging Face Hub repo id; undefined: the CLI's default model. */
  readonly model?: string;
  readonly device?: Device;
  /** Which defaults the model gets; undefined: decided from the model's own metadata. */
  readonly preset?: Preset;
  readonly width?: number;
  readonly height?: number;
  readonly steps?: number;
  readonly guidanceScale?: number;
  /** Guidance at the middle of a transition is 1 + (scale - 1) * midDamper; 1 = constant. */
  readonly midDamper?: number;
  /** First injection step = round(steps * depthStrength): low = more new structure, high = closer to a cross-fade. */
  readonly depthStrength?: number;
  /** Default negative prompt of every transition. */
  readonly negativePrompt?: string;
  /** Total frames computed per transition, keyframes included (the CLI's --max-branches). */
  readonly maxBranches?: number;
  /** Compute budget per transition in seconds (the CLI's --time-budget). */
  readonly timeBudget?: number;
  /** @deprecated The former name of maxBranches, still read (with a warning); parsed specs carry both. */
  readonly branchesPerTransition?: number;
  /** @deprecated The former name of timeBudget, still read (with a warning); parsed specs carry both. */
  readonly timeBudgetPerTransition?: number;
  /** Branches denoised together in one batched UNet call. */
  readonly batchSize: number;
  readonly branch1Crossfeed?: FilmCrossfeed;
  readonly parentalCrossfeed?: FilmCrossfeed;
  /** Frames per second of the film. */
  readonly fps: number;
  /** Default seconds of each transition. */
  readonly transitionDuration: number;
  readonly retiming: RetimingMode;
  /** Video quality, 0 (smallest) to 100 (best). */
  readonly quality: number;
  /** At least 2 keyframes; K keyframes make K - 1 transitions. */
  readonly keyframes: readonly FilmKeyframe[];
  /** ControlNet folder (beside the spec file) or Hub repo id (docs/controlnet-onnx.md). */
  readonly controlnet?: string;
  /** Control picture of every keyframe without its own `controlImage`. */
  readonly controlImage?: string;
  /** ControlNet conditioning scale, 0 to 5 (default 1); interpolated between keyframes. */
  readonly controlnetScale?: number;
  /** Fractions of the steps during which the ControlNet acts (default 0 and 1). */
  readonly controlGuidanceStart?: number;
  readonly controlGuidanceEnd?: number;
  /** Turn every control picture into an edge map with the built-in Canny detector first. */
  readonly canny?: boolean;
  /** IP-Adapter folder (beside the spec file) or Hub repo id (docs/ip-adapter-onnx.md). */
  readonly ipAdapter?: string;
  /** Image prompt of every keyframe without its own `ipImage`. */
  readonly ipImage?: string;
  /** IP-Adapter scale, 0 to 5 (default 1); interpolated between keyframes. */
  readonly ipAdapterScale?: number;
}

/** One transition of a film: from keyframe `index` to keyframe `index + 1`. */
export interface FilmTransition {
  readonly index: number;
  readonly from: FilmKeyframe;
  readonly to: FilmKeyframe;
  /** Seconds: `from.duration`, else the spec's `transitionDuration`. */
  readonly duration: number;
  /** `from.negativePrompt`, else the spec's `negativePrompt`; absent when neither is given. */
  readonly negativePrompt?: string;
}

// ---------------------------------------------------------------------------------------------
// Schema

function integerIn(min: number, max: number) {
  const message = `expected an integer from ${min} to ${max}`;
  return z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message });
}

function numberIn(min: number, max: number) {
  const message = `expected a number from ${min} to ${max}`;
  return z.number({ error: message }).min(min, { error: message }).max(max, { error: message });
}

function positiveSeconds() {
  const message = 'expected a number of seconds > 0';
  return z.number({ error: message }).gt(0, { error: message });
}

function fraction(what: string) {
  const message = `expected ${what} in [0, 1]`;
  return z.number({ error: message }).min(0, { error: message }).max(1, { error: message });
}

function nonEmptyString(what: string) {
  const message = `expected ${what} (a non-empty string)`;
  return z.string({ error: message }).refine((text) => text.trim().length > 0, { error: message });
}

const crossfeedSchema = z.object({
  power: fraction('a share'),
  range: fraction('a fraction of the steps'),
  decay: fraction('a fraction of the power'),
});

const keyframeSchema = z.object(
  {
    prompt: nonEmptyString('a prompt').optional(),
    image: nonEmptyString('the path of a picture file').optional(),
    fit: z.enum(['cover', 'contain'], { error: 'expected cover or contain' }).optional(),
    imageMethod: z.enum(['noise', 'inversion'], { error: 'expected noise or inversion' }).optional(),
    negativePrompt: z.string({ error: 'expected a negative prompt string' }).optional(),
    seed: seedSchema,
    duration: positiveSeconds().optional(),
    controlImage: nonEmptyString('a control picture file').optional(),
    controlnetScale: numberIn(0, 5).optional(),
    ipImage: nonEmptyString('an image prompt file').optional(),
    ipAdapterScale: numberIn(0, 5).optional(),
  },
  { error: 'expected a keyframe: a mapping with prompt and seed' },
);

const keyframesMessage = 'expected a list of at least 2 keyframes';

/** A keyframe needs a prompt, an image or both; a picture without a prompt gets the prompt ''. */
function keyframeWithPicture() {
  return keyframeSchema
    .superRefine((keyframe, context) => {
      if (keyframe.prompt === undefined && keyframe.image === undefined) {
        context.addIssue({ code: 'custom', path: ['prompt'], message: 'expected a prompt, an image or both' });
      }
      for (const key of ['fit', 'imageMethod'] as const) {
        if (keyframe[key] !== undefined && keyframe.image === undefined) {
          context.addIssue({ code: 'custom', path: [key], message: `only with an image on this keyframe, got ${JSON.stringify(keyframe[key])}` });
        }
      }
    })
    .transform(({ prompt, ...rest }) => ({ prompt: prompt ?? '', ...rest }));
}

/**
 * Unknown keys are not rejected by zod here (objects strip them): `structuralProblems` reports
 * them with their full path and a hint, together with zod's problems, in one message.
 */
const filmSpecSchema = z.object({
  model: nonEmptyString('a model folder or Hugging Face Hub repo id').optional(),
  device: z.enum(FILM_DEVICES, { error: `expected one of ${FILM_DEVICES.join(', ')}` }).optional(),
  preset: z.enum(PRESETS, { error: `expected one of ${PRESETS.join(', ')}` }).optional(),
  width: integerIn(8, 8192).optional(),
  height: integerIn(8, 8192).optional(),
  steps: integerIn(2, 1000).optional(),
  guidanceScale: numberIn(0, 50).optional(),
  midDamper: z
    .number({ error: 'expected a number in (0, 1]' })
    .gt(0, { error: 'expected a number in (0, 1]' })
    .max(1, { error: 'expected a number in (0, 1]' })
    .optional(),
  depthStrength: z
    .number({ error: 'expected a number in (0, 1)' })
    .gt(0, { error: 'expected a number in (0, 1)' })
    .lt(1, { error: 'expected a number in (0, 1)' })
    .optional(),
  negativePrompt: z.string({ error: 'expected a negative prompt string' }).optional(),
  maxBranches: integerIn(2, 4096).optional(),
  timeBudget: positiveSeconds().optional(),
  branchesPerTransition: integerIn(2, 4096).optional(),
  timeBudgetPerTransition: positiveSeconds().optional(),
  batchSize: integerIn(1, 64).default(FILM_DEFAULTS.batchSize),
  branch1Crossfeed: crossfeedSchema.optional(),
  parentalCrossfeed: crossfeedSchema.optional(),
  fps: numberIn(1, 120).default(FILM_DEFAULTS.fps),
  transitionDuration: positiveSeconds().default(FILM_DEFAULTS.transitionDuration),
  retiming: z.enum(RETIMING_MODES, { error: `expected one of ${RETIMING_MODES.join(', ')}` }).default(FILM_DEFAULTS.retiming),
  quality: numberIn(0, 100).default(FILM_DEFAULTS.quality),
  keyframes: z.array(keyframeWithPicture(), { error: keyframesMessage }).min(2, { error: keyframesMessage }),
  controlnet: nonEmptyString('a ControlNet folder or Hugging Face Hub repo id').optional(),
  controlImage: nonEmptyString('a control picture file').optional(),
  controlnetScale: numberIn(0, 5).optional(),
  controlGuidanceStart: fraction('a fraction of the steps').optional(),
  controlGuidanceEnd: fraction('a fraction of the steps').optional(),
  canny: z.boolean({ error: 'expected true or false' }).optional(),
  ipAdapter: nonEmptyString('an IP-Adapter folder or Hugging Face Hub repo id').optional(),
  ipImage: nonEmptyString('an image prompt file').optional(),
  ipAdapterScale: numberIn(0, 5).optional(),
});

// ---------------------------------------------------------------------------------------------
// Unknown keys and other checks on the raw document

const TOP_KEYS = Object.keys(filmSpecSchema.shape);
const KEYFRAME_KEYS = Object.keys(keyframeSchema.shape);
const CROSSFEED_KEYS = Object.keys(crossfeedSchema.shape);

/**
 * Keys renamed so that a spec uses the CLI's names (--max-branches, --time-budget) in camelCase:
 * new name → former name. The former names are still read, with a deprecation warning.
 */
const FORMER_KEYS = { maxBranches: 'branchesPerTransition', timeBudget: 'timeBudgetPerTransition' } as const;

/**
 * The spec with each renamed setting under both names (see FORMER_KEYS), warning through
 * `onWarning` when only a former name was used.
 */
function withCurrentNames(spec: FilmSpec, path: string, onWarning: ((message: string) => void) | undefined): FilmSpec {
  const merged: Record<string, unknown> = { ...spec };
  for (const [key, former] of Object.entries(FORMER_KEYS)) {
    const value = merged[key] ?? merged[former];
    if (value === undefined) continue;
    if (merged[key] === undefined) onWarning?.(`${path}: "${former}" is deprecated; call it "${key}" (the CLI's --${key === 'maxBranches' ? 'max-branches' : 'time-budget'}).`);
    merged[key] = value;
    merged[former] = value;
  }
  return merged as unknown as FilmSpec;
}

/** Names from the engine, the Python project or plain guesses, mapped to our keys. */
const TOP_ALIASES: Readonly<Record<string, string>> = {
  max_branches: 'maxBranches',
  nmb_max_branches: 'maxBranches',
  branches: 'maxBranches',
  frames: 'maxBranches',
  time_budget: 'timeBudget',
  budget: 'timeBudget',
  num_inference_steps: 'steps',
  numInferenceSteps: 'steps',
  guidance: 'guidanceScale',
  guidance_scale_mid_damper: 'midDamper',
  guidanceScaleMidDamper: 'midDamper',
  duration: 'transitionDuration',
  negative: 'negativePrompt',
  size: 'width',
  frameRate: 'fps',
  framerate: 'fps',
};

const KEYFRAME_ALIASES: Readonly<Record<string, string>> = {
  transitionDuration: 'duration',
  transition_duration: 'duration',
  negative: 'negativePrompt',
  text: 'prompt',
};

/** Levenshtein distance, for "did you mean" hints on typos. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known key a user probably meant by `key`, and why, or undefined. */
function suggestKey(key: string, known: readonly string[], aliases: Readonly<Record<string, string>>): string | undefined {
  const alias = Object.hasOwn(aliases, key) ? aliases[key] : undefined;
  if (alias !== undefined) return `did you mean "${alias}"?`;
  const camel = key.replace(/[_-]+([a-zA-Z0-9])/g, (_match, letter: string) => letter.toUpperCase());
  if (camel !== key && known.includes(camel)) return `did you mean "${camel}"? (keys are camelCase)`;
  const squash = (text: string) => text.replace(/[_\-\s]/g, '').toLowerCase();
  const sameLetters = known.find((candidate) => squash(candidate) === squash(key));
  if (sameLetters !== undefined) return `did you mean "${sameLetters}"?`;
  const limit = key.length <= 4 ? 1 : key.length <= 8 ? 2 : 3;
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { key: candidate, distance };
  }
  return best === undefined ? undefined : `did you mean "${best.key}"?`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Short rendering of a value for messages, in the style of parseOptions. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value !== 'object' || value === null) return String(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  return 'a mapping';
}

interface Problem {
  readonly path: readonly (string | number)[];
  readonly text: string;
}

function unknownKeys(
  object: Record<string, unknown>,
  path: readonly (string | number)[],
  known: readonly string[],
  aliases: Readonly<Record<string, string>>,
  fallback: string,
  problems: Problem[],
): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const hint = suggestKey(key, known, aliases) ?? fallback;
    problems.push({ path: [...path, key], text: `unknown key, ${hint}` });
  }
}

/** ControlNet keys need `controlnet`, and a ControlNet needs a picture for every keyframe. */
function controlSpecProblems(input: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const keyframes = Array.isArray(input.keyframes) ? input.keyframes : [];
  const keyed = ['controlImage', 'controlnetScale', 'controlGuidanceStart', 'controlGuidanceEnd', 'canny'].filter((key) => Object.hasOwn(input, key));
  if (input.controlnet === undefined) {
    for (const key of keyed) problems.push({ path: [key], text: 'needs "controlnet" (the ControlNet folder or Hub repo)' });
    keyframes.forEach((keyframe: unknown, index) => {
      if (!isPlainObject(keyframe)) return;
      for (const key of ['controlImage', 'controlnetScale']) {
        if (Object.hasOwn(keyframe, key)) problems.push({ path: ['keyframes', index, key], text: 'needs "controlnet" at the top level' });
      }
    });
    return problems;
  }
  if (input.controlImage === undefined) {
    keyframes.forEach((keyframe: unknown, index) => {
      if (isPlainObject(keyframe) && keyframe.controlImage === undefined) {
        problems.push({ path: ['keyframes', index, 'controlImage'], text: 'missing: with "controlnet", every keyframe needs a control picture (its own controlImage or the top-level one)' });
      }
    });
  }
  const start = typeof input.controlGuidanceStart === 'number' ? input.controlGuidanceStart : 0;
  const end = typeof input.controlGuidanceEnd === 'number' ? input.controlGuidanceEnd : 1;
  if (start >= end) problems.push({ path: ['controlGuidanceStart'], text: `must be below controlGuidanceEnd, got ${start} and ${end}` });
  return problems;
}

/** IP-Adapter keys need `ipAdapter`, and an IP-Adapter needs an image prompt for every keyframe. */
function imagePromptSpecProblems(input: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const keyframes = Array.isArray(input.keyframes) ? input.keyframes : [];
  if (input.ipAdapter === undefined) {
    for (const key of ['ipImage', 'ipAdapterScale']) {
      if (Object.hasOwn(input, key)) problems.push({ path: [key], text: 'needs "ipAdapter" (the IP-Adapter folder or Hub repo)' });
    }
    keyframes.forEach((keyframe: unknown, index) => {
      if (!isPlainObject(keyframe)) return;
      for (const key of ['ipImage', 'ipAdapterScale']) {
        if (Object.hasOwn(keyframe, key)) problems.push({ path: ['keyframes', index, key], text: 'needs "ipAdapter" at the top level' });
      }
    });
    return problems;
  }
  if (input.ipImage === undefined) {
    keyframes.forEach((keyframe: unknown, index) => {
      if (isPlainObject(keyframe) && keyframe.ipImage === undefined) {
        problems.push({ path: ['keyframes', index, 'ipImage'], text: 'missing: with "ipAdapter", every keyframe needs an image prompt (its own ipImage or the top-level one)' });
      }
    });
  }
  return problems;
}

/** Problems zod does not see: unknown keys, exclusive settings, settings on the last keyframe. */
function structuralProblems(input: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  unknownKeys(input, [], TOP_KEYS, TOP_ALIASES, 'see `latentblend movie --example` for every setting', problems);
  for (const misplaced of ['prompt', 'seed'] as const) {
    const index = problems.findIndex((problem) => problem.path.length === 1 && problem.path[0] === misplaced);
    if (index >= 0) problems[index] = { path: [misplaced], text: `unknown key here: each keyframe has its own ${misplaced} (keyframes[i].${misplaced})` };
  }
  for (const [key, former] of Object.entries(FORMER_KEYS)) {
    if (input[key] !== undefined && input[former] !== undefined && input[key] !== input[former]) {
      problems.push({ path: [former], text: `the former name of ${key}, which is also given: keep only ${key}, got ${describe(input[former])} and ${describe(input[key])}` });
    }
  }
  const branches = input.maxBranches ?? input.branchesPerTransition;
  const budget = input.timeBudget ?? input.timeBudgetPerTransition;
  if (branches !== undefined && budget !== undefined) {
    problems.push({
      path: [input.timeBudget !== undefined ? 'timeBudget' : 'timeBudgetPerTransition'],
      text: `give either maxBranches (frames) or timeBudget (seconds), not both, got ${describe(branches)} and ${describe(budget)}`,
    });
  }
  for (const group of ['branch1Crossfeed', 'parentalCrossfeed'] as const) {
    const value = input[group];
    if (isPlainObject(value)) unknownKeys(value, [group], CROSSFEED_KEYS, {}, `expected only ${CROSSFEED_KEYS.join(', ')}`, problems);
  }
  problems.push(...controlSpecProblems(input), ...imagePromptSpecProblems(input));
  const keyframes = input.keyframes;
  if (Array.isArray(keyframes)) {
    keyframes.forEach((keyframe: unknown, index) => {
      if (isPlainObject(keyframe)) {
        unknownKeys(keyframe, ['keyframes', index], KEYFRAME_KEYS, KEYFRAME_ALIASES, `a keyframe takes ${KEYFRAME_KEYS.join(', ')}`, problems);
      }
    });
    const lastIndex = keyframes.length - 1;
    const last: unknown = keyframes[lastIndex];
    if (keyframes.length >= 2 && isPlainObject(last)) {
      const before = `keyframes[${lastIndex - 1}]`;
      if (Object.hasOwn(last, 'duration')) {
        problems.push({
          path: ['keyframes', lastIndex, 'duration'],
          text: `not allowed on the last keyframe: a keyframe's duration is that of the transition that follows it, and none follows the last one (set it on ${before}), got ${describe(last.duration)}`,
        });
      }
      if (Object.hasOwn(last, 'negativePrompt')) {
        problems.push({
          path: ['keyframes', lastIndex, 'negativePrompt'],
          text: `not allowed on the last keyframe: a keyframe's negative prompt is that of the transition that follows it, and none follows the last one (set it on ${before}), got ${describe(last.negativePrompt)}`,
        });
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Where a film spec's text came from: its path (for messages) and, optionally, its format. */
export interface FilmSpecSource {
  readonly path: string;
  /** Receives deprecation warnings (former key names). */
  readonly onWarning?: (message: string) => void;
  /** Default: from the extension (.yaml, .yml or .json). */
  readonly format?: 'yaml' | 'json';
}

/** The format of a film spec file from its extension, or a clear error. */
export function filmSpecFormatOf(path: string): 'yaml' | 'json' {
  const extension = extname(path).toLowerCase();
  if (extension === '.yaml' || extension === '.yml') return 'yaml';
  if (extension === '.json') return 'json';
  throw new LatentBlendError(
    `${path}: a film spec must be a .yaml, .yml or .json file, got ${extension === '' ? 'a name without extension' : `"${extension}"`} (see \`latentblend movie --example\`)`,
  );
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

/** The source line at `line` (1-based) with a caret under `column`, indented for messages. */
function excerpt(text: string, line: number, column: number): string {
  const source = (text.split('\n')[line - 1] ?? '').replace(/\r$/, '');
  if (source.trim() === '') return '';
  return `\n    ${source}\n    ${' '.repeat(Math.max(0, column - 1))}^`;
}

function parseYaml(text: string, path: string): unknown {
  let document: ReturnType<typeof parseDocument>;
  try {
    document = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  } catch (cause) {
    if (isStackOverflow(cause)) throw new LatentBlendError(`${path} nests lists or mappings too deeply to read.`, 'too_large');
    throw cause;
  }
  const error = document.errors[0];
  // The parser reports its own stack overflow (a document nested thousands of levels) as an error.
  if (error !== undefined && /call stack/i.test(error.message)) throw new LatentBlendError(`${path} nests lists or mappings too deeply to read.`, 'too_large');
  if (error !== undefined) {
    const { line, column } = lineColumn(text, error.pos[0]);
    const what =
      error.code === 'MULTIPLE_DOCS'
        ? 'more than one YAML document (a second "---"); a film spec is one document'
        : error.code === 'DUPLICATE_KEY'
          ? 'a key appears twice in the same mapping'
          : error.message;
    const more = document.errors.length > 1 ? ` (and ${document.errors.length - 1} more)` : '';
    throw new LatentBlendError(`${path}:${line}:${column}: YAML syntax error at line ${line}, column ${column}: ${what}${more}${excerpt(text, line, column)}`);
  }
  const numbers = nonDecimalNumbers(document, text);
  if (numbers.length > 0) throw new LatentBlendError(`${path}: ${numbers.join('; ')}.`);
  try {
    return document.toJS();
  } catch (cause) {
    if (isStackOverflow(cause)) throw new LatentBlendError(`${path} nests lists or mappings too deeply to read.`, 'too_large');
    throw new LatentBlendError(`${path}: YAML error: ${(cause as Error).message}`);
  }
}

/**
 * The first trailing comma or comment outside strings, the two mistakes JSON.parse reports
 * least clearly (Node 20 names no position for them).
 */
function jsonPitfall(text: string): { offset: number; what: string } | undefined {
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (inString) {
      if (char === '\\') index++;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '/' && (text[index + 1] === '/' || text[index + 1] === '*')) {
      return { offset: index, what: 'a comment (JSON has none; write the spec in YAML to comment it)' };
    } else if (char === ',') {
      const next = /\S/.exec(text.slice(index + 1));
      const closing = next === null ? undefined : next[0];
      if (closing === '}' || closing === ']') {
        return { offset: index, what: `a trailing comma before "${closing}" (JSON allows none: remove it, or write the spec in YAML)` };
      }
    }
  }
  return undefined;
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    const message = (cause as Error).message;
    const pitfall = jsonPitfall(text);
    const position = /at position (\d+)/.exec(message);
    const offset = pitfall?.offset ?? (position === null ? undefined : Number(position[1]));
    if (offset === undefined) throw new LatentBlendError(`${path}: invalid JSON: ${message}`);
    const { line, column } = lineColumn(text, offset);
    const what = pitfall?.what ?? message;
    throw new LatentBlendError(`${path}:${line}:${column}: invalid JSON at line ${line}, column ${column}: ${what}${excerpt(text, line, column)}`);
  }
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `a string ${describe(value.length > 40 ? `${value.slice(0, 37)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

/**
 * Parses and validates a film spec. `source.path` names the file in messages; the format comes
 * from its extension unless given. JSON is parsed with JSON.parse (JSON-specific messages), YAML
 * with the `yaml` package (YAML 1.2 core schema, duplicate keys rejected). Throws a
 * LatentBlendError listing every problem, each as `<key path>: <what is allowed>, got <value>`.
 */
export function parseFilmSpec(text: string, source: FilmSpecSource): FilmSpec {
  const { path } = source;
  const format = source.format ?? filmSpecFormatOf(path);
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (body.trim() === '') {
    throw new LatentBlendError(`${path} is empty: expected film settings and a "keyframes" list (see \`latentblend movie --example\`)`);
  }
  checkSpecText(body, path);
  const raw = format === 'json' ? parseJson(body, path) : parseYaml(body, path);
  checkNesting(raw, path);
  if (raw === null || raw === undefined) {
    throw new LatentBlendError(`${path} has no settings (only comments?): expected film settings and a "keyframes" list (see \`latentblend movie --example\`)`);
  }
  if (!isPlainObject(raw)) {
    throw new LatentBlendError(`${path}: expected a mapping of film settings with a "keyframes" list at the top level, got ${kindOf(raw)}`);
  }
  const problems = structuralProblems(raw).map((problem) => `${formatPath(problem.path)}: ${problem.text}`);
  const what = `film spec ${path}`;
  let spec: FilmSpec | undefined;
  try {
    spec = parseOptions(filmSpecSchema, raw, what);
  } catch (error) {
    if (!(error instanceof LatentBlendError)) throw error;
    // parseOptions' message is a header line followed by one indented line per problem.
    problems.push(...error.message.split('\n').slice(1).map((line) => line.trim()));
  }
  if (spec !== undefined) {
    const timing = filmTimingProblems(
      spec.fps,
      transitionsOf(spec).map((transition) => transition.duration),
      spec.keyframes.slice(0, -1).map((keyframe, index) => (keyframe.duration !== undefined ? `keyframes[${index}].duration` : 'transitionDuration')),
    );
    problems.push(...new Set(timing.map(([key, text]) => `${key}: ${text}`)));
  }
  if (problems.length > 0 || spec === undefined) {
    throw new LatentBlendError(`Invalid ${what}:\n  ${problems.join('\n  ')}`);
  }
  // Picture paths are relative to the spec file.
  if (spec.keyframes.some((keyframe) => keyframe.image !== undefined)) {
    const base = dirname(path);
    spec = { ...spec, keyframes: spec.keyframes.map((keyframe) => (keyframe.image === undefined ? keyframe : { ...keyframe, image: resolve(base, keyframe.image) })) };
  }
  return withCurrentNames(spec, path, source.onWarning);
}

/** Reads and parses the film spec at `path` (.yaml, .yml or .json). */
export function loadFilmSpec(path: string, options: { onWarning?: (message: string) => void } = {}): FilmSpec {
  const format = filmSpecFormatOf(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a folder, not a file'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : (cause as Error).message;
    throw new LatentBlendError(`Cannot read film spec ${path}: ${why}`, code === 'ENOENT' ? 'not_found' : 'invalid_input');
  }
  return parseFilmSpec(text, { path, format, ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}) });
}

// ---------------------------------------------------------------------------------------------
// Transitions and their keys

/** K keyframes → K - 1 transitions, with each one's duration and negative prompt resolved. */
export function transitionsOf(spec: FilmSpec): FilmTransition[] {
  const transitions: FilmTransition[] = [];
  for (let index = 0; index + 1 < spec.keyframes.length; index++) {
    const from = spec.keyframes[index]!;
    const to = spec.keyframes[index + 1]!;
    const negativePrompt = from.negativePrompt ?? spec.negativePrompt;
    transitions.push({
      index,
      from,
      to,
      duration: from.duration ?? spec.transitionDuration,
      ...(negativePrompt === undefined ? {} : { negativePrompt }),
    });
  }
  return transitions;
}

/** Bumped when the meaning of a key changes, so that old caches are not reused by mistake. */
const TRANSITION_KEY_VERSION = 'latentblend-film-transition/1';

function crossfeedForKey(crossfeed: FilmCrossfeed | undefined): [number, number, number] | null {
  return crossfeed === undefined ? null : [crossfeed.power, crossfeed.range, crossfeed.decay];
}

/**
 * The spec's settings that decide how a keyframe image is made (model, preset, size, steps,
 * guidance; null where unset), in key order: the start of a transition's cache key here and of a
 * keyframe job's key on the worker pool (src/queue/plan.ts).
 */
export function imageSettingsForKey(spec: FilmSpec) {
  return {
    model: spec.model ?? null,
    preset: spec.preset ?? null,
    width: spec.width ?? null,
    height: spec.height ?? null,
    steps: spec.steps ?? null,
    guidanceScale: spec.guidanceScale ?? null,
  };
}

/** Whether keyframe B of a transition depends on its keyframe A (SPEC.md step 3). */
function branch1CrossfeedActive(spec: FilmSpec): boolean {
  // Unset means the preset's default, which is 0 for every preset.
  const crossfeed = spec.branch1Crossfeed;
  return crossfeed !== undefined && crossfeed.power > 0 && crossfeed.range > 0;
}

/**
 * A stable sha256 (hex) of everything that determines the computed frames of transition
 * `index`, for resumable renders: equal keys mean the stored frames can be reused.
 *
 * In the key: model (as written; callers that fill in a default model should put it into the
 * spec first), preset, width, height, steps, guidanceScale, midDamper, depthStrength,
 * maxBranches or timeBudget, batchSize (a batched round fills the
 * `batchSize` largest gaps at once instead of re-measuring after each branch, so it changes the
 * tree), both crossfeeds, both keyframes' prompt and seed, and the transition's negative prompt.
 * Unset settings enter as null. When branch-1 crossfeed is active, keyframe B's trajectory
 * depends on keyframe A's, and a film reuses it as the next transition's start, so the key then
 * also includes the previous transition's key.
 *
 * Not in the key: fps, durations, retiming and quality (they only affect rendering), and
 * device (providers differ only by float rounding, and a render may resume on another device).
 */
export function transitionKey(spec: FilmSpec, index: number): string {
  const count = spec.keyframes.length - 1;
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new LatentBlendError(`transition index: expected an integer from 0 to ${count - 1}, got ${String(index)}`);
  }
  const transition = transitionsOf(spec)[index]!;
  const previous = branch1CrossfeedActive(spec) && index > 0 ? transitionKey(spec, index - 1) : null;
  const content = {
    version: TRANSITION_KEY_VERSION,
    ...imageSettingsForKey(spec),
    midDamper: spec.midDamper ?? null,
    depthStrength: spec.depthStrength ?? null,
    branches: spec.maxBranches ?? spec.branchesPerTransition ?? null,
    timeBudget: spec.timeBudget ?? spec.timeBudgetPerTransition ?? null,
    batchSize: spec.batchSize,
    branch1Crossfeed: crossfeedForKey(spec.branch1Crossfeed),
    parentalCrossfeed: crossfeedForKey(spec.parentalCrossfeed),
    from: [transition.from.prompt, transition.from.seed],
    to: [transition.to.prompt, transition.to.seed],
    negativePrompt: transition.negativePrompt ?? null,
    previous,
    // Only with a ControlNet, so that the keys of other films stay as they were. Picture paths
    // here; renderFilm adds their contents.
    ...(spec.controlnet !== undefined
      ? {
          control: {
            controlnet: spec.controlnet,
            from: [transition.from.controlImage ?? spec.controlImage ?? null, transition.from.controlnetScale ?? spec.controlnetScale ?? null],
            to: [transition.to.controlImage ?? spec.controlImage ?? null, transition.to.controlnetScale ?? spec.controlnetScale ?? null],
            guidance: [spec.controlGuidanceStart ?? null, spec.controlGuidanceEnd ?? null],
            canny: spec.canny ?? false,
          },
        }
      : {}),
    ...(spec.ipAdapter !== undefined
      ? {
          imagePrompt: {
            ipAdapter: spec.ipAdapter,
            from: [transition.from.ipImage ?? spec.ipImage ?? null, transition.from.ipAdapterScale ?? spec.ipAdapterScale ?? null],
            to: [transition.to.ipImage ?? spec.ipImage ?? null, transition.to.ipAdapterScale ?? spec.ipAdapterScale ?? null],
          },
        }
      : {}),
  };
  // The object literal fixes the key order, so the JSON text is canonical; null = unset.
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The order in which `filmSpecToYaml` writes the settings (the order of the example). */
const WRITE_ORDER: readonly (keyof FilmSpec)[] = [
  'model',
  'device',
  'preset',
  'width',
  'height',
  'steps',
  'guidanceScale',
  'midDamper',
  'depthStrength',
  'negativePrompt',
  'maxBranches',
  'timeBudget',
  'batchSize',
  'branch1Crossfeed',
  'parentalCrossfeed',
  'fps',
  'transitionDuration',
  'retiming',
  'quality',
  'controlnet',
  'controlImage',
  'controlnetScale',
  'controlGuidanceStart',
  'controlGuidanceEnd',
  'canny',
  'ipAdapter',
  'ipImage',
  'ipAdapterScale',
];

/**
 * Serialises a film spec to YAML (defaults written out, unset model settings left out) such
 * that `parseFilmSpec(filmSpecToYaml(spec), { path: 'x.yaml' })` equals `spec`.
 */
export function filmSpecToYaml(spec: FilmSpec): string {
  const plain: Record<string, unknown> = {};
  const named = withCurrentNames(spec, 'spec', undefined);
  for (const key of WRITE_ORDER) {
    const value = named[key];
    if (value === undefined) continue;
    plain[key] = isPlainObject(value) ? { power: value.power, range: value.range, decay: value.decay } : value;
  }
  plain.keyframes = spec.keyframes.map((keyframe) => {
    const entry: Record<string, unknown> = keyframe.image !== undefined && keyframe.prompt === '' ? { seed: keyframe.seed } : { prompt: keyframe.prompt, seed: keyframe.seed };
    if (keyframe.image !== undefined) entry.image = keyframe.image;
    if (keyframe.fit !== undefined) entry.fit = keyframe.fit;
    if (keyframe.imageMethod !== undefined) entry.imageMethod = keyframe.imageMethod;
    if (keyframe.negativePrompt !== undefined) entry.negativePrompt = keyframe.negativePrompt;
    if (keyframe.duration !== undefined) entry.duration = keyframe.duration;
    if (keyframe.controlImage !== undefined) entry.controlImage = keyframe.controlImage;
    if (keyframe.controlnetScale !== undefined) entry.controlnetScale = keyframe.controlnetScale;
    if (keyframe.ipImage !== undefined) entry.ipImage = keyframe.ipImage;
    if (keyframe.ipAdapterScale !== undefined) entry.ipAdapterScale = keyframe.ipAdapterScale;
    return entry;
  });
  const document = new Document(plain);
  document.commentBefore = ' latentblend film spec (`latentblend movie --example` explains every key)';
  return document.toString({ lineWidth: 0 });
}

/**
 * A commented example film spec with 3 keyframes, as printed by `latentblend movie --example`.
 * Lines starting with `#` directly followed by a key are optional settings: remove the `#`
 * to use them.
 */
export const EXAMPLE_FILM_SPEC = `# latentblend film spec: run with  latentblend movie film.yaml --out film.mp4
# A film morphs through the keyframes below, one transition between each neighbouring pair.
# Settings marked "from the model" default to the model's preset (Turbo or standard).

# Model folder (Optimum ONNX layout) or Hugging Face Hub repo id.
model: stabilityai/sdxl-turbo
# Execution provider: cpu, cuda, tensorrt, coreml, dml or webgpu (default: cpu).
#device: cuda
# Which defaults apply: turbo or standard (default: read from the model's own metadata).
#preset: turbo

# Image size in pixels, rounded to a multiple of 8 (from the model: 512 for Turbo, 1024 for SDXL).
#width: 512
#height: 512
# Denoising steps per image (from the model: 4 for Turbo, 30 otherwise).
#steps: 4
# Classifier-free guidance scale, 0 to 50; used only above 1 (from the model: 0 for Turbo, 4 otherwise).
#guidanceScale: 0
# Mid damper, in (0, 1]: guidance is lowered towards the middle of each transition, reaching
# 1 + (guidanceScale - 1) * midDamper halfway. 1 keeps the scale constant.
#midDamper: 0.5

# Depth strength, in (0, 1): how late in the denoising new in-between images branch off.
# Low: more creative, more new structure in between; high: closer to a plain cross-fade.
depthStrength: 0.5

# What no image should show; a keyframe's negativePrompt overrides it for the transition after it.
negativePrompt: blurry, low quality, text, watermark

# How many images to compute per transition, the two keyframes included (from the model: 10 for Turbo).
# More images: smoother motion, more compute. Give this OR timeBudget, not both.
#maxBranches: 10
# Or: seconds of compute per transition; as many images as fit are computed.
#timeBudget: 20
# Images denoised together in one batch (1 to 64; default 1). Changes which in-between images are made.
#batchSize: 1

# Crossfeed copies part of one denoising run's latents into another so neighbouring images share
# structure. power: the share copied at the start (0 to 1); range: the fraction of the steps during
# which it is active; decay: the share at the end of the range, as a fraction of power.
# Branch-1 crossfeed: from the first keyframe's run into the second's (from the model: off).
#branch1Crossfeed: {power: 0.3, range: 0.3, decay: 0.5}
# Parental crossfeed: from the two parent runs into each in-between image
# (from the model: 1, 1, 1 for Turbo; 0.3, 0.6, 0.9 otherwise).
#parentalCrossfeed: {power: 0.3, range: 0.6, decay: 0.9}

# Frames per second of the video (1 to 120).
fps: 30
# Seconds of each transition, unless a keyframe gives its own duration.
transitionDuration: 6
# Retiming: how the computed images are spread over each transition's time.
# perceptual: the visible change per second is constant; equal: every pair of images gets the same time.
retiming: perceptual
# Video quality, 0 (smallest file) to 100 (best).
quality: 75

# ControlNet (docs/controlnet-onnx.md): holds edges, depth or pose through the film. A folder
# (beside this file) or Hub repo in latentblend's ControlNet layout; the model needs unet_controlnet/.
#controlnet: models/controlnet-canny
# Control picture of every keyframe (a keyframe's controlImage overrides it); paths are relative
# to this file. Different pictures on neighbouring keyframes are mixed along the transition
# (two ControlNet calls per step in between).
#controlImage: edges.png
# Conditioning scale, 0 to 5 (default 1); a keyframe's controlnetScale overrides it.
#controlnetScale: 0.8
# Fractions of the steps during which the ControlNet acts (default 0 and 1).
#controlGuidanceStart: 0
#controlGuidanceEnd: 1
# Turn the control pictures into edge maps with the built-in Canny detector first.
#canny: true

# IP-Adapter (docs/ip-adapter-onnx.md): a picture as part of each keyframe's prompt, blended along
# the transitions like the text. A folder (beside this file) or Hub repo, exported for this model.
#ipAdapter: models/ip-adapter-sd15
# Image prompt of every keyframe (a keyframe's ipImage overrides it), relative to this file.
#ipImage: subject.jpg
# IP-Adapter scale, 0 to 5 (default 1); a keyframe's ipAdapterScale overrides it.
#ipAdapterScale: 0.6

# The keyframes, in order (at least 2). Each needs a prompt and an integer seed; the same seeds
# and settings give the same film. A keyframe may be a picture instead (or as well):
# "image: pics/start.jpg" (relative to this file), optional fit (cover|contain) and
# imageMethod (noise|inversion); the film then passes exactly through that picture. duration and negativePrompt apply to the transition that
# follows the keyframe, so the last keyframe takes neither.
keyframes:
  - prompt: a lighthouse on a cliff at dawn, oil painting
    seed: 420
    # This transition lasts 8 seconds instead of transitionDuration.
    duration: 8
  - prompt: a lighthouse in a thunderstorm at night, oil painting
    seed: 4711
    # Replaces the global negativePrompt for the transition to the next keyframe.
    negativePrompt: blurry, low quality, people
  - prompt: a lighthouse under the northern lights, oil painting
    seed: 1
`;
