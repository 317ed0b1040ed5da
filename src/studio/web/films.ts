/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** "Your films": this session's rendered films (GET /api/films), to play, download or reopen. */
import { api, type FilmEntry } from './api.ts';
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

function filmTitle(film: FilmEntry): string {
  const keyframes = film.spec?.keyframes ?? [];
  if (film.transitionIndex !== undefined && keyframes.length > film.transitionIndex + 1) {
    return `Transition ${film.transitionIndex + 1} → ${film.transitionIndex + 2}`;
  }
  return `Film of ${keyframes.length} keyframes`;
}

/** The last meaningful part of a model folder or Hub id ("tiny-sd-turbo", "stabilityai/sdxl-turbo"). */
function modelName(source: string): string {
  // Folders are recorded absolute; Hub ids as given.
  if (!/^[/\\.~]|^[A-Za-z]:/.test(source)) return source;
  return source.split(/[\\/]/).filter((part) => part !== '' && part !== 'onnx').pop() ?? source;
}

export function setupFilms(studio: Studio, player: RenderPanel): void {
  const list = byId('films-list', HTMLUListElement);
  const empty = byId('films-empty', HTMLElement);
  let loading: Promise<void> | undefined;

  const render = (films: FilmEntry[]) => {
    empty.hidden = films.length > 0;
    list.replaceChildren(
      ...films.map((film) => {
        const title = filmTitle(film);
        const label = `${title}, ${when(film.createdAt)}`;
        const prompts = (film.spec?.keyframes ?? []).map((keyframe) => keyframe.prompt);
        const play = () => {
          player.show({
            filmUrl: film.filmUrl,
            title: label,
            ...(film.contactSheetUrl ? { contactSheetUrl: film.contactSheetUrl } : {}),
            ...(film.smoothnessUrl ? { smoothnessUrl: film.smoothnessUrl } : {}),
          });
          byId('render-panel', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'start' });
        };
        const thumb = /\.gif$/.test(film.filmUrl)
          ? h('img', { src: film.filmUrl, alt: '' })
          : h('video', { src: `${film.filmUrl}#t=0.1`, muted: true, preload: 'metadata', 'aria-hidden': 'true', tabindex: '-1' });
        return h(
          'li',
          { class: 'film-item', 'aria-label': label },
          h('button', { type: 'button', class: 'film-thumb', 'aria-label': `Play ${label}`, onclick: play }, thumb, h('span', { class: 'play-badge', 'aria-hidden': 'true' }, '▶')),
          h(
            'div',
            { class: 'film-info' },
            h('p', { class: 'film-title' }, title, ' ', h('span', { class: 'muted' }, when(film.createdAt))),
            h('p', { class: 'film-prompts', title: prompts.join(' → ') }, prompts.join(' → ')),
            film.model === undefined ? null : h('p', { class: 'film-model muted small-print', title: film.model }, `Model: ${modelName(film.model)}`),
            h(
              'div',
              { class: 'film-actions' },
              h('button', { type: 'button', class: 'small', onclick: play }, 'Play'),
              h('a', { class: 'button small', href: `${film.filmUrl}?download=1`, download: '' }, 'Download'),
              h(
                'button',
                {
                  type: 'button',
                  class: 'small subtle',
                  'aria-label': `Open the spec of ${label} in the editor`,
                  onclick: () => {
                    studio.store.load(film.spec);
                    studio.toast(`Opened the spec of “${label}”: its keyframes are on the timeline.`, 'success');
                  },
                },
                'Open spec',
              ),
            ),
          ),
        );
      }),
    );
  };

  studio.refreshFilms = () => {
    if (loading !== undefined) return;
    loading = api
      .films()
      .then(({ films }) => render(films))
      .catch((error: unknown) => studio.toast(`Cannot list your films: ${(error as Error).message}`, 'error'))
      .finally(() => {
        loading = undefined;
      });
  };
  byId('refresh-films', HTMLButtonElement).addEventListener('click', () => studio.refreshFilms());
  studio.refreshFilms();
}
