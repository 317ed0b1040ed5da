/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Dropping a studio PNG on the page restores its keyframe: a preview carries its prompt, seed
 * and settings in its text chunks (src/studio/provenance.ts), read here without the server.
 * The keyframe goes onto the timeline (or replaces the keyframe being replaced), and the prompt
 * field gets the prompt. A drop that another part of the page already handled is left alone.
 */
import { readPngText } from '../../io/png-text.ts';
import { modelLabel, parseProvenance, type ImageSettings } from '../provenance.ts';
import type { Studio } from './context.ts';
import { byId } from './dom.ts';

/** Largest file read (a preview is far smaller). */
const MAX_BYTES = 32 * 1024 * 1024;

function hasFiles(event: DragEvent): boolean {
  return [...(event.dataTransfer?.types ?? [])].includes('Files');
}

/** Settings of the image that differ from the film's, to mention (they are not changed). */
function differences(studio: Studio, made: ImageSettings): string[] {
  const settings = studio.store.settings;
  const defaults = studio.model.defaults;
  const notes: string[] = [];
  const width = settings.width ?? defaults.width;
  const height = settings.height ?? defaults.height;
  if (made.width !== width || made.height !== height) notes.push(`${made.width}×${made.height} px`);
  if (made.steps !== (settings.steps ?? defaults.steps)) notes.push(`${made.steps} steps`);
  if (made.guidanceScale !== (settings.guidanceScale ?? defaults.guidanceScale)) notes.push(`guidance ${made.guidanceScale}`);
  if (made.model !== studio.model.source) notes.push(`model ${modelLabel(made.model)}`);
  return notes;
}

/** Reads a dropped file's provenance and applies it; returns the message to show. */
export async function restoreFromPng(studio: Studio, file: File): Promise<{ message: string; ok: boolean }> {
  if (file.size > MAX_BYTES) return { message: `${file.name} is too large to be a preview.`, ok: false };
  let texts: Map<string, string>;
  try {
    texts = readPngText(new Uint8Array(await file.arrayBuffer()));
  } catch {
    return { message: `${file.name} is not a PNG image; drop a preview saved from the studio.`, ok: false };
  }
  const found = parseProvenance(texts);
  if (found === undefined) {
    return { message: `${file.name} has no latentblend parameters (only PNGs made by the studio carry them).`, ok: false };
  }
  if (found.kind === 'frame') {
    return {
      message: `${file.name} is a computed frame between “${found.from.prompt}” and “${found.to.prompt}”, not a keyframe: drop a preview, or one of the two keyframes.`,
      ok: false,
    };
  }
  const { store } = studio;
  const replacing = studio.replaceTarget();
  const index = replacing === undefined ? -1 : store.keyframes.findIndex((keyframe) => keyframe.id === replacing);
  let what: string;
  if (index >= 0) {
    store.replaceKeyframe(replacing!, { prompt: found.prompt, seed: found.seed });
    studio.setReplaceTarget(undefined);
    what = `Keyframe ${index + 1} replaced by “${found.prompt}”, seed ${found.seed}`;
  } else {
    store.addKeyframe({ prompt: found.prompt, seed: found.seed });
    what = `Keyframe ${store.keyframes.length} restored from ${file.name}: “${found.prompt}”, seed ${found.seed}`;
  }
  byId('prompt', HTMLTextAreaElement).value = found.prompt;
  const notes = differences(studio, found);
  const negative = found.negativePrompt !== undefined && found.negativePrompt !== (store.settings.negativePrompt ?? '') ? ` Its negative prompt was “${found.negativePrompt}”.` : '';
  return { message: `${what}.${notes.length > 0 ? ` It was made with ${notes.join(', ')}; the film uses its own settings.` : ''}${negative}`, ok: true };
}

/** Accepts PNG drops anywhere on the page. */
export function setupPngDrop(studio: Studio): void {
  window.addEventListener('dragover', (event) => {
    if (!hasFiles(event) || event.defaultPrevented) return;
    event.preventDefault();
    if (event.dataTransfer !== null) event.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('drop', (event) => {
    // Another handler (a drop zone of its own) took it, or nothing was dropped from files.
    if (event.defaultPrevented || !hasFiles(event)) return;
    event.preventDefault();
    const files = [...(event.dataTransfer?.files ?? [])].filter((file) => file.type === 'image/png' || /\.png$/i.test(file.name));
    if (files.length === 0) {
      studio.toast('Drop a PNG made by the studio to restore its keyframe.', 'error');
      return;
    }
    void (async () => {
      for (const file of files) {
        const { message, ok } = await restoreFromPng(studio, file);
        studio.toast(message, ok ? 'success' : 'error');
      }
    })();
  });
}
