/**
 * A session's films as the page manages them (GET/PATCH/DELETE /api/films…, resume): every film
 * folder with its state — done, rendering now, or left unfinished (interrupted by a crash or a
 * restart, cancelled, failed) and resumable, reusing each finished transition of its work
 * folder — renamed, deleted, and named for downloads after its title or first prompt.
 *
 * The film folders and their `studio.json` are ./storage.ts's; what a running job is, the
 * server says (`isActive`), so a 'rendering' record without a job in this process is a render
 * that an earlier process never finished.
 */
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { parseOptions } from '../options/validate.ts';
import { HttpError } from './http.ts';
import { attachmentHeader, safeFileStem } from './names.ts';
import { filesDir, filmDir, filmFiles, filmIds, filmUrls, FILM_ID, readStudioFilmRecord, writeStudioFilmRecord, type StudioFilmRecord } from './storage.ts';

export { attachmentHeader, safeFileStem };

/** What the page shows of a film. */
export type FilmState = 'done' | 'rendering' | 'interrupted' | 'cancelled' | 'failed';

/** Longest film title. */
export const MAX_TITLE = 200;

/** The keyframe prompts of a recorded spec (as sent; unknown shapes give none). */
function promptsOf(spec: unknown): string[] {
  const keyframes = (spec as { keyframes?: unknown } | null)?.keyframes;
  if (!Array.isArray(keyframes)) return [];
  return keyframes.flatMap((keyframe) => (typeof (keyframe as { prompt?: unknown })?.prompt === 'string' ? [(keyframe as { prompt: string }).prompt] : []));
}

/** The title shown and used for downloads: the one given, else the first prompt, else "film". */
export function filmName(record: Pick<StudioFilmRecord, 'title' | 'spec'>): string {
  const title = record.title?.trim();
  if (title !== undefined && title !== '') return title;
  return promptsOf(record.spec)[0]?.trim() || 'film';
}

/** Finished transitions in a film's work folder (complete transition folders). */
function finishedTransitions(dir: string): number {
  const transitions = join(dir, 'transitions');
  if (!existsSync(transitions)) return 0;
  return readdirSync(transitions, { withFileTypes: true }).filter((entry) => entry.isDirectory() && /^\d+-/.test(entry.name) && existsSync(join(transitions, entry.name, 'transition.json'))).length;
}

/** The state of a recorded film, given whether its job runs or waits in this process. */
export function filmState(record: StudioFilmRecord, isActive: (jobId: string) => boolean): FilmState {
  if (record.state === 'rendering') return isActive(record.jobId) ? 'rendering' : 'interrupted';
  return record.state;
}

/** One film as GET /api/films lists it. */
export function filmEntry(sessionDir: string, id: string, record: StudioFilmRecord, isActive: (jobId: string) => boolean) {
  const dir = filmDir(sessionDir, id);
  const state = filmState(record, isActive);
  const hasFilm = state === 'done' && existsSync(filmFiles(dir, record.format).film);
  const transitionsTotal = record.transitionIndex !== undefined ? 1 : Math.max(0, promptsOf(record.spec).length - 1);
  return {
    id,
    state,
    title: filmName(record),
    ...(record.title !== undefined ? { customTitle: true } : {}),
    createdAt: new Date(record.createdAt).toISOString(),
    ...(record.finishedAt !== undefined ? { finishedAt: new Date(record.finishedAt).toISOString() } : {}),
    format: record.format,
    ...(hasFilm ? filmUrls(id, record.format) : {}),
    ...(hasFilm ? { downloadName: `${safeFileStem(filmName(record))}.${record.format}` } : {}),
    spec: record.spec,
    ...(record.model !== undefined ? { model: record.model } : {}),
    ...(record.transitionIndex !== undefined ? { transitionIndex: record.transitionIndex } : {}),
    ...(record.frames !== undefined ? { frames: record.frames } : {}),
    ...(record.filmFrames !== undefined ? { filmFrames: record.filmFrames } : {}),
    ...(state !== 'done' ? { transitionsFinished: Math.min(finishedTransitions(dir), transitionsTotal), transitionsTotal } : {}),
    resumable: state === 'interrupted' || state === 'cancelled' || state === 'failed',
    workDir: dir,
  };
}

export type FilmEntry = ReturnType<typeof filmEntry>;

/** The session's films, newest first: finished ones, renders in progress and unfinished ones. */
export function listSessionFilms(sessionDir: string, isActive: (jobId: string) => boolean): FilmEntry[] {
  const films: FilmEntry[] = [];
  for (const id of filmIds(sessionDir)) {
    const record = readStudioFilmRecord(filmDir(sessionDir, id));
    if (record === undefined || record.id !== id) continue;
    const entry = filmEntry(sessionDir, id, record, isActive);
    // A done film whose file is gone (removed by hand) is not listed.
    if (entry.state === 'done' && entry.filmUrl === undefined) continue;
    films.push(entry);
  }
  return films.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

/** The record of film `id` of the session, or 404 (also for ids that are not film ids). */
export function filmRecordOf(sessionDir: string, id: string): StudioFilmRecord {
  if (!FILM_ID.test(id)) throw new HttpError(404, 'not_found', 'No such film.');
  const record = readStudioFilmRecord(filmDir(sessionDir, id));
  if (record === undefined || record.id !== id) throw new HttpError(404, 'not_found', 'No such film.');
  return record;
}

const renameSchema = z.strictObject({
  title: z
    .string({ error: `expected a title of 1 to ${MAX_TITLE} characters` })
    .refine((value) => value.trim().length >= 1 && value.trim().length <= MAX_TITLE, { error: `expected a title of 1 to ${MAX_TITLE} characters` })
    .refine((value) => !/[\u0000-\u001f\u007f]/.test(value), { error: 'expected no control characters (line breaks, tabs) in the title' }),
});

/** PATCH /api/films/:id: a new title (trimmed); returns the updated record. */
export async function renameFilm(sessionDir: string, id: string, body: unknown): Promise<StudioFilmRecord> {
  const { title } = parseOptions(renameSchema, body, 'film rename request');
  const record = filmRecordOf(sessionDir, id);
  const next = { ...record, title: title.trim() };
  await writeStudioFilmRecord(filmDir(sessionDir, id), next);
  return next;
}

/**
 * DELETE /api/films/:id: removes the film's folder (its work folder, the film and its side
 * files) and the live frames of its last render. A film being rendered is refused (409): cancel
 * it first.
 */
export async function deleteFilm(sessionDir: string, id: string, isActive: (jobId: string) => boolean): Promise<void> {
  const record = filmRecordOf(sessionDir, id);
  if (filmState(record, isActive) === 'rendering') {
    throw new HttpError(409, 'busy', 'This film is being rendered; cancel the render first, then delete it.');
  }
  await rm(filmDir(sessionDir, id), { recursive: true, force: true });
  const frames = filesDir(sessionDir);
  const prefixes = [record.jobId, ...(record.earlierJobIds ?? [])].filter((id) => /^[0-9a-f]{24}$/.test(id)).map((id) => `${id}-frame-`);
  if (prefixes.length > 0 && existsSync(frames)) {
    for (const name of readdirSync(frames)) if (prefixes.some((prefix) => name.startsWith(prefix))) await rm(join(frames, name), { force: true });
  }
}

/**
 * Checks that film `id` can be resumed: it exists, is not rendering, is not done, and was made
 * with the model in use (its finished transitions are only reused with that model). Returns its
 * record.
 */
export function resumableFilm(sessionDir: string, id: string, isActive: (jobId: string) => boolean, modelSource: string): StudioFilmRecord {
  const record = filmRecordOf(sessionDir, id);
  const state = filmState(record, isActive);
  if (state === 'rendering') throw new HttpError(409, 'busy', 'This film is being rendered now.');
  if (state === 'done') throw new HttpError(409, 'finished', 'This film is finished; render the spec again to make another one.');
  if (record.model !== undefined && record.model !== modelSource) {
    throw new HttpError(
      409,
      'model_changed',
      `This film was being rendered with ${record.model}, and the studio now uses ${modelSource}; load that model again to resume it (its finished transitions are kept for it).`,
    );
  }
  return record;
}

