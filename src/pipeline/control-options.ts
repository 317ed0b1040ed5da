/** Option schemas shared by `generate` and transitions for ControlNet (validated once at the boundary). */
import { z } from 'zod';

const scaleError = { error: 'expected a ControlNet conditioning scale from 0 to 5' };
/** diffusers' controlnet_conditioning_scale; 1 is the usual strength, 0 turns the ControlNet off. */
export const controlScaleSchema = z.number(scaleError).min(0, scaleError).max(5, scaleError);

const fractionError = { error: 'expected a fraction of the steps from 0 to 1' };
/** diffusers' control_guidance_start / control_guidance_end. */
export const controlFractionSchema = z.number(fractionError).min(0, fractionError).max(1, fractionError);

/** Checks start < end (diffusers raises otherwise); returns a message or undefined. */
export function guidanceWindowProblem(start: number, end: number): string | undefined {
  return start < end ? undefined : `control guidance start (${start}) must be below its end (${end})`;
}

/** Default guidance window: the ControlNet acts on every step. */
export const DEFAULT_CONTROL_GUIDANCE = { start: 0, end: 1 } as const;
