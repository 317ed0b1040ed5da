/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The picture size (in the model card) and the blending options, each with a plain-words
 * explanation (SPEC.md). An empty field means "the model's default", shown as its placeholder,
 * and stays out of the film spec; the defaults shown follow the model when another one is
 * loaded (./model.ts shows the model itself).
 */
import type { Crossfeed } from './api.ts';
import type { Studio } from './context.ts';
import { byId, h, numberOf } from './dom.ts';
import { FILM_DEFAULTS, type FilmSettings } from './state.ts';

type NumberKey = 'width' | 'height' | 'steps' | 'guidanceScale' | 'midDamper' | 'depthStrength' | 'maxBranches' | 'timeBudget' | 'batchSize' | 'fps' | 'transitionDuration' | 'quality';

interface NumberField {
  key: NumberKey;
  label: string;
  help: string;
  min: number;
  max?: number;
  /** Exclusive bounds, checked by hand (number inputs only know inclusive ones). */
  above?: number;
  below?: number;
  step: number | 'any';
  integer?: boolean;
  /** The value used when the field is empty. */
  fallback: (studio: Studio) => number | undefined;
  unit?: string;
  /** The fallback is the model's default (not a film default). */
  fromModel?: boolean;
}

const FIELDS: Record<NumberKey, NumberField> = {
  width: {
    key: 'width',
    fromModel: true,
    label: 'Width',
    help: '',
    min: 8,
    max: 8192,
    step: 8,
    integer: true,
    unit: 'px',
    fallback: (studio) => studio.model.defaults.width,
  },
  height: {
    key: 'height',
    fromModel: true,
    label: 'Height',
    help: '',
    min: 8,
    max: 8192,
    step: 8,
    integer: true,
    unit: 'px',
    fallback: (studio) => studio.model.defaults.height,
  },
  steps: {
    key: 'steps',
    fromModel: true,
    label: 'Denoising steps',
    help: 'How many times each image is refined from noise. More steps give more detail and take longer; Turbo models need only 1 to 4.',
    min: 2,
    max: 1000,
    step: 1,
    integer: true,
    fallback: (studio) => studio.model.defaults.steps,
  },
  guidanceScale: {
    key: 'guidanceScale',
    fromModel: true,
    label: 'Guidance scale',
    help: 'How strictly each image follows its prompt. Only used above 1 (it then costs twice the compute); Turbo models work best without it (0).',
    min: 0,
    max: 50,
    step: 0.5,
    fallback: (studio) => studio.model.defaults.guidanceScale,
  },
  midDamper: {
    key: 'midDamper',
    fromModel: true,
    label: 'Mid damper',
    help: 'Lowers the guidance towards the middle of each transition, which keeps the in-between images calm. Halfway it reaches 1 + (scale − 1) × damper; 1 keeps the scale constant.',
    min: 0,
    above: 0,
    max: 1,
    step: 0.05,
    fallback: (studio) => studio.model.defaults.midDamper,
  },
  depthStrength: {
    key: 'depthStrength',
    fromModel: true,
    label: 'Depth strength',
    help: 'How late in the denoising the in-between images branch off their neighbours. Low: more new, creative structure between the keyframes. High: closer to a plain cross-fade.',
    min: 0,
    above: 0,
    max: 1,
    below: 1,
    step: 0.05,
    fallback: (studio) => studio.model.defaults.depthStrength,
  },
  maxBranches: {
    key: 'maxBranches',
    fromModel: true,
    label: 'Images per transition',
    help: 'How many images are computed for each transition, the two keyframes included. More images: smoother motion, more compute.',
    min: 2,
    max: 4096,
    step: 1,
    integer: true,
    fallback: (studio) => studio.model.defaults.maxBranches,
  },
  timeBudget: {
    key: 'timeBudget',
    label: 'Seconds of compute per transition',
    help: 'A time budget instead of a number of images: as many images as fit into it are computed, measured on this machine.',
    min: 0,
    above: 0,
    step: 'any',
    unit: 's',
    fallback: () => undefined,
  },
  batchSize: {
    key: 'batchSize',
    label: 'Batch size',
    help: 'Images denoised together in one go: faster on a GPU, and it changes which in-between images are made.',
    min: 1,
    max: 64,
    step: 1,
    integer: true,
    fallback: () => FILM_DEFAULTS.batchSize,
  },
  fps: {
    key: 'fps',
    label: 'Frames per second',
    help: 'Frame rate of the video. The frames between two computed images are cross-faded from them.',
    min: 1,
    max: 120,
    step: 1,
    fallback: () => FILM_DEFAULTS.fps,
  },
  transitionDuration: {
    key: 'transitionDuration',
    label: 'Transition duration',
    help: 'Seconds of each transition, unless you set another duration on the timeline.',
    min: 0,
    above: 0,
    step: 'any',
    unit: 's',
    fallback: () => FILM_DEFAULTS.transitionDuration,
  },
  quality: {
    key: 'quality',
    label: 'Video quality',
    help: 'From 0 (smallest file) to 100 (best picture).',
    min: 0,
    max: 100,
    step: 1,
    fallback: () => FILM_DEFAULTS.quality,
  },
};

type CrossfeedKey = 'parentalCrossfeed' | 'branch1Crossfeed';

const CROSSFEEDS: Record<CrossfeedKey, { title: string; help: string }> = {
  parentalCrossfeed: {
    title: 'Parental crossfeed',
    help: 'Copies part of the two neighbouring images’ denoising into each new in-between image, so that it shares their structure and nothing pops up from nowhere.',
  },
  branch1Crossfeed: {
    title: 'Keyframe crossfeed (branch 1)',
    help: 'Copies part of the first keyframe’s denoising into the second keyframe’s, so that the two keyframes of a transition look more alike. Off by default.',
  },
};

const CROSSFEED_PARTS: { key: keyof Crossfeed; label: string; help: string }[] = [
  { key: 'power', label: 'Power', help: 'the share copied at the start (0 to 1)' },
  { key: 'range', label: 'Range', help: 'the fraction of the steps during which it is active' },
  { key: 'decay', label: 'Decay', help: 'the share at the end of the range, as a fraction of the power' },
];

function formatNumber(value: number | undefined): string {
  if (value === undefined) return '';
  return String(Math.round(value * 1000) / 1000);
}

export interface SettingsPanel {
  /** The first option whose value is not allowed (focused), or undefined when all are fine. */
  firstInvalid(): string | undefined;
}

export function setupSettings(studio: Studio): SettingsPanel {
  const { store } = studio;
  const inputs = new Map<string, { input: HTMLInputElement; check: () => string | undefined; sync: () => void; label: string }>();
  /** Show the current model's defaults again (placeholders and "Empty: …" notes). */
  const showDefaults: (() => void)[] = [];

  /** A labelled number field with its explanation and its own error line. */
  const numberField = (field: NumberField, options: { compact?: boolean } = {}): HTMLElement => {
    const id = `setting-${field.key}`;
    const input = h('input', {
      id,
      type: 'number',
      inputmode: field.integer ? 'numeric' : 'decimal',
      min: field.min,
      max: field.max,
      step: field.step,
      'aria-describedby': field.help === '' ? `${id}-error` : `${id}-help ${id}-error`,
    });
    const error = h('p', { id: `${id}-error`, class: 'field-error', 'aria-live': 'polite' });
    const check = (): string | undefined => {
      const text = input.value.trim();
      if (text === '') return undefined;
      const value = Number(text);
      const range = `${field.above !== undefined ? `above ${field.above}` : `from ${field.min}`}${field.max !== undefined ? (field.below !== undefined ? ` and below ${field.below}` : ` to ${field.max}`) : ''}`;
      if (!Number.isFinite(value)) return 'expected a number';
      if (field.integer && !Number.isInteger(value)) return `expected a whole number ${range}`;
      if (value < field.min || (field.max !== undefined && value > field.max) || (field.above !== undefined && value <= field.above) || (field.below !== undefined && value >= field.below)) {
        return `expected a number ${range}`;
      }
      return undefined;
    };
    const sync = () => {
      const value = store.settings[field.key];
      input.value = value === undefined ? '' : String(value);
      input.removeAttribute('aria-invalid');
      error.textContent = '';
    };
    input.addEventListener('input', () => {
      const problem = check();
      error.textContent = problem === undefined ? '' : `${field.label}: ${problem}.`;
      if (problem === undefined) input.removeAttribute('aria-invalid');
      else input.setAttribute('aria-invalid', 'true');
      if (problem === undefined) store.editSettings({ [field.key]: numberOf(input) }, true);
    });
    input.addEventListener('change', () => {
      if (check() === undefined) store.editSettings({ [field.key]: numberOf(input) });
    });
    inputs.set(field.key, { input, check, sync, label: field.label });
    sync();
    const unit = field.unit === undefined ? '' : ` ${field.unit}`;
    const note = h('span', { class: 'muted' });
    const showDefault = () => {
      const fallback = field.fallback(studio);
      input.placeholder = fallback === undefined ? '' : formatNumber(fallback);
      note.textContent = fallback === undefined ? '' : ` Empty: ${formatNumber(fallback)}${unit}${field.fromModel ? ' (from the model)' : ''}.`;
    };
    showDefault();
    showDefaults.push(showDefault);
    return h(
      'div',
      { class: `field${options.compact ? ' compact' : ''}` },
      h('label', { for: id }, field.label, field.unit === undefined ? '' : h('span', { class: 'unit' }, ` (${field.unit})`)),
      input,
      field.help === '' ? null : h('p', { id: `${id}-help`, class: 'help' }, field.help, note),
      error,
    );
  };

  // --- Model card: the picture size.
  const sizeWidth = numberField(FIELDS.width, { compact: true });
  const sizeHeight = numberField(FIELDS.height, { compact: true });
  byId('size-fields', HTMLElement).replaceChildren(sizeWidth, h('span', { class: 'times', 'aria-hidden': 'true' }, '×'), sizeHeight);

  // --- Blending options.
  const budgetRadio = (mode: FilmSettings['budgetMode'], label: string) => {
    const radio = h('input', { type: 'radio', name: 'budget-mode', value: mode, id: `budget-${mode}` });
    radio.checked = store.settings.budgetMode === mode;
    radio.addEventListener('change', () => {
      if (radio.checked) {
        store.editSettings({ budgetMode: mode });
        showBudget();
      }
    });
    return h('label', { class: 'radio', for: `budget-${mode}` }, radio, label);
  };
  const branchesField = numberField(FIELDS.maxBranches);
  const budgetField = numberField(FIELDS.timeBudget);
  const showBudget = () => {
    const mode = store.settings.budgetMode;
    branchesField.hidden = mode !== 'branches';
    budgetField.hidden = mode !== 'time';
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="budget-mode"]')) radio.checked = radio.value === mode;
  };

  const crossfeedGroup = (key: CrossfeedKey) => {
    const defaultsNow = () => studio.model.defaults[key];
    const partInputs = CROSSFEED_PARTS.map((part) => {
      const id = `setting-${key}-${part.key}`;
      const input = h('input', {
        id,
        type: 'number',
        min: 0,
        max: 1,
        step: 0.05,
        inputmode: 'decimal',
        'aria-describedby': `${key}-help`,
      });
      const check = () => {
        const text = input.value.trim();
        if (text === '') return undefined;
        const value = Number(text);
        return Number.isFinite(value) && value >= 0 && value <= 1 ? undefined : 'expected a number from 0 to 1';
      };
      const sync = () => {
        const value = store.settings[key]?.[part.key];
        input.value = value === undefined ? '' : String(value);
        input.removeAttribute('aria-invalid');
      };
      inputs.set(`${key}.${part.key}`, { input, check, sync, label: `${CROSSFEEDS[key].title} ${part.label.toLowerCase()}` });
      sync();
      return { part, input, id, check };
    });
    const commit = () => {
      for (const entry of partInputs) {
        if (entry.check() === undefined) entry.input.removeAttribute('aria-invalid');
        else entry.input.setAttribute('aria-invalid', 'true');
      }
      if (partInputs.some((entry) => entry.check() !== undefined)) return;
      const values = partInputs.map((entry) => numberOf(entry.input));
      if (values.every((value) => value === undefined)) {
        store.editSettings({ [key]: undefined }, true);
        return;
      }
      // The spec needs all three; an empty one takes the model's default.
      const defaults = defaultsNow();
      const crossfeed: Crossfeed = { power: values[0] ?? defaults.power, range: values[1] ?? defaults.range, decay: values[2] ?? defaults.decay };
      store.editSettings({ [key]: crossfeed }, true);
    };
    for (const entry of partInputs) entry.input.addEventListener('input', commit);
    const note = h('span', { class: 'muted' });
    const showDefault = () => {
      const defaults = defaultsNow();
      for (const entry of partInputs) entry.input.placeholder = formatNumber(defaults[entry.part.key]);
      note.textContent = `Empty: ${formatNumber(defaults.power)}, ${formatNumber(defaults.range)}, ${formatNumber(defaults.decay)} (from the model).`;
    };
    showDefault();
    showDefaults.push(showDefault);
    return h(
      'fieldset',
      { class: 'crossfeed' },
      h('legend', {}, CROSSFEEDS[key].title),
      h(
        'p',
        { id: `${key}-help`, class: 'help' },
        CROSSFEEDS[key].help,
        ' ',
        note,
      ),
      h(
        'div',
        { class: 'triple' },
        ...partInputs.map((entry) => h('div', { class: 'field compact' }, h('label', { for: entry.id, title: entry.part.help }, entry.part.label), entry.input, h('p', { class: 'help tiny' }, entry.part.help))),
      ),
    );
  };

  const retimingId = 'setting-retiming';
  const retiming = h(
    'select',
    { id: retimingId, 'aria-describedby': `${retimingId}-help` },
    h('option', { value: 'perceptual' }, 'Perceptual (default)'),
    h('option', { value: 'equal' }, 'Equal'),
  );
  retiming.value = store.settings.retiming ?? FILM_DEFAULTS.retiming;
  retiming.addEventListener('change', () => store.editSettings({ retiming: retiming.value === 'equal' ? 'equal' : 'perceptual' }));

  const form = byId('settings-form', HTMLElement);
  form.replaceChildren(
    h(
      'fieldset',
      { class: 'group' },
      h('legend', {}, 'Blending'),
      numberField(FIELDS.depthStrength),
      h(
        'div',
        { class: 'field' },
        h('span', { class: 'label', id: 'budget-label' }, 'How much to compute'),
        h('div', { class: 'radios', role: 'radiogroup', 'aria-labelledby': 'budget-label' }, budgetRadio('branches', 'A number of images'), budgetRadio('time', 'A time budget')),
      ),
      branchesField,
      budgetField,
      numberField(FIELDS.batchSize),
    ),
    h('fieldset', { class: 'group' }, h('legend', {}, 'Crossfeed'), crossfeedGroup('parentalCrossfeed'), crossfeedGroup('branch1Crossfeed')),
    h(
      'div',
      { class: 'settings-column' },
      h('fieldset', { class: 'group' }, h('legend', {}, 'Denoising'), numberField(FIELDS.steps), numberField(FIELDS.guidanceScale), numberField(FIELDS.midDamper)),
      h(
        'fieldset',
        { class: 'group' },
        h('legend', {}, 'Video'),
        numberField(FIELDS.fps),
        numberField(FIELDS.transitionDuration),
        h(
          'div',
          { class: 'field' },
          h('label', { for: retimingId }, 'Retiming'),
          retiming,
          h(
            'p',
            { id: `${retimingId}-help`, class: 'help' },
            'How the computed images are spread over each transition’s time. Perceptual: the visible change per second stays constant. Equal: every pair of neighbouring images gets the same time.',
          ),
        ),
        numberField(FIELDS.quality),
      ),
    ),
  );
  showBudget();

  byId('reset-settings', HTMLButtonElement).addEventListener('click', () => {
    const { negativePrompt } = store.settings;
    store.draft.settings = { budgetMode: 'branches', ...(negativePrompt === undefined ? {} : { negativePrompt }) };
    store.editSettings({});
    studio.toast('Options reset to the defaults of the model.', 'info');
  });

  store.subscribe((change) => {
    if (change === 'keyframes') return;
    for (const entry of inputs.values()) if (document.activeElement !== entry.input) entry.sync();
    retiming.value = store.settings.retiming ?? FILM_DEFAULTS.retiming;
    showBudget();
  });
  studio.onModel(() => {
    for (const show of showDefaults) show();
  });

  return {
    firstInvalid() {
      for (const entry of inputs.values()) {
        const problem = entry.check();
        if (problem !== undefined) {
          const details = entry.input.closest('details');
          if (details !== null) details.open = true;
          entry.input.focus();
          return `${entry.label}: ${problem}`;
        }
      }
      return undefined;
    },
  };
}
