/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * "Arrange the film": the keyframes in order, each with its image, prompt and seed, and between
 * two of them the transition with its duration and a button to render just it. Reorder with the
 * arrow buttons or by dragging a card; delete; replace a keyframe by a preview.
 */
import type { Studio } from './context.ts';
import { byId, formatSeconds, h, numberOf, randomSeed } from './dom.ts';
import { FILM_DEFAULTS, pictureUrl, type Keyframe } from './state.ts';
import { choosePicture, pickPicture } from './picture-keyframes.ts';
import { api, ApiError } from './api.ts';

export function setupTimeline(studio: Studio): void {
  const { store } = studio;
  const list = byId('timeline', HTMLOListElement);
  const summary = byId('timeline-summary', HTMLElement);
  const banner = byId('replace-banner', HTMLElement);
  const bannerText = byId('replace-banner-text', HTMLElement);
  const makeImages = byId('make-missing-images', HTMLButtonElement);
  const clear = byId('clear-timeline', HTMLButtonElement);
  let dragged: string | undefined;

  /** After a re-render, focus goes back to the control with this data-focus key. */
  let focusKey: string | undefined;

  const defaultDuration = () => store.settings.transitionDuration ?? FILM_DEFAULTS.transitionDuration;

  const move = (keyframe: Keyframe, to: number, key: string) => {
    focusKey = key;
    store.moveKeyframe(keyframe.id, to);
  };

  const clearDrop = () => {
    for (const item of list.querySelectorAll('.drop-before, .drop-after, .dragging')) item.classList.remove('drop-before', 'drop-after', 'dragging');
  };

  const keyframeCard = (keyframe: Keyframe, index: number, count: number): HTMLElement => {
    const number = index + 1;
    const name = `keyframe ${number}`;
    const pictureBox = h('div', { class: 'keyframe-picture' });
    /** Shows the keyframe's image, or a button to make one (after an edit made it stale). */
    const fillPicture = () => {
      const pending = studio.imagePending(keyframe.id);
      const picture =
        keyframe.imageUrl !== undefined
          ? h('img', { src: keyframe.imageUrl, alt: `Keyframe ${number}: ${keyframe.picture !== undefined ? `picture${keyframe.prompt !== '' ? `, ${keyframe.prompt}` : ''}` : keyframe.prompt}`, width: 256, height: 256, draggable: 'false' })
          : h(
              'div',
              { class: 'no-image' },
              pending
                ? h('span', { class: 'spinner', role: 'status', 'aria-label': `Making the image of ${name}` })
                : h(
                    'button',
                    { type: 'button', class: 'small subtle', 'aria-label': `Make the image of ${name}`, onclick: () => studio.makeKeyframeImage(keyframe.id) },
                    'Make image',
                  ),
            );
      pictureBox.replaceChildren(h('span', { class: 'keyframe-number', 'aria-hidden': 'true' }, String(number)), picture);
    };
    fillPicture();
    // Edits change the store quietly and update this card in place: re-rendering the whole
    // list on blur would swallow a click that caused the blur.
    const isPicture = keyframe.picture !== undefined;
    const prompt = h('textarea', {
      class: 'keyframe-prompt',
      rows: 3,
      'aria-label': `Prompt of ${name}`,
      'data-focus': `prompt-${keyframe.id}`,
      ...(isPicture ? { placeholder: 'Optional: describe the picture' } : {}),
    });
    prompt.value = keyframe.prompt;
    prompt.addEventListener('input', () => {
      // A picture keyframe may have no prompt; a prompt keyframe needs one.
      if (prompt.value.trim() === '' && !isPicture) return;
      const before = keyframe.imageUrl;
      store.editKeyframe(keyframe.id, { prompt: prompt.value.trim() }, true);
      if (keyframe.imageUrl !== before) {
        fillPicture();
        renderToolbar();
      }
    });
    prompt.addEventListener('change', () => {
      if (prompt.value.trim() === '' && !isPicture) prompt.value = keyframe.prompt;
    });
    /** A picture keyframe's fit and trajectory method. */
    const pictureOptions = () => {
      const fit = h(
        'select',
        { 'aria-label': `Fit of the picture of ${name}`, title: 'cover: fill the frame and crop the centre; contain: the whole picture, padded with white' },
        h('option', { value: 'cover' }, 'cover'),
        h('option', { value: 'contain' }, 'contain'),
      );
      fit.value = keyframe.fit ?? 'cover';
      fit.addEventListener('change', () => store.editKeyframe(keyframe.id, { fit: fit.value === 'contain' ? 'contain' : undefined }, true));
      const method = h(
        'select',
        { 'aria-label': `Image method of ${name}`, title: 'noise: cheap, for Turbo models; inversion: DDIM inversion, for standard models (costs UNet calls)' },
        h('option', { value: '' }, 'method: model’s'),
        h('option', { value: 'noise' }, 'noise'),
        h('option', { value: 'inversion' }, 'inversion'),
      );
      method.value = keyframe.imageMethod ?? '';
      method.addEventListener('change', () =>
        store.editKeyframe(keyframe.id, { imageMethod: method.value === 'noise' || method.value === 'inversion' ? method.value : undefined }, true),
      );
      return h('div', { class: 'keyframe-row picture-options' }, fit, method);
    };
    /** The keyframe's own ControlNet control picture (offered when the model takes a ControlNet). */
    const controlRow = () =>
      h(
        'div',
        { class: 'keyframe-row control-row' },
        keyframe.controlImage !== undefined
          ? h('img', { src: pictureUrl(keyframe.controlImage), alt: `Control picture of ${name}`, width: 32, height: 32 })
          : h('span', { class: 'muted' }, 'control: the film’s'),
        h(
          'button',
          {
            type: 'button',
            class: 'small subtle',
            'aria-label': `Pick a control picture for ${name}`,
            title: 'A control picture for this keyframe only',
            onclick: () =>
              choosePicture(async (file) => {
                try {
                  const uploaded = await api.uploadPicture(file);
                  store.editKeyframe(keyframe.id, { controlImage: uploaded.id });
                } catch (error) {
                  studio.toast(`${file.name} cannot be a control picture: ${error instanceof ApiError ? error.message : String(error)}`, 'error');
                }
              }),
          },
          'Control…',
        ),
        keyframe.controlImage !== undefined
          ? h('button', { type: 'button', class: 'icon-button subtle', 'aria-label': `Remove the control picture of ${name}`, onclick: () => store.editKeyframe(keyframe.id, { controlImage: undefined }) }, '×')
          : null,
      );
    const seed = h('input', { type: 'number', min: 0, step: 1, class: 'seed-input', 'aria-label': `Seed of ${name}`, value: keyframe.seed, 'data-focus': `seed-${keyframe.id}` });
    const setSeed = (value: number) => {
      seed.value = String(value);
      store.editKeyframe(keyframe.id, { seed: value }, true);
      fillPicture();
      renderToolbar();
    };
    seed.addEventListener('change', () => {
      const value = numberOf(seed);
      if (value === undefined || !Number.isSafeInteger(value) || value < 0) {
        seed.value = String(keyframe.seed);
        studio.toast('A seed is a whole number ≥ 0.', 'error');
        return;
      }
      if (value !== keyframe.seed) setSeed(value);
    });
    const replacing = studio.replaceTarget() === keyframe.id;
    const card = h(
      'article',
      { class: `keyframe-card${replacing ? ' replacing' : ''}`, draggable: 'true', 'aria-label': `Keyframe ${number}`, 'data-id': keyframe.id },
      pictureBox,
      h(
        'div',
        { class: 'keyframe-body' },
        prompt,
        ...(isPicture ? [pictureOptions()] : []),
        ...(studio.model.controlnet === true || keyframe.controlImage !== undefined ? [controlRow()] : []),
        h(
          'div',
          { class: 'keyframe-row' },
          h('label', { class: 'seed-label' }, h('span', { class: 'muted' }, 'seed'), seed),
          h(
            'button',
            {
              type: 'button',
              class: 'icon-button subtle',
              title: 'New random seed',
              'aria-label': `New random seed for ${name}`,
              onclick: () => setSeed(randomSeed()),
            },
            '⟳',
          ),
        ),
        h(
          'div',
          { class: 'keyframe-actions', role: 'group', 'aria-label': `Arrange ${name}` },
          h(
            'button',
            { type: 'button', class: 'icon-button', 'aria-label': `Move ${name} left`, title: 'Move left', disabled: index === 0, 'data-focus': `left-${keyframe.id}`, onclick: () => move(keyframe, index - 1, `left-${keyframe.id}`) },
            '←',
          ),
          h(
            'button',
            { type: 'button', class: 'icon-button', 'aria-label': `Move ${name} right`, title: 'Move right', disabled: index === count - 1, 'data-focus': `right-${keyframe.id}`, onclick: () => move(keyframe, index + 1, `right-${keyframe.id}`) },
            '→',
          ),
          h(
            'button',
            {
              type: 'button',
              class: `small${replacing ? ' accent' : ''}`,
              'aria-label': `Replace ${name}`,
              'aria-pressed': replacing ? 'true' : 'false',
              title: 'Replace it by a preview',
              onclick: () => {
                studio.setReplaceTarget(replacing ? undefined : keyframe.id);
                if (!replacing) studio.focusPrompt();
              },
            },
            'Replace',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'icon-button danger',
              'aria-label': `Delete ${name}`,
              title: 'Delete',
              'data-focus': `delete-${keyframe.id}`,
              onclick: () => {
                if (studio.replaceTarget() === keyframe.id) studio.setReplaceTarget(undefined);
                const neighbour = store.keyframes[index + 1] ?? store.keyframes[index - 1];
                focusKey = neighbour === undefined ? undefined : `delete-${neighbour.id}`;
                store.removeKeyframe(keyframe.id);
                studio.toast(`Keyframe ${number} deleted.`, 'info');
              },
            },
            '✕',
          ),
        ),
      ),
    );
    // Dragging starts anywhere on the card but in its fields and buttons (so text can be selected).
    card.addEventListener('pointerdown', (event) => {
      card.draggable = !(event.target instanceof Element && event.target.closest('input, textarea, button, select, summary') !== null);
    });
    card.addEventListener('dragstart', (event) => {
      dragged = keyframe.id;
      card.classList.add('dragging');
      event.dataTransfer?.setData('text/plain', keyframe.id);
      if (event.dataTransfer) event.dataTransfer.effectAllowed = 'move';
    });
    card.addEventListener('dragend', () => {
      dragged = undefined;
      clearDrop();
    });
    card.addEventListener('dragover', (event) => {
      if (dragged === undefined || dragged === keyframe.id) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'move';
      const box = card.getBoundingClientRect();
      const after = event.clientX > box.left + box.width / 2;
      card.classList.toggle('drop-after', after);
      card.classList.toggle('drop-before', !after);
    });
    card.addEventListener('dragleave', () => card.classList.remove('drop-before', 'drop-after'));
    card.addEventListener('drop', (event) => {
      event.preventDefault();
      const id = dragged ?? event.dataTransfer?.getData('text/plain');
      clearDrop();
      if (id === undefined || id === '' || id === keyframe.id) return;
      const from = store.keyframes.findIndex((entry) => entry.id === id);
      const box = card.getBoundingClientRect();
      const after = event.clientX > box.left + box.width / 2;
      let to = index + (after ? 1 : 0);
      if (from < to) to -= 1;
      store.moveKeyframe(id, to);
    });
    return card;
  };

  const transitionCard = (keyframe: Keyframe, index: number): HTMLElement => {
    const name = `transition ${index + 1} → ${index + 2}`;
    const duration = h('input', {
      type: 'number',
      min: 0.1,
      step: 0.5,
      class: 'duration-input',
      'aria-label': `Duration of ${name} in seconds`,
      placeholder: String(defaultDuration()),
      value: keyframe.duration ?? '',
    });
    duration.addEventListener('change', () => {
      const value = numberOf(duration);
      if (value !== undefined && value <= 0) {
        duration.value = keyframe.duration === undefined ? '' : String(keyframe.duration);
        studio.toast('A duration is a number of seconds above 0.', 'error');
        return;
      }
      store.editKeyframe(keyframe.id, { duration: value }, true);
      renderToolbar();
    });
    const negative = h('input', {
      type: 'text',
      class: 'transition-negative',
      'aria-label': `Negative prompt of ${name}`,
      placeholder: store.settings.negativePrompt?.trim() ? store.settings.negativePrompt : 'the film’s',
      value: keyframe.negativePrompt ?? '',
    });
    const summaryText = () => (keyframe.negativePrompt === undefined ? 'Negative' : 'Negative (own)');
    const summary = h('summary', { title: 'A negative prompt for this transition only' }, summaryText());
    negative.addEventListener('change', () => {
      store.editKeyframe(keyframe.id, { negativePrompt: negative.value.trim() === '' ? undefined : negative.value }, true);
      summary.textContent = summaryText();
      summary.classList.toggle('set', keyframe.negativePrompt !== undefined);
    });
    if (keyframe.negativePrompt !== undefined) summary.classList.add('set');
    return h(
      'div',
      { class: 'transition-card', role: 'group', 'aria-label': `Transition ${index + 1} → ${index + 2}` },
      h('div', { class: 'transition-arrow', 'aria-hidden': 'true' }),
      h('label', { class: 'duration-label' }, duration, h('span', { class: 'muted' }, 's')),
      h('button', { type: 'button', class: 'small', 'aria-label': `Render ${name}`, title: 'Render only this transition', onclick: () => studio.renderTransition(index) }, '▶ Render'),
      h('details', { class: 'transition-more' }, summary, h('label', { class: 'mini-field' }, h('span', {}, 'Negative prompt of this transition'), negative)),
    );
  };

  const render = () => {
    const keyframes = store.keyframes;
    const count = keyframes.length;
    const items: HTMLElement[] = [];
    keyframes.forEach((keyframe, index) => {
      const item = h('li', { class: 'timeline-item', 'data-id': keyframe.id }, keyframeCard(keyframe, index, count));
      if (index < count - 1) item.append(transitionCard(keyframe, index));
      items.push(item);
    });
    items.push(
      h(
        'li',
        { class: 'timeline-item add-slot' },
        h(
          'div',
          { class: 'add-card' },
          h('p', {}, count === 0 ? 'Your film starts here.' : count === 1 ? 'Add one more keyframe for a first transition.' : 'Add another keyframe?'),
          h('p', { class: 'muted' }, 'Generate previews, then press “Add to timeline”, or drop a picture here.'),
          h('button', { type: 'button', class: 'small', onclick: () => studio.focusPrompt() }, 'Write a prompt'),
          h('button', { type: 'button', class: 'small', onclick: () => pickPicture(studio) }, 'Pick a picture'),
        ),
      ),
    );
    list.replaceChildren(...items);
    renderToolbar();
    if (focusKey !== undefined) {
      const target = list.querySelector<HTMLElement>(`[data-focus="${focusKey}"]`);
      if (target !== null && !(target as HTMLButtonElement).disabled) target.focus();
      else list.querySelector<HTMLElement>(`[data-id="${focusKey.replace(/^\w+-/, '')}"] textarea`)?.focus();
      focusKey = undefined;
    }
  };

  /** The summary line and the buttons above the list. */
  const renderToolbar = () => {
    const keyframes = store.keyframes;
    const count = keyframes.length;
    const transitions = Math.max(0, count - 1);
    let seconds = 0;
    for (let index = 0; index < transitions; index++) seconds += keyframes[index]!.duration ?? defaultDuration();
    summary.textContent =
      count === 0
        ? 'No keyframes yet'
        : `${count} keyframe${count === 1 ? '' : 's'} · ${transitions} transition${transitions === 1 ? '' : 's'}${transitions > 0 ? ` · ${formatSeconds(seconds)} film` : ''}`;
    const missing = keyframes.filter((keyframe) => keyframe.imageUrl === undefined && !studio.imagePending(keyframe.id));
    makeImages.hidden = missing.length === 0;
    makeImages.textContent = `Make ${missing.length} missing image${missing.length === 1 ? '' : 's'}`;
    clear.hidden = count === 0;
  };

  const renderBanner = (id: string | undefined) => {
    const index = id === undefined ? -1 : store.keyframes.findIndex((keyframe) => keyframe.id === id);
    banner.hidden = index < 0;
    if (index >= 0) bannerText.textContent = `Choose a preview to replace keyframe ${index + 1}.`;
  };

  byId('cancel-replace', HTMLButtonElement).addEventListener('click', () => studio.setReplaceTarget(undefined));
  makeImages.addEventListener('click', () => {
    for (const keyframe of store.keyframes) if (keyframe.imageUrl === undefined) studio.makeKeyframeImage(keyframe.id);
  });
  clear.addEventListener('click', () => {
    if (!window.confirm('Remove every keyframe from the timeline?')) return;
    studio.setReplaceTarget(undefined);
    for (const keyframe of [...store.keyframes]) store.removeKeyframe(keyframe.id);
  });
  studio.onReplaceTarget((id) => {
    renderBanner(id);
    render();
  });
  // Whether the cards offer control pictures depends on the model.
  studio.onModel(() => render());
  store.subscribe((change) => {
    if (change === 'keyframes' || change === 'all') {
      render();
      renderBanner(studio.replaceTarget());
    } else if (change === 'settings') {
      // In place: a full re-render here would swallow the click that blurred a settings field.
      for (const input of list.querySelectorAll<HTMLInputElement>('.duration-input')) input.placeholder = String(defaultDuration());
      const negative = store.settings.negativePrompt?.trim() ? store.settings.negativePrompt : 'the film’s';
      for (const input of list.querySelectorAll<HTMLInputElement>('.transition-negative')) input.placeholder = negative;
      renderToolbar();
    }
  });
  render();
}
