/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The studio page: loads the model's description, restores the draft film, and wires the
 * panels (model, find keyframes, timeline, render, options, spec, films) to one shared Studio
 * object.
 */
import { api, ApiError, type ModelInfo } from './api.ts';
import type { Studio, ToastAction, ToastKind } from './context.ts';
import { byId, h } from './dom.ts';
import { setupFilms } from './films.ts';
import { setupModel } from './model.ts';
import { setupPreviews } from './previews.ts';
import { setupRender } from './render.ts';
import { setupSettings } from './settings.ts';
import { setupControl } from './control.ts';
import { setupImagePrompt } from './image-prompt.ts';
import { setupSpecIo } from './spec-io.ts';
import { setupReplace } from './replace.ts';
import { setupPngDrop } from './png-drop.ts';
import { maxToasts, setupToastPlacement } from './toast-place.ts';
import { Store } from './state.ts';
import { setupTimeline } from './timeline.ts';
import { setupEngineSwitch } from './engine-switch.ts';

function toaster(): (message: string, kind?: ToastKind, action?: ToastAction) => void {
  const polite = byId('toasts', HTMLElement);
  const urgent = byId('alerts', HTMLElement);
  if (polite.parentElement !== null) setupToastPlacement(polite.parentElement);
  return (message, kind = 'info', action) => {
    const box = kind === 'error' ? urgent : polite;
    // The same message again replaces the one shown (a repeated click does not stack copies).
    for (const shown of box.querySelectorAll('.toast')) if (shown.querySelector('p')?.textContent === message) shown.remove();
    const close = h('button', { type: 'button', class: 'icon-button subtle', 'aria-label': 'Dismiss message' }, '×');
    const button =
      action === undefined
        ? null
        : h('button', { type: 'button', class: 'small', onclick: () => {
            toast.remove();
            action.run();
          } }, action.label);
    const toast = h('div', { class: `toast ${kind}` }, h('p', {}, message), button, close);
    const remove = () => toast.remove();
    close.addEventListener('click', remove);
    box.append(toast);
    // A toast with a button stays long enough to use it.
    setTimeout(remove, kind === 'error' ? 12_000 : action !== undefined ? 10_000 : 4_000);
    while (box.children.length > maxToasts()) box.firstElementChild?.remove();
  };
}

/** "latentblend studio · tiny-sd-turbo": the page title names the model's folder or repo. */
function pageTitle(model: ModelInfo): string {
  const name = model.source.split(/[\\/]/).filter((part) => part !== '' && part !== 'onnx').pop() ?? model.source;
  return `latentblend studio · ${name}`;
}

/**
 * Keeps the sticky header from hiding what the page scrolls to (the Render panel, Cancel):
 * scroll margins follow the header's height, which changes as it wraps.
 */
function setupLayout(): void {
  const header = document.querySelector<HTMLElement>('.topbar');
  if (header === null) return;
  const update = () => document.documentElement.style.setProperty('--header-height', `${Math.ceil(header.getBoundingClientRect().height)}px`);
  update();
  new ResizeObserver(update).observe(header);
}

/** The rms-pixel fallback's reason, shown once per browser tab (issue #11: never silent). */
function warnMetricFallbackOnce(studio: Studio): void {
  const reason = studio.model.metricFallback;
  if (reason === undefined) return;
  const key = 'latentblend-studio-metric-warned';
  try {
    if (sessionStorage.getItem(key) === reason) return;
    sessionStorage.setItem(key, reason);
  } catch {
    // Without storage the warning shows on every load.
  }
  // With a button: it stays long enough to be read.
  studio.toast(`Warning: ${reason}`, 'info', { label: 'Got it', run: () => undefined });
}

async function boot(): Promise<void> {
  const toast = toaster();
  let model: ModelInfo;
  try {
    model = await api.model();
  } catch (error) {
    const message = error instanceof ApiError ? error.message : String(error);
    byId('boot-error', HTMLElement).hidden = false;
    byId('boot-error-text', HTMLElement).textContent = `The studio could not describe its model: ${message}`;
    document.body.dataset.state = 'error';
    return;
  }
  const store = Store.restore();
  const replaceListeners = new Set<(id: string | undefined) => void>();
  const modelListeners = new Set<(model: ModelInfo) => void>();
  let replacing: string | undefined;
  const studio: Studio = {
    store,
    get model() {
      return model;
    },
    setModel(next) {
      model = next;
      for (const listener of modelListeners) listener(next);
    },
    onModel(listener) {
      modelListeners.add(listener);
    },
    toast,
    replaceTarget: () => replacing,
    setReplaceTarget(id) {
      replacing = id;
      for (const listener of replaceListeners) listener(id);
    },
    onReplaceTarget(listener) {
      replaceListeners.add(listener);
    },
    // Filled in by the panels that own these actions.
    renderTransition: () => undefined,
    makeKeyframeImage: () => undefined,
    imagePending: () => false,
    refreshFilms: () => undefined,
    focusPrompt: () => undefined,
    replaceTimeline: async () => false,
  };
  store.subscribe(() => {
    if (replacing !== undefined && !store.keyframes.some((keyframe) => keyframe.id === replacing)) studio.setReplaceTarget(undefined);
  });
  setupReplace(studio);
  setupEngineSwitch();
  setupModel(studio);
  const settings = setupSettings(studio);
  setupControl(studio);
  setupImagePrompt(studio);
  setupPreviews(studio);
  setupTimeline(studio);
  const player = setupRender(studio, settings);
  setupFilms(studio, player);
  setupSpecIo(studio);
  setupPngDrop(studio);
  document.title = pageTitle(model);
  studio.onModel((next) => {
    document.title = pageTitle(next);
  });
  setupLayout();
  warnMetricFallbackOnce(studio);
  document.body.dataset.state = 'ready';
}

void boot();
