/** `<work>/film.json`: how a work folder's film is rendered, so `refine` can render it again. */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { writeFileAtomically } from '../io/files.ts';
import { parseOptions } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';

const filmRecordSchema = z.object({
  kind: z.enum(['transition', 'movie']),
  model: z.string(),
  out: z.string(),
  fps: z.number().positive(),
  quality: z.number().min(0).max(100).optional(),
  /** 'distance', the former name of 'perceptual' in work folders written before the rename, is read as 'perceptual'. */
  retiming: z.enum(['perceptual', 'equal', 'distance']).transform((mode) => (mode === 'distance' ? 'perceptual' : mode)),
  framesDir: z.string().optional(),
  /** Transition folders in film order, relative to the work folder, with their durations. */
  transitions: z.array(z.object({ dir: z.string(), durationSeconds: z.number().positive() })).min(1),
  /** The metric that measured the frames ("lpips" or "rms-pixel"). */
  metric: z.string().optional(),
  /** Set when rms-pixel was used only because no LPIPS model was found: the warning given then. */
  metricFallback: z.string().optional(),
  /** The smoothness report of the film (src/eval/report.ts), as written after rendering. */
  smoothness: z.record(z.string(), z.unknown()).optional(),
});
export type FilmRecord = z.infer<typeof filmRecordSchema>;

export async function writeFilmRecord(workDir: string, record: FilmRecord): Promise<void> {
  await writeFileAtomically(join(workDir, 'film.json'), `${JSON.stringify(record, null, 1)}\n`, true);
}

export function readFilmRecord(workDir: string): FilmRecord {
  const path = join(workDir, 'film.json');
  if (!existsSync(path)) throw new LatentBlendError(`${path} is missing: ${workDir} is not a latentblend work folder.`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new LatentBlendError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseOptions(filmRecordSchema, raw, `film record ${path}`);
}

/**
 * The model as recorded in a work folder: a local folder as an absolute path (so that `refine`
 * finds it from any current folder), a Hub repo id as given.
 */
export function recordedModel(model: string): string {
  return !isAbsolute(model) && existsSync(model) ? resolve(model) : model;
}

/**
 * Where a recorded model is: absolute paths and Hub ids as recorded; a relative folder is looked
 * up relative to the work folder first (work folders written before models were recorded
 * absolute), then to the current folder.
 */
export function locateRecordedModel(model: string, workDir: string): string {
  if (isAbsolute(model)) return model;
  const besideWork = resolve(workDir, model);
  if (existsSync(besideWork)) return besideWork;
  return existsSync(model) ? resolve(model) : model;
}
