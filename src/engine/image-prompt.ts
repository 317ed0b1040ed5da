/**
 * IP-Adapter image prompts along a transition: one picture per keyframe (or one for both). The
 * picture embeddings and the adapter scale are part of each keyframe's conditioning, so a branch
 * at fract f gets them interpolated like the text embeddings (lerp), and its negative side zeros
 * with the interpolated scale. One image-encoder call per picture; the UNet cost is unchanged.
 */
import { z } from 'zod';
import type { IpAdapter } from '../pipeline/ip-adapter.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';
import { parseOptions } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';
import { pictureHash, rgbPictureSchema } from './rgb-picture.ts';

const pictureSchema = rgbPictureSchema;
const scaleError = { error: 'expected an IP-Adapter scale from 0 to 5' };
const scaleSchema = z.number(scaleError).min(0, scaleError).max(5, scaleError);

export const transitionImagePromptSchema = z.strictObject({
  /** A loaded IP-Adapter (DiffusionPipeline.loadIpAdapter). */
  adapter: z.custom<IpAdapter>((value) => typeof value === 'object' && value !== null && 'encoder' in value, { error: 'expected a loaded IP-Adapter' }),
  /** Image prompt of keyframe A (of both keyframes when pictureB is absent). */
  pictureA: pictureSchema,
  pictureB: pictureSchema.optional(),
  /** Adapter scale at keyframe A (default 1) and B (default: scaleA). */
  scaleA: scaleSchema.optional(),
  scaleB: scaleSchema.optional(),
});
/** IP-Adapter settings of a transition; see transitionImagePromptSchema. */
export type TransitionImagePrompt = z.input<typeof transitionImagePromptSchema>;

/** JSON description of a transition's image prompts: saved with it, compared on refine and continuation. */
export interface ImagePromptSummary {
  readonly ipAdapter: string;
  readonly pictureA: string;
  readonly pictureB: string | null;
  readonly scaleA: number;
  readonly scaleB: number;
}

export const imagePromptSummarySchema = z.object({
  ipAdapter: z.string(),
  pictureA: z.string(),
  pictureB: z.string().nullable(),
  scaleA: z.number(),
  scaleB: z.number(),
});

export interface PreparedImagePrompt {
  readonly summary: ImagePromptSummary;
  readonly embedsA: Tensor32;
  readonly embedsB: Tensor32;
  /** The negative side's image embedding under classifier-free guidance (IpAdapter.negativeEmbeds). */
  readonly negativeEmbeds: Tensor32;
  readonly scaleA: number;
  readonly scaleB: number;
}

/** 16 hex digits of sha256 over a picture's size and pixels. */
export function pictureHashOf(picture: RgbImage): string {
  return pictureHash(picture);
}

/** Validates `input` and encodes the pictures (before any UNet call). */
export async function prepareImagePrompt(input: unknown, family: string): Promise<PreparedImagePrompt> {
  const parsed = parseOptions(transitionImagePromptSchema, input, 'IP-Adapter options');
  if (parsed.adapter.folder.family !== family) {
    throw new LatentBlendError(`The IP-Adapter ${parsed.adapter.folder.dir} is for ${parsed.adapter.folder.family} models but the model is ${family}.`, 'invalid_input');
  }
  const scaleA = parsed.scaleA ?? 1;
  const scaleB = parsed.scaleB ?? scaleA;
  const embedsA = await parsed.adapter.encode(parsed.pictureA);
  const embedsB = parsed.pictureB === undefined ? embedsA : await parsed.adapter.encode(parsed.pictureB);
  return {
    summary: {
      ipAdapter: parsed.adapter.folder.dir,
      pictureA: pictureHash(parsed.pictureA),
      pictureB: parsed.pictureB === undefined ? null : pictureHash(parsed.pictureB),
      scaleA,
      scaleB,
    },
    embedsA,
    embedsB,
    negativeEmbeds: await parsed.adapter.negativeEmbeds(embedsA),
    scaleA,
    scaleB,
  };
}

function side(summary: ImagePromptSummary | undefined, which: 'A' | 'B'): string {
  if (summary === undefined) return 'no image prompt';
  const picture = which === 'A' ? summary.pictureA : (summary.pictureB ?? summary.pictureA);
  return `IP-Adapter ${summary.ipAdapter}, picture ${picture}, scale ${which === 'A' ? summary.scaleA : summary.scaleB}`;
}

/** Why keyframe B of `previous` cannot be keyframe A under `next` (undefined when it can). */
export function imagePromptContinuationProblem(previous: ImagePromptSummary | undefined, next: ImagePromptSummary | undefined): string | undefined {
  const before = side(previous, 'B');
  const after = side(next, 'A');
  return before === after ? undefined : `the image prompt of the shared keyframe differs (${before} vs ${after})`;
}

export function sameImagePrompt(a: ImagePromptSummary | undefined, b: ImagePromptSummary | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
