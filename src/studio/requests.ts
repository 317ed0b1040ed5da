/**
 * Request bodies of the studio API, validated with zod at the boundary. A bad body becomes one
 * LatentBlendError (HTTP 400) naming every bad key, the value given and what is allowed; unknown
 * keys are refused, so a typo never passes silently.
 */
import { z } from 'zod';
import { parseOptions, seedSchema } from '../options/validate.ts';
import { parseFilmSpec, type FilmSpec } from '../film/spec.ts';
import { VIDEO_FORMATS, type VideoFormat } from '../io/video.ts';
import { LatentBlendError } from '../errors.ts';
import { SUPPORTED_SCHEDULERS } from '../schedulers/index.ts';

function integerIn(min: number, max: number) {
  const message = `expected an integer from ${min} to ${max}`;
  return z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message });
}

export const MAX_PREVIEWS = 8;
export const DEFAULT_PREVIEWS = 4;

const previewsSchema = z
  .strictObject({
    prompt: z
      .string({ error: 'expected a prompt string of 1 to 2000 characters' })
      .min(1, { error: 'expected a prompt string of 1 to 2000 characters' })
      .max(2000, { error: 'expected a prompt string of 1 to 2000 characters' }),
    negativePrompt: z.string({ error: 'expected a string of at most 2000 characters' }).max(2000, { error: 'expected a string of at most 2000 characters' }).optional(),
    seeds: z
      .array(seedSchema, { error: `expected a list of 1 to ${MAX_PREVIEWS} integer seeds` })
      .min(1, { error: `expected a list of 1 to ${MAX_PREVIEWS} integer seeds` })
      .max(MAX_PREVIEWS, { error: `expected a list of 1 to ${MAX_PREVIEWS} integer seeds` })
      .optional(),
    count: integerIn(1, MAX_PREVIEWS).optional(),
    width: integerIn(8, 4096).optional(),
    height: integerIn(8, 4096).optional(),
    steps: integerIn(1, 200).optional(),
    guidanceScale: z.number({ error: 'expected a number from 0 to 50' }).min(0, { error: 'expected a number from 0 to 50' }).max(50, { error: 'expected a number from 0 to 50' }).optional(),
  })
  .refine((body) => body.seeds === undefined || body.count === undefined || body.count === body.seeds.length, {
    error: 'give seeds or count; with both, count must be the number of seeds',
    path: ['count'],
  });
export type PreviewsRequest = z.output<typeof previewsSchema>;

export function parsePreviewsRequest(body: unknown): PreviewsRequest {
  return parseOptions(previewsSchema, body, 'previews request');
}

const renderSchema = z.strictObject({
  spec: z.record(z.string(), z.unknown(), { error: 'expected a film spec object (the keys of a film spec file)' }),
  format: z.enum(VIDEO_FORMATS, { error: `expected one of ${VIDEO_FORMATS.join(', ')}` }).default('mp4'),
  transitionIndex: integerIn(0, 4095).optional(),
});

export interface RenderRequest {
  readonly spec: FilmSpec;
  /** The spec as the client sent it (kept in the film's record). */
  readonly rawSpec: Record<string, unknown>;
  readonly format: VideoFormat;
  readonly transitionIndex?: number;
}

/** A film spec given as a JSON object, validated as the CLI validates spec files. */
export function parseSpecObject(value: unknown): FilmSpec {
  try {
    return parseFilmSpec(JSON.stringify(value), { path: 'spec', format: 'json' });
  } catch (error) {
    if (error instanceof LatentBlendError) throw new LatentBlendError(error.message.replace(/^Invalid film spec spec:/, 'Invalid film spec (key spec):'), error.code);
    throw error;
  }
}

export function parseRenderRequest(body: unknown): RenderRequest {
  const parsed = parseOptions(renderSchema, body, 'render request');
  const spec = parseSpecObject(parsed.spec);
  const transitions = spec.keyframes.length - 1;
  if (parsed.transitionIndex !== undefined && parsed.transitionIndex >= transitions) {
    throw new LatentBlendError(
      `Invalid render request:\n  transitionIndex: expected an integer from 0 to ${transitions - 1} (the spec has ${transitions} transitions), got ${parsed.transitionIndex}`,
    );
  }
  return { spec, rawSpec: parsed.spec, format: parsed.format, ...(parsed.transitionIndex !== undefined ? { transitionIndex: parsed.transitionIndex } : {}) };
}

const specParseSchema = z.strictObject({
  text: z.string({ error: 'expected the spec text as a string' }),
  format: z.enum(['yaml', 'json'], { error: 'expected yaml or json' }),
});

/** POST /api/spec/parse: the spec text parsed as a spec file of that format would be. */
export function parseSpecText(body: unknown): FilmSpec {
  const { text, format } = parseOptions(specParseSchema, body, 'spec parse request');
  return parseFilmSpec(text, { path: format === 'yaml' ? 'spec.yaml' : 'spec.json', format });
}

const specYamlSchema = z.strictObject({
  spec: z.record(z.string(), z.unknown(), { error: 'expected a film spec object' }),
});

/** POST /api/spec/yaml: the spec object, validated. */
export function parseSpecYamlRequest(body: unknown): FilmSpec {
  return parseSpecObject(parseOptions(specYamlSchema, body, 'spec request').spec);
}

/** Longest model source accepted by POST /api/model. */
export const MAX_MODEL_SOURCE = 1000;

const modelSourceMessage = `expected a model folder or a Hugging Face repo id (owner/name[@revision]) of 1 to ${MAX_MODEL_SOURCE} characters`;

const modelSchema = z.strictObject({
  source: z
    .string({ error: modelSourceMessage })
    .max(MAX_MODEL_SOURCE, { error: modelSourceMessage })
    .refine((value) => value.trim() !== '', { error: modelSourceMessage })
    .refine((value) => !value.includes('\0'), { error: 'expected no NUL characters in the model source' }),
  scheduler: z.enum(SUPPORTED_SCHEDULERS as [string, ...string[]], { error: `expected one of ${SUPPORTED_SCHEDULERS.join(', ')}` }).optional(),
});

export interface ModelRequest {
  /** The folder or Hub id, trimmed. */
  readonly source: string;
  /** A scheduler class to use instead of the one the model ships. */
  readonly scheduler?: string;
}

/** POST /api/model: the model source to load, checked for what is plainly wrong (nothing on disk yet). */
export function parseModelRequest(body: unknown): ModelRequest {
  const parsed = parseOptions(modelSchema, body, 'model request');
  return { source: parsed.source.trim(), ...(parsed.scheduler !== undefined ? { scheduler: parsed.scheduler } : {}) };
}
