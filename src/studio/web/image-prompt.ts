/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The "Image prompt" card (IP-Adapter, issue #13): shown when the model in use can take an
 * IP-Adapter (or when the draft already has IP-Adapter settings, so that they can be removed).
 * The IP-Adapter (a folder or Hub id, as for a model), an image prompt for each keyframe (picked
 * or dropped, uploaded like picture keyframes, shown as a thumbnail) and the adapter scale. The
 * spec gets the IP-Adapter keys only when every keyframe has an image prompt (state.ts toSpec).
 */
import { api, ApiError } from './api.ts';
import type { Studio } from './context.ts';
import { byId, h, numberOf } from './dom.ts';
import { pictureUrl, type Keyframe } from './state.ts';
import { choosePicture } from './picture-keyframes.ts';

/** Whether a drag carries files (a picture from the desktop). */
function carriesFiles(event: DragEvent): boolean {
  return event.dataTransfer !== null && [...event.dataTransfer.types].includes('Files');
}

export function setupImagePrompt(studio: Studio): void {
  const { store } = studio;
  const panel = byId('ip-panel', HTMLElement);
  const form = byId('ip-form', HTMLElement);

  const source = h('input', { type: 'text', id: 'ip-source', placeholder: 'models/ip-adapter-sd15 or owner/name', autocomplete: 'off', spellcheck: 'false' });
  source.addEventListener('change', () => store.editSettings({ ipAdapter: source.value.trim() === '' ? undefined : source.value.trim() }));
  const scale = h('input', { type: 'number', id: 'ip-scale', min: 0, max: 5, step: 0.05, placeholder: '1' });
  scale.addEventListener('change', () => {
    const value = numberOf(scale);
    if (value !== undefined && !(value >= 0 && value <= 5)) {
      studio.toast('The IP-Adapter scale is a number from 0 to 5.', 'error');
      scale.value = store.settings.ipAdapterScale === undefined ? '' : String(store.settings.ipAdapterScale);
      return;
    }
    store.editSettings({ ipAdapterScale: value });
  });
  const list = h('ul', { class: 'ip-pictures', 'aria-label': 'Image prompts of the keyframes' });
  const status = h('p', { class: 'help', role: 'status' });

  /** Uploads `file` and makes it the image prompt of the keyframes `ids`. */
  const usePicture = async (file: Blob, name: string, ids: readonly string[], what: string) => {
    try {
      const uploaded = await api.uploadPicture(file);
      for (const id of ids) store.editKeyframe(id, { ipImage: uploaded.id });
      studio.toast(`${name} is the image prompt of ${what} (${uploaded.width}×${uploaded.height} px).`, 'success');
    } catch (error) {
      studio.toast(`${name} cannot be an image prompt: ${error instanceof ApiError ? error.message : String(error)}`, 'error');
    }
  };

  const item = (keyframe: Keyframe, index: number) => {
    const name = `keyframe ${index + 1}`;
    const label = keyframe.prompt.trim() === '' ? (keyframe.picture !== undefined ? 'picture keyframe' : '') : keyframe.prompt.trim();
    const thumbnail =
      keyframe.ipImage !== undefined
        ? h('img', { src: pictureUrl(keyframe.ipImage), alt: `Image prompt of ${name}`, width: 96, height: 96 })
        : h('span', { class: 'ip-empty muted' }, 'Drop a picture here');
    const ownScale = h('input', {
      type: 'number',
      min: 0,
      max: 5,
      step: 0.05,
      class: 'ip-scale',
      'aria-label': `IP-Adapter scale of ${name}`,
      title: 'The scale at this keyframe (interpolated along the transition); empty: the film’s',
      placeholder: `scale ${store.settings.ipAdapterScale ?? 1}`,
      value: keyframe.ipAdapterScale,
    });
    ownScale.addEventListener('change', () => {
      const value = numberOf(ownScale);
      if (value !== undefined && !(value >= 0 && value <= 5)) {
        studio.toast('The IP-Adapter scale is a number from 0 to 5.', 'error');
        ownScale.value = keyframe.ipAdapterScale === undefined ? '' : String(keyframe.ipAdapterScale);
        return;
      }
      store.editKeyframe(keyframe.id, { ipAdapterScale: value }, true);
    });
    const entry = h(
      'li',
      { class: 'ip-picture', 'aria-label': `Image prompt of ${name}` },
      thumbnail,
      h('span', { class: 'ip-caption', title: label }, h('strong', {}, `Keyframe ${index + 1}`), label !== '' ? ` · ${label.length > 40 ? `${label.slice(0, 39)}…` : label}` : ''),
      h(
        'span',
        { class: 'keyframe-row' },
        h('button', { type: 'button', class: 'small', 'aria-label': `Pick an image prompt for ${name}`, onclick: () => choosePicture((file) => usePicture(file, file.name, [keyframe.id], name)) }, 'Pick…'),
        keyframe.ipImage !== undefined
          ? h('button', { type: 'button', class: 'icon-button subtle', 'aria-label': `Remove the image prompt of ${name}`, onclick: () => store.editKeyframe(keyframe.id, { ipImage: undefined }) }, '×')
          : null,
      ),
      ownScale,
    );
    // A picture dropped here is this keyframe's image prompt, not a new keyframe (png-drop.ts
    // leaves drops whose default was prevented alone).
    entry.addEventListener('dragover', (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      entry.classList.add('drop-target');
    });
    entry.addEventListener('dragleave', () => entry.classList.remove('drop-target'));
    entry.addEventListener('drop', (event) => {
      entry.classList.remove('drop-target');
      const file = [...(event.dataTransfer?.files ?? [])][0];
      if (file === undefined) return;
      event.preventDefault();
      void usePicture(file, file.name, [keyframe.id], name);
    });
    return entry;
  };

  const pickForAll = () => choosePicture((file) => usePicture(file, file.name, store.keyframes.map((keyframe) => keyframe.id), 'every keyframe'));
  const removeAll = () => {
    for (const keyframe of store.keyframes) {
      if (keyframe.ipImage !== undefined || keyframe.ipAdapterScale !== undefined) store.editKeyframe(keyframe.id, { ipImage: undefined, ipAdapterScale: undefined }, true);
    }
    store.editSettings({ ipAdapter: undefined, ipAdapterScale: undefined });
  };

  form.replaceChildren(
    h('div', { class: 'field' }, h('label', { for: 'ip-source' }, 'IP-Adapter folder or Hub id'), source),
    h(
      'div',
      { class: 'field' },
      h('span', { class: 'label' }, 'Image prompt of each keyframe'),
      h('p', { class: 'help' }, 'Pick a picture or drop one on a keyframe’s box. Its look and subject become part of that keyframe’s prompt and blend along the transition.'),
      list,
      h('button', { type: 'button', class: 'small subtle', onclick: pickForAll }, 'One picture for every keyframe…'),
      status,
    ),
    h('div', { class: 'field' }, h('label', { for: 'ip-scale' }, 'IP-Adapter scale'), scale, h('p', { class: 'help' }, 'How strongly the image prompts steer, 0 to 5. Empty: 1.')),
    h('button', { type: 'button', class: 'small subtle', onclick: removeAll }, 'No IP-Adapter'),
  );

  const sync = () => {
    const { settings, keyframes } = store;
    const withImage = keyframes.filter((keyframe) => keyframe.ipImage !== undefined).length;
    panel.hidden = !(studio.model.ipAdapter === true || settings.ipAdapter !== undefined || withImage > 0);
    if (document.activeElement !== source) source.value = settings.ipAdapter ?? '';
    if (document.activeElement !== scale) scale.value = settings.ipAdapterScale === undefined ? '' : String(settings.ipAdapterScale);
    list.replaceChildren(...keyframes.map(item));
    if (keyframes.length === 0) list.replaceChildren(h('li', { class: 'muted' }, 'Add keyframes to the timeline first.'));
    status.textContent =
      (settings.ipAdapter ?? '') === ''
        ? 'Name the IP-Adapter above: the film uses image prompts only with one.'
        : withImage === keyframes.length && withImage > 0
          ? 'Every keyframe has an image prompt: the film uses the IP-Adapter.'
          : `${withImage} of ${keyframes.length} keyframes have an image prompt: the film uses the IP-Adapter only when every keyframe has one.`;
    // No UNet export takes both (the server refuses such a render).
    if ((settings.ipAdapter ?? '') !== '' && (settings.controlnet ?? '') !== '') status.textContent += ' An IP-Adapter together with a ControlNet is not supported yet: choose one.';
  };
  store.subscribe(sync);
  studio.onModel(sync);
  sync();
}
