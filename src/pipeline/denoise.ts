/**
 * The denoising loop: runs steps [fromStep, toStep) for a batch of latents, each with its own
 * conditioning, guidance scale, step noise and scheduler state, in one UNet call per step, and
 * returns every item's latent after every step (the blending tree needs whole trajectories).
 */
import type { Scheduler, SchedulerState } from '../schedulers/scheduler.ts';
import type { Conditioning } from '../adapters/adapter.ts';
import { concatBatch, type Tensor32 } from './tensor.ts';
import type { Unet } from './unet.ts';
import { controlKeep, mixedResiduals, type ControlNet, type ControlTerm } from './controlnet.ts';
import { LatentBlendError } from '../errors.ts';

/** One trajectory being denoised. */
export interface DenoiseItem {
  /** Latents entering step `fromStep` (start noise already multiplied by initNoiseSigma). */
  readonly latents: Float32Array;
  readonly conditioning: Conditioning;
  /** Required when guidanceScale > 1 (classifier-free guidance). */
  readonly negative?: Conditioning;
  /** Classifier-free guidance is applied only when > 1, as in diffusers. */
  readonly guidanceScale: number;
  /** Standard-normal noise for step i, for stochastic schedulers. */
  readonly stepNoise?: (stepIndex: number) => Float32Array;
  /** Scheduler memory carried from an earlier run of this trajectory. */
  readonly schedulerState?: SchedulerState;
  /**
   * Control pictures acting on this item with their weights (needs DenoiseRequest.control); the
   * negative row under guidance gets the same, as in diffusers (no guess mode).
   */
  readonly control?: readonly ControlTerm[];
}

/** A ControlNet driving the UNet (diffusers' StableDiffusion(XL)ControlNetPipeline). */
export interface DenoiseControl {
  readonly controlNet: ControlNet;
  /** diffusers' control_guidance_start / control_guidance_end: fractions of the steps, 0 ≤ start < end ≤ 1. */
  readonly guidanceStart: number;
  readonly guidanceEnd: number;
}

export interface StepEvent {
  readonly stepIndex: number;
  readonly fromStep: number;
  readonly toStep: number;
  readonly batchSize: number;
}

export interface DenoiseRequest {
  readonly unet: Unet;
  readonly scheduler: Scheduler;
  /** Latent shape of one item without batch: [channels, height, width]. */
  readonly latentShape: readonly [number, number, number];
  readonly items: readonly DenoiseItem[];
  readonly fromStep: number;
  readonly toStep: number;
  /**
   * Called before each step with every item's current latents; may return replacements (for
   * crossfeed). Must not modify the arrays it is given.
   */
  readonly beforeStep?: (stepIndex: number, latents: readonly Float32Array[]) => readonly Float32Array[] | undefined;
  readonly onStep?: (event: StepEvent) => void;
  readonly signal?: AbortSignal;
  /** ControlNet residuals for the UNet (the UNet must have its residual export attached). */
  readonly control?: DenoiseControl;
}

export interface DenoiseResult {
  /** trajectories[item][i - fromStep] = latents after step i. */
  readonly trajectories: Float32Array[][];
  /** Scheduler state after the last step, per item (to continue a trajectory later). */
  readonly states: SchedulerState[];
}

/** Throws the signal's reason (an AbortError) when it has been aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted.', 'AbortError');
  }
}

/** Runs the denoising loop described on DenoiseRequest. */
export async function denoise(request: DenoiseRequest): Promise<DenoiseResult> {
  const { unet, scheduler, items, fromStep, toStep, latentShape } = request;
  const stepCount = scheduler.timesteps.length;
  if (!Number.isInteger(fromStep) || !Number.isInteger(toStep) || fromStep < 0 || toStep > stepCount || fromStep >= toStep) {
    throw new LatentBlendError(
      `denoise: step range [${fromStep}, ${toStep}) is not within [0, ${stepCount}] or is empty.`,
    );
  }
  const itemLength = latentShape[0] * latentShape[1] * latentShape[2];
  for (const item of items) {
    if (item.latents.length !== itemLength) {
      throw new LatentBlendError(`denoise: latents have ${item.latents.length} values, expected ${itemLength} ([${latentShape.join(', ')}]).`);
    }
    if (item.guidanceScale > 1 && item.negative === undefined) {
      throw new LatentBlendError('denoise: classifier-free guidance (guidance scale > 1) needs negative conditioning.');
    }
  }
  const guided = items.map((item) => item.guidanceScale > 1);
  // Batch rows: for each item, [negative, positive] when guided, else [positive].
  const rowConditioning: Conditioning[] = [];
  const rowControl: (readonly ControlTerm[])[] = [];
  items.forEach((item, index) => {
    if (guided[index]) {
      rowConditioning.push(item.negative!);
      rowControl.push(item.control ?? []);
    }
    rowConditioning.push(item.conditioning);
    rowControl.push(item.control ?? []);
  });
  const names = [...(items[0]?.conditioning.keys() ?? [])];
  const batchedConditioning = new Map<string, Tensor32>();
  for (const name of names) {
    batchedConditioning.set(
      name,
      concatBatch(
        rowConditioning.map((conditioning) => {
          const tensor = conditioning.get(name);
          if (tensor === undefined) throw new LatentBlendError(`denoise: conditioning "${name}" missing for an item.`);
          return tensor;
        }),
      ),
    );
  }

  let latents = items.map((item) => item.latents);
  let states = items.map((item) => item.schedulerState);
  const trajectories: Float32Array[][] = items.map(() => []);
  const rows = rowConditioning.length;
  const sample = new Float32Array(rows * itemLength);

  for (let stepIndex = fromStep; stepIndex < toStep; stepIndex++) {
    throwIfAborted(request.signal);
    const replaced = request.beforeStep?.(stepIndex, latents);
    if (replaced !== undefined) latents = [...replaced];
    let row = 0;
    for (let index = 0; index < items.length; index++) {
      const scaled = scheduler.scaleModelInput(latents[index]!, stepIndex);
      if (guided[index]) sample.set(scaled, itemLength * row++);
      sample.set(scaled, itemLength * row++);
    }
    const sampleTensor = { data: sample, dims: [rows, ...latentShape] };
    const timestep = scheduler.timesteps[stepIndex]!;
    const control = request.control;
    // Outside the guidance window diffusers runs the ControlNet at scale 0: zero residuals, which
    // leave the UNet's output exactly as without them, so the plain UNet runs instead.
    const residuals =
      control !== undefined && controlKeep(stepIndex, stepCount, control.guidanceStart, control.guidanceEnd) > 0
        ? await mixedResiduals(control.controlNet, sampleTensor, timestep, batchedConditioning, rowControl)
        : undefined;
    const prediction = await unet.predict(sampleTensor, timestep, batchedConditioning, residuals, request.signal);
    row = 0;
    const next: Float32Array[] = [];
    const nextStates: unknown[] = [];
    for (let index = 0; index < items.length; index++) {
      const item = items[index]!;
      let modelOutput: Float32Array;
      if (guided[index]) {
        const negative = prediction.subarray(itemLength * row, itemLength * (row + 1));
        const positive = prediction.subarray(itemLength * (row + 1), itemLength * (row + 2));
        row += 2;
        modelOutput = new Float32Array(itemLength);
        const scale = item.guidanceScale;
        for (let k = 0; k < itemLength; k++) modelOutput[k] = negative[k]! + scale * (positive[k]! - negative[k]!);
      } else {
        modelOutput = prediction.slice(itemLength * row, itemLength * (row + 1));
        row += 1;
      }
      const noise = scheduler.needsStepNoise ? item.stepNoise?.(stepIndex) : undefined;
      const result = scheduler.step({
        modelOutput,
        sample: latents[index]!,
        stepIndex,
        ...(noise !== undefined ? { noise } : {}),
        state: states[index],
      });
      next.push(result.prevSample);
      nextStates.push(result.state);
      trajectories[index]!.push(result.prevSample);
    }
    latents = next;
    states = nextStates;
    request.onStep?.({ stepIndex, fromStep, toStep, batchSize: items.length });
  }
  return { trajectories, states };
}
