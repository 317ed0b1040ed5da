/**
 * A session's previews, kept on the server (GET /api/previews): each previews job that made at
 * least one image leaves `<session>/previews/<job-id>.json` naming its prompt, settings and
 * images (the PNGs in `<session>/files/`, which carry the same facts in their text chunks).
 * The page lists them after a reload or on another device, and removes a batch (with its images
 * when no keyframe uses them).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomically } from '../io/files.ts';
import { HttpError } from './http.ts';
import { filesDir, FILE_NAME } from './storage.ts';

const BATCH_ID = /^[0-9a-f]{24}$/;
/** Most batches listed (newest first); older ones stay on disk until removed. */
export const MAX_LISTED_BATCHES = 100;

const batchSchema = z.object({
  id: z.string().regex(BATCH_ID),
  createdAt: z.string(),
  prompt: z.string(),
  negativePrompt: z.string().optional(),
  width: z.number().int(),
  height: z.number().int(),
  steps: z.number().int(),
  guidanceScale: z.number(),
  model: z.string(),
  images: z.array(z.object({ seed: z.number().int(), url: z.string().regex(/^\/api\/files\/[a-z0-9-]+\.png$/) })),
});
/** One previews job's images as the page lists them. */
export type PreviewBatch = z.infer<typeof batchSchema>;

function previewsDir(sessionDir: string): string {
  return join(sessionDir, 'previews');
}

/** Records a batch (written atomically; a batch of the same id is replaced). */
export async function savePreviewBatch(sessionDir: string, batch: PreviewBatch): Promise<void> {
  const dir = previewsDir(sessionDir);
  mkdirSync(dir, { recursive: true });
  await writeFileAtomically(join(dir, `${batch.id}.json`), `${JSON.stringify(batchSchema.parse(batch))}\n`, true);
}

/** The session's batches, newest first (at most MAX_LISTED_BATCHES); unreadable ones are skipped. */
export function listPreviewBatches(sessionDir: string): PreviewBatch[] {
  const dir = previewsDir(sessionDir);
  if (!existsSync(dir)) return [];
  const entries = readdirSync(dir)
    .filter((name) => /^[0-9a-f]{24}\.json$/.test(name))
    .map((name) => ({ name, time: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => b.time - a.time)
    .slice(0, MAX_LISTED_BATCHES);
  const batches: PreviewBatch[] = [];
  for (const { name } of entries) {
    try {
      const parsed = batchSchema.safeParse(JSON.parse(readFileSync(join(dir, name), 'utf8')));
      if (parsed.success && `${parsed.data.id}.json` === name) batches.push(parsed.data);
    } catch {
      // a broken record is skipped
    }
  }
  return batches;
}

/**
 * Removes a batch from the list; with `images`, its PNG files too (the page keeps those that a
 * keyframe of its timeline still shows). 404 for an unknown id.
 */
export async function deletePreviewBatch(sessionDir: string, id: string, options: { readonly images: boolean }): Promise<void> {
  const path = join(previewsDir(sessionDir), `${id}.json`);
  if (!BATCH_ID.test(id) || !existsSync(path)) throw new HttpError(404, 'not_found', 'No such previews.');
  let images: PreviewBatch['images'] = [];
  try {
    if (options.images) images = batchSchema.parse(JSON.parse(readFileSync(path, 'utf8'))).images;
  } catch {
    // a broken record: only the record goes
  }
  for (const image of images) {
    const name = image.url.slice('/api/files/'.length);
    if (FILE_NAME.test(name)) await rm(join(filesDir(sessionDir), name), { force: true });
  }
  await rm(path, { force: true });
}
