/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The model card: the model the studio serves (its source and facts) and loading another one,
 * a local folder or a Hub id, as a 'model' job shown with the same progress view as previews
 * and renders (queue place, download bytes, loading). Errors appear under the field. Once loaded,
 * studio.setModel tells the other panels, which show the new model's defaults.
 */
import { api, ApiError, isFinal, jobErrorMessage, watchJob, type CatalogModel, type Job, type ModelInfo } from './api.ts';
import type { Studio } from './context.ts';
import { byId, h } from './dom.ts';
import { ProgressView } from './progress.ts';

function isModelInfo(value: unknown): value is ModelInfo {
  if (typeof value !== 'object' || value === null) return false;
  const info = value as Partial<ModelInfo>;
  return typeof info.source === 'string' && typeof info.defaults === 'object' && info.defaults !== null;
}

/** "1.2 GB", "840 MB". */
function bytesText(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/** "tiny-sd-turbo · SD Turbo · 64×64 · 1 MB · float32" for the list of models. */
function catalogLabel(model: CatalogModel): string {
  return [model.name, `${model.family === 'sdxl' ? 'SDXL' : 'SD'} ${model.preset === 'turbo' ? 'Turbo' : 'standard'}`, `${model.width}×${model.height}`, bytesText(model.sizeBytes), model.precision]
    .filter((part) => part !== 'unknown')
    .join(' · ');
}

/** "SDXL, Turbo preset, 512×512 px, 1 step" for messages. */
function summary(model: ModelInfo): string {
  return `${model.family === 'sdxl' ? 'SDXL' : 'SD'}, ${model.preset === 'turbo' ? 'Turbo' : 'standard'} preset, ${model.defaults.width}×${model.defaults.height} px`;
}

export function setupModel(studio: Studio): void {
  const card = byId('model-card', HTMLElement);
  const source = byId('model-source', HTMLElement);
  const chips = byId('model-chips', HTMLElement);
  const details = byId('model-details', HTMLElement);
  const form = byId('model-form', HTMLFormElement);
  const input = byId('model-input', HTMLInputElement);
  const load = byId('load-model', HTMLButtonElement);
  const cancel = byId('cancel-model', HTMLButtonElement);
  const error = byId('model-error', HTMLElement);
  /** The folded part of the card: loading another model (opened while that is under way or failed). */
  const change = byId('model-change', HTMLDetailsElement);
  const pickField = byId('model-pick-field', HTMLElement);
  const pick = byId('model-pick', HTMLSelectElement);
  const pickHelp = byId('model-pick-help', HTMLElement);
  const schedulerSelect = byId('model-scheduler', HTMLSelectElement);
  let catalog: CatalogModel[] = [];
  const progress = new ProgressView('Model loading progress');
  byId('model-progress', HTMLElement).append(progress.root);
  let running: Job | undefined;

  const show = (model: ModelInfo) => {
    source.textContent = model.source;
    source.title = model.source;
    const facts = [
      model.family === 'sdxl' ? 'SDXL' : 'SD',
      model.preset === 'turbo' ? 'Turbo preset' : 'standard preset',
      `${model.defaults.width}×${model.defaults.height} px`,
      `${model.defaults.steps} steps`,
      model.device,
    ];
    chips.replaceChildren(...facts.map((fact) => h('li', { class: 'chip' }, fact)));
    details.textContent =
      `Scheduler ${model.schedulerClass}; image distance ${model.metric}.` + (model.modelsDir !== undefined ? ` Model folders must be inside ${model.modelsDir}.` : '');
    card.dataset.family = model.family;
    card.dataset.preset = model.preset;
    if (running === undefined && document.activeElement !== input) input.value = model.source;
  };
  /** The scheduler choices for the model named in the field: the model's own, then those that suit it. */
  const fillSchedulers = () => {
    const value = input.value.trim();
    const known = catalog.find((entry) => entry.source === value);
    const current = studio.model;
    const isCurrent = value === current.source;
    const shipped = known?.scheduler ?? (isCurrent ? (current.shippedScheduler ?? current.schedulerClass) : undefined);
    const others = (known?.schedulers ?? (isCurrent ? (current.schedulers ?? []) : [])).filter((name) => name !== shipped);
    const chosen = schedulerSelect.value;
    schedulerSelect.replaceChildren(
      h('option', { value: '' }, shipped === undefined ? 'The model’s own' : `The model’s own (${shipped})`),
      ...others.map((name) => h('option', { value: name }, name)),
    );
    // Keep the choice when it still applies; for the model in use, show the scheduler it runs with.
    const keep = [...schedulerSelect.options].some((option) => option.value === chosen) ? chosen : isCurrent && current.schedulerClass !== shipped ? current.schedulerClass : '';
    schedulerSelect.value = [...schedulerSelect.options].some((option) => option.value === keep) ? keep : '';
  };

  const fillCatalog = (models: CatalogModel[], where: { modelsDir?: string; hubCache: string }) => {
    catalog = models;
    pickField.hidden = false;
    const groups: [CatalogModel['origin'], string][] = [
      ['models-dir', 'Models folder'],
      ['hub-cache', 'Hugging Face cache'],
    ];
    pick.replaceChildren(
      h('option', { value: '' }, models.length === 0 ? 'None found' : `Choose one of ${models.length}…`),
      ...groups.flatMap(([origin, label]) => {
        const entries = models.filter((model) => model.origin === origin);
        if (entries.length === 0) return [];
        const group = h('optgroup', { label });
        group.append(...entries.map((model) => h('option', { value: model.source }, catalogLabel(model))));
        return [group];
      }),
    );
    pickHelp.textContent = `Found in ${where.modelsDir !== undefined ? `${where.modelsDir} and ` : ''}${where.hubCache}. Or type a folder or a Hub id below.`;
    pick.value = catalog.some((entry) => entry.source === input.value.trim()) ? input.value.trim() : '';
  };
  pick.addEventListener('change', () => {
    if (pick.value === '') return;
    input.value = pick.value;
    setError('');
    fillSchedulers();
  });
  input.addEventListener('change', fillSchedulers);
  const loadCatalog = () =>
    api
      .models()
      .then((found) => fillCatalog(found.models, found))
      .catch(() => {
        pickField.hidden = true;
      })
      .finally(fillSchedulers);

  show(studio.model);
  studio.onModel(show);
  studio.onModel(() => fillSchedulers());
  void loadCatalog();
  card.hidden = false;

  const setError = (message: string) => {
    error.textContent = message;
    if (message !== '') change.open = true;
    if (message === '') input.removeAttribute('aria-invalid');
    else input.setAttribute('aria-invalid', 'true');
  };

  const setBusy = (busy: boolean) => {
    load.disabled = busy;
    load.textContent = busy ? 'Loading…' : 'Load model';
    cancel.hidden = !busy;
    input.readOnly = busy;
  };

  const follow = (job: Job) => {
    running = job;
    change.open = true;
    setBusy(true);
    const watch = watchJob(job, { onJob: (update) => progress.show(update) });
    watch.finished
      .then((final) => {
        if (final.state === 'done' && isModelInfo(final.result)) {
          const model = final.result;
          progress.hide();
          studio.setModel(model);
          input.value = model.source;
          const note = Array.isArray(final.warnings) && final.warnings.length > 0 ? ` ${final.warnings.join(' ')}` : '';
          studio.toast(`Model loaded: ${model.source} (${summary(model)}). The next previews and films use it.${note}`, 'success');
        } else if (final.state === 'failed') {
          progress.hide();
          setError(`The model was not loaded: ${jobErrorMessage(final)}`);
        }
        // Cancelled: the progress view says so; the previous model stays.
      })
      .catch((cause: unknown) => setError(cause instanceof ApiError ? cause.message : String(cause)))
      .finally(() => {
        running = undefined;
        setBusy(false);
      });
  };

  input.addEventListener('input', () => setError(''));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (running !== undefined) return;
    const value = input.value.trim();
    if (value === '') {
      setError('Give a model folder or a Hub id such as stabilityai/sdxl-turbo.');
      input.focus();
      return;
    }
    setError('');
    setBusy(true);
    api.loadModel(value, schedulerSelect.value === '' ? undefined : schedulerSelect.value).then(follow, (cause: unknown) => {
      setBusy(false);
      setError(cause instanceof ApiError ? cause.message : String(cause));
      input.focus();
    });
  });
  cancel.addEventListener('click', () => {
    if (running === undefined) return;
    api.cancel(running.id).catch((cause: unknown) => {
      // 409: it ended meanwhile; the watcher reports how.
      if (!(cause instanceof ApiError && cause.status === 409)) studio.toast(`Cannot cancel: ${(cause as Error).message}`, 'error');
    });
  });

  // After a reload: a model job of this session that still waits or runs is followed again.
  api
    .jobs()
    .then(({ jobs }) => {
      const pending = jobs.find((job) => job.kind === 'model' && !isFinal(job));
      if (pending !== undefined && running === undefined) follow(pending);
    })
    .catch(() => undefined);

  // Another page may have loaded another model meanwhile: look again when this one is shown.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible' || running !== undefined) return;
    api
      .model()
      .then((model) => {
        if (JSON.stringify(model) !== JSON.stringify(studio.model)) studio.setModel(model);
      })
      .catch(() => undefined);
  });
}
