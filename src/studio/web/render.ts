/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * "Render": the whole film or one transition, with live progress (what is computed, n of m,
 * ETA), the computed images appearing in film order as they come, cancel, and the result
 * playing in the page with its download link.
 */
import { api, ApiError, jobErrorMessage, watchJob, type FrameEvent, type Job, type RenderResult, type VideoFormat } from './api.ts';
import type { Studio } from './context.ts';
import { byId, h } from './dom.ts';
import { ProgressView } from './progress.ts';
import type { SettingsPanel } from './settings.ts';
import { toSpec } from './state.ts';

export interface FilmToShow {
  filmUrl: string;
  title: string;
  contactSheetUrl?: string;
  smoothnessUrl?: string;
  frames?: number;
  filmFrames?: number;
  workDir?: string;
}

export interface RenderPanel {
  /** Shows a finished film in the player. */
  show(film: FilmToShow): void;
  /** Whether a render is being followed now. */
  busy(): boolean;
  /** Follows a render job started elsewhere (a resumed film) with progress, frames and the result. */
  follow(job: Job, title: string): void;
}

const FORMAT_NAMES: Record<VideoFormat, string> = { mp4: 'MP4', webm: 'WebM', gif: 'GIF' };

function formatOf(url: string): VideoFormat {
  const extension = /\.(mp4|webm|gif)(?:$|\?)/.exec(url)?.[1];
  return extension === 'webm' || extension === 'gif' ? extension : 'mp4';
}

export function setupRender(studio: Studio, settings: SettingsPanel): RenderPanel {
  const { store } = studio;
  const renderFilm = byId('render-film', HTMLButtonElement);
  const cancel = byId('render-cancel', HTMLButtonElement);
  const format = byId('render-format', HTMLSelectElement);
  const hint = byId('render-hint', HTMLElement);
  const title = byId('render-title', HTMLElement);
  const framesBox = byId('frames-box', HTMLElement);
  const frames = byId('frames', HTMLOListElement);
  const framesCount = byId('frames-count', HTMLElement);
  const result = byId('render-result', HTMLElement);
  const stage = byId('stage', HTMLElement);
  const download = byId('download-film', HTMLAnchorElement);
  const extras = byId('film-extras', HTMLElement);
  const progress = new ProgressView('Render progress');
  byId('render-progress', HTMLElement).append(progress.root);

  let running: Job | undefined;
  const formats = studio.model.formats;
  if (Array.isArray(formats)) {
    for (const option of [...format.options]) option.hidden = option.disabled = !formats.includes(option.value);
    if (format.selectedOptions[0]?.disabled) format.value = [...format.options].find((option) => !option.disabled)?.value ?? 'mp4';
  }

  const updateButton = () => {
    const count = store.keyframes.length;
    const busy = running !== undefined;
    renderFilm.disabled = count < 2 || busy;
    renderFilm.textContent = busy ? 'Rendering…' : count > 2 ? `Render film (${count - 1} transitions)` : 'Render film';
    hint.textContent = busy ? '' : count === 0 ? 'Add keyframes to the timeline first.' : count === 1 ? 'Add one more keyframe: a film needs at least two.' : '';
    hint.hidden = hint.textContent === '';
  };

  const addFrame = (frame: FrameEvent) => {
    const transition = frame.transition ?? 0;
    const key = transition + frame.fract;
    const item = h(
      'li',
      { class: 'frame new', 'data-key': String(key) },
      h('img', { src: frame.url, alt: `Computed image at ${Math.round(frame.fract * 100)}% of transition ${transition + 1}`, width: 128, height: 128 }),
    );
    const after = [...frames.children].find((child) => Number((child as HTMLElement).dataset.key) > key);
    frames.insertBefore(item, after ?? null);
    setTimeout(() => item.classList.remove('new'), 900);
    framesBox.hidden = false;
    const count = frames.children.length;
    framesCount.textContent = `${count} image${count === 1 ? '' : 's'} computed`;
  };

  const show = (film: FilmToShow) => {
    result.hidden = false;
    const kind = formatOf(film.filmUrl);
    const media =
      kind === 'gif'
        ? h('img', { src: film.filmUrl, alt: film.title, class: 'player' })
        : h('video', { src: film.filmUrl, controls: true, loop: true, playsinline: true, preload: 'auto', class: 'player', 'aria-label': `Film player: ${film.title}` });
    stage.replaceChildren(media);
    byId('result-title', HTMLElement).textContent = film.title;
    download.href = `${film.filmUrl}${film.filmUrl.includes('?') ? '&' : '?'}download=1`;
    download.setAttribute('download', '');
    download.textContent = `Download ${FORMAT_NAMES[kind]}`;
    const details: (HTMLElement | string)[] = [];
    if (film.frames !== undefined && film.filmFrames !== undefined) {
      details.push(h('p', { class: 'muted' }, `${film.frames} computed images, ${film.filmFrames} video frames.`));
    }
    const pictures = h('div', { class: 'extras-pictures' });
    if (film.contactSheetUrl) pictures.append(h('figure', {}, h('img', { src: film.contactSheetUrl, alt: 'Contact sheet: every computed image in order' }), h('figcaption', {}, 'Contact sheet')));
    if (film.smoothnessUrl) {
      pictures.append(
        h('figure', {}, h('img', { src: film.smoothnessUrl, alt: 'Smoothness plot: the perceptual distance between neighbouring images' }), h('figcaption', {}, 'Smoothness: distance between neighbouring images (flat is smooth)')),
      );
    }
    if (pictures.children.length > 0) details.push(pictures);
    if (film.workDir) {
      details.push(
        h(
          'p',
          { class: 'muted small-print' },
          'Work folder (for the command line, e.g. ',
          h('code', {}, 'latentblend refine <folder>/transitions/00-… --branches 10'),
          '): ',
          h('code', { class: 'path' }, film.workDir),
        ),
      );
    }
    extras.replaceChildren(...details);
    extras.closest('details')!.hidden = details.length === 0;
  };

  const follow = async (job: Job, what: string) => {
    running = job;
    updateButton();
    cancel.hidden = false;
    cancel.disabled = false;
    title.textContent = what;
    title.hidden = false;
    frames.replaceChildren();
    framesBox.hidden = true;
    framesCount.textContent = '';
    const watch = watchJob(job, { onJob: (next) => progress.show(next), onFrame: addFrame });
    try {
      const final = await watch.finished;
      if (final.state === 'done') {
        const film = final.result as RenderResult;
        title.hidden = true;
        show({ ...film, title: what });
        studio.toast(`${what}: done.`, 'success');
        studio.refreshFilms();
      } else if (final.state === 'failed') {
        studio.toast(`${what} failed: ${jobErrorMessage(final)}`, 'error');
      } else if (final.state === 'cancelled') {
        studio.toast(`${what}: cancelled.`, 'info');
      }
    } catch (error) {
      studio.toast((error as Error).message, 'error');
    } finally {
      running = undefined;
      cancel.hidden = true;
      updateButton();
    }
  };

  const start = (transitionIndex?: number) => {
    if (running !== undefined) {
      studio.toast('A render is running: wait for it or cancel it first.', 'error');
      return;
    }
    const count = store.keyframes.length;
    if (count < 2) {
      studio.toast('A film needs at least two keyframes on the timeline.', 'error');
      return;
    }
    const problem = settings.firstInvalid();
    if (problem !== undefined) {
      studio.toast(`Fix this option first: ${problem}.`, 'error');
      return;
    }
    const chosen = format.value === 'webm' || format.value === 'gif' ? format.value : 'mp4';
    const spec = toSpec(store.draft);
    const what = transitionIndex === undefined ? `Film of ${count} keyframes` : `Transition ${transitionIndex + 1} → ${transitionIndex + 2}`;
    renderFilm.disabled = true;
    byId('render-panel', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' });
    api.render({ spec, format: chosen, ...(transitionIndex === undefined ? {} : { transitionIndex }) }).then(
      (job) => follow(job, what),
      (error: unknown) => {
        updateButton();
        studio.toast(error instanceof ApiError ? `Cannot render: ${error.message}` : String(error), 'error');
      },
    );
  };

  renderFilm.addEventListener('click', () => start());
  cancel.addEventListener('click', () => {
    if (running === undefined) return;
    cancel.disabled = true;
    api.cancel(running.id).catch((error: unknown) => {
      cancel.disabled = false;
      studio.toast((error as Error).message, 'error');
    });
  });
  studio.renderTransition = (index: number) => start(index);
  store.subscribe(updateButton);
  updateButton();

  // A render still running from before a reload is followed again.
  api
    .jobs()
    .then(({ jobs }) => {
      const active = jobs.find((job) => job.kind === 'render' && (job.state === 'running' || job.state === 'queued'));
      if (active !== undefined && running === undefined) void follow(active, 'Render (started before the page was reloaded)');
    })
    .catch(() => undefined);

  return {
    show,
    busy: () => running !== undefined,
    follow: (job, what) => {
      byId('render-panel', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' });
      studio.refreshFilms();
      void follow(job, what);
    },
  };
}
