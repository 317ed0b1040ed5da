/**
 * The models the studio can load (GET /api/models): the model folders under `--models-dir` and
 * the Optimum ONNX pipelines in the Hugging Face cache, each described from its files without
 * loading it: family, preset, default size, bytes on disk, precision (the UNet's input type),
 * the scheduler it ships and the project's schedulers that suit it.
 *
 * Only reads: folder listings, the small JSON configs and the head of each UNet's ONNX file.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { inspectModelFolder } from '../model/folder.ts';
import { modelDefaults } from '../model/preset.ts';
import { hubCacheDir } from '../model/hub.ts';
import { onnxInputTypes, ONNX_FLOAT, ONNX_FLOAT16 } from '../model/onnx-inputs.ts';
import { SUPPORTED_SCHEDULERS } from '../schedulers/index.ts';
import { nodeFiles } from '../node/platform.ts';

/** Most models listed (a huge models folder is cut, not scanned for minutes). */
export const MAX_LISTED_MODELS = 200;
/** Most entries of one folder looked at. */
const MAX_ENTRIES = 500;

export interface CatalogModel {
  /** What to send as POST /api/model's `source`: a folder (absolute) or a Hub id. */
  readonly source: string;
  readonly origin: 'models-dir' | 'hub-cache';
  /** A short name to show ("tiny-sd-turbo", "stabilityai/sdxl-turbo"). */
  readonly name: string;
  readonly family: 'sd' | 'sdxl';
  readonly preset: 'turbo' | 'standard';
  readonly width: number;
  readonly height: number;
  /** Bytes of the folder's files (symbolic links followed, as the Hub cache uses them). */
  readonly sizeBytes: number;
  readonly precision: 'float32' | 'float16' | 'unknown';
  /** The scheduler the model ships (scheduler_config.json). */
  readonly scheduler: string;
  /** The project's schedulers that suit this model, the shipped one first (when supported). */
  readonly schedulers: readonly string[];
}

/**
 * The project's schedulers that suit a model: a Turbo (few-step, trailing-timestep) model keeps
 * to the Euler samplers it was distilled with; a standard model takes every multistep sampler;
 * LCM only for a model that ships it (an LCM-distilled one).
 */
export function compatibleSchedulers(shipped: string, preset: 'turbo' | 'standard'): string[] {
  const family = preset === 'turbo' ? ['EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler'] : ['EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler', 'DDIMScheduler', 'DPMSolverMultistepScheduler', 'PNDMScheduler'];
  return [...new Set([shipped, ...family])].filter((name) => SUPPORTED_SCHEDULERS.includes(name));
}

/** True when `path` is `root` or inside it (both absolute, real paths). */
function isInside(root: string, path: string): boolean {
  const rest = relative(root, path);
  return !isAbsolute(rest) && rest.split(/[\\/]/)[0] !== '..';
}

function folderBytes(dir: string, depth = 0): number {
  if (depth > 4) return 0;
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true }).slice(0, MAX_ENTRIES)) {
    const path = join(dir, entry.name);
    try {
      const info = statSync(path);
      if (info.isDirectory()) total += folderBytes(path, depth + 1);
      else if (info.isFile()) total += info.size;
    } catch {
      // a dangling link: nothing
    }
  }
  return total;
}

function precisionOf(unet: string): CatalogModel['precision'] {
  try {
    const sample = onnxInputTypes(unet).get('sample');
    return sample === ONNX_FLOAT16 ? 'float16' : sample === ONNX_FLOAT ? 'float32' : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A model folder described, or undefined when it is none. */
export function describeFolder(dir: string, source: string, origin: CatalogModel['origin'], name: string): CatalogModel | undefined {
  if (!existsSync(join(dir, 'model_index.json'))) return undefined;
  try {
    const folder = inspectModelFolder(nodeFiles, dir);
    const defaults = modelDefaults(folder);
    return {
      source,
      origin,
      name,
      family: folder.family,
      preset: defaults.preset,
      width: defaults.width,
      height: defaults.height,
      sizeBytes: folderBytes(dir),
      precision: precisionOf(folder.unet),
      scheduler: folder.schedulerClass,
      schedulers: compatibleSchedulers(folder.schedulerClass, defaults.preset),
    };
  } catch {
    return undefined;
  }
}

function subfolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .slice(0, MAX_ENTRIES)
      .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
      .map((entry) => entry.name)
      .filter((name) => !name.startsWith('.'))
      .sort();
  } catch {
    return [];
  }
}

/** Model folders under `--models-dir`: the folder itself, its subfolders and theirs (e.g. `<name>/onnx`). */
export function modelsDirModels(modelsDir: string): CatalogModel[] {
  const found: CatalogModel[] = [];
  const visit = (dir: string, depth: number) => {
    if (found.length >= MAX_LISTED_MODELS) return;
    // Symbolic links that lead out of the models folder are not offered (they would be refused).
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (!isInside(modelsDir, real)) return;
    const name = relative(modelsDir, dir) || '.';
    const model = describeFolder(dir, dir, 'models-dir', name);
    if (model !== undefined) {
      found.push(model);
      return;
    }
    if (depth < 2) for (const child of subfolders(dir)) visit(join(dir, child), depth + 1);
  };
  visit(modelsDir, 0);
  return found;
}

/**
 * Optimum pipelines in the Hugging Face cache: for each `models--owner--name`, the snapshot that
 * `refs/main` names, at its root or in one subfolder (`owner/name/subfolder`).
 */
export function hubCacheModels(cacheDir: string): CatalogModel[] {
  const found: CatalogModel[] = [];
  for (const repoFolder of subfolders(cacheDir)) {
    if (found.length >= MAX_LISTED_MODELS) break;
    const match = /^models--([^-][^/]*?)--(.+)$/.exec(repoFolder);
    if (match === null) continue;
    const repo = `${match[1]}/${match[2]}`;
    let revision: string;
    try {
      revision = readFileSync(join(cacheDir, repoFolder, 'refs', 'main'), 'utf8').trim();
    } catch {
      continue;
    }
    if (!/^[0-9a-f]{40}$/.test(revision)) continue;
    const snapshot = join(cacheDir, repoFolder, 'snapshots', revision);
    if (!existsSync(snapshot) || !lstatSync(snapshot).isDirectory()) continue;
    const atRoot = describeFolder(snapshot, repo, 'hub-cache', repo);
    if (atRoot !== undefined) {
      found.push(atRoot);
      continue;
    }
    for (const child of subfolders(snapshot)) {
      const model = describeFolder(join(snapshot, child), `${repo}/${child}`, 'hub-cache', `${repo}/${child}`);
      if (model !== undefined) found.push(model);
    }
  }
  return found;
}

/** GET /api/models: the models folder's models, then the Hub cache's, at most MAX_LISTED_MODELS. */
export function listModels(options: { readonly modelsDir?: string; readonly hubCache?: string; readonly env?: Readonly<Record<string, string | undefined>> }) {
  const cache = options.hubCache ?? hubCacheDir(options.env ?? process.env);
  const models = [...(options.modelsDir !== undefined ? modelsDirModels(options.modelsDir) : []), ...(existsSync(cache) ? hubCacheModels(cache) : [])];
  return {
    models: models.slice(0, MAX_LISTED_MODELS),
    ...(options.modelsDir !== undefined ? { modelsDir: options.modelsDir } : {}),
    hubCache: cache,
    schedulers: [...SUPPORTED_SCHEDULERS],
  };
}
