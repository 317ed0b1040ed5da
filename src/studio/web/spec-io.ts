/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * "Film spec": save the film as the CLI's YAML (or JSON), load one from a file, pasted text or
 * the commented example. Parsing and writing go through the server so the rules and messages
 * are exactly the CLI's (`latentblend movie film.yaml`).
 */
import { api, ApiError, type FilmSpecJson } from './api.ts';
import type { Studio } from './context.ts';
import { byId, downloadText } from './dom.ts';
import { toSpec } from './state.ts';
import { safeFileStem } from '../names.ts';

/** YAML unless the text is a JSON object. */
function formatOfText(text: string, name?: string): 'yaml' | 'json' {
  if (name !== undefined && /\.json$/i.test(name)) return 'json';
  if (name !== undefined && /\.ya?ml$/i.test(name)) return 'yaml';
  return text.trimStart().startsWith('{') ? 'json' : 'yaml';
}

export function setupSpecIo(studio: Studio): void {
  const { store } = studio;
  const text = byId('spec-text', HTMLTextAreaElement);
  const error = byId('spec-error', HTMLElement);
  const file = byId('spec-file', HTMLInputElement);
  const status = byId('spec-status', HTMLElement);

  /** The spec to save: the draft with the studio's model, so the CLI renders the same film. */
  const currentSpec = (): FilmSpecJson | undefined => {
    if (store.keyframes.length < 2) {
      studio.toast('A film spec needs at least two keyframes on the timeline.', 'error');
      return undefined;
    }
    return { model: studio.model.source, ...toSpec(store.draft) };
  };

  /** Saved specs are named after the film: its first prompt. */
  const fileStem = () => safeFileStem(store.keyframes[0]?.prompt ?? 'film');

  const showError = (message: string) => {
    error.textContent = message;
    error.hidden = message === '';
  };

  const load = async (source: string, format: 'yaml' | 'json', from: string) => {
    showError('');
    try {
      const { spec } = await api.parseSpec(source, format);
      if (!(await studio.replaceTimeline(spec, from))) {
        status.textContent = `Not loaded: your timeline was kept.`;
        return;
      }
      const current = studio.model.source;
      const note = spec.model !== undefined && spec.model !== current ? ` It names the model ${spec.model}; the studio renders with ${current}.` : '';
      status.textContent = `Loaded ${from}: ${spec.keyframes.length} keyframes.${note}`;
    } catch (cause) {
      status.textContent = '';
      showError(cause instanceof ApiError ? cause.message : String(cause));
      studio.toast(`Cannot load ${from}: see the message under the text.`, 'error');
    }
  };

  byId('save-yaml', HTMLButtonElement).addEventListener('click', async () => {
    const spec = currentSpec();
    if (spec === undefined) return;
    try {
      const { yaml } = await api.specYaml(spec);
      text.value = yaml;
      showError('');
      const name = `${fileStem()}.yaml`;
      downloadText(name, yaml, 'application/yaml');
      status.textContent = `Saved as ${name}. Render it with: latentblend movie ${name} --out ${fileStem()}.mp4`;
    } catch (cause) {
      showError(cause instanceof ApiError ? cause.message : String(cause));
    }
  });

  byId('save-json', HTMLButtonElement).addEventListener('click', () => {
    const spec = currentSpec();
    if (spec === undefined) return;
    const json = `${JSON.stringify(spec, null, 2)}\n`;
    text.value = json;
    showError('');
    const name = `${fileStem()}.json`;
    downloadText(name, json, 'application/json');
    status.textContent = `Saved as ${name}. Render it with: latentblend movie ${name} --out ${fileStem()}.mp4`;
  });

  byId('load-text', HTMLButtonElement).addEventListener('click', () => {
    const source = text.value;
    if (source.trim() === '') {
      showError('Paste a film spec (YAML or JSON) into the box first, or open a file.');
      text.focus();
      return;
    }
    void load(source, formatOfText(source), 'the spec text');
  });

  byId('open-spec', HTMLButtonElement).addEventListener('click', () => file.click());
  file.addEventListener('change', async () => {
    const chosen = file.files?.[0];
    file.value = '';
    if (chosen === undefined) return;
    if (chosen.size > 1024 * 1024) {
      showError(`${chosen.name} is larger than 1 MiB; a film spec is a short text file.`);
      return;
    }
    const source = await chosen.text();
    text.value = source;
    await load(source, formatOfText(source, chosen.name), chosen.name);
  });

  byId('load-example', HTMLButtonElement).addEventListener('click', async () => {
    try {
      const { yaml } = await api.exampleSpec();
      text.value = yaml;
      await load(yaml, 'yaml', 'the example');
    } catch (cause) {
      showError(cause instanceof ApiError ? cause.message : String(cause));
    }
  });
}
