/**
 * The ControlNet of a film spec: the ControlNet loaded once, every keyframe's control picture
 * read (and refused) before any transition runs, and each transition's ControlNet settings.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import type { LoadedControlNet } from '../pipeline/controlnet.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import { readControlPicture } from '../image/control-picture.ts';
import { canny } from '../image/canny.ts';
import { resolveModelSource } from '../model/hub.ts';
import type { TransitionControl } from '../engine/control.ts';
import type { TransitionImagePrompt } from '../engine/image-prompt.ts';
import type { LoadedIpAdapter } from '../pipeline/ip-adapter.ts';
import type { FilmSpec } from './spec.ts';

export interface FilmControl {
  readonly loaded: LoadedControlNet;
  /** Control picture of every keyframe, in order (the same object for the same file). */
  readonly pictures: readonly RgbImage[];
  readonly paths: readonly string[];
}

/** A path of the spec: relative ones are relative to `baseDir` (the spec file's folder). */
function specPath(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/**
 * Loads the spec's ControlNet for `pipeline` and reads every keyframe's control picture;
 * undefined when the spec has no ControlNet.
 */
export async function loadFilmControl(spec: FilmSpec, pipeline: DiffusionPipeline, baseDir: string, signal?: AbortSignal): Promise<FilmControl | undefined> {
  if (spec.controlnet === undefined) return undefined;
  const paths = spec.keyframes.map((keyframe) => specPath((keyframe.controlImage ?? spec.controlImage)!, baseDir));
  const byPath = new Map<string, RgbImage>();
  for (const [index, path] of paths.entries()) {
    if (byPath.has(path)) continue;
    const picture = await readControlPicture(path, `keyframes[${index}].controlImage`);
    byPath.set(path, spec.canny === true ? canny(picture) : picture);
  }
  // A ControlNet folder beside the spec, like the model; otherwise a folder or Hub id as written.
  const beside = isAbsolute(spec.controlnet) ? spec.controlnet : join(baseDir, spec.controlnet);
  const dir = existsSync(beside) ? beside : (await resolveModelSource(spec.controlnet, signal !== undefined ? { signal } : {})).dir;
  const loaded = await pipeline.loadControlNet(dir);
  return { loaded, pictures: paths.map((path) => byPath.get(path)!), paths };
}

/** The ControlNet settings of transition `index` (keyframe index → index + 1). */
export function filmTransitionControl(control: FilmControl, spec: FilmSpec, index: number): TransitionControl {
  const from = spec.keyframes[index]!;
  const to = spec.keyframes[index + 1]!;
  const samePicture = control.paths[index] === control.paths[index + 1];
  return {
    controlNet: control.loaded.controlNet,
    pictureA: control.pictures[index]!,
    ...(samePicture ? {} : { pictureB: control.pictures[index + 1]! }),
    scaleA: from.controlnetScale ?? spec.controlnetScale ?? 1,
    scaleB: to.controlnetScale ?? spec.controlnetScale ?? 1,
    ...(spec.controlGuidanceStart !== undefined ? { guidanceStart: spec.controlGuidanceStart } : {}),
    ...(spec.controlGuidanceEnd !== undefined ? { guidanceEnd: spec.controlGuidanceEnd } : {}),
  };
}

export interface FilmImagePrompts {
  readonly loaded: LoadedIpAdapter;
  readonly pictures: readonly RgbImage[];
  readonly paths: readonly string[];
}

/** Loads the spec's IP-Adapter and reads every keyframe's image prompt; undefined without one. */
export async function loadFilmImagePrompts(spec: FilmSpec, pipeline: DiffusionPipeline, baseDir: string, signal?: AbortSignal): Promise<FilmImagePrompts | undefined> {
  if (spec.ipAdapter === undefined) return undefined;
  const paths = spec.keyframes.map((keyframe) => specPath((keyframe.ipImage ?? spec.ipImage)!, baseDir));
  const byPath = new Map<string, RgbImage>();
  for (const [index, path] of paths.entries()) {
    if (!byPath.has(path)) byPath.set(path, await readControlPicture(path, `keyframes[${index}].ipImage`));
  }
  const beside = isAbsolute(spec.ipAdapter) ? spec.ipAdapter : join(baseDir, spec.ipAdapter);
  const dir = existsSync(beside) ? beside : (await resolveModelSource(spec.ipAdapter, signal !== undefined ? { signal } : {})).dir;
  const loaded = await pipeline.loadIpAdapter(dir);
  return { loaded, pictures: paths.map((path) => byPath.get(path)!), paths };
}

/** The IP-Adapter settings of transition `index`. */
export function filmTransitionImagePrompt(prompts: FilmImagePrompts, spec: FilmSpec, index: number): TransitionImagePrompt {
  const from = spec.keyframes[index]!;
  const to = spec.keyframes[index + 1]!;
  return {
    adapter: prompts.loaded.adapter,
    pictureA: prompts.pictures[index]!,
    ...(prompts.paths[index] === prompts.paths[index + 1] ? {} : { pictureB: prompts.pictures[index + 1]! }),
    scaleA: from.ipAdapterScale ?? spec.ipAdapterScale ?? 1,
    scaleB: to.ipAdapterScale ?? spec.ipAdapterScale ?? 1,
  };
}
