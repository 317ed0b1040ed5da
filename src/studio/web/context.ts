/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * What the parts of the page share: the draft, the model, messages and cross-panel actions. The
 * model can change (the Model card loads another one): read `studio.model` when it is needed,
 * and listen with `onModel` to refresh what shows its facts or defaults.
 */
import type { FilmSpecJson, ModelInfo } from './api.ts';
import type { Store } from './state.ts';

export type ToastKind = 'info' | 'success' | 'error';

/** A button in a toast ("Undo"). */
export interface ToastAction {
  readonly label: string;
  readonly run: () => void;
}

export interface Studio {
  readonly store: Store;
  /** The model the studio serves now. */
  readonly model: ModelInfo;
  /** Makes `model` the current one and tells the listeners. */
  setModel(model: ModelInfo): void;
  onModel(listener: (model: ModelInfo) => void): void;
  toast(message: string, kind?: ToastKind, action?: ToastAction): void;
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
  /**
   * Replaces the timeline by a spec (`what` names it in messages: "the example"), asking first
   * when the timeline is not empty; the replacement can be undone. Resolves false when the user
   * kept the timeline.
   */
  replaceTimeline(spec: FilmSpecJson, what: string): Promise<boolean>;
}
