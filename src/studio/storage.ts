/**
 * Where a session's things live, and the only names under which they are served:
 *
 *   <session>/files/<name>.png                      previews and live frames of renders
 *   <session>/previews/<job-id>.json                a previews batch (./preview-library.ts)
 *   <session>/films/<film-id>/                      a CLI work folder (film.json, transitions/)
 *                             spec.yaml             the spec, for `latentblend movie`
 *                             studio.json           the studio's record of the film
 *                             film.<ext>            the film, with film.contact-sheet.png and
 *                                                   film.smoothness.png beside it
 *
 * URLs name files as `/api/files/<name>`; a name is made by the server, matches FILE_NAME, and
 * maps to one path inside the session's folder (fileNamePath), never to a user-given path.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomically } from '../io/files.ts';
import { VIDEO_FORMATS, type VideoFormat } from '../io/video.ts';

/** Names accepted by GET /api/files/:name. */
export const FILE_NAME = /^[a-z0-9-]+\.(png|mp4|webm|gif)$/;
/** Film ids: 24 hex digits. */
export const FILM_ID = /^[0-9a-f]{24}$/;
const FILM_FILE = /^([0-9a-f]{24})(-contact-sheet|-smoothness)?\.(png|mp4|webm|gif)$/;

/** A new random id (24 hex digits, 96 bits). */
export function newId(): string {
  return randomBytes(12).toString('hex');
}

export function filesDir(sessionDir: string): string {
  return join(sessionDir, 'files');
}

export function filmsDir(sessionDir: string): string {
  return join(sessionDir, 'films');
}

export function filmDir(sessionDir: string, filmId: string): string {
  if (!FILM_ID.test(filmId)) throw new Error(`not a film id: ${filmId}`);
  return join(filmsDir(sessionDir), filmId);
}

/** The film file of a film folder and its side files (named as the CLI names them beside a film). */
export function filmFiles(dir: string, format: VideoFormat): { film: string; contactSheet: string; smoothness: string } {
  return { film: join(dir, `film.${format}`), contactSheet: join(dir, 'film.contact-sheet.png'), smoothness: join(dir, 'film.smoothness.png') };
}

/** URLs of a film's files. */
export function filmUrls(filmId: string, format: VideoFormat): { filmUrl: string; contactSheetUrl: string; smoothnessUrl: string } {
  return {
    filmUrl: `/api/files/${filmId}.${format}`,
    contactSheetUrl: `/api/files/${filmId}-contact-sheet.png`,
    smoothnessUrl: `/api/files/${filmId}-smoothness.png`,
  };
}

/**
 * The path, relative to the session folder, that a served name stands for; undefined when the
 * name is not one the server makes.
 */
export function fileNamePath(name: string): string | undefined {
  if (!FILE_NAME.test(name)) return undefined;
  const film = FILM_FILE.exec(name);
  if (film !== null) {
    const [, id, side, extension] = film;
    if (side === '-contact-sheet' && extension === 'png') return join('films', id!, 'film.contact-sheet.png');
    if (side === '-smoothness' && extension === 'png') return join('films', id!, 'film.smoothness.png');
    if (side === undefined && extension !== 'png') return join('films', id!, `film.${extension}`);
    if (side !== undefined) return undefined;
  }
  return join('files', name);
}

const filmRecordSchema = z.object({
  id: z.string().regex(FILM_ID),
  createdAt: z.number(),
  finishedAt: z.number().optional(),
  state: z.enum(['rendering', 'done', 'failed', 'cancelled']),
  format: z.enum(VIDEO_FORMATS),
  transitionIndex: z.number().int().optional(),
  jobId: z.string(),
  /** Earlier render jobs of this film (a resumed render), whose live frames are the film's too. */
  earlierJobIds: z.array(z.string()).optional(),
  /** A title given by the user (PATCH /api/films/:id); else the first prompt names the film. */
  title: z.string().optional(),
  /** The model the film was rendered with (folder or Hub id); absent in records of older studios. */
  model: z.string().optional(),
  spec: z.unknown(),
  frames: z.number().int().optional(),
  filmFrames: z.number().int().optional(),
});
/** `studio.json` of a film folder. */
export type StudioFilmRecord = z.infer<typeof filmRecordSchema>;

export async function writeStudioFilmRecord(dir: string, record: StudioFilmRecord): Promise<void> {
  await writeFileAtomically(join(dir, 'studio.json'), `${JSON.stringify(record, null, 1)}\n`, true);
}

export function readStudioFilmRecord(dir: string): StudioFilmRecord | undefined {
  try {
    const parsed = filmRecordSchema.safeParse(JSON.parse(readFileSync(join(dir, 'studio.json'), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The film folders of a session (ids), newest first by folder time. */
export function filmIds(sessionDir: string): string[] {
  const dir = filmsDir(sessionDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && FILM_ID.test(entry.name))
    .map((entry) => ({ id: entry.name, time: statSync(join(dir, entry.name)).mtimeMs }))
    .sort((a, b) => b.time - a.time)
    .map((entry) => entry.id);
}
