/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The ControlNet card (issue #13): shown when the model in use has the UNet that takes ControlNet
 * residuals (or when the draft already has ControlNet settings, so that they can be removed).
 * The ControlNet (a folder or Hub id, as for a model), a control picture for the whole film
 * (uploaded like picture keyframes), its Canny edge map (made by the server, shown before the
 * render) and the conditioning scale.
 */
import { api, ApiError } from './api.ts';
import type { Studio } from './context.ts';
import { byId, h, numberOf } from './dom.ts';
import { pictureUrl } from './state.ts';
import { choosePicture } from './picture-keyframes.ts';

export function setupControl(studio: Studio): void {
  const { store } = studio;
  const panel = byId('control-panel', HTMLElement);
  const form = byId('control-form', HTMLElement);

  const source = h('input', { type: 'text', id: 'control-source', placeholder: 'models/controlnet-canny or owner/name', autocomplete: 'off', spellcheck: 'false' });
  source.addEventListener('change', () => store.editSettings({ controlnet: source.value.trim() === '' ? undefined : source.value.trim() }));
  const scale = h('input', { type: 'number', id: 'control-scale', min: 0, max: 5, step: 0.05, placeholder: '1' });
  scale.addEventListener('change', () => {
    const value = numberOf(scale);
    if (value !== undefined && !(value >= 0 && value <= 5)) {
      studio.toast('The conditioning scale is a number from 0 to 5.', 'error');
      scale.value = store.settings.controlnetScale === undefined ? '' : String(store.settings.controlnetScale);
      return;
    }
    store.editSettings({ controlnetScale: value });
  });
  const cannyBox = h('input', { type: 'checkbox', id: 'control-canny' });
  cannyBox.addEventListener('change', () => store.editSettings({ canny: cannyBox.checked ? true : undefined }));
  const pictures = h('div', { class: 'control-pictures' });
  let cannyShown: string | undefined;
  let cannyUrl: string | undefined;

  const pick = () => choosePicture((file) => usePicture(file, file.name));
  const usePicture = async (blob: Blob, name: string) => {
    try {
      const uploaded = await api.uploadPicture(blob);
      store.editSettings({ controlImage: uploaded.id });
      studio.toast(`The control picture is ${name} (${uploaded.width}×${uploaded.height} px).`, 'success');
    } catch (error) {
      studio.toast(`${name} cannot be the control picture: ${error instanceof ApiError ? error.message : String(error)}`, 'error');
    }
  };

  /** The control picture, and its Canny map when `canny` is on (made once per picture). */
  const showPictures = () => {
    const id = store.settings.controlImage;
    const items: HTMLElement[] = [];
    if (id !== undefined) {
      items.push(h('figure', {}, h('img', { src: pictureUrl(id), alt: 'Control picture', width: 128, height: 128 }), h('figcaption', { class: 'muted' }, 'control picture')));
      if (store.settings.canny === true) {
        if (cannyShown === id && cannyUrl !== undefined) {
          items.push(h('figure', {}, h('img', { src: cannyUrl, alt: 'Canny map of the control picture', width: 128, height: 128 }), h('figcaption', { class: 'muted' }, 'Canny map (what the ControlNet gets)')));
        } else {
          cannyShown = id;
          cannyUrl = undefined;
          api.cannyPicture(id).then(
            (map) => {
              if (cannyShown !== id) return;
              cannyUrl = map.url;
              showPictures();
            },
            (error: unknown) => studio.toast(`The Canny map could not be made: ${error instanceof ApiError ? error.message : String(error)}`, 'error'),
          );
        }
      }
    }
    pictures.replaceChildren(...items);
  };

  form.replaceChildren(
    h('div', { class: 'field' }, h('label', { for: 'control-source' }, 'ControlNet folder or Hub id'), source),
    h(
      'div',
      { class: 'field' },
      h('span', { class: 'label' }, 'Control picture (every keyframe)'),
      h(
        'div',
        { class: 'keyframe-row' },
        h('button', { type: 'button', class: 'small', onclick: pick }, 'Pick a control picture'),
        h('button', { type: 'button', class: 'small subtle', onclick: () => store.editSettings({ controlImage: undefined }) }, 'Remove'),
      ),
      pictures,
    ),
    h('label', { class: 'check' }, cannyBox, ' Turn it into edges first (Canny)'),
    h('div', { class: 'field' }, h('label', { for: 'control-scale' }, 'Conditioning scale'), scale, h('p', { class: 'help' }, 'How strongly the control picture steers, 0 to 5. Empty: 1.')),
    h('button', { type: 'button', class: 'small subtle', onclick: () => store.editSettings({ controlnet: undefined, controlImage: undefined, controlnetScale: undefined, canny: undefined }) }, 'No ControlNet'),
  );

  const sync = () => {
    const { settings } = store;
    panel.hidden = !(studio.model.controlnet === true || settings.controlnet !== undefined || settings.controlImage !== undefined);
    if (document.activeElement !== source) source.value = settings.controlnet ?? '';
    if (document.activeElement !== scale) scale.value = settings.controlnetScale === undefined ? '' : String(settings.controlnetScale);
    cannyBox.checked = settings.canny === true;
    showPictures();
  };
  store.subscribe((change) => {
    if (change !== 'keyframes') sync();
  });
  studio.onModel(sync);
  sync();
}
