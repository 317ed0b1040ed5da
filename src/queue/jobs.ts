/**
 * What travels through the queue: job payloads, progress and results, validated with zod where
 * they enter a process (a worker reading a job, a command reading a result), then trusted.
 *
 * A film is two kinds of jobs (see plan.ts): `keyframe` computes one keyframe's full trajectory
 * into `<work>/keyframes/<name>/`; `transition` computes a transition from its two keyframes into
 * `<work>/transitions/NN-<key>/`, the same folder a single-process render writes.
 */
import { z } from 'zod';
import { parseOptions } from '../options/validate.ts';

/** A keyframe a job needs: its folder name under `<work>/keyframes/` and the job computing it. */
const keyframeRefSchema = z.strictObject({ name: z.string().min(1), jobId: z.string().min(1) });
export type KeyframeRef = z.infer<typeof keyframeRefSchema>;

const commonSchema = {
  /** The submission this job belongs to (one `movie --queue` run, one studio request). */
  run: z.string().min(1),
  /** The work folder, the same path on every machine (a shared file system). */
  workDir: z.string().min(1),
  /** The model the job asks for, as the submitting command resolved it. */
  model: z.string().min(1),
  preset: z.enum(['turbo', 'standard']).optional(),
  /** The film spec as YAML (filmSpecToYaml), parsed again by the worker. */
  spec: z.string().min(1),
};

export const keyframeJobSchema = z.strictObject({
  kind: z.literal('keyframe'),
  ...commonSchema,
  /** Folder name under `<work>/keyframes/`. */
  name: z.string().min(1),
  /** Keyframe index in the spec. */
  keyframe: z.number().int().min(0),
  /** The transition whose settings compute it, and which end of it the keyframe is. */
  transition: z.number().int().min(0),
  end: z.enum(['A', 'B']),
  /** Keyframe A of that transition, when branch-1 crossfeed makes B depend on it. */
  crossfeedFrom: keyframeRefSchema.optional(),
});
export type KeyframeJob = z.infer<typeof keyframeJobSchema>;

export const transitionJobSchema = z.strictObject({
  kind: z.literal('transition'),
  ...commonSchema,
  index: z.number().int().min(0),
  keyframeA: keyframeRefSchema,
  keyframeB: keyframeRefSchema,
});
export type TransitionJob = z.infer<typeof transitionJobSchema>;

/** One image from a prompt and a seed (a studio preview), written as a PNG to `out`. */
export const imageJobSchema = z.strictObject({
  kind: z.literal('image'),
  run: z.string().min(1),
  model: z.string().min(1),
  preset: z.enum(['turbo', 'standard']).optional(),
  prompt: z.string(),
  seed: z.number().int(),
  negativePrompt: z.string().optional(),
  steps: z.number().int().min(1).max(1000).optional(),
  guidanceScale: z.number().min(0).max(50).optional(),
  width: z.number().int().min(8).max(8192).optional(),
  height: z.number().int().min(8).max(8192).optional(),
  /** Absolute path of the PNG, on the shared file system. */
  out: z.string().min(1),
});
export type ImageJob = z.infer<typeof imageJobSchema>;

export const filmJobSchema = z.discriminatedUnion('kind', [keyframeJobSchema, transitionJobSchema, imageJobSchema]);
export type FilmJob = z.infer<typeof filmJobSchema>;

/** Progress a worker reports with job.updateProgress: UNet evaluations done of the job's total. */
export const jobProgressSchema = z.strictObject({
  worker: z.string(),
  done: z.number().min(0),
  total: z.number().min(0),
});
export type JobProgress = z.infer<typeof jobProgressSchema>;

/** A finished job's return value. */
export const jobResultSchema = z.strictObject({
  worker: z.string(),
  /** Nothing computed: the result was already in the work folder. */
  reused: z.boolean(),
  /** Folder of the result, relative to the work folder. */
  dir: z.string(),
  unetCalls: z.number().int().min(0),
  seconds: z.number().min(0),
});
export type JobResult = z.infer<typeof jobResultSchema>;

export function parseFilmJob(data: unknown): FilmJob {
  return parseOptions(filmJobSchema, data, 'queue job');
}

export function parseJobResult(data: unknown): JobResult {
  return parseOptions(jobResultSchema, data, 'queue job result');
}

/** Progress from a QueueEvents message, or undefined when it is not ours (a number, other data). */
export function jobProgressOf(data: unknown): JobProgress | undefined {
  const parsed = jobProgressSchema.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}
