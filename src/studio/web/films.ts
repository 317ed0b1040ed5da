/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * "Your films": this session's films (GET /api/films), finished or not. Finished ones play,
 * download (named after their title) and reopen their spec; unfinished ones (interrupted by a
 * restart, cancelled, failed) say how far they got and resume, reusing their finished
 * transitions. Every film can be renamed and deleted (after a confirmation).
 */
import { api, ApiError, type FilmEntry } from './api.ts';
import { askConfirm } from './confirm.ts';
import type { Studio } from './context.ts';
import { byId, h } from './dom.ts';
import type { RenderPanel } from './render.ts';

function when(text: string): string {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return date.toDateString() === today.toDateString() ? `Today ${time}` : `${date.toLocaleDateString()} ${time}`;
}

/** The film's name: its title (given, or its first prompt as the server makes it). */
function filmTitle(film: FilmEntry): string {
  if (film.title !== undefined && film.title !== '') return film.title;
  const keyframes = film.spec?.keyframes ?? [];
  return keyframes[0]?.prompt ?? 'Film';
}

/** "Transition 2 → 3" for a film of one transition, else "3 keyframes". */
function filmKind(film: FilmEntry): string {
  const keyframes = film.spec?.keyframes ?? [];
  if (film.transitionIndex !== undefined) return `Transition ${film.transitionIndex + 1} → ${film.transitionIndex + 2}`;
  return `${keyframes.length} keyframes`;
}

/** The last meaningful part of a model folder or Hub id ("tiny-sd-turbo", "stabilityai/sdxl-turbo"). */
function modelName(source: string): string {
  // Folders are recorded absolute; Hub ids as given.
  if (!/^[/\\.~]|^[A-Za-z]:/.test(source)) return source;
  return source.split(/[\\/]/).filter((part) => part !== '' && part !== 'onnx').pop() ?? source;
}

const STATE_NAMES = { rendering: 'Rendering now', interrupted: 'Interrupted', cancelled: 'Cancelled', failed: 'Failed' } as const;

export function setupFilms(studio: Studio, player: RenderPanel): void {
  const list = byId('films-list', HTMLUListElement);
  const empty = byId('films-empty', HTMLElement);
  let loading: Promise<void> | undefined;
  /** The film whose title is being edited, kept across refreshes. */
  let renaming: string | undefined;

  const fail = (what: string) => (error: unknown) => studio.toast(`${what}: ${error instanceof ApiError ? error.message : String(error)}`, 'error');

  const resume = (film: FilmEntry, title: string) => {
    if (player.busy()) {
      studio.toast('A render is running: wait for it or cancel it first.', 'error');
      return;
    }
    api.resumeFilm(film.id).then((job) => player.follow(job, `Resuming “${title}”`), fail(`Cannot resume “${title}”`));
  };

  const remove = async (film: FilmEntry, title: string) => {
    const done = film.state === undefined || film.state === 'done';
    const yes = await askConfirm({
      title: 'Delete this film?',
      message: `“${title}” (${filmKind(film)}, ${when(film.createdAt)}) and its work folder are removed from the server${done ? '' : ', with its finished transitions'}. This cannot be undone.`,
      confirm: 'Delete film',
      cancel: 'Keep it',
      danger: true,
    });
    if (!yes) return;
    try {
      await api.deleteFilm(film.id);
      studio.toast(`Deleted “${title}”.`, 'success');
    } catch (error) {
      fail(`Cannot delete “${title}”`)(error);
    }
    studio.refreshFilms();
    byId('films-panel', HTMLElement).focus({ preventScroll: true });
  };

  /** The title, or a field to rename the film in place (Enter saves, Escape cancels). */
  const titleLine = (film: FilmEntry, title: string): HTMLElement => {
    if (renaming !== film.id) return h('p', { class: 'film-title' }, title, ' ', h('span', { class: 'muted' }, `${filmKind(film)} · ${when(film.createdAt)}`));
    const input = h('input', { type: 'text', maxlength: 200, value: title, 'aria-label': `New title of “${title}”`, class: 'rename-input' });
    const stop = () => {
      renaming = undefined;
      studio.refreshFilms();
    };
    const save = () => {
      const next = input.value.trim();
      if (next === '' || next === title) return stop();
      api.renameFilm(film.id, next).then(() => {
        studio.toast(`Renamed to “${next}”.`, 'success');
        stop();
      }, fail('Cannot rename the film'));
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        save();
      } else if (event.key === 'Escape') {
        event.preventDefault();
        stop();
      }
    });
    queueMicrotask(() => {
      input.focus();
      input.select();
    });
    return h(
      'form',
      { class: 'rename-form', onsubmit: (event: Event) => (event.preventDefault(), save()) },
      input,
      h('button', { type: 'submit', class: 'small primary' }, 'Save'),
      h('button', { type: 'button', class: 'small subtle', onclick: stop }, 'Cancel'),
    );
  };

  const item = (film: FilmEntry): HTMLElement => {
    const title = filmTitle(film);
    const state = film.state ?? 'done';
    const label = `${title}, ${when(film.createdAt)}`;
    const prompts = (film.spec?.keyframes ?? []).map((keyframe) => keyframe.prompt);
    const openSpec = h(
      'button',
      {
        type: 'button',
        class: 'small subtle',
        'aria-label': `Open the spec of ${label} in the editor`,
        onclick: () => void studio.replaceTimeline(film.spec, `the spec of “${title}”`),
      },
      'Open spec',
    );
    const manage = [
      h('button', { type: 'button', class: 'small subtle', 'aria-label': `Rename ${label}`, onclick: () => ((renaming = film.id), studio.refreshFilms()) }, 'Rename'),
      h('button', { type: 'button', class: 'small danger-outline', 'aria-label': `Delete ${label}`, disabled: state === 'rendering', onclick: () => void remove(film, title) }, 'Delete'),
    ];
    const info = [
      titleLine(film, title),
      h('p', { class: 'film-prompts', title: prompts.join(' → ') }, prompts.join(' → ')),
      film.model === undefined ? null : h('p', { class: 'film-model muted small-print', title: film.model }, `Model: ${modelName(film.model)}`),
    ];
    if (state !== 'done' || film.filmUrl === undefined) {
      const progress =
        film.transitionsTotal !== undefined ? ` · ${film.transitionsFinished ?? 0} of ${film.transitionsTotal} transition${film.transitionsTotal === 1 ? '' : 's'} finished` : '';
      const stateName = state === 'done' ? 'Done' : STATE_NAMES[state];
      return h(
        'li',
        { class: `film-item unfinished state-${state}`, 'aria-label': `${label}, ${stateName.toLowerCase()}` },
        h('div', { class: 'film-thumb placeholder', 'aria-hidden': 'true' }, film.transitionsTotal !== undefined ? `${film.transitionsFinished ?? 0}/${film.transitionsTotal}` : '…'),
        h(
          'div',
          { class: 'film-info' },
          ...info,
          h('p', { class: 'film-state' }, h('span', { class: `badge ${state}` }, stateName), progress),
          h(
            'div',
            { class: 'film-actions' },
            film.resumable === true ? h('button', { type: 'button', class: 'small primary', 'aria-label': `Resume ${label}`, onclick: () => resume(film, title) }, 'Resume') : null,
            openSpec,
            ...manage,
          ),
        ),
      );
    }
    const filmUrl = film.filmUrl;
    const play = () => {
      player.show({
        filmUrl,
        title: label,
        ...(film.contactSheetUrl ? { contactSheetUrl: film.contactSheetUrl } : {}),
        ...(film.smoothnessUrl ? { smoothnessUrl: film.smoothnessUrl } : {}),
      });
      byId('render-panel', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' });
    };
    const thumb = /\.gif$/.test(filmUrl)
      ? h('img', { src: filmUrl, alt: '' })
      : h('video', { src: `${filmUrl}#t=0.1`, muted: true, preload: 'metadata', 'aria-hidden': 'true', tabindex: '-1' });
    return h(
      'li',
      { class: 'film-item', 'aria-label': label },
      h('button', { type: 'button', class: 'film-thumb', 'aria-label': `Play ${label}`, onclick: play }, thumb, h('span', { class: 'play-badge', 'aria-hidden': 'true' }, '▶')),
      h(
        'div',
        { class: 'film-info' },
        ...info,
        h(
          'div',
          { class: 'film-actions' },
          h('button', { type: 'button', class: 'small', onclick: play }, 'Play'),
          h('a', { class: 'button small', href: `${filmUrl}?download=1`, download: film.downloadName ?? '' }, 'Download'),
          openSpec,
          ...manage,
        ),
      ),
    );
  };

  const render = (films: FilmEntry[]) => {
    empty.hidden = films.length > 0;
    list.replaceChildren(...films.map(item));
  };

  let again = false;
  studio.refreshFilms = () => {
    // One request at a time; a refresh asked for meanwhile runs after it.
    if (loading !== undefined) {
      again = true;
      return;
    }
    loading = api
      .films()
      .then(({ films }) => render(films))
      .catch((error: unknown) => studio.toast(`Cannot list your films: ${(error as Error).message}`, 'error'))
      .finally(() => {
        loading = undefined;
        if (again) {
          again = false;
          studio.refreshFilms();
        }
      });
  };
  byId('refresh-films', HTMLButtonElement).addEventListener('click', () => studio.refreshFilms());
  studio.refreshFilms();
}
