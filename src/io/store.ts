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
import { dirname, join } from 'node:path';
import { cleanLeftovers, ensureFolder, temporarySibling } from '../io/files.ts';
import { z } from 'zod';
import { encodePng, readRgb } from './png.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { BlendTree, Branch } from '../blend/tree.ts';
import type { Plan } from '../blend/plan.ts';
import { framesOf, type Transition } from '../engine/engine.ts';
import type { ResolvedTransitionOptions } from '../engine/options.ts';
import { parseOptions } from '../options/validate.ts';
import { LatentBlendError, fileSystemError, fileSystemErrorCode } from '../errors.ts';
import { resolveInside } from './inside.ts';
import { controlSummarySchema } from '../engine/control.ts';
import { imagePromptSummarySchema } from '../engine/image-prompt.ts';

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
const keyframe = z.object({
  prompt: z.string(),
  seed: z.number().int(),
  image: z.object({ path: z.string(), fit: z.enum(['cover', 'contain']), method: z.enum(['noise', 'inversion']).optional(), hash: z.string().optional() }).optional(),
});
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
  /** ControlNet settings (src/engine/control.ts); absent: none. */
  control: controlSummarySchema.optional(),
  /** IP-Adapter image prompts (src/engine/image-prompt.ts); absent: none. */
  ipAdapter: imagePromptSummarySchema.optional(),
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
    ...(transition.control !== undefined ? { control: { ...transition.control } } : {}),
    ...(transition.ipAdapter !== undefined ? { ipAdapter: { ...transition.ipAdapter } } : {}),
  };

  ensureFolder(dirname(dir) || '.');
  cleanLeftovers(dir);
  const temporary = temporarySibling(dir);
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
    throw fileSystemError(error, dir, 'write');
  }
}

/** A transition read back from disk, with the model facts it was made with. */
export interface StoredTransition {
  readonly transition: Transition;
  readonly model: ModelStamp;
}

/** A damaged file of a work folder: the caller recomputes that piece or reports the file. */
function damaged(path: string, what: string): LatentBlendError {
  return new LatentBlendError(`${path} is damaged: ${what}. Delete its transition folder to compute it again.`, 'damaged');
}

/**
 * Loads a transition folder written by saveTransition; errors name the file and the problem.
 * The folder is untrusted input: every file it names must stay inside it (no symbolic links out,
 * code 'unsafe_path'), and a damaged manifest, latents file or frame is a LatentBlendError with
 * code 'damaged' (cachedTransition then computes the transition again).
 */
export async function loadTransition(dir: string): Promise<StoredTransition> {
  const manifestPath = join(dir, 'transition.json');
  if (!existsSync(manifestPath)) {
    throw new LatentBlendError(`${dir} is not a saved transition: ${manifestPath} is missing.`, 'invalid_input');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(resolveInside(dir, 'transition.json', 'the transition file'), 'utf8'));
  } catch (error) {
    if (error instanceof LatentBlendError) throw error;
    if (error instanceof SyntaxError) throw damaged(manifestPath, `not valid JSON (${error.message})`);
    throw fileSystemError(error, manifestPath, 'read');
  }
  let manifest: Manifest;
  try {
    manifest = parseOptions(manifestSchema, raw, `transition file ${manifestPath}`);
  } catch (error) {
    if (error instanceof LatentBlendError) throw new LatentBlendError(error.message, 'damaged');
    throw error;
  }
  const shape = manifest.model.latentShape;
  const length = shape.reduce((product, value) => product * value, 1);
  const steps = manifest.numInferenceSteps;
  manifest.branches.forEach((branch, index) => {
    if (branch.injectionStep >= steps) throw damaged(manifestPath, `branch ${index} starts at step ${branch.injectionStep} of ${steps}`);
    if (index > 0 && branch.fract <= manifest.branches[index - 1]!.fract) throw damaged(manifestPath, 'its branches are not in fract order');
  });
  const expectedValues = manifest.branches.reduce((sum, branch) => sum + (steps - branch.injectionStep) * length, 0);
  const latentsPath = join(dir, 'latents.bin');
  if (!existsSync(latentsPath) || statSync(latentsPath).size !== expectedValues * 4) {
    throw new LatentBlendError(
      `${latentsPath} is missing or has the wrong size (expected ${expectedValues * 4} bytes for ${manifest.branches.length} branches).`,
      'damaged',
    );
  }
  if (manifest.gapDistances.length !== manifest.branches.length - 1) {
    throw damaged(manifestPath, `${manifest.gapDistances.length} gap distances for ${manifest.branches.length} branches`);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(resolveInside(dir, 'latents.bin', 'the latents file'));
  } catch (error) {
    throw fileSystemError(error, latentsPath, 'read');
  }
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (!all.every(Number.isFinite)) throw damaged(latentsPath, 'it holds values that are not finite numbers');
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
    const inside = resolveInside(dir, entry.frame, `the frame named in ${manifestPath}`);
    if (!existsSync(inside)) throw new LatentBlendError(`${framePath} is missing.`, 'damaged');
    let image: RgbImage;
    try {
      image = await readRgb(inside);
    } catch (error) {
      if (fileSystemErrorCode(error) !== undefined) throw fileSystemError(error, framePath, 'read');
      throw damaged(framePath, `not a readable image (${(error as Error).message})`);
    }
    if (image.width !== manifest.options.width || image.height !== manifest.options.height) {
      throw damaged(framePath, `it is ${image.width}x${image.height}, the transition ${manifest.options.width}x${manifest.options.height}`);
    }
    images.push(image);
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
    transition: {
      options,
      tree,
      images,
      plan: manifest.plan as unknown as Plan,
      metric: manifest.metric,
      stats,
      frames: framesOf(tree, images),
      ...(manifest.control !== undefined ? { control: manifest.control } : {}),
      ...(manifest.ipAdapter !== undefined ? { ipAdapter: manifest.ipAdapter } : {}),
    },
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
