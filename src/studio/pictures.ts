/**
 * The user's own pictures in the studio (picture keyframes, issue #9). The page never names a
 * file on the server's disk: it uploads the picture (POST /api/pictures), the server checks it
 * with sharp (src/io/picture.ts), stores it as a PNG under a content-hashed name in the
 * session's folder, and keyframes refer to it by that name (its id). A render resolves the ids
 * inside the session folder only; any other `image` value in a spec from the page is refused.
 *
 * What is stored: the picture as read by readPicture (EXIF orientation applied, alpha flattened
 * onto white, 8-bit sRGB), scaled down to at most MAX_PICTURE_SIDE pixels on its longer side,
 * as PNG. The film reads this PNG exactly as `latentblend movie` reads any picture.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import sharp from 'sharp';
import { readPicture } from '../io/picture.ts';
import { writeFileAtomically } from '../io/files.ts';
import { LatentBlendError } from '../errors.ts';
import { HttpError } from './http.ts';
import { filesDir } from './storage.ts';
import type { RenderRequest } from './requests.ts';
import type { FilmSpec } from '../film/spec.ts';
import { MAX_PICTURE_BYTES, MAX_PICTURE_SIDE, MAX_SESSION_PICTURES, PICTURE_ID } from './picture-limits.ts';

export { MAX_PICTURE_BYTES, MAX_PICTURE_SIDE, MAX_SESSION_PICTURES, PICTURE_ID };

/** An uploaded picture, as POST /api/pictures answers. */
export interface StoredPicture {
  readonly id: string;
  readonly url: string;
  /** Size of the stored picture in pixels. */
  readonly width: number;
  readonly height: number;
}

/**
 * The raw request body, at most `limit` bytes (413 beyond, read no further). Accepts image/*
 * and application/octet-stream (415 otherwise).
 */
export async function readPictureBody(request: IncomingMessage, limit: number = MAX_PICTURE_BYTES): Promise<Buffer> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const tooLarge = new HttpError(413, 'too_large', `The picture is larger than ${limit / 1024 / 1024} MiB; send a smaller file.`, { Connection: 'close' });
  const declared = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']);
  if (declared !== undefined && declared > limit) {
    request.resume();
    throw tooLarge;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((done, fail) => {
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.destroy();
        fail(tooLarge);
      } else {
        chunks.push(chunk);
      }
    });
    request.on('end', () => done());
    request.on('error', fail);
  });
  if (!(type.startsWith('image/') || type === 'application/octet-stream')) {
    throw new HttpError(415, 'unsupported_media_type', `Send the picture's bytes with an image/* or application/octet-stream Content-Type${type === '' ? '' : `, got "${type}"`}.`);
  }
  if (size === 0) throw new HttpError(400, 'empty', 'The request body is empty; send the picture file.');
  return Buffer.concat(chunks);
}

/**
 * Checks an uploaded picture with sharp (format, pixel limit, decodable) and stores it in the
 * session's files as PNG under its content hash; the same picture uploaded twice is one file.
 */
export async function storePicture(sessionDir: string, bytes: Buffer, name = 'the uploaded picture'): Promise<StoredPicture> {
  const dir = filesDir(sessionDir);
  mkdirSync(dir, { recursive: true });
  const image = await readPicture({ name, bytes });
  const scale = Math.min(1, MAX_PICTURE_SIDE / Math.max(image.width, image.height));
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  let png = sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length), { raw: { width: image.width, height: image.height, channels: 3 } });
  if (scale < 1) png = png.resize(width, height, { fit: 'fill' });
  const encoded = await png.png().toBuffer();
  const id = `picture-${createHash('sha256').update(encoded).digest('hex').slice(0, 24)}.png`;
  const path = join(dir, id);
  if (!existsSync(path)) {
    const count = readdirSync(dir).filter((entry) => PICTURE_ID.test(entry)).length;
    if (count >= MAX_SESSION_PICTURES) throw new HttpError(429, 'too_many_pictures', `This session already holds ${MAX_SESSION_PICTURES} pictures; start a new session to upload more.`);
    await writeFileAtomically(path, encoded, true);
  }
  return { id, url: `/api/files/${id}`, width, height };
}

/** The file of picture `id` in the session, or a clear error (never a path outside `<session>/files/`). */
export function picturePath(sessionDir: string, id: unknown, key: string): string {
  if (typeof id !== 'string' || !PICTURE_ID.test(id)) {
    throw new LatentBlendError(
      `Invalid film spec (key spec):\n  ${key}: expected the id of a picture uploaded to this studio (picture-<24 hex digits>.png, from POST /api/pictures), got ${JSON.stringify(id)}; the studio reads no other files`,
    );
  }
  const path = join(filesDir(sessionDir), id);
  let regular = false;
  try {
    const stats = lstatSync(path);
    regular = stats.isFile() && !stats.isSymbolicLink();
  } catch {
    regular = false;
  }
  if (!regular) throw new LatentBlendError(`Invalid film spec (key spec):\n  ${key}: no picture ${id} in this session; upload it again`);
  return path;
}

/**
 * Keys of a film spec that name a picture file: at the top level and on keyframes. Every one of
 * them is, in a spec from the page, the id of an uploaded picture. (`ipImage`: the IP-Adapter's
 * image prompt, where the film spec has it.)
 */
export const TOP_PICTURE_KEYS = ['controlImage', 'ipImage'] as const;
export const KEYFRAME_PICTURE_KEYS = ['image', 'controlImage', 'ipImage'] as const;

type Entries = Record<string, unknown>;

function keyframesOf(value: Entries): Entries[] {
  return Array.isArray(value.keyframes) ? (value.keyframes as Entries[]) : [];
}

/**
 * The spec with each picture key's value replaced: `replace(rawValue, parsedValue, key)` gets the
 * value the page sent and the one the parser made of it (a path), for every picture key that is set.
 */
function mapPictures(spec: FilmSpec, raw: Entries, replace: (given: unknown, parsed: string, key: string) => string): FilmSpec {
  const top: Entries = { ...(spec as unknown as Entries) };
  for (const key of TOP_PICTURE_KEYS) {
    if (typeof top[key] === 'string') top[key] = replace(raw[key], top[key] as string, key);
  }
  const rawKeyframes = keyframesOf(raw);
  top.keyframes = spec.keyframes.map((keyframe, index) => {
    const entry: Entries = { ...(keyframe as unknown as Entries) };
    for (const key of KEYFRAME_PICTURE_KEYS) {
      if (typeof entry[key] === 'string') entry[key] = replace(rawKeyframes[index]?.[key], entry[key] as string, `keyframes[${index}].${key}`);
    }
    return entry;
  });
  return top as unknown as FilmSpec;
}

/**
 * The render request with each picture (keyframe pictures, control pictures, image prompts),
 * named by id as the page sent it, replaced by its file in the session. Every render request
 * from the page goes through this.
 */
export function resolveRenderPictures(sessionDir: string, request: RenderRequest): RenderRequest {
  return { ...request, spec: mapPictures(request.spec, request.rawSpec, (given, _parsed, key) => picturePath(sessionDir, given, key)) };
}

/**
 * The spec with its pictures named as the page named them (ids), not as paths the parser made
 * of them (relative to the server's current folder): for POST /api/spec/yaml.
 */
export function withPictureIds(spec: FilmSpec, raw: Record<string, unknown>): FilmSpec {
  return mapPictures(spec, raw, (given, parsed) => (typeof given === 'string' ? given : parsed));
}

/**
 * The first picture of the spec that is not a picture file of the session (what
 * resolveRenderPictures makes), as its key; undefined when none. Without `sessionDir`, every
 * picture is one.
 */
export function unresolvedPicture(sessionDir: string | undefined, request: RenderRequest): string | undefined {
  const dir = sessionDir === undefined ? undefined : filesDir(sessionDir);
  let found: string | undefined;
  mapPictures(request.spec, {}, (_given, path, key) => {
    const stored = dir !== undefined && path.startsWith(`${dir}/`) && PICTURE_ID.test(path.slice(dir.length + 1));
    if (!stored) found ??= key;
    return path;
  });
  return found;
}
