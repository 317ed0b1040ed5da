/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Picture keyframes (issue #9): a picture of the user's (dropped or picked) or a frame the studio
 * made ("Use as keyframe") is uploaded to the server (POST /api/pictures), which checks and keeps
 * it in the session; the keyframe names it by its id. It goes onto the timeline, or replaces the
 * keyframe being replaced.
 */
import { api, ApiError } from './api.ts';
import type { Studio } from './context.ts';
import { randomSeed } from './dom.ts';
import { MAX_PICTURE_BYTES as MAX_UPLOAD_BYTES } from '../picture-limits.ts';

/** What a picture keyframe starts with besides its picture. */
export interface PictureKeyframeValues {
  readonly prompt?: string;
  readonly seed?: number;
}

/**
 * Uploads a picture and adds (or replaces by) a picture keyframe; returns the message to show.
 * `what` names the picture in messages ("the picture sunset.jpg").
 */
export async function addPictureKeyframe(studio: Studio, picture: Blob, what: string, values: PictureKeyframeValues = {}): Promise<{ message: string; ok: boolean }> {
  // The server's limit (src/studio/pictures.ts MAX_PICTURE_BYTES): said here before sending it all.
  if (picture.size > MAX_UPLOAD_BYTES) {
    return { message: `${what.charAt(0).toUpperCase()}${what.slice(1)} is larger than ${MAX_UPLOAD_BYTES / 1024 / 1024} MiB; scale it down first.`, ok: false };
  }
  let uploaded;
  try {
    uploaded = await api.uploadPicture(picture);
  } catch (error) {
    const why = error instanceof ApiError ? error.message : String(error);
    return { message: `${what.charAt(0).toUpperCase()}${what.slice(1)} cannot be used as a keyframe: ${why}`, ok: false };
  }
  const { store } = studio;
  const keyframe = { prompt: values.prompt ?? '', seed: values.seed ?? randomSeed(), picture: uploaded.id };
  const replacing = studio.replaceTarget();
  const index = replacing === undefined ? -1 : store.keyframes.findIndex((entry) => entry.id === replacing);
  if (index >= 0) {
    // Put in the replaced keyframe's place, keeping its transition settings.
    const old = store.keyframes[index]!;
    store.removeKeyframe(old.id);
    store.addKeyframe({ ...keyframe, ...(old.duration !== undefined ? { duration: old.duration } : {}), ...(old.negativePrompt !== undefined ? { negativePrompt: old.negativePrompt } : {}) }, index);
    studio.setReplaceTarget(undefined);
    return { message: `Keyframe ${index + 1} replaced by ${what} (${uploaded.width}×${uploaded.height} px).`, ok: true };
  }
  store.addKeyframe(keyframe);
  return { message: `Keyframe ${store.keyframes.length} is ${what} (${uploaded.width}×${uploaded.height} px); add a prompt to describe it if you like.`, ok: true };
}

/** "Use as keyframe" on an image the studio made (a preview or a computed frame), by its URL. */
export async function useImageAsKeyframe(studio: Studio, url: string, what: string, values: PictureKeyframeValues = {}): Promise<void> {
  let blob: Blob;
  try {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    blob = await response.blob();
  } catch (error) {
    studio.toast(`${what.charAt(0).toUpperCase()}${what.slice(1)} could not be read: ${(error as Error).message}`, 'error');
    return;
  }
  const { message, ok } = await addPictureKeyframe(studio, blob, what, values);
  studio.toast(message, ok ? 'success' : 'error');
}

/** Opens the file picker for one picture; `use` gets the file chosen. */
export function choosePicture(use: (file: File) => void | Promise<void>): void {
  const input = document.createElement('input');
  input.type = 'file';
  input.accept = 'image/*';
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file !== undefined) void use(file);
  });
  input.click();
}

/** Opens the file picker for a picture and adds it as a keyframe. */
export function pickPicture(studio: Studio): void {
  choosePicture(async (file) => {
    const { message, ok } = await addPictureKeyframe(studio, file, `the picture ${file.name}`);
    studio.toast(message, ok ? 'success' : 'error');
  });
}
