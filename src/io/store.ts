/**
 * A finished transition on disk, so it can be reloaded and refined without recomputing anything:
 *
 *   transition.json   options, plan, model facts, branches (fract, injection step), gap distances
 *   latents.bin       every branch's latents from its injection step to the last step, float32 LE,
 *                     branch after branch in fract order, each step C*h*w values
 *   frames/NNNN.png   the final image of every branch, in fract order
 *
 * The folder is written next to its final place and renamed into it, so a crash never leaves a
 * half-written transition, and an older version is replaced only once the new one is complete.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { encodePng, readRgb } from './png.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { BlendTree, Branch } from '../blend/tree.ts';
import type { Plan } from '../blend/plan.ts';
import { framesOf, type Transition } from '../engine/engine.ts';
import type { ResolvedTransitionOptions } from '../engine/options.ts';
import { parseOptions } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';

export const TRANSITION_FORMAT = 'latentblend-transition';
export const TRANSITION_VERSION = 1;

/** Facts about the model a transition was made with, checked again before refining it. */
export interface ModelStamp {
  /** What the user named: a folder or a Hub repo id. */
  readonly source: string;
  readonly family: string;
  readonly preset: string;
  readonly schedulerClass: string;
  readonly latentShape: readonly number[];
}

const crossfeed = z.object({ power: z.number(), range: z.number(), decay: z.number() });
const keyframe = z.object({ prompt: z.string(), seed: z.number().int() });
const manifestSchema = z.object({
  format: z.literal(TRANSITION_FORMAT),
  version: z.literal(TRANSITION_VERSION),
  model: z.object({ source: z.string(), family: z.string(), preset: z.string(), schedulerClass: z.string(), latentShape: z.array(z.number().int().positive()).length(3) }),
  metric: z.string(),
  options: z.object({
    keyframeA: keyframe,
    keyframeB: keyframe,
    negativePrompt: z.string().nullable(),
    width: z.number().int(),
    height: z.number().int(),
    steps: z.number().int(),
    guidanceScale: z.number(),
    midDamper: z.number(),
    depthStrength: z.number(),
    maxBranches: z.number().int().nullable(),
    timeBudget: z.number().nullable(),
    branch1Crossfeed: crossfeed,
    parentalCrossfeed: crossfeed,
    batchSize: z.number().int(),
    clipSkip: z.number().int().nullable(),
    eta: z.number().nullable(),
  }),
  plan: z.record(z.string(), z.unknown()),
  numInferenceSteps: z.number().int().min(2),
  branches: z.array(z.object({ fract: z.number().min(0).max(1), injectionStep: z.number().int().min(0), frame: z.string() })).min(2),
  gapDistances: z.array(z.number().min(0)),
  stats: z.record(z.string(), z.unknown()).optional(),
});
type Manifest = z.infer<typeof manifestSchema>;

function nullable<T>(value: T | undefined): T | null {
  return value === undefined ? null : value;
}

/**
 * Saves `transition` into the folder `dir` (created; an existing transition there is replaced
 * only when `force` is set or `replace` says it is the same transition being refined).
 */
export async function saveTransition(dir: string, transition: Transition, model: ModelStamp, options: { force?: boolean; replace?: boolean } = {}): Promise<void> {
  if (existsSync(dir) && !(options.force || options.replace)) {
    throw new LatentBlendError(`${dir} already exists; use --force to overwrite it.`, 'exists');
  }
  const { tree, images } = transition;
  const length = model.latentShape.reduce((product, value) => product * value, 1);
  const steps = tree.numInferenceSteps;
  const values = tree.branches.reduce((sum, branch) => sum + (steps - branch.injectionStep) * length, 0);
  const latents = new Float32Array(values);
  let offset = 0;
  for (const branch of tree.branches) {
    for (let step = branch.injectionStep; step < steps; step++) {
      const latent = branch.latents[step];
      if (latent == null || latent.length !== length) throw new Error(`branch ${branch.fract} has no latents at step ${step}`);
      latents.set(latent, offset);
      offset += length;
    }
  }
  const o: ResolvedTransitionOptions = transition.options;
  const manifest: Manifest = {
    format: TRANSITION_FORMAT,
    version: TRANSITION_VERSION,
    model: { ...model, latentShape: [...model.latentShape] },
    metric: transition.metric,
    options: {
      ...o,
      negativePrompt: nullable(o.negativePrompt),
      maxBranches: nullable(o.maxBranches),
      timeBudget: nullable(o.timeBudget),
      clipSkip: nullable(o.clipSkip),
      eta: nullable(o.eta),
      branch1Crossfeed: { ...o.branch1Crossfeed },
      parentalCrossfeed: { ...o.parentalCrossfeed },
    },
    plan: transition.plan as unknown as Record<string, unknown>,
    numInferenceSteps: steps,
    branches: tree.branches.map((branch, index) => ({ fract: branch.fract, injectionStep: branch.injectionStep, frame: join('frames', `${String(index).padStart(4, '0')}.png`) })),
    gapDistances: [...tree.gapDistances],
    stats: { ...transition.stats },
  };

  mkdirSync(dirname(dir) || '.', { recursive: true });
  const temporary = join(dirname(dir), `.${basename(dir)}.${randomBytes(4).toString('hex')}.partial`);
  try {
    mkdirSync(join(temporary, 'frames'), { recursive: true });
    for (const [index, image] of images.entries()) {
      writeFileSync(join(temporary, manifest.branches[index]!.frame), await encodePng(image));
    }
    writeFileSync(join(temporary, 'latents.bin'), new Uint8Array(latents.buffer, latents.byteOffset, latents.byteLength));
    writeFileSync(join(temporary, 'transition.json'), `${JSON.stringify(manifest, null, 1)}\n`);
    if (existsSync(dir)) {
      const old = `${temporary}.old`;
      renameSync(dir, old);
      renameSync(temporary, dir);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(temporary, dir);
    }
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
}

/** A transition read back from disk, with the model facts it was made with. */
export interface StoredTransition {
  readonly transition: Transition;
  readonly model: ModelStamp;
}

/** Loads a transition folder written by saveTransition; errors name the file and the problem. */
export async function loadTransition(dir: string): Promise<StoredTransition> {
  const manifestPath = join(dir, 'transition.json');
  if (!existsSync(manifestPath)) {
    throw new LatentBlendError(`${dir} is not a saved transition: ${manifestPath} is missing.`, 'invalid_input');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (error) {
    throw new LatentBlendError(`${manifestPath} is not valid JSON: ${(error as Error).message}`);
  }
  const manifest = parseOptions(manifestSchema, raw, `transition file ${manifestPath}`);
  const shape = manifest.model.latentShape;
  const length = shape.reduce((product, value) => product * value, 1);
  const steps = manifest.numInferenceSteps;
  const expectedValues = manifest.branches.reduce((sum, branch) => sum + (steps - branch.injectionStep) * length, 0);
  const latentsPath = join(dir, 'latents.bin');
  if (!existsSync(latentsPath) || statSync(latentsPath).size !== expectedValues * 4) {
    throw new LatentBlendError(
      `${latentsPath} is missing or has the wrong size (expected ${expectedValues * 4} bytes for ${manifest.branches.length} branches).`,
    );
  }
  if (manifest.gapDistances.length !== manifest.branches.length - 1) {
    throw new LatentBlendError(`${manifestPath}: ${manifest.gapDistances.length} gap distances for ${manifest.branches.length} branches.`);
  }
  const bytes = readFileSync(latentsPath);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let offset = 0;
  const branches: Branch<Float32Array>[] = [];
  const images: RgbImage[] = [];
  for (const entry of manifest.branches) {
    const latents: (Float32Array | null)[] = new Array<Float32Array | null>(steps).fill(null);
    for (let step = entry.injectionStep; step < steps; step++) {
      latents[step] = all.slice(offset, offset + length);
      offset += length;
    }
    branches.push({ fract: entry.fract, injectionStep: entry.injectionStep, latents });
    const framePath = join(dir, entry.frame);
    if (!existsSync(framePath)) throw new LatentBlendError(`${framePath} is missing.`);
    images.push(await readRgb(framePath));
  }
  const tree: BlendTree<Float32Array> = { numInferenceSteps: steps, branches, gapDistances: manifest.gapDistances };
  const o = manifest.options;
  const options: ResolvedTransitionOptions = {
    ...o,
    negativePrompt: o.negativePrompt ?? undefined,
    maxBranches: o.maxBranches ?? undefined,
    timeBudget: o.timeBudget ?? undefined,
    clipSkip: o.clipSkip ?? undefined,
    eta: o.eta ?? undefined,
  };
  const stats = { unetEvaluations: 0, unetCalls: 0, decodes: 0, metricEvaluations: 0, seconds: 0, onnxSeconds: 0 };
  return {
    transition: { options, tree, images, plan: manifest.plan as unknown as Plan, metric: manifest.metric, stats, frames: framesOf(tree, images) },
    model: manifest.model,
  };
}

/** The model facts of a loaded pipeline, for saveTransition. */
export function modelStamp(source: string, pipeline: { defaults: { family: string; preset: string }; schedulerClass: string }, latentShape: readonly number[]): ModelStamp {
  return { source, family: pipeline.defaults.family, preset: pipeline.defaults.preset, schedulerClass: pipeline.schedulerClass, latentShape };
}

/** Throws when a stored transition was made with a model that differs from `current`. */
export function checkSameModel(stored: ModelStamp, current: ModelStamp): void {
  const problems: string[] = [];
  for (const key of ['family', 'preset', 'schedulerClass'] as const) {
    if (stored[key] !== current[key]) problems.push(`${key} ${stored[key]} vs ${current[key]}`);
  }
  if (stored.latentShape.join('x') !== current.latentShape.join('x')) problems.push(`latent shape ${stored.latentShape.join('x')} vs ${current.latentShape.join('x')}`);
  if (problems.length > 0) {
    throw new LatentBlendError(`This transition was made with another model (${stored.source}): ${problems.join('; ')}.`);
  }
}
