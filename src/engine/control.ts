/**
 * ControlNet along a transition: one control picture for the whole transition, or one per
 * keyframe. With one picture the conditioning scale is interpolated by fract; with two, every
 * branch gets (1 - fract) · scaleA · residuals(picture A) + fract · scaleB · residuals(picture B),
 * which costs two ControlNet evaluations per UNet evaluation for the branches between the
 * keyframes (the keyframes themselves need one). Pure preparation; the ControlNet runs in denoise.
 */
import { z } from 'zod';
import type { ControlNet, ControlTerm } from '../pipeline/controlnet.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';
import type { DenoiseControl } from '../pipeline/denoise.ts';
import { controlTensor } from '../image/control-tensor.ts';
import { controlFractionSchema, controlScaleSchema, DEFAULT_CONTROL_GUIDANCE, guidanceWindowProblem } from '../pipeline/control-options.ts';
import { parseOptions } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';
import { pictureHash, rgbPictureSchema } from './rgb-picture.ts';

const pictureSchema = rgbPictureSchema;

export const transitionControlSchema = z.strictObject({
  /** A loaded ControlNet (DiffusionPipeline.loadControlNet). */
  controlNet: z.custom<ControlNet>((value) => typeof value === 'object' && value !== null && 'residualNames' in value, { error: 'expected a loaded ControlNet' }),
  /** The control picture of keyframe A, or of the whole transition when pictureB is absent. */
  pictureA: pictureSchema,
  /** The control picture of keyframe B (then residuals are mixed by fract). */
  pictureB: pictureSchema.optional(),
  /** Conditioning scale at keyframe A (default 1). */
  scaleA: controlScaleSchema.optional(),
  /** Conditioning scale at keyframe B (default: scaleA); interpolated by fract between. */
  scaleB: controlScaleSchema.optional(),
  guidanceStart: controlFractionSchema.optional(),
  guidanceEnd: controlFractionSchema.optional(),
});
/** ControlNet settings of a transition; see transitionControlSchema. */
export type TransitionControl = z.input<typeof transitionControlSchema>;

/** A JSON description of a transition's ControlNet settings: saved with it, compared on refine and continuation. */
export interface ControlSummary {
  readonly controlNet: string;
  /** sha256 of each picture's size and RGB8 pixels (16 hex digits). */
  readonly pictureA: string;
  readonly pictureB: string | null;
  readonly scaleA: number;
  readonly scaleB: number;
  readonly guidanceStart: number;
  readonly guidanceEnd: number;
}

/** Control prepared for one transition size. */
export interface PreparedControl {
  readonly summary: ControlSummary;
  readonly denoise: DenoiseControl;
  readonly imageA: Tensor32;
  readonly imageB: Tensor32 | undefined;
  readonly scaleA: number;
  readonly scaleB: number;
}

export { pictureHash };

/**
 * Validates `input` and prepares the control pictures at the transition's size (before any
 * UNet call). `family` is the model's, to refuse a ControlNet of another family.
 */
export function prepareControl(input: unknown, width: number, height: number, family: string): PreparedControl {
  const parsed = parseOptions(transitionControlSchema, input, 'ControlNet options');
  const guidanceStart = parsed.guidanceStart ?? DEFAULT_CONTROL_GUIDANCE.start;
  const guidanceEnd = parsed.guidanceEnd ?? DEFAULT_CONTROL_GUIDANCE.end;
  const problem = guidanceWindowProblem(guidanceStart, guidanceEnd);
  if (problem !== undefined) throw new LatentBlendError(`ControlNet options: ${problem}.`);
  const folderFamily = parsed.controlNet.folder.family;
  if (folderFamily !== family) {
    throw new LatentBlendError(`The ControlNet ${parsed.controlNet.folder.dir} is for ${folderFamily} models but the model is ${family}.`, 'invalid_input');
  }
  const scaleA = parsed.scaleA ?? 1;
  const scaleB = parsed.scaleB ?? scaleA;
  return {
    summary: {
      controlNet: parsed.controlNet.folder.dir,
      pictureA: pictureHash(parsed.pictureA),
      pictureB: parsed.pictureB === undefined ? null : pictureHash(parsed.pictureB),
      scaleA,
      scaleB,
      guidanceStart,
      guidanceEnd,
    },
    denoise: { controlNet: parsed.controlNet, guidanceStart, guidanceEnd },
    imageA: controlTensor(parsed.pictureA, width, height),
    imageB: parsed.pictureB === undefined ? undefined : controlTensor(parsed.pictureB, width, height),
    scaleA,
    scaleB,
  };
}

/** The control terms of a branch at `fract` (0 = keyframe A, 1 = keyframe B). */
export function controlTermsAt(control: PreparedControl, fract: number): ControlTerm[] {
  const { imageA, imageB, scaleA, scaleB } = control;
  if (imageB === undefined) return [{ image: imageA, weight: (1 - fract) * scaleA + fract * scaleB }];
  const terms: ControlTerm[] = [];
  if (fract < 1) terms.push({ image: imageA, weight: (1 - fract) * scaleA });
  if (fract > 0) terms.push({ image: imageB, weight: fract * scaleB });
  return terms;
}

/** The control acting on keyframe B (its picture and scale), for continuing a film from it. */
function endState(summary: ControlSummary | undefined, side: 'A' | 'B'): string {
  if (summary === undefined) return 'no ControlNet';
  const picture = side === 'A' ? summary.pictureA : (summary.pictureB ?? summary.pictureA);
  const scale = side === 'A' ? summary.scaleA : summary.scaleB;
  return `ControlNet ${summary.controlNet}, picture ${picture}, scale ${scale}, guidance ${summary.guidanceStart}–${summary.guidanceEnd}`;
}

/**
 * Why keyframe B of a transition made with `previous` control cannot be reused as keyframe A of
 * one made with `next` (undefined when it can): the control acting on that keyframe must match.
 */
export function controlContinuationProblem(previous: ControlSummary | undefined, next: ControlSummary | undefined): string | undefined {
  const before = endState(previous, 'B');
  const after = endState(next, 'A');
  return before === after ? undefined : `the control of the shared keyframe differs (${before} vs ${after})`;
}

/** Whether two summaries describe the same control (for refine). */
export function sameControl(a: ControlSummary | undefined, b: ControlSummary | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Zod schema of a stored ControlSummary (transition.json). */
export const controlSummarySchema = z.object({
  controlNet: z.string(),
  pictureA: z.string(),
  pictureB: z.string().nullable(),
  scaleA: z.number(),
  scaleB: z.number(),
  guidanceStart: z.number(),
  guidanceEnd: z.number(),
});
