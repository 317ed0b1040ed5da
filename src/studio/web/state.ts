/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The film being edited: keyframes (with their preview image when one is known) and the film's
 * settings. It turns into the CLI's film spec (FilmSpecJson) and back, and survives a reload in
 * localStorage. Settings left undefined mean "the model's default" and stay out of the spec.
 */
import type { Crossfeed, FilmSpecJson } from './api.ts';

export interface Keyframe {
  /** Page-local id (stable across reorders, for focus and drag and drop). */
  readonly id: string;
  prompt: string;
  seed: number;
  /** Seconds of the transition after this keyframe; undefined: the film's default. */
  duration?: number;
  /** Negative prompt of the transition after this keyframe; undefined: the film's. */
  negativePrompt?: string;
  /** Preview image of exactly this prompt and seed, when one was made; a picture keyframe's picture. */
  imageUrl?: string;
  /** A picture keyframe: the uploaded picture's id (the prompt, then optional, describes it). */
  picture?: string;
  /** How the picture fills the frame; undefined: cover. */
  fit?: 'cover' | 'contain';
  /** How the picture's trajectory is made; undefined: the model preset's. */
  imageMethod?: 'noise' | 'inversion';
  /** This keyframe's own ControlNet control picture (an uploaded picture's id); undefined: the film's. */
  controlImage?: string;
  /** This keyframe's IP-Adapter image prompt (an uploaded picture's id). */
  ipImage?: string;
  /** IP-Adapter scale at this keyframe (0 to 5); undefined: the film's. */
  ipAdapterScale?: number;
}

export { PICTURE_ID } from '../picture-limits.ts';

/**
 * The URL that shows an uploaded picture, relative to the page: /api/files/… on the server
 * studio, <site>/api/files/… where the in-browser studio keeps it (a static site on a sub-path).
 */
export function pictureUrl(id: string): string {
  return `api/files/${id}`;
}

export interface FilmSettings {
  width?: number;
  height?: number;
  steps?: number;
  guidanceScale?: number;
  midDamper?: number;
  depthStrength?: number;
  negativePrompt?: string;
  /** Which way the amount of compute per transition is given. */
  budgetMode: 'branches' | 'time';
  /** Frames computed per transition (the film spec's maxBranches). */
  maxBranches?: number;
  /** Seconds of compute per transition (the film spec's timeBudget). */
  timeBudget?: number;
  batchSize?: number;
  branch1Crossfeed?: Crossfeed;
  parentalCrossfeed?: Crossfeed;
  fps?: number;
  transitionDuration?: number;
  retiming?: 'perceptual' | 'equal';
  quality?: number;
  /** ControlNet folder or Hub id (issue #13); with controlImage, the film uses it. */
  controlnet?: string;
  /** The uploaded control picture's id, for every keyframe. */
  controlImage?: string;
  controlnetScale?: number;
  /** Turn the control picture into a Canny edge map first. */
  canny?: boolean;
  /** IP-Adapter folder or Hub id (issue #13); the film uses it when every keyframe has an image prompt. */
  ipAdapter?: string;
  /** IP-Adapter scale, 0 to 5; undefined: 1. */
  ipAdapterScale?: number;
}

export interface Draft {
  keyframes: Keyframe[];
  settings: FilmSettings;
}

/** Film defaults of the CLI (src/film/spec.ts FILM_DEFAULTS), shown as placeholders. */
export const FILM_DEFAULTS = { fps: 30, transitionDuration: 6, retiming: 'perceptual', quality: 75, batchSize: 1 } as const;

const STORAGE_KEY = 'latentblend-studio-draft-v1';
const IMAGES_KEY = 'latentblend-studio-images-v1';
/** How many prompt-and-seed images are remembered for keyframes. */
const MAX_IMAGES = 300;

function imageKey(prompt: string, seed: number): string {
  return `${seed}\u0000${prompt}`;
}

let counter = 0;
export function newId(): string {
  counter += 1;
  return `k${Date.now().toString(36)}${counter.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export type Change = 'keyframes' | 'settings' | 'all';
type Listener = (change: Change) => void;

/** The draft with change notification. Mutations go through its methods. */
export class Store {
  draft: Draft;
  private readonly listeners = new Set<Listener>();
  /** Preview images seen, by prompt and seed, so a keyframe that gets them back shows its image. */
  private readonly images = new Map<string, string>();

  constructor(initial?: Draft) {
    this.draft = initial ?? { keyframes: [], settings: { budgetMode: 'branches' } };
    this.restoreImages();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: Change): void {
    this.save();
    for (const listener of this.listeners) listener(change);
  }

  /** Remembers the preview image of a prompt and seed (kept across reloads). */
  rememberImage(prompt: string, seed: number, url: string): void {
    const key = imageKey(prompt, seed);
    this.images.delete(key);
    this.images.set(key, url);
    while (this.images.size > MAX_IMAGES) this.images.delete(this.images.keys().next().value!);
    try {
      localStorage.setItem(IMAGES_KEY, JSON.stringify([...this.images]));
    } catch {
      // not kept
    }
  }

  /** The preview image known for this prompt and seed, if any. */
  imageFor(prompt: string, seed: number): string | undefined {
    return this.images.get(imageKey(prompt, seed));
  }

  private restoreImages(): void {
    try {
      const entries: unknown = JSON.parse(localStorage.getItem(IMAGES_KEY) ?? '[]');
      if (!Array.isArray(entries)) return;
      for (const entry of entries) {
        if (Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string') this.images.set(entry[0], entry[1]);
      }
    } catch {
      // ignored
    }
  }

  get keyframes(): readonly Keyframe[] {
    return this.draft.keyframes;
  }

  get settings(): FilmSettings {
    return this.draft.settings;
  }

  addKeyframe(keyframe: Omit<Keyframe, 'id'>, at?: number): Keyframe {
    const entry: Keyframe = { id: newId(), ...keyframe };
    if (entry.picture !== undefined) entry.imageUrl = pictureUrl(entry.picture);
    else if (entry.imageUrl !== undefined) this.rememberImage(entry.prompt, entry.seed, entry.imageUrl);
    else entry.imageUrl = this.imageFor(entry.prompt, entry.seed);
    const list = this.draft.keyframes;
    list.splice(at === undefined ? list.length : Math.max(0, Math.min(at, list.length)), 0, entry);
    this.emit('keyframes');
    return entry;
  }

  replaceKeyframe(id: string, values: { prompt: string; seed: number; imageUrl?: string }): void {
    const keyframe = this.draft.keyframes.find((entry) => entry.id === id);
    if (keyframe === undefined) return;
    keyframe.prompt = values.prompt;
    keyframe.seed = values.seed;
    // A keyframe replaced by a preview is a prompt keyframe again.
    delete keyframe.picture;
    delete keyframe.fit;
    delete keyframe.imageMethod;
    keyframe.imageUrl = values.imageUrl ?? this.imageFor(values.prompt, values.seed);
    if (values.imageUrl !== undefined) this.rememberImage(values.prompt, values.seed, values.imageUrl);
    this.emit('keyframes');
  }

  removeKeyframe(id: string): void {
    this.draft.keyframes = this.draft.keyframes.filter((entry) => entry.id !== id);
    this.emit('keyframes');
  }

  /** Moves keyframe `id` to position `to` (clamped). */
  moveKeyframe(id: string, to: number): void {
    const list = this.draft.keyframes;
    const from = list.findIndex((entry) => entry.id === id);
    if (from < 0) return;
    const target = Math.max(0, Math.min(to, list.length - 1));
    if (target === from) return;
    const [entry] = list.splice(from, 1);
    list.splice(target, 0, entry!);
    this.emit('keyframes');
  }

  /**
   * Edits a keyframe's fields. A new prompt or seed makes its preview image stale, so the
   * image is dropped (the card offers to make a new one). `quiet` skips re-rendering the
   * timeline (for typing in a field of it).
   */
  editKeyframe(id: string, values: Partial<Omit<Keyframe, 'id'>>, quiet = false): void {
    const keyframe = this.draft.keyframes.find((entry) => entry.id === id);
    if (keyframe === undefined) return;
    const staleImage = (values.prompt !== undefined && values.prompt !== keyframe.prompt) || (values.seed !== undefined && values.seed !== keyframe.seed);
    Object.assign(keyframe, values);
    // A picture keyframe keeps its picture whatever its prompt and seed.
    if (keyframe.picture !== undefined) keyframe.imageUrl = pictureUrl(keyframe.picture);
    else if (staleImage && !('imageUrl' in values)) keyframe.imageUrl = this.imageFor(keyframe.prompt, keyframe.seed);
    if (values.imageUrl !== undefined && keyframe.picture === undefined) this.rememberImage(keyframe.prompt, keyframe.seed, values.imageUrl);
    if (quiet) this.save();
    else this.emit('keyframes');
  }

  editSettings(values: Partial<FilmSettings>, quiet = false): void {
    Object.assign(this.draft.settings, values);
    if (quiet) this.save();
    else this.emit('settings');
  }

  /** Replaces the whole draft (a loaded spec); keyframes get the images known for them. */
  load(spec: FilmSpecJson): void {
    this.draft = fromSpec(spec);
    for (const keyframe of this.draft.keyframes) keyframe.imageUrl = keyframe.picture !== undefined ? pictureUrl(keyframe.picture) : this.imageFor(keyframe.prompt, keyframe.seed);
    this.emit('all');
  }

  /** Puts back a whole draft (undoing a replacement); keyframes keep their images. */
  replaceDraft(draft: Draft): void {
    this.draft = draft;
    this.emit('all');
  }

  save(): void {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(this.draft));
    } catch {
      // Private mode or a full quota: the draft simply does not survive a reload.
    }
  }

  static restore(): Store {
    try {
      const text = localStorage.getItem(STORAGE_KEY);
      if (text !== null) {
        const draft = JSON.parse(text) as Partial<Draft>;
        if (Array.isArray(draft.keyframes) && typeof draft.settings === 'object' && draft.settings !== null) {
          const keyframes = draft.keyframes.filter(
            (entry): entry is Keyframe => typeof entry === 'object' && entry !== null && typeof entry.prompt === 'string' && Number.isInteger(entry.seed),
          );
          return new Store({
            keyframes: keyframes.map((entry) => ({ ...entry, id: typeof entry.id === 'string' ? entry.id : newId() })),
            settings: withCurrentNames({ ...draft.settings, budgetMode: draft.settings.budgetMode === 'time' ? 'time' : 'branches' }),
          });
        }
      }
    } catch {
      // A broken stored draft is ignored.
    }
    return new Store();
  }
}

/** Settings of a draft saved by an older page (branchesPerTransition, timeBudgetPerTransition) under the current names. */
function withCurrentNames(settings: FilmSettings & { branchesPerTransition?: number; timeBudgetPerTransition?: number }): FilmSettings {
  const { branchesPerTransition, timeBudgetPerTransition, ...rest } = settings;
  return {
    ...rest,
    ...(rest.maxBranches === undefined && branchesPerTransition !== undefined ? { maxBranches: branchesPerTransition } : {}),
    ...(rest.timeBudget === undefined && timeBudgetPerTransition !== undefined ? { timeBudget: timeBudgetPerTransition } : {}),
  };
}

function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined && entry !== '')) as Partial<T>;
}

/** The film spec of a draft (for render, save). */
export function toSpec(draft: Draft): FilmSpecJson {
  const { settings } = draft;
  const last = draft.keyframes.length - 1;
  // ControlNet keys only when the film has a ControlNet and a control picture for every keyframe.
  const controlnet = settings.controlnet?.trim() ?? '';
  const control = controlnet !== '' && (settings.controlImage !== undefined || (draft.keyframes.length > 0 && draft.keyframes.every((keyframe) => keyframe.controlImage !== undefined)));
  // IP-Adapter keys only when the film has an IP-Adapter and every keyframe an image prompt.
  const ipAdapter = settings.ipAdapter?.trim() ?? '';
  const imagePrompt = ipAdapter !== '' && draft.keyframes.length > 0 && draft.keyframes.every((keyframe) => keyframe.ipImage !== undefined);
  const keyframes = draft.keyframes.map((keyframe, index) => {
    const entry: FilmSpecJson['keyframes'][number] =
      keyframe.picture === undefined
        ? { prompt: keyframe.prompt, seed: keyframe.seed }
        : {
            ...(keyframe.prompt.trim() !== '' ? { prompt: keyframe.prompt } : {}),
            image: keyframe.picture,
            seed: keyframe.seed,
            ...(keyframe.fit !== undefined ? { fit: keyframe.fit } : {}),
            ...(keyframe.imageMethod !== undefined ? { imageMethod: keyframe.imageMethod } : {}),
          };
    if (control && keyframe.controlImage !== undefined) entry.controlImage = keyframe.controlImage;
    if (imagePrompt) {
      entry.ipImage = keyframe.ipImage!;
      if (keyframe.ipAdapterScale !== undefined) entry.ipAdapterScale = keyframe.ipAdapterScale;
    }
    if (index < last) {
      if (keyframe.negativePrompt !== undefined && keyframe.negativePrompt.trim() !== '') entry.negativePrompt = keyframe.negativePrompt;
      if (keyframe.duration !== undefined) entry.duration = keyframe.duration;
    }
    return entry;
  });
  return {
    ...defined({
      width: settings.width,
      height: settings.height,
      steps: settings.steps,
      guidanceScale: settings.guidanceScale,
      midDamper: settings.midDamper,
      depthStrength: settings.depthStrength,
      negativePrompt: settings.negativePrompt?.trim() === '' ? undefined : settings.negativePrompt,
      maxBranches: settings.budgetMode === 'branches' ? settings.maxBranches : undefined,
      timeBudget: settings.budgetMode === 'time' ? settings.timeBudget : undefined,
      batchSize: settings.batchSize,
      branch1Crossfeed: settings.branch1Crossfeed,
      parentalCrossfeed: settings.parentalCrossfeed,
      fps: settings.fps,
      transitionDuration: settings.transitionDuration,
      retiming: settings.retiming,
      quality: settings.quality,
      // ControlNet keys only together (the spec needs a ControlNet and a control picture).
      ...(control
        ? { controlnet, controlImage: settings.controlImage, controlnetScale: settings.controlnetScale, canny: settings.canny === true ? true : undefined }
        : {}),
      ...(imagePrompt ? { ipAdapter, ipAdapterScale: settings.ipAdapterScale } : {}),
    }),
    keyframes,
  };
}

/** A draft from a film spec (a loaded file, a film of the list). */
export function fromSpec(spec: FilmSpecJson): Draft {
  const settings: FilmSettings = {
    budgetMode: (spec.timeBudget ?? spec.timeBudgetPerTransition) !== undefined ? 'time' : 'branches',
    width: spec.width,
    height: spec.height,
    steps: spec.steps,
    guidanceScale: spec.guidanceScale,
    midDamper: spec.midDamper,
    depthStrength: spec.depthStrength,
    negativePrompt: spec.negativePrompt,
    // Specs recorded by older studios use the former names.
    maxBranches: spec.maxBranches ?? spec.branchesPerTransition,
    timeBudget: spec.timeBudget ?? spec.timeBudgetPerTransition,
    batchSize: spec.batchSize,
    branch1Crossfeed: spec.branch1Crossfeed,
    parentalCrossfeed: spec.parentalCrossfeed,
    fps: spec.fps,
    transitionDuration: spec.transitionDuration,
    retiming: spec.retiming,
    quality: spec.quality,
    controlnet: spec.controlnet,
    // A parsed spec names pictures by path: the id is its last part.
    controlImage: spec.controlImage?.split('/').pop(),
    controlnetScale: spec.controlnetScale,
    canny: spec.canny,
    ipAdapter: spec.ipAdapter,
    ipAdapterScale: spec.ipAdapterScale,
  };
  return {
    settings,
    keyframes: spec.keyframes.map((keyframe) => ({
      id: newId(),
      prompt: keyframe.prompt ?? '',
      seed: keyframe.seed,
      // A parsed spec names pictures by path: the id is its last part.
      ...(keyframe.image === undefined ? {} : { picture: keyframe.image.split('/').pop()! }),
      ...(keyframe.fit === undefined ? {} : { fit: keyframe.fit }),
      ...(keyframe.imageMethod === undefined ? {} : { imageMethod: keyframe.imageMethod }),
      ...(keyframe.controlImage === undefined ? {} : { controlImage: keyframe.controlImage.split('/').pop()! }),
      // The film's image prompt goes to every keyframe without its own (the spec means the same).
      ...((keyframe.ipImage ?? spec.ipImage) === undefined ? {} : { ipImage: (keyframe.ipImage ?? spec.ipImage)!.split('/').pop()! }),
      ...(keyframe.ipAdapterScale === undefined ? {} : { ipAdapterScale: keyframe.ipAdapterScale }),
      ...(keyframe.duration === undefined ? {} : { duration: keyframe.duration }),
      ...(keyframe.negativePrompt === undefined ? {} : { negativePrompt: keyframe.negativePrompt }),
    })),
  };
}
