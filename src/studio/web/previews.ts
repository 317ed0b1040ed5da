/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * "Find keyframes": a prompt, a negative prompt, how many images (or which seeds), a row of
 * previews with their seeds, each addable to the timeline (or replacing a chosen keyframe).
 * Batches are kept, newest first, and survive a reload.
 */
import { api, ApiError, jobErrorMessage, watchJob, type Job, type PreviewResult } from './api.ts';
import type { Studio } from './context.ts';
import { byId, h } from './dom.ts';
import { ProgressView } from './progress.ts';

interface Batch {
  id: string;
  prompt: string;
  images: { seed: number; url: string }[];
}

const STORAGE_KEY = 'latentblend-studio-previews-v1';
const MAX_BATCHES = 6;
const MAX_SEEDS = 8;

/** Seeds typed as "1, 42 7": integers separated by commas or spaces; an error names a bad one. */
export function parseSeeds(text: string): number[] | string {
  const parts = text.split(/[\s,;]+/).filter((part) => part !== '');
  if (parts.length > MAX_SEEDS) return `at most ${MAX_SEEDS} seeds, got ${parts.length}`;
  const seeds: number[] = [];
  for (const part of parts) {
    const value = Number(part);
    if (!/^\d+$/.test(part) || !Number.isSafeInteger(value)) return `"${part}" is not a whole number ≥ 0`;
    seeds.push(value);
  }
  return seeds;
}

function loadBatches(): Batch[] {
  try {
    const text = localStorage.getItem(STORAGE_KEY);
    const value: unknown = text === null ? [] : JSON.parse(text);
    return Array.isArray(value) ? (value as Batch[]).filter((batch) => typeof batch.prompt === 'string' && Array.isArray(batch.images)) : [];
  } catch {
    return [];
  }
}

export function setupPreviews(studio: Studio): void {
  const { store } = studio;
  const form = byId('preview-form', HTMLFormElement);
  const prompt = byId('prompt', HTMLTextAreaElement);
  const negative = byId('negative-prompt', HTMLTextAreaElement);
  const count = byId('preview-count', HTMLSelectElement);
  const seedsInput = byId('preview-seeds', HTMLInputElement);
  const seedsError = byId('preview-seeds-error', HTMLElement);
  const generate = byId('generate-previews', HTMLButtonElement);
  const cancel = byId('cancel-previews', HTMLButtonElement);
  const results = byId('preview-batches', HTMLElement);
  const progress = new ProgressView('Preview progress');
  byId('preview-progress', HTMLElement).append(progress.root);

  let batches = loadBatches();
  let running: Job | undefined;
  /** The batch being made, its finished images shown as they come. */
  let live: Batch | undefined;
  const pendingImages = new Set<string>();
  /** Older batches (beyond MAX_BATCHES) are shown on request. */
  let showAll = false;
  /** After a re-render, focus returns to the preview button with this data-focus key. */
  let focusKey: string | undefined;

  negative.value = store.settings.negativePrompt ?? '';
  negative.addEventListener('input', () => store.editSettings({ negativePrompt: negative.value }, true));
  store.subscribe((change) => {
    if (change !== 'keyframes' && document.activeElement !== negative) negative.value = store.settings.negativePrompt ?? '';
  });

  const saveBatches = () => {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(batches.slice(0, MAX_BATCHES)));
    } catch {
      // not kept; fine
    }
  };

  const renderBatches = () => {
    const target = studio.replaceTarget();
    const targetIndex = target === undefined ? -1 : store.keyframes.findIndex((keyframe) => keyframe.id === target);
    const all = live === undefined ? batches : [live, ...batches];
    const limit = MAX_BATCHES + (live === undefined ? 0 : 1);
    const shown = showAll ? all : all.slice(0, limit);
    results.replaceChildren(
      ...shown.map((batch, batchIndex) =>
        h(
          'section',
          { class: 'batch', 'aria-label': `Previews for “${batch.prompt}”` },
          h(
            'header',
            { class: 'batch-head' },
            h('p', { class: 'batch-prompt', title: batch.prompt }, batch.prompt),
            h(
              'button',
              {
                type: 'button',
                class: 'icon-button subtle',
                'aria-label': `Remove the previews for “${batch.prompt}”`,
                title: 'Remove these previews',
                onclick: () => {
                  batches = batches.filter((entry) => entry !== batch);
                  saveBatches();
                  renderBatches();
                  // The server forgets the batch too; its images only when no keyframe shows one.
                  const used = batch.images.some((image) => store.keyframes.some((keyframe) => keyframe.imageUrl === image.url));
                  api.deletePreviews(batch.id, !used).catch(() => undefined);
                },
              },
              '×',
            ),
          ),
          h(
            'ul',
            { class: 'preview-grid', 'aria-label': batchIndex === 0 ? 'Previews' : `Earlier previews ${batchIndex}` },
            ...batch.images.map((image) => {
              const add = h(
                'button',
                {
                  type: 'button',
                  class: targetIndex >= 0 ? 'small accent' : 'small',
                  'aria-label': targetIndex >= 0 ? `Use seed ${image.seed} for keyframe ${targetIndex + 1}` : `Add seed ${image.seed} to the timeline`,
                  'data-focus': `${batch.id}:${image.seed}`,
                  onclick: () => {
                    // The list is drawn again: keep the focus on this button, to add more.
                    focusKey = `${batch.id}:${image.seed}`;
                    const replacing = studio.replaceTarget();
                    if (replacing !== undefined && store.keyframes.some((keyframe) => keyframe.id === replacing)) {
                      const index = store.keyframes.findIndex((keyframe) => keyframe.id === replacing);
                      store.replaceKeyframe(replacing, { prompt: batch.prompt, seed: image.seed, imageUrl: image.url });
                      studio.setReplaceTarget(undefined);
                      studio.toast(`Keyframe ${index + 1} replaced by seed ${image.seed}.`, 'success');
                    } else {
                      store.addKeyframe({ prompt: batch.prompt, seed: image.seed, imageUrl: image.url });
                      const total = store.keyframes.length;
                      studio.toast(
                        total === 1 ? 'Keyframe 1 added. Add at least one more to make a transition.' : `Keyframe ${total} added.`,
                        'success',
                      );
                    }
                  },
                },
                targetIndex >= 0 ? `Use for keyframe ${targetIndex + 1}` : '+ Add to timeline',
              );
              return h(
                'li',
                { class: 'preview' },
                h('img', { src: image.url, alt: `Preview of “${batch.prompt}” with seed ${image.seed}`, loading: 'lazy', width: 256, height: 256 }),
                h('div', { class: 'preview-foot' }, h('span', { class: 'seed' }, h('span', { class: 'muted' }, 'seed '), String(image.seed)), add),
              );
            }),
          ),
        ),
      ),
    );
    if (all.length > shown.length) {
      const older = all.length - shown.length;
      results.append(
        h('button', { type: 'button', class: 'small subtle show-older', onclick: () => ((showAll = true), renderBatches()) }, `Show ${older} older preview batch${older === 1 ? '' : 'es'}`),
      );
    }
    results.hidden = all.length === 0;
    if (focusKey !== undefined) {
      const key = focusKey;
      focusKey = undefined;
      [...results.querySelectorAll<HTMLButtonElement>('button[data-focus]')].find((button) => button.dataset.focus === key)?.focus({ preventScroll: true });
    }
  };

  const sizeAndSteps = () => {
    const settings = store.settings;
    return {
      ...(settings.width === undefined ? {} : { width: settings.width }),
      ...(settings.height === undefined ? {} : { height: settings.height }),
      ...(settings.steps === undefined ? {} : { steps: settings.steps }),
      ...(settings.guidanceScale === undefined ? {} : { guidanceScale: settings.guidanceScale }),
    };
  };

  const negativePrompt = () => {
    const text = store.settings.negativePrompt?.trim() ?? '';
    return text === '' ? {} : { negativePrompt: text };
  };

  const setBusy = (busy: boolean) => {
    generate.disabled = busy;
    generate.textContent = busy ? 'Generating…' : 'Generate previews';
    cancel.hidden = !busy;
  };

  /** `text`: the prompt asked for; undefined for a job found after a reload (its result says). */
  const follow = async (job: Job, text: string | undefined) => {
    running = job;
    setBusy(true);
    const watch = watchJob(job, {
      onJob: (next) => {
        progress.show(next);
        const partial = (next.result as PreviewResult | undefined)?.images;
        if (next.state === 'running' && text !== undefined && Array.isArray(partial) && partial.length > (live?.images.length ?? 0)) {
          live = { id: next.id, prompt: text, images: [...partial] };
          renderBatches();
        }
      },
    });
    try {
      const final = await watch.finished;
      if (final.state === 'done') {
        const result = final.result as (PreviewResult & { prompt?: unknown }) | undefined;
        const images = result?.images ?? [];
        const batchPrompt = typeof result?.prompt === 'string' ? result.prompt : text;
        if (batchPrompt !== undefined) {
          for (const image of images) store.rememberImage(batchPrompt, image.seed, image.url);
          batches = [{ id: final.id, prompt: batchPrompt, images }, ...batches.filter((batch) => batch.id !== final.id)];
          saveBatches();
          renderBatches();
        }
        progress.hide();
        for (const note of final.warnings ?? []) studio.toast(note, 'info');
      } else if (final.state === 'failed') {
        studio.toast(`Previews failed: ${jobErrorMessage(final)}`, 'error');
      }
    } catch (error) {
      studio.toast((error as Error).message, 'error');
    } finally {
      running = undefined;
      if (live !== undefined) {
        live = undefined;
        renderBatches();
      }
      setBusy(false);
    }
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (text === '') {
      prompt.setAttribute('aria-invalid', 'true');
      prompt.focus();
      studio.toast('Describe the picture first: type a prompt.', 'error');
      return;
    }
    prompt.removeAttribute('aria-invalid');
    const seeds = parseSeeds(seedsInput.value);
    if (typeof seeds === 'string') {
      seedsInput.setAttribute('aria-invalid', 'true');
      seedsError.textContent = `Seeds: ${seeds}.`;
      seedsInput.focus();
      return;
    }
    seedsInput.removeAttribute('aria-invalid');
    seedsError.textContent = '';
    const body = {
      prompt: text,
      ...negativePrompt(),
      ...(seeds.length > 0 ? { seeds } : { count: Number(count.value) }),
      ...sizeAndSteps(),
    };
    setBusy(true);
    api.previews(body).then(
      (job) => follow(job, text),
      (error: unknown) => {
        setBusy(false);
        studio.toast(error instanceof ApiError ? `Cannot make previews: ${error.message}` : String(error), 'error');
      },
    );
  });

  cancel.addEventListener('click', () => {
    if (running !== undefined) api.cancel(running.id).catch((error: unknown) => studio.toast((error as Error).message, 'error'));
  });

  // Ctrl/Cmd+Enter in the prompt generates.
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  studio.onReplaceTarget(() => renderBatches());
  store.subscribe((change) => {
    if (change !== 'settings') renderBatches();
  });

  // Images for keyframes that have none (edited prompt or seed, loaded spec).
  studio.makeKeyframeImage = (id: string) => {
    const keyframe = store.keyframes.find((entry) => entry.id === id);
    if (keyframe === undefined || pendingImages.has(id)) return;
    const { prompt: text, seed } = keyframe;
    pendingImages.add(id);
    store.editKeyframe(id, {});
    api
      .previews({ prompt: text, seeds: [seed], ...negativePrompt(), ...sizeAndSteps() })
      .then((job) => watchJob(job, {}).finished)
      .then((final) => {
        const url = (final.result as PreviewResult | undefined)?.images[0]?.url;
        if (final.state === 'failed') studio.toast(`Image of a keyframe failed: ${jobErrorMessage(final)}`, 'error');
        const current = store.keyframes.find((entry) => entry.id === id);
        pendingImages.delete(id);
        if (current !== undefined && url !== undefined && current.prompt === text && current.seed === seed) {
          store.editKeyframe(id, { imageUrl: url });
        } else {
          store.editKeyframe(id, {});
        }
      })
      .catch((error: unknown) => {
        pendingImages.delete(id);
        store.editKeyframe(id, {});
        studio.toast((error as Error).message, 'error');
      });
  };
  studio.imagePending = (id: string) => pendingImages.has(id);
  studio.focusPrompt = () => {
    prompt.focus();
    prompt.scrollIntoView({ block: 'center', behavior: 'smooth' });
  };

  renderBatches();

  // The server keeps every batch of this session (also from another browser): it has the last word.
  api
    .previewBatches()
    .then(({ batches: kept }) => {
      if (!Array.isArray(kept)) return;
      batches = kept.map((batch) => ({ id: batch.id, prompt: batch.prompt, images: batch.images }));
      for (const batch of [...batches].reverse()) for (const image of batch.images) store.rememberImage(batch.prompt, image.seed, image.url);
      saveBatches();
      renderBatches();
    })
    .catch(() => undefined);

  // A previews job still running from before a reload is followed again.
  api
    .jobs()
    .then(({ jobs }) => {
      const active = jobs.find((job) => job.kind === 'previews' && (job.state === 'running' || job.state === 'queued'));
      if (active !== undefined && running === undefined) void follow(active, undefined);
    })
    .catch(() => undefined);
}
