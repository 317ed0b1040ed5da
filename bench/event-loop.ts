/**
 * How long the main thread is blocked while ONNX Runtime works: session creation (the whole
 * pipeline load), one UNet call and one VAE decode, with sessions on the main thread and in
 * worker threads. Measured with perf_hooks.monitorEventLoopDelay (the longest delay of a timer
 * that should fire every `resolution` ms) and, for reference, the wall time of the same work.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import type { InferenceThread } from '../src/runtime/onnx.ts';
import { nodePlatform } from '../src/node/platform.ts';

export interface BlockingFigure {
  /** Wall milliseconds of the work. */
  wallMs: number;
  /** Longest event-loop delay seen during it (milliseconds). */
  maxDelayMs: number;
}

export interface EventLoopBenchResult {
  model: string;
  thread: InferenceThread;
  load: BlockingFigure;
  unet: BlockingFigure;
  decode: BlockingFigure;
  /** Milliseconds to the end of the first UNet call, counted from the start of the load. */
  toFirstUnetMs: number;
}

/** Runs `work` while sampling the event loop's delay every `resolutionMs`. */
export async function measureBlocking(work: () => Promise<unknown>, resolutionMs = 5): Promise<BlockingFigure> {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  const started = performance.now();
  await work();
  const wallMs = performance.now() - started;
  // Let the sampling timer fire once more, so a block at the very end is counted.
  await new Promise((resolve) => setTimeout(resolve, resolutionMs * 2));
  histogram.disable();
  // The histogram counts the timer's own interval in every sample.
  return { wallMs, maxDelayMs: Math.max(0, histogram.max / 1e6 - resolutionMs) };
}

export async function benchEventLoop(name: string, dir: string, thread: InferenceThread): Promise<EventLoopBenchResult> {
  const loadStarted = performance.now();
  let pipeline!: DiffusionPipeline;
  const load = await measureBlocking(async () => {
    pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, inferenceThread: thread });
  });
  try {
    const { width, height, steps } = pipeline.defaults;
    const shape = pipeline.latentShape(width, height);
    const { conditioning } = await pipeline.adapter.encodePrompt('a lighthouse on a cliff at dawn', { width, height });
    const latents = new KeyframeNoise(1).start(shape[0] * shape[1] * shape[2]);
    const timestep = pipeline.scheduler(steps).timesteps[0]!;
    const first = await measureBlocking(() => pipeline.unet.predict({ data: latents, dims: [1, ...shape] }, timestep, conditioning));
    const toFirstUnetMs = performance.now() - loadStarted;
    void first;
    const unet = await measureBlocking(() => pipeline.unet.predict({ data: latents, dims: [1, ...shape] }, timestep, conditioning));
    const decode = await measureBlocking(() => pipeline.vae.decode(latents, shape));
    return { model: name, thread, load, unet, decode, toFirstUnetMs };
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
}
