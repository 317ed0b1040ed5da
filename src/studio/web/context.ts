/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** What the parts of the page share: the draft, the model, messages and cross-panel actions. */
import type { ModelInfo } from './api.ts';
import type { Store } from './state.ts';

export type ToastKind = 'info' | 'success' | 'error';

export interface Studio {
  readonly store: Store;
  readonly model: ModelInfo;
  toast(message: string, kind?: ToastKind): void;
  /** The keyframe that the next chosen preview replaces, if the user asked to replace one. */
  replaceTarget(): string | undefined;
  setReplaceTarget(id: string | undefined): void;
  onReplaceTarget(listener: (id: string | undefined) => void): void;
  /** Renders transition `index` (0-based) of the current draft. */
  renderTransition(index: number): void;
  /** Makes a preview image for a keyframe that has none (after an edit or a loaded spec). */
  makeKeyframeImage(id: string): void;
  /** Whether a preview for this keyframe is being made. */
  imagePending(id: string): boolean;
  /** Reloads the list of this session's films. */
  refreshFilms(): void;
  /** Moves the focus to the preview prompt field. */
  focusPrompt(): void;
}
