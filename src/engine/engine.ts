/**
 * The blending engine (SPEC.md "Algorithm"): grows a tree of denoising trajectories between two
 * keyframes. Keyframe A and B are full runs; every other branch starts at an injection step from
 * the slerp mix of its two parents and is pulled towards that mix by parental crossfeed; each new
 * branch goes into the gap whose neighbouring frames differ most. The tree, the plan and the
 * insertion rules are the pure functions of src/blend; this file runs them on a model.
 */
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { denoise, throwIfAborted, type DenoiseItem } from '../pipeline/denoise.ts';
import { KeyframeNoise } from '../pipeline/keyframe-noise.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';
import type { Conditioning } from '../adapters/adapter.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import type { OnnxModel } from '../runtime/onnx.ts';
import { slerp, lerp } from '../math/slerp.ts';
import { branch1Crossfeed, parentalCrossfeed, type CrossfeedParams } from '../blend/crossfeed.ts';
import { makePlan, type Plan, type PlanCosts, type PlanInsertion } from '../blend/plan.ts';
import {
  createTree,
  childFract,
  findParents,
  insertBranch,
  mixingFraction,
  guidanceScaleAt,
  type BlendTree,
  type Branch,
} from '../blend/tree.ts';
import { resolveTransitionOptions, type Keyframe, type KeyframeImage, type ResolvedTransitionOptions, type TransitionOptions } from './options.ts';
import { pictureTrajectory, readKeyframePicture, withPictureHash, type KeyframePicture, type PictureTrajectory } from './picture-keyframe.ts';
import { distancesOf, type SimilarityMetric } from './metric.ts';
import { LatentBlendError } from '../errors.ts';
import { imagePromptContinuationProblem, prepareImagePrompt, sameImagePrompt, type ImagePromptSummary, type TransitionImagePrompt } from './image-prompt.ts';
import { withImagePrompt } from '../pipeline/ip-adapter.ts';
import { controlContinuationProblem, controlTermsAt, prepareControl, sameControl, type ControlSummary, type PreparedControl, type TransitionControl } from './control.ts';

/** One computed frame of a transition, in fract order. */
export interface TransitionFrame {
  readonly image: RgbImage;
  /** Position along the transition, 0 (keyframe A) to 1 (keyframe B). */
  readonly fract: number;
  /** Step where the branch started: 0 for A and B. */
  readonly injectionStep: number;
  /** Distance to the previous / next frame's image (undefined at the ends). */
  readonly distanceToPrevious: number | undefined;
  readonly distanceToNext: number | undefined;
}

/** Work counters of a run. */
export interface TransitionStats {
  /** UNet rows evaluated (a batch of B latents counts B; guidance doubles). */
  readonly unetEvaluations: number;
  readonly unetCalls: number;
  readonly decodes: number;
  readonly metricEvaluations: number;
  readonly seconds: number;
  /** Seconds inside ONNX Runtime (all models), to tell engine overhead apart. */
  readonly onnxSeconds: number;
  /** UNet calls spent on DDIM inversion of picture keyframes (included in unetCalls). */
  readonly inversionUnetCalls?: number;
}

/** A finished (or partly refined) transition: everything needed to render, save or refine it. */
export interface Transition {
  readonly options: ResolvedTransitionOptions;
  readonly tree: BlendTree<Float32Array>;
  /** Final image of every branch, same order as tree.branches. */
  readonly images: readonly RgbImage[];
  readonly plan: Plan;
  readonly metric: string;
  readonly stats: TransitionStats;
  /** The frames in order, with their fract, injection step and neighbour distances. */
  readonly frames: readonly TransitionFrame[];
  /** The ControlNet settings it was computed with (absent: none). */
  readonly control?: ControlSummary;
  /** The IP-Adapter image prompts it was computed with (absent: none). */
  readonly ipAdapter?: ImagePromptSummary;
}

/** Events of a run, for progress bars and live previews. */
export type EngineEvent =
  | { readonly type: 'plan'; readonly plan: Plan }
  | {
      readonly type: 'progress';
      /** Branches finished, A and B included, of the plan's total frames. */
      readonly branchesDone: number;
      readonly branchesTotal: number;
      readonly unetEvaluationsDone: number;
      readonly unetEvaluationsTotal: number;
      readonly elapsedSeconds: number;
      /** Estimated seconds left, from the measured rate; undefined before the first step. */
      readonly etaSeconds: number | undefined;
    }
  | { readonly type: 'frame'; readonly fract: number; readonly injectionStep: number; readonly image: RgbImage; readonly index: number }
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'budget-stop'; readonly elapsedSeconds: number; readonly budgetSeconds: number; readonly branchesSkipped: number };

export interface RunControl {
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: EngineEvent) => void;
  /**
   * The previous transition of a film: its keyframe B becomes this transition's keyframe A, and
   * B's trajectory and image are reused instead of recomputed.
   */
  readonly startFrom?: Transition;
  /** ControlNet: pictures, scales and guidance window (see src/engine/control.ts); refine needs the same again. */
  readonly controlNet?: TransitionControl;
  /** IP-Adapter: image prompts and scales per keyframe (see src/engine/image-prompt.ts); refine needs the same again. */
  readonly ipAdapter?: TransitionImagePrompt;
  /**
   * Keyframe A's or B's trajectory computed elsewhere with the same settings (a worker pool's
   * keyframe job, see runKeyframe), used instead of computing it. For B with branch-1 crossfeed
   * it must have been computed from this transition's keyframe A.
   */
  readonly keyframeA?: KeyframeTrajectory;
  readonly keyframeB?: KeyframeTrajectory;
}

/** One keyframe's full trajectory (a latent after every step) and its decoded final image. */
export interface KeyframeTrajectory {
  readonly latents: readonly (Float32Array | null)[];
  readonly image: RgbImage;
}

/** Everything a transition's branches share, prepared once. */
interface Context {
  /** Set by a failed batched VAE decode: the rest of the run decodes one frame per call. */
  batchedDecodeFailed?: boolean;
  readonly options: ResolvedTransitionOptions;
  readonly scheduler: Scheduler;
  readonly shape: [number, number, number];
  readonly length: number;
  /** N: denoising steps (UNet calls) per full trajectory. */
  readonly steps: number;
  readonly conditioningA: Conditioning;
  readonly conditioningB: Conditioning;
  readonly negative: Conditioning | undefined;
  readonly noiseA: KeyframeNoise;
  readonly noiseB: KeyframeNoise;
  /** UNet calls spent inverting picture keyframes in this run. */
  readonly inversionUnetCalls?: number;
  readonly control: PreparedControl | undefined;
  readonly imagePrompt: ImagePromptSummary | undefined;
  /** The negative conditioning of a branch at fract f when it depends on f (IP-Adapter scale). */
  readonly negativeAt: ((fract: number) => Conditioning) | undefined;
}

/** One branch to compute in a batched denoising run. */
interface BranchJob {
  readonly fract: number;
  readonly injectionStep: number;
  readonly start: Float32Array;
  /** Latents mixed in before step i (i > injectionStep), with weight crossfeed[i]. */
  readonly feed: ((stepIndex: number) => Float32Array | undefined) | undefined;
  readonly crossfeed: readonly number[];
}

function conditioningAtFract(a: Conditioning, b: Conditioning, fract: number): Conditioning {
  if (fract === 0) return a;
  if (fract === 1) return b;
  const mixed = new Map<string, Tensor32>();
  for (const [name, tensorA] of a) {
    const tensorB = b.get(name)!;
    mixed.set(name, { data: lerp(tensorA.data, tensorB.data, fract), dims: tensorA.dims });
  }
  return mixed;
}

function sameKeyframe(a: Keyframe, b: Keyframe): boolean {
  return a.prompt === b.prompt && a.seed === b.seed && samePicture(a.image, b.image);
}

/** Same picture keyframe settings; content hashes compared where both are known. */
function samePicture(a: KeyframeImage | undefined, b: KeyframeImage | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.path === b.path && a.fit === b.fit && a.method === b.method && (a.hash === undefined || b.hash === undefined || a.hash === b.hash);
}

export class BlendingEngine {
  constructor(
    readonly pipeline: DiffusionPipeline,
    private readonly metric: SimilarityMetric,
  ) {}

  /**
   * Computes a transition from keyframe A to keyframe B (see TransitionOptions for every option
   * and SPEC.md for the algorithm). Cancel with `control.signal`: the run stops within one
   * denoising step and throws an AbortError; nothing shared is left half-changed.
   */
  async runTransition(input: TransitionOptions, control: RunControl = {}): Promise<Transition> {
    const started = performance.now();
    this.track(control);
    const counters = this.counters();
    const resolved = resolveTransitionOptions(input, this.pipeline.defaults, (value, name) => this.pipeline.roundSize(value, name));
    this.pipeline.checkSize(resolved.width, resolved.height);
    let context = await this.prepare(resolved, control.controlNet, control.ipAdapter);
    const { steps } = context;
    const emit = control.onEvent ?? (() => {});
    const previous = control.startFrom;

    // Picture keyframes: their trajectories (noised or inverted picture latents) replace full runs.
    // Both pictures are read before any UNet call, so a bad file costs nothing.
    const read = (keyframe: Keyframe) =>
      keyframe.image === undefined ? undefined : readKeyframePicture(this.pipeline.platform, keyframe as Keyframe & { image: KeyframeImage }, resolved.width, resolved.height);
    const readA = previous === undefined ? await read(resolved.keyframeA) : undefined;
    const readB = await read(resolved.keyframeB);
    const picture = async (loaded: KeyframePicture | undefined, conditioning: Conditioning): Promise<PictureTrajectory | undefined> =>
      loaded === undefined
        ? undefined
        : pictureTrajectory(this.pipeline, {
            picture: loaded,
            scheduler: context.scheduler,
            shape: context.shape,
            conditioning,
            ...(control.signal !== undefined ? { signal: control.signal } : {}),
          });
    const pictureA = await picture(readA, context.conditioningA);
    const pictureB = await picture(readB, context.conditioningB);
    const options: ResolvedTransitionOptions = {
      ...resolved,
      // A reused keyframe A keeps the hash its transition recorded (checkReusable compares them).
      keyframeA: withPictureHash(resolved.keyframeA, previous !== undefined ? (resolved.keyframeA.image?.hash ?? previous.options.keyframeB.image?.hash) : pictureA?.hash),
      keyframeB: withPictureHash(resolved.keyframeB, pictureB?.hash),
    };
    const inversionUnetCalls = (pictureA?.unetCalls ?? 0) + (pictureB?.unetCalls ?? 0);
    context = { ...context, options, ...(inversionUnetCalls > 0 ? { inversionUnetCalls } : {}) };

    // Keyframe A: reused from the previous transition of a film, or computed. Without branch-1
    // crossfeed B does not depend on A, so with batchSize > 1 both run in one batched call.
    const crossfeedB = branch1Crossfeed(steps, options.branch1Crossfeed);
    const jobA: BranchJob = { fract: 0, injectionStep: 0, start: this.startLatents(context, context.noiseA), feed: undefined, crossfeed: [] };
    let branchA: Branch<Float32Array> | undefined;
    let imageA: RgbImage | undefined;
    let branchB: Branch<Float32Array> | undefined;
    if (previous !== undefined) {
      this.checkReusable(previous, options);
      const controlProblem = controlContinuationProblem(previous.control, context.control?.summary);
      if (controlProblem !== undefined) throw new LatentBlendError(`Cannot continue from the previous transition: ${controlProblem}.`);
      const imageProblem = imagePromptContinuationProblem(previous.ipAdapter, context.imagePrompt);
      if (imageProblem !== undefined) throw new LatentBlendError(`Cannot continue from the previous transition: ${imageProblem}.`);
      branchA = { ...previous.tree.branches[previous.tree.branches.length - 1]!, fract: 0 };
      imageA = previous.images[previous.images.length - 1]!;
    } else if (pictureA !== undefined) {
      branchA = { fract: 0, injectionStep: 0, latents: pictureA.latents };
    } else if (control.keyframeA !== undefined) {
      branchA = { fract: 0, injectionStep: 0, latents: [...control.keyframeA.latents] };
      imageA = control.keyframeA.image;
    } else if (options.batchSize > 1 && control.keyframeB === undefined && crossfeedB.every((weight) => weight === 0) && pictureB === undefined) {
      const jobB: BranchJob = { fract: 1, injectionStep: 0, start: this.startLatents(context, context.noiseB), feed: undefined, crossfeed: [] };
      const [trajectoryA, trajectoryB] = await this.runJobs(context, [jobA, jobB], control.signal);
      branchA = { fract: 0, injectionStep: 0, latents: trajectoryA! };
      branchB = { fract: 1, injectionStep: 0, latents: trajectoryB! };
    } else {
      const [trajectory] = await this.runJobs(context, [jobA], control.signal);
      branchA = { fract: 0, injectionStep: 0, latents: trajectory! };
    }
    imageA ??= await this.decode(context, branchA.latents);
    emit({ type: 'frame', fract: 0, injectionStep: 0, image: imageA, index: 0 });

    if (pictureB !== undefined) branchB = { fract: 1, injectionStep: 0, latents: pictureB.latents };
    // Keyframe B, with branch-1 crossfeed from A.
    if (branchB === undefined && control.keyframeB !== undefined) branchB = { fract: 1, injectionStep: 0, latents: [...control.keyframeB.latents] };
    if (branchB === undefined) {
      const source = branchA;
      const [trajectoryB] = await this.runJobs(
        context,
        [
          {
            fract: 1,
            injectionStep: 0,
            start: this.startLatents(context, context.noiseB),
            feed: (stepIndex) => source.latents[stepIndex - 1] ?? undefined,
            crossfeed: crossfeedB,
          },
        ],
        control.signal,
      );
      branchB = { fract: 1, injectionStep: 0, latents: trajectoryB! };
    }
    const imageB = control.keyframeB?.image ?? (await this.decode(context, branchB.latents));
    emit({ type: 'frame', fract: 1, injectionStep: 0, image: imageB, index: 1 });
    const distanceAB = await this.distance(imageA, imageB);
    const tree = createTree(steps, branchA, branchB, distanceAB);

    const plan = this.makePlan(context, counters, previous !== undefined || control.keyframeA !== undefined, emit);
    emit({ type: 'plan', plan });
    return this.grow(context, { tree, images: [imageA, imageB] }, plan, plan.insertions, counters, started, control);
  }

  /**
   * Computes keyframe A (`end` 'A') or B of `input` alone, exactly as runTransition computes it, so
   * that a worker pool can compute keyframes once and hand them to the transitions that need them.
   * For B with branch-1 crossfeed, `crossfeedFrom` is keyframe A's trajectory.
   */
  async runKeyframe(
    input: TransitionOptions,
    end: 'A' | 'B',
    control: { readonly signal?: AbortSignal; readonly crossfeedFrom?: readonly (Float32Array | null)[] } = {},
  ): Promise<KeyframeTrajectory> {
    const options = resolveTransitionOptions(input, this.pipeline.defaults, (value, name) => this.pipeline.roundSize(value, name));
    this.pipeline.checkSize(options.width, options.height);
    // The other end may be a picture: this keyframe's trajectory does not depend on it.
    if ((end === 'A' ? options.keyframeA : options.keyframeB).image !== undefined) {
      throw new LatentBlendError('runKeyframe: picture keyframes are computed with their transition, not as separate keyframe jobs.');
    }
    const context = await this.prepare(options);
    const crossfeed = end === 'B' ? branch1Crossfeed(context.steps, options.branch1Crossfeed) : [];
    const source = control.crossfeedFrom;
    if (crossfeed.some((weight) => weight > 0) && source === undefined) {
      throw new LatentBlendError('runKeyframe: keyframe B with branch-1 crossfeed needs keyframe A\'s trajectory (crossfeedFrom).');
    }
    const job: BranchJob = {
      fract: end === 'A' ? 0 : 1,
      injectionStep: 0,
      start: this.startLatents(context, end === 'A' ? context.noiseA : context.noiseB),
      feed: source === undefined ? undefined : (stepIndex) => source[stepIndex - 1] ?? undefined,
      crossfeed,
    };
    const [latents] = await this.runJobs(context, [job], control.signal);
    return { latents: latents!, image: await this.decode(context, latents!) };
  }

  /**
   * Adds `branches` more branches to a finished transition without recomputing any existing one.
   * Injection steps follow the plan for the larger total (SPEC.md "The plan").
   */
  async refine(transition: Transition, branches: number, control: Omit<RunControl, 'startFrom'> = {}): Promise<Transition> {
    if (!Number.isInteger(branches) || branches < 1 || branches > 4096) {
      throw new LatentBlendError(`branches: expected an integer from 1 to 4096, got ${String(branches)}`);
    }
    const started = performance.now();
    this.track(control);
    const counters = this.counters();
    const context = await this.prepare(transition.options, control.controlNet, control.ipAdapter);
    if (!sameImagePrompt(transition.ipAdapter, context.imagePrompt)) {
      throw new LatentBlendError(
        transition.ipAdapter === undefined
          ? 'This transition was computed without an IP-Adapter; refine it without one.'
          : `This transition was computed with an IP-Adapter (${transition.ipAdapter.ipAdapter}); refine it with the same IP-Adapter, image prompts and scales.`,
      );
    }
    if (!sameControl(transition.control, context.control?.summary)) {
      throw new LatentBlendError(
        transition.control === undefined
          ? 'This transition was computed without a ControlNet; refine it without one.'
          : `This transition was computed with a ControlNet (${transition.control.controlNet}); refine it with the same ControlNet, control pictures, scales and guidance window.`,
      );
    }
    if (context.steps !== transition.tree.numInferenceSteps) {
      throw new LatentBlendError(
        `This transition has ${transition.tree.numInferenceSteps} steps per trajectory but the model's scheduler gives ${context.steps}; refine it with the model and scheduler it was made with.`,
      );
    }
    const total = transition.tree.branches.length + branches;
    const bigger = makePlan({
      numInferenceSteps: context.steps,
      depthStrength: transition.options.depthStrength,
      preset: this.pipeline.defaults.preset,
      maxBranches: Math.min(total, 4096),
      guidanceFactor: context.negative !== undefined ? 2 : 1,
    });
    // The larger plan's injection steps minus those the tree already has, coarse to fine.
    const existing = new Map<number, number>();
    for (const branch of transition.tree.branches.slice(1, -1)) existing.set(branch.injectionStep, (existing.get(branch.injectionStep) ?? 0) + 1);
    const insertions: PlanInsertion[] = [];
    for (const insertion of bigger.insertions) {
      const left = existing.get(insertion.injectionStep) ?? 0;
      if (left > 0) existing.set(insertion.injectionStep, left - 1);
      else insertions.push(insertion);
    }
    while (insertions.length < branches) insertions.push({ injectionStep: bigger.firstInjectionStep });
    const plan: Plan = { ...bigger, insertions: insertions.slice(0, branches) };
    control.onEvent?.({ type: 'plan', plan });
    return this.grow(context, { tree: transition.tree, images: transition.images }, plan, plan.insertions, counters, started, control);
  }

  // ---------------------------------------------------------------------------------------------

  /** ControlNet and IP-Adapter sessions this engine has run with, counted as denoising time. */
  private readonly extraModels = new Set<OnnxModel>();

  /** Registers the run's ControlNet / IP-Adapter sessions before the counters are read. */
  private track(control: Omit<RunControl, 'startFrom'>): void {
    const unet = this.pipeline.unet;
    for (const model of [unet.residualModel, unet.ipAdapterModel, control.controlNet?.controlNet?.model, control.ipAdapter?.adapter?.encoder]) {
      if (model !== undefined) this.extraModels.add(model);
    }
  }

  private counters() {
    const models = this.pipeline.models;
    const extra = [...this.extraModels];
    // A ControlNet step is part of a UNet step's cost (the plan's time budget uses it).
    const denoising = [this.pipeline.unet.model, ...extra];
    return {
      unetEvaluations: this.pipeline.unet.evaluations,
      unetCalls: this.pipeline.unet.calls,
      unetSeconds: denoising.reduce((sum, model) => sum + model.stats.seconds, 0),
      decodes: this.pipeline.vae.decodes,
      decodeSeconds: this.pipeline.vae.decoder.stats.seconds,
      onnxSeconds: [...models, ...extra].reduce((sum, model) => sum + model.stats.seconds, 0),
      metricEvaluations: this.metricEvaluations,
      metricSeconds: this.metricSeconds,
    };
  }

  private metricEvaluations = 0;
  private metricSeconds = 0;

  private async prepare(options: ResolvedTransitionOptions, controlInput?: TransitionControl, imageInput?: TransitionImagePrompt): Promise<Context> {
    // Control pictures are checked and prepared first: bad ones fail before any model call.
    const control = controlInput === undefined ? undefined : prepareControl(controlInput, options.width, options.height, this.pipeline.folder.family);
    if (control !== undefined && imageInput !== undefined) {
      throw new LatentBlendError('A ControlNet and an IP-Adapter together are not supported yet.', 'unsupported');
    }
    const image = imageInput === undefined ? undefined : await prepareImagePrompt(imageInput, this.pipeline.folder.family);
    const scheduler = this.pipeline.scheduler(options.steps, options.eta !== undefined ? { eta: options.eta } : {});
    const guided = options.guidanceScale > 1;
    const encodeOptions = {
      width: options.width,
      height: options.height,
      guided,
      ...(options.clipSkip !== undefined ? { clipSkip: options.clipSkip } : {}),
    };
    const a = await this.pipeline.encode(options.keyframeA.prompt, options.negativePrompt, encodeOptions);
    const b = await this.pipeline.encode(options.keyframeB.prompt, options.negativePrompt, { ...encodeOptions, guided: false });
    const shape = this.pipeline.latentShape(options.width, options.height);
    // Image prompts ride in the conditioning: interpolated by fract like the text embeddings.
    const negativeBase = a.negative;
    const negativeAt =
      image === undefined || negativeBase === undefined
        ? undefined
        : (fract: number) => withImagePrompt(negativeBase, image.negativeEmbeds, (1 - fract) * image.scaleA + fract * image.scaleB);
    return {
      options,
      scheduler,
      shape,
      length: shape[0] * shape[1] * shape[2],
      steps: scheduler.timesteps.length,
      conditioningA: image === undefined ? a.positive : withImagePrompt(a.positive, image.embedsA, image.scaleA),
      conditioningB: image === undefined ? b.positive : withImagePrompt(b.positive, image.embedsB, image.scaleB),
      negative: negativeAt === undefined ? a.negative : negativeAt(0),
      imagePrompt: image?.summary,
      negativeAt,
      noiseA: new KeyframeNoise(options.keyframeA.seed),
      noiseB: new KeyframeNoise(options.keyframeB.seed),
      control,
    };
  }

  private startLatents(context: Context, noise: KeyframeNoise): Float32Array {
    const sigma = context.scheduler.initNoiseSigma;
    return Float32Array.from(noise.start(context.length), (value) => value * sigma);
  }

  private checkReusable(previous: Transition, options: ResolvedTransitionOptions): void {
    const problems = continuationProblems(previous, options);
    if (problems.length > 0) {
      throw new LatentBlendError(`Cannot continue from the previous transition: ${problems.join('; ')}.`);
    }
  }

  /** Runs a batch of branches that share an injection step; returns each one's latents, null before it starts. */
  private async runJobs(context: Context, jobs: readonly BranchJob[], signal: AbortSignal | undefined): Promise<(Float32Array | null)[][]> {
    const fromStep = jobs[0]!.injectionStep;
    const { options, noiseA, noiseB, length } = context;
    const items: DenoiseItem[] = jobs.map((job) => {
      const guidanceScale = guidanceScaleAt(job.fract, options.guidanceScale, options.midDamper);
      return {
        latents: job.start,
        conditioning: conditioningAtFract(context.conditioningA, context.conditioningB, job.fract),
        ...(guidanceScale > 1 && context.negative !== undefined ? { negative: context.negativeAt?.(job.fract) ?? context.negative } : {}),
        guidanceScale: guidanceScale > 1 && context.negative !== undefined ? guidanceScale : 0,
        // Neighbouring branches get neighbouring step noise (SPEC.md "Noise of stochastic schedulers").
        stepNoise: (stepIndex: number) =>
          job.fract === 0
            ? noiseA.step(stepIndex, length)
            : job.fract === 1
              ? noiseB.step(stepIndex, length)
              : slerp(noiseA.step(stepIndex, length), noiseB.step(stepIndex, length), job.fract),
        ...(context.control !== undefined ? { control: controlTermsAt(context.control, job.fract) } : {}),
      };
    });
    const result = await denoise({
      unet: this.pipeline.unet,
      scheduler: context.scheduler,
      latentShape: context.shape,
      items,
      fromStep,
      toStep: context.steps,
      ...(signal !== undefined ? { signal } : {}),
      ...(context.control !== undefined ? { control: context.control.denoise } : {}),
      onStep: (event) => this.pipeline.emit({ type: 'step', ...event }),
      beforeStep: (stepIndex, latents) => {
        let changed = false;
        const next = latents.map((current, index) => {
          const job = jobs[index]!;
          const weight = job.crossfeed[stepIndex] ?? 0;
          if (weight <= 0 || stepIndex <= job.injectionStep || job.feed === undefined) return current;
          const source = job.feed(stepIndex);
          if (source === undefined) return current;
          changed = true;
          return slerp(current, source, weight);
        });
        return changed ? next : undefined;
      },
    });
    return result.trajectories.map((trajectory) => [...new Array<Float32Array | null>(fromStep).fill(null), ...trajectory]);
  }

  /**
   * The final images of one batched round's branches. On a GPU provider they are decoded in one
   * VAE call (a GPU is busier with a batch); on the CPU one per call, which measured faster there
   * (README, "Speed": 13.8 s per image in a batch of 4 against 10.6 s alone, full-size VAE). A
   * batch that fails (out of memory; a decoder exported for batch 1) is decoded again one by one,
   * and so is every later round of the same run; a real decoder fault then surfaces there.
   */
  private async decodeRound(context: Context, trajectories: readonly (readonly (Float32Array | null)[])[]): Promise<RgbImage[]> {
    const decodeEach = async () => {
      const images: RgbImage[] = [];
      for (const trajectory of trajectories) images.push(await this.decode(context, trajectory));
      return images;
    };
    if (trajectories.length < 2 || this.pipeline.device === 'cpu' || context.batchedDecodeFailed === true) return decodeEach();
    try {
      return await this.pipeline.vae.decodeBatch(
        trajectories.map((trajectory) => trajectory[trajectory.length - 1]!),
        context.shape,
      );
    } catch (error) {
      if ((error as Error)?.name === 'AbortError') throw error;
      context.batchedDecodeFailed = true;
      return decodeEach();
    }
  }

  private async decode(context: Context, trajectory: readonly (Float32Array | null)[]): Promise<RgbImage> {
    return this.pipeline.vae.decode(trajectory[trajectory.length - 1]!, context.shape);
  }

  private async distance(a: RgbImage, b: RgbImage): Promise<number> {
    const started = performance.now();
    const value = await this.metric.distance(a, b);
    this.metricEvaluations += 1;
    this.metricSeconds += (performance.now() - started) / 1000;
    return value;
  }

  /** Several distances in one metric call where the metric batches. */
  private async distances(pairs: readonly (readonly [RgbImage, RgbImage])[]): Promise<number[]> {
    const started = performance.now();
    const values = await distancesOf(this.metric, pairs);
    this.metricEvaluations += pairs.length;
    this.metricSeconds += (performance.now() - started) / 1000;
    return values;
  }

  /** The plan, sized by maxBranches, a time budget (with costs measured on A and B) or the default. */
  private makePlan(context: Context, before: ReturnType<BlendingEngine['counters']>, reusedA: boolean, emit: (event: EngineEvent) => void): Plan {
    const { options, steps } = context;
    const guidanceFactor = context.negative !== undefined ? 2 : 1;
    const base = { numInferenceSteps: steps, depthStrength: options.depthStrength, preset: this.pipeline.defaults.preset, guidanceFactor } as const;
    if (options.timeBudget === undefined) {
      return makePlan({ ...base, ...(options.maxBranches !== undefined ? { maxBranches: options.maxBranches } : {}) });
    }
    const now = this.counters();
    const evaluations = now.unetEvaluations - before.unetEvaluations;
    const costs: PlanCosts = {
      unetSecondsPerStep: evaluations > 0 ? (now.unetSeconds - before.unetSeconds) / evaluations : 1e-3,
      decodeSecondsPerImage: now.decodes > before.decodes ? (now.decodeSeconds - before.decodeSeconds) / (now.decodes - before.decodes) : 0,
      metricSecondsPerPair: now.metricEvaluations > before.metricEvaluations ? (now.metricSeconds - before.metricSeconds) / (now.metricEvaluations - before.metricEvaluations) : 0,
      guidanceFactor,
    };
    // A reused keyframe A costs nothing this time: give its predicted cost back to the budget.
    const credit = reusedA ? steps * guidanceFactor * costs.unetSecondsPerStep + costs.decodeSecondsPerImage : 0;
    try {
      return makePlan({ ...base, timeBudgetSeconds: options.timeBudget + credit, costs });
    } catch (error) {
      if (!(error instanceof LatentBlendError)) throw error;
      emit({ type: 'warning', message: `The time budget of ${options.timeBudget} s is too small for any branch between the keyframes on this machine; only A and B were computed.` });
      return makePlan({ ...base, maxBranches: 2 });
    }
  }

  /** Inserts `insertions` into the tree (in batches of the same injection step), largest gap first. */
  private async grow(
    context: Context,
    state: { tree: BlendTree<Float32Array>; images: RgbImage[] | readonly RgbImage[] },
    plan: Plan,
    insertions: readonly PlanInsertion[],
    before: ReturnType<BlendingEngine['counters']>,
    started: number,
    control: RunControl | Omit<RunControl, 'startFrom'>,
  ): Promise<Transition> {
    const emit = control.onEvent ?? (() => {});
    const { options } = context;
    let tree = state.tree;
    const images = [...state.images];
    const guidanceFactor = context.negative !== undefined ? 2 : 1;
    const evaluationsTotal =
      this.pipeline.unet.evaluations - before.unetEvaluations + insertions.reduce((sum, insertion) => sum + (context.steps - insertion.injectionStep) * guidanceFactor, 0);
    const branchesTotal = tree.branches.length + insertions.length;
    const progress = () => {
      const elapsed = (performance.now() - started) / 1000;
      const done = this.pipeline.unet.evaluations - before.unetEvaluations;
      emit({
        type: 'progress',
        branchesDone: tree.branches.length,
        branchesTotal,
        unetEvaluationsDone: done,
        unetEvaluationsTotal: evaluationsTotal,
        elapsedSeconds: elapsed,
        etaSeconds: done > 0 ? (elapsed / done) * Math.max(0, evaluationsTotal - done) : undefined,
      });
    };
    progress();

    let next = 0;
    while (next < insertions.length) {
      throwIfAborted(control.signal);
      const injectionStep = insertions[next]!.injectionStep;
      let count = 1;
      while (count < options.batchSize && next + count < insertions.length && insertions[next + count]!.injectionStep === injectionStep) count++;
      // Never more branches in one batch than there are gaps.
      count = Math.min(count, tree.branches.length - 1);

      if (options.timeBudget !== undefined) {
        const elapsed = (performance.now() - started) / 1000;
        const perEvaluation = elapsed / Math.max(1, this.pipeline.unet.evaluations - before.unetEvaluations);
        const predicted = elapsed + (context.steps - injectionStep) * guidanceFactor * perEvaluation * count;
        if (predicted > options.timeBudget) {
          emit({ type: 'budget-stop', elapsedSeconds: elapsed, budgetSeconds: options.timeBudget, branchesSkipped: insertions.length - next });
          break;
        }
      }

      // The `count` largest gaps, each gets one branch (SPEC.md 4a; batched rounds).
      const gaps = tree.gapDistances
        .map((distance, index) => ({ distance, index }))
        .sort((x, y) => y.distance - x.distance || x.index - y.index)
        .slice(0, count)
        .map((gap) => gap.index);
      const jobs = gaps.map((leftIndex) => this.childJob(context, tree, leftIndex, pictureEndStep(context, tree, leftIndex, injectionStep)));
      // Jobs share a batch only when they start at the same step (picture ends may go deeper).
      const trajectories: (Float32Array | null)[][] = new Array(jobs.length);
      for (const step of new Set(jobs.map((job) => job.injectionStep))) {
        const members = jobs.flatMap((job, index) => (job.injectionStep === step ? [index] : []));
        const results = await this.runJobs(context, members.map((index) => jobs[index]!), control.signal);
        members.forEach((index, position) => (trajectories[index] = results[position]!));
      }
      const decoded = await this.decodeRound(context, trajectories);
      // Insert right to left so the gap indices of the other new branches stay valid.
      const order = gaps.map((leftIndex, job) => ({ leftIndex, job })).sort((x, y) => y.leftIndex - x.leftIndex);
      for (const { leftIndex, job } of order) {
        const image = decoded[job]!;
        const [toLeft = 0, toRight = 0] = await this.distances([
          [images[leftIndex]!, image],
          [image, images[leftIndex + 1]!],
        ]);
        const step = jobs[job]!.injectionStep;
        const inserted = insertBranch(tree, { fract: jobs[job]!.fract, injectionStep: step, latents: trajectories[job]! }, { toLeft, toRight });
        tree = inserted.tree;
        images.splice(inserted.index, 0, image);
        emit({ type: 'frame', fract: jobs[job]!.fract, injectionStep: step, image, index: inserted.index });
      }
      next += count;
      progress();
    }

    const after = this.counters();
    const stats: TransitionStats = {
      unetEvaluations: after.unetEvaluations - before.unetEvaluations,
      unetCalls: after.unetCalls - before.unetCalls,
      decodes: after.decodes - before.decodes,
      metricEvaluations: after.metricEvaluations - before.metricEvaluations,
      seconds: (performance.now() - started) / 1000,
      onnxSeconds: after.onnxSeconds - before.onnxSeconds,
      ...(context.inversionUnetCalls !== undefined ? { inversionUnetCalls: context.inversionUnetCalls } : {}),
    };
    return {
      options,
      tree,
      images,
      plan,
      metric: this.metric.name,
      stats,
      frames: framesOf(tree, images),
      ...(context.control !== undefined ? { control: context.control.summary } : {}),
      ...(context.imagePrompt !== undefined ? { ipAdapter: context.imagePrompt } : {}),
    };
  }

  /**
   * Raw decoded frames (the VAE's output [3, H, W], about [-1, 1], before 8-bit rounding) of a
   * finished transition at positions `fracts` (each in [0, 1]), each computed as a branch
   * injected at `injectionStep` (default: the plan's last insertion's) into the gap holding it,
   * as the engine inserts branches, all in one batch; the transition is not changed. For
   * perceptual path length (src/eval/ppl.ts).
   */
  async rawFramesAt(
    transition: Transition,
    fracts: readonly number[],
    options: { readonly injectionStep?: number; readonly signal?: AbortSignal } = {},
  ): Promise<{ width: number; height: number; frames: Float32Array[] }> {
    const context = await this.prepare(transition.options);
    const { tree, plan } = transition;
    const chosen = options.injectionStep ?? plan.insertions[plan.insertions.length - 1]?.injectionStep ?? plan.firstInjectionStep;
    const injectionStep = Math.min(context.steps - 1, Math.max(1, chosen));
    const jobs = fracts.map((fract) => {
      if (!(fract >= 0 && fract <= 1)) throw new LatentBlendError(`fract: expected a number in [0, 1], got ${fract}`);
      const next = tree.branches.findIndex((branch) => branch.fract > fract);
      const leftIndex = next <= 0 ? tree.branches.length - 2 : next - 1;
      return this.childJob(context, tree, leftIndex, injectionStep, fract);
    });
    const trajectories = await this.runJobs(context, jobs, options.signal);
    const frames: Float32Array[] = [];
    for (const trajectory of trajectories) frames.push(await this.pipeline.vae.decodeRaw(trajectory[trajectory.length - 1]!, context.shape));
    const scale = this.pipeline.vae.scaleFactor;
    return { width: context.shape[2] * scale, height: context.shape[1] * scale, frames };
  }

  /** The job for a branch injected at step k into gap (leftIndex, leftIndex + 1), at its middle unless `fract` is given. */
  private childJob(context: Context, tree: BlendTree<Float32Array>, leftIndex: number, injectionStep: number, fract = childFract(tree, leftIndex)): BranchJob {
    const parents = findParents(tree, leftIndex, leftIndex + 1, injectionStep);
    const parent1 = tree.branches[parents.left]!;
    const parent2 = tree.branches[parents.right]!;
    const t = mixingFraction(fract, parent1.fract, parent2.fract);
    // Parental mix P[i] = slerp(P1[i], P2[i], t), made only for the steps that use it.
    const mix = new Map<number, Float32Array>();
    const mixAt = (stepIndex: number): Float32Array => {
      let value = mix.get(stepIndex);
      if (value === undefined) {
        const a = parent1.latents[stepIndex];
        const b = parent2.latents[stepIndex];
        if (a == null || b == null) throw new Error(`parent latents at step ${stepIndex} missing`);
        value = slerp(a, b, t);
        mix.set(stepIndex, value);
      }
      return value;
    };
    const crossfeed = parentalCrossfeed(context.steps, injectionStep, context.options.parentalCrossfeed as CrossfeedParams);
    return {
      fract,
      injectionStep,
      start: mixAt(injectionStep - 1),
      feed: (stepIndex) => mixAt(stepIndex - 1),
      crossfeed,
    };
  }
}

/**
 * The injection step of a branch in gap (leftIndex, leftIndex + 1). A picture keyframe's end frame
 * is the picture itself, while branches are regenerated by the model from step k on, so the gap
 * next to a picture end jumps. Branches in that gap therefore start one step deeper than their
 * inner neighbour (up to the last step): each split of the end gap lands closer to the picture,
 * grading from the plan's step in the middle to N - 1 at the picture (SPEC.md's plan elsewhere).
 */
export function pictureEndStep(context: { options: ResolvedTransitionOptions; steps: number }, tree: BlendTree<Float32Array>, leftIndex: number, planStep: number): number {
  const last = tree.branches.length - 1;
  const touchesA = leftIndex === 0 && context.options.keyframeA.image !== undefined;
  const touchesB = leftIndex + 1 === last && context.options.keyframeB.image !== undefined;
  if (!touchesA && !touchesB) return planStep;
  const inner = tree.branches[touchesA ? leftIndex + 1 : leftIndex]!;
  // The inner neighbour is the other keyframe (step 0): nothing to grade from yet.
  if (inner.injectionStep === 0) return planStep;
  return Math.max(planStep, Math.min(context.steps - 1, inner.injectionStep + 1));
}

/**
 * Why keyframe B of `previous` cannot serve as keyframe A of a transition with `options` (empty
 * when it can): it must be the same keyframe, computed with the same settings. The negative
 * prompt matters only where classifier-free guidance is on.
 */
export function continuationProblems(previous: Transition, options: ResolvedTransitionOptions): string[] {
  const before = previous.options;
  const problems: string[] = [];
  if (!sameKeyframe(before.keyframeB, options.keyframeA)) problems.push('the previous keyframe B is not this keyframe A (prompt and seed)');
  const guided = before.guidanceScale > 1 || options.guidanceScale > 1;
  for (const key of ['width', 'height', 'steps', 'guidanceScale', 'clipSkip', 'eta', ...(guided ? (['negativePrompt'] as const) : [])] as const) {
    if (before[key] !== options[key]) problems.push(`${key} differs (${String(before[key])} vs ${String(options[key])})`);
  }
  return problems;
}

/** The frames of a tree in fract order, with neighbour distances. */
export function framesOf(tree: BlendTree<Float32Array>, images: readonly RgbImage[]): TransitionFrame[] {
  return tree.branches.map((branch, index) => ({
    image: images[index]!,
    fract: branch.fract,
    injectionStep: branch.injectionStep,
    distanceToPrevious: index > 0 ? tree.gapDistances[index - 1] : undefined,
    distanceToNext: index < tree.gapDistances.length ? tree.gapDistances[index] : undefined,
  }));
}
