/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Replacing the whole timeline (loading an example, a spec file or text, a film's spec): asks
 * first when the timeline has keyframes, and keeps the timeline it replaced so that the last
 * replacement can be undone (the "Undo" button in the timeline's header, and the toast).
 */
import type { FilmSpecJson } from './api.ts';
import type { Studio } from './context.ts';
import { askConfirm } from './confirm.ts';
import { byId } from './dom.ts';
import type { Draft } from './state.ts';

/** Installs `studio.replaceTimeline`. */
export function setupReplace(studio: Studio): void {
  const { store } = studio;
  const undo = byId('undo-replace', HTMLButtonElement);
  let saved: { draft: Draft; what: string } | undefined;

  const showUndo = () => {
    undo.hidden = saved === undefined;
    if (saved !== undefined) {
      undo.textContent = 'Undo load';
      undo.setAttribute('aria-label', `Undo loading ${saved.what}: bring back the previous timeline`);
    }
  };

  const restore = () => {
    if (saved === undefined) return;
    const { draft, what } = saved;
    saved = undefined;
    studio.setReplaceTarget(undefined);
    store.replaceDraft(draft);
    showUndo();
    studio.toast(`The timeline from before loading ${what} is back.`, 'success');
    byId('timeline-panel', HTMLElement).focus({ preventScroll: true });
  };
  undo.addEventListener('click', restore);

  studio.replaceTimeline = async (spec: FilmSpecJson, what: string) => {
    const count = store.keyframes.length;
    if (count > 0) {
      const yes = await askConfirm({
        title: 'Replace the timeline?',
        message: `Loading ${what} replaces the ${count} keyframe${count === 1 ? '' : 's'} and the options on your timeline. You can undo this afterwards.`,
        confirm: 'Replace',
        cancel: 'Keep my timeline',
      });
      if (!yes) return false;
    }
    const before: Draft = JSON.parse(JSON.stringify(store.draft)) as Draft;
    studio.setReplaceTarget(undefined);
    store.load(spec);
    saved = count > 0 ? { draft: before, what } : undefined;
    showUndo();
    studio.toast(`Loaded ${what}: ${spec.keyframes.length} keyframes on the timeline.`, 'success', saved === undefined ? undefined : { label: 'Undo', run: restore });
    return true;
  };
  showUndo();
}
