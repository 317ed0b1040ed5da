/**
 * What a studio PNG says about itself, in its text chunks (../io/png-text.ts):
 *
 * - `parameters`: the text other image tools write and read (AUTOMATIC1111's format):
 *   the prompt, then `Negative prompt: …`, then `Steps: 4, Sampler: …, CFG scale: 0, Seed: 1,
 *   Size: 64x64, Model: …`;
 * - `latentblend`: the same as JSON of ours (ImageProvenance), which the page reads back when a
 *   PNG is dropped on it.
 *
 * Pure: no I/O, no Node modules (the page imports it).
 */

export const PROVENANCE_KEY = 'latentblend';
export const PARAMETERS_KEY = 'parameters';

/** The parameters an image was made with (units: pixels, denoising steps, guidance scale). */
export interface ImageSettings {
  readonly model: string;
  readonly scheduler: string;
  readonly steps: number;
  readonly guidanceScale: number;
  readonly width: number;
  readonly height: number;
}

/** A preview: one prompt and seed (what a keyframe is). */
export interface PreviewProvenance extends ImageSettings {
  readonly format: 'latentblend-image';
  readonly version: 1;
  readonly kind: 'preview';
  readonly prompt: string;
  readonly negativePrompt?: string;
  readonly seed: number;
  /** The tiny autoencoder that decoded it (studio --preview-vae), absent for the model's own VAE. */
  readonly previewVae?: string;
}

/** A computed frame of a transition, `fract` of the way (0..1) from one keyframe to the next. */
export interface FrameProvenance extends ImageSettings {
  readonly format: 'latentblend-image';
  readonly version: 1;
  readonly kind: 'frame';
  readonly from: { readonly prompt: string; readonly seed: number };
  readonly to: { readonly prompt: string; readonly seed: number };
  readonly negativePrompt?: string;
  readonly fract: number;
  /** 0-based transition of the film. */
  readonly transition: number;
}

export type ImageProvenance = PreviewProvenance | FrameProvenance;

/** The last meaningful part of a model folder or Hub id, as image tools name a model. */
export function modelLabel(source: string): string {
  if (!/^[/\\.~]|^[A-Za-z]:/.test(source)) return source;
  return source.split(/[\\/]/).filter((part) => part !== '' && part !== 'onnx').pop() ?? source;
}

/** One line of `key: value` settings as AUTOMATIC1111 writes them (commas in values dropped). */
function settingsLine(settings: ImageSettings, seed: number | string, extra: readonly [string, string | number][] = []): string {
  const clean = (value: string | number) => String(value).replace(/[,\n]/g, ' ');
  const pairs: [string, string | number][] = [
    ['Steps', settings.steps],
    ['Sampler', settings.scheduler],
    ['CFG scale', settings.guidanceScale],
    ['Seed', seed],
    ['Size', `${settings.width}x${settings.height}`],
    ['Model', modelLabel(settings.model)],
    ...extra,
  ];
  return pairs.map(([key, value]) => `${key}: ${clean(value)}`).join(', ');
}

/** The text chunks of a preview. */
export function previewText(provenance: Omit<PreviewProvenance, 'format' | 'version' | 'kind'>): Record<string, string> {
  const json: PreviewProvenance = { format: 'latentblend-image', version: 1, kind: 'preview', ...provenance };
  const negative = provenance.negativePrompt !== undefined && provenance.negativePrompt !== '' ? `\nNegative prompt: ${provenance.negativePrompt}` : '';
  return {
    [PARAMETERS_KEY]: `${provenance.prompt}${negative}\n${settingsLine(provenance, provenance.seed, provenance.previewVae !== undefined ? [['VAE', modelLabel(provenance.previewVae)]] : [])}`,
    [PROVENANCE_KEY]: JSON.stringify(json),
  };
}

/** The text chunks of a computed frame. */
export function frameText(provenance: Omit<FrameProvenance, 'format' | 'version' | 'kind'>): Record<string, string> {
  const json: FrameProvenance = { format: 'latentblend-image', version: 1, kind: 'frame', ...provenance };
  const negative = provenance.negativePrompt !== undefined && provenance.negativePrompt !== '' ? `\nNegative prompt: ${provenance.negativePrompt}` : '';
  const extra: [string, string | number][] = [
    ['Blend', `${provenance.from.prompt} -> ${provenance.to.prompt}`],
    ['Blend seeds', `${provenance.from.seed} -> ${provenance.to.seed}`],
    ['Blend position', Number(provenance.fract.toFixed(4))],
  ];
  return {
    [PARAMETERS_KEY]: `${provenance.from.prompt}${negative}\n${settingsLine(provenance, provenance.from.seed, extra)}`,
    [PROVENANCE_KEY]: JSON.stringify(json),
  };
}

/** What a transition's resolved options say about its frames (structurally ResolvedTransitionOptions). */
export interface TransitionSettings {
  readonly keyframeA: { readonly prompt: string; readonly seed: number };
  readonly keyframeB: { readonly prompt: string; readonly seed: number };
  readonly negativePrompt: string | undefined;
  readonly steps: number;
  readonly guidanceScale: number;
}

/**
 * The text chunks of a computed frame `fract` (0..1) of the way through transition `transition`
 * (0-based), made by `made` (model as recorded, scheduler class) with `options`.
 */
export function transitionFrameText(
  options: TransitionSettings,
  made: { readonly model: string; readonly scheduler: string },
  transition: number,
  fract: number,
  image: { readonly width: number; readonly height: number },
): Record<string, string> {
  return frameText({
    from: { prompt: options.keyframeA.prompt, seed: options.keyframeA.seed },
    to: { prompt: options.keyframeB.prompt, seed: options.keyframeB.seed },
    ...(options.negativePrompt !== undefined && options.negativePrompt !== '' ? { negativePrompt: options.negativePrompt } : {}),
    fract,
    transition,
    model: made.model,
    scheduler: made.scheduler,
    steps: options.steps,
    guidanceScale: options.guidanceScale,
    width: image.width,
    height: image.height,
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The provenance in a PNG's text chunks, or undefined when it has none of ours (or a broken
 * one). Only the JSON key is read; `parameters` is for other tools.
 */
export function parseProvenance(texts: ReadonlyMap<string, string>): ImageProvenance | undefined {
  const text = texts.get(PROVENANCE_KEY);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || value.format !== 'latentblend-image' || value.version !== 1) return undefined;
  const settingsOk =
    typeof value.model === 'string' &&
    typeof value.scheduler === 'string' &&
    Number.isInteger(value.steps) &&
    typeof value.guidanceScale === 'number' &&
    Number.isInteger(value.width) &&
    Number.isInteger(value.height) &&
    (value.negativePrompt === undefined || typeof value.negativePrompt === 'string');
  if (!settingsOk) return undefined;
  if (value.kind === 'preview' && typeof value.prompt === 'string' && value.prompt !== '' && Number.isSafeInteger(value.seed)) return value as unknown as PreviewProvenance;
  const keyframe = (entry: unknown) => isRecord(entry) && typeof entry.prompt === 'string' && Number.isSafeInteger(entry.seed);
  if (value.kind === 'frame' && keyframe(value.from) && keyframe(value.to) && typeof value.fract === 'number' && Number.isInteger(value.transition)) {
    return value as unknown as FrameProvenance;
  }
  return undefined;
}
