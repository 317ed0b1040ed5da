/**
 * A worker of the pool: takes keyframe and transition jobs from the queue and writes their
 * results into the shared work folder, the same files a single-process render writes (so a film
 * resumes, refines and encodes the same way whoever computed it). The model is loaded once by the
 * caller; a job that asks for another model is failed with the reason, never computed.
 */
import { relative } from 'node:path';
import { DelayedError, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { BlendingEngine } from '../engine/engine.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { modelStamp, type ModelStamp } from '../io/store.ts';
import { resolveTransitionOptions, type TransitionOptions } from '../engine/options.ts';
import { parseFilmSpec, type FilmSpec } from '../film/spec.ts';
import { filmPictureHashes, filmTransitionSetup, findFinished, transitionOptionsOf } from '../film/render-film.ts';
import { loadFilmControl, loadFilmImagePrompts } from '../film/film-control.ts';
import { cachedTransition } from '../film/work-folder.ts';
import { LatentBlendError } from '../errors.ts';
import { QUEUE_NAME, modelIdentity, type QueueConnection } from './connection.ts';
import { parseFilmJob, type FilmJob, type ImageJob, type JobProgress, type JobResult, type KeyframeJob, type KeyframeRef, type TransitionJob } from './jobs.ts';
import { encodePng } from '../io/png.ts';
import { writeFileAtomically } from '../io/files.ts';
import { hasKeyframe, keyframeDir, loadKeyframe, saveKeyframe } from './keyframe-store.ts';

/** The event a submitting command publishes on the queue's event stream to stop a run's active jobs. */
export const CANCEL_EVENT = 'latentblend-cancel';

export interface PoolWorkerOptions {
  readonly connection: QueueConnection;
  /** The model as given to the worker (folder or Hub id) and its preset, if forced. */
  readonly model: string;
  readonly preset?: 'turbo' | 'standard';
  readonly pipeline: DiffusionPipeline;
  readonly engine: BlendingEngine;
  readonly metric: SimilarityMetric;
  /** Shown in results and logs (default: host and process id). */
  readonly name: string;
  /** Jobs at once on this model (default 1). */
  readonly concurrency?: number;
  /** Milliseconds a job's lock lasts without renewal (BullMQ's lockDuration, default 30000). */
  readonly lockDurationMs?: number;
  /** Milliseconds between checks for jobs of dead workers (BullMQ's stalledInterval, default 30000). */
  readonly stalledIntervalMs?: number;
  /** One line per job taken, finished, refused or failed, for the command's output. */
  readonly log?: (line: string) => void;
}

export interface PoolWorker {
  /** Resolves when the worker has connected to Redis. */
  readonly ready: Promise<void>;
  /**
   * Stops taking jobs and disconnects. Active jobs finish first, or with `giveBack` are stopped
   * within a denoising step and put back on the queue for another worker.
   */
  close(giveBack?: boolean): Promise<void>;
}

/** How long a job waits before looking again for a keyframe computed by another job. */
const DEPENDENCY_RETRY_MS = 250;
/** Looks for a finished keyframe's folder this many times (about 30 s) before giving up. */
const MAX_WAITS_FOR_VISIBILITY = 120;

function describe(job: FilmJob): string {
  if (job.kind === 'image') return `image (seed ${job.seed})`;
  return job.kind === 'keyframe' ? `keyframe ${job.keyframe + 1} (${job.end} of transition ${job.transition + 1})` : `transition ${job.index + 1}`;
}

/** Starts a worker; it runs until closed. */
export function startPoolWorker(options: PoolWorkerOptions): PoolWorker {
  const { pipeline, engine, metric, name } = options;
  const log = options.log ?? (() => {});
  const ownModel = modelIdentity(options.model);
  const lookup = new Queue(QUEUE_NAME, { connection: { ...options.connection } });
  const events = new QueueEvents(QUEUE_NAME, { connection: { ...options.connection } });
  const activeRuns = new Map<string, string>();
  /** Runs whose submitter cancelled them: a job of one taken later is not started. */
  const cancelledRuns = new Set<string>();
  let worker: Worker | undefined;
  let stopping = false;

  const stampFor = (spec: FilmSpec, transition: number, model: string): { input: TransitionOptions; stamp: ModelStamp } => {
    const input = transitionOptionsOf(spec, transition) as TransitionOptions;
    const resolved = resolveTransitionOptions(input, pipeline.defaults, (value) => pipeline.roundedSize(value));
    return { input, stamp: modelStamp(model, pipeline, pipeline.latentShape(resolved.width, resolved.height)) };
  };

  /** Throws DelayedError (after rescheduling) while a needed keyframe is still being computed elsewhere. */
  const awaitKeyframes = async (job: Job, token: string | undefined, data: KeyframeJob | TransitionJob, refs: readonly KeyframeRef[]): Promise<void> => {
    for (const ref of refs) {
      if (hasKeyframe(data.workDir, ref.name)) continue;
      const state = await lookup.getJobState(ref.jobId);
      // A finished keyframe may take a moment to show on another machine's mount (NFS caches).
      const stale = state === 'completed' && job.attemptsStarted > MAX_WAITS_FOR_VISIBILITY;
      if (state === 'failed' || state === 'unknown' || stale) {
        throw new UnrecoverableError(`keyframe job ${ref.jobId} is ${state === 'unknown' ? 'gone (cancelled?)' : state} and ${keyframeDir(data.workDir, ref.name)} is missing`);
      }
      await job.moveToDelayed(Date.now() + DEPENDENCY_RETRY_MS, token);
      throw new DelayedError();
    }
  };

  const report = (job: Job, progress: JobProgress) => {
    // Not awaited: while Redis restarts, computing goes on and the update is sent on reconnect.
    job.updateProgress(progress).catch(() => {});
  };

  const runKeyframe = async (job: Job, data: KeyframeJob, spec: FilmSpec, signal: AbortSignal | undefined): Promise<JobResult> => {
    const started = performance.now();
    const { input, stamp } = stampFor(spec, data.transition, data.model);
    const dir = relative(data.workDir, keyframeDir(data.workDir, data.name));
    if (hasKeyframe(data.workDir, data.name)) return { worker: name, reused: true, dir, unetCalls: 0, seconds: 0 };
    const steps = input.steps ?? pipeline.defaults.steps;
    report(job, { worker: name, done: 0, total: steps });
    const calls = pipeline.unet.calls;
    const crossfeedFrom = data.crossfeedFrom !== undefined ? loadKeyframe(data.workDir, data.crossfeedFrom.name, stamp).latents : undefined;
    const keyframe = await engine.runKeyframe(input, data.end, {
      ...(signal !== undefined ? { signal } : {}),
      ...(crossfeedFrom !== undefined ? { crossfeedFrom } : {}),
    });
    saveKeyframe(data.workDir, data.name, keyframe, stamp);
    report(job, { worker: name, done: steps, total: steps });
    return { worker: name, reused: false, dir, unetCalls: pipeline.unet.calls - calls, seconds: (performance.now() - started) / 1000 };
  };

  const runTransition = async (job: Job, data: TransitionJob, spec: FilmSpec, signal: AbortSignal | undefined): Promise<JobResult> => {
    const started = performance.now();
    const { stamp } = stampFor(spec, data.index, data.model);
    // Pictures by content, the ControlNet and the IP-Adapter with their pictures, read from the
    // shared file system as a single-process render reads them (same options, same key).
    const baseDir = data.specDir ?? process.cwd();
    // Only this transition's two keyframes are read (the rest of the film is other jobs' work).
    const pictureHashes = await filmPictureHashes({ ...spec, keyframes: spec.keyframes.slice(data.index, data.index + 2) });
    const filmControl = await loadFilmControl(spec, pipeline, baseDir, signal);
    let filmImages: Awaited<ReturnType<typeof loadFilmImagePrompts>>;
    try {
      filmImages = await loadFilmImagePrompts(spec, pipeline, baseDir, signal);
    } catch (error) {
      await filmControl?.loaded.controlNet.model.session.release();
      throw error;
    }
    const { input, key, controlNet, ipAdapter } = filmTransitionSetup(spec, data.index, { pipeline, metricName: metric.name, pictureHashes, filmControl, filmImages });
    let last = 0;
    let copied = false;
    try {
      const result = await cachedTransition(data.workDir, data.index, key, stamp, async () => {
        // The same transition finished in another film (of the studio session): copied, not computed.
        const elsewhere = await findFinished(data.reuseFrom ?? [], data.index, key, stamp);
        if (elsewhere !== undefined) {
          copied = true;
          return elsewhere;
        }
        // A keyframe without a job (a picture, or a film with a ControlNet or an IP-Adapter) is
        // computed here, as in a single-process render.
        const keyframeA = data.keyframeA === undefined ? undefined : loadKeyframe(data.workDir, data.keyframeA.name, stamp);
        // With a time budget the plan is sized from the speed measured on keyframe B, so B is
        // computed again here (the same trajectory, see runKeyframe); otherwise it is reused.
        const keyframeB = spec.timeBudgetPerTransition === undefined && data.keyframeB !== undefined ? loadKeyframe(data.workDir, data.keyframeB.name, stamp) : undefined;
        return engine.runTransition(input as TransitionOptions, {
          ...(signal !== undefined ? { signal } : {}),
          ...(keyframeA !== undefined ? { keyframeA } : {}),
          ...(keyframeB !== undefined ? { keyframeB } : {}),
          ...(controlNet !== undefined ? { controlNet } : {}),
          ...(ipAdapter !== undefined ? { ipAdapter } : {}),
          onEvent: (event) => {
            if (event.type !== 'progress') return;
            const now = performance.now();
            if (now - last < 200 && event.unetEvaluationsDone < event.unetEvaluationsTotal) return;
            last = now;
            report(job, { worker: name, done: event.unetEvaluationsDone, total: event.unetEvaluationsTotal });
          },
        });
      });
      return {
        worker: name,
        reused: result.reused || copied,
        dir: relative(data.workDir, result.dir),
        unetCalls: result.reused || copied ? 0 : result.transition.stats.unetCalls,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      // As renderFilm: the residual UNet stays with the pipeline, the ControlNet and image encoder go.
      await filmControl?.loaded.controlNet.model.session.release();
      await filmImages?.loaded.adapter.encoder.session.release();
    }
  };

  const runImage = async (job: Job, data: ImageJob, signal: AbortSignal | undefined): Promise<JobResult> => {
    const started = performance.now();
    const steps = data.steps ?? pipeline.defaults.steps;
    report(job, { worker: name, done: 0, total: steps });
    const calls = pipeline.unet.calls;
    const { image } = await pipeline.generate({
      prompt: data.prompt,
      seed: data.seed,
      ...(signal !== undefined ? { signal } : {}),
      ...(data.negativePrompt !== undefined ? { negativePrompt: data.negativePrompt } : {}),
      ...(data.steps !== undefined ? { steps: data.steps } : {}),
      ...(data.guidanceScale !== undefined ? { guidanceScale: data.guidanceScale } : {}),
      ...(data.width !== undefined ? { width: data.width } : {}),
      ...(data.height !== undefined ? { height: data.height } : {}),
    });
    await writeFileAtomically(data.out, await encodePng(image), true);
    report(job, { worker: name, done: steps, total: steps });
    return { worker: name, reused: false, dir: data.out, unetCalls: pipeline.unet.calls - calls, seconds: (performance.now() - started) / 1000 };
  };

  const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<JobResult> => {
    let data: FilmJob;
    try {
      data = parseFilmJob(job.data);
    } catch (error) {
      throw new UnrecoverableError(`worker ${name}: not a latentblend job: ${(error as Error).message}`);
    }
    const wanted = modelIdentity(data.model);
    if (wanted !== ownModel || (data.preset !== undefined && data.preset !== pipeline.defaults.preset)) {
      const reason = `worker ${name} runs model ${ownModel} (preset ${pipeline.defaults.preset}), but this job asks for ${wanted}${data.preset !== undefined ? ` (preset ${data.preset})` : ''}; start a worker with --model ${data.model}${data.preset !== undefined ? ` --preset ${data.preset}` : ''}`;
      log(`refused ${describe(data)} of run ${data.run}: ${reason}`);
      throw new UnrecoverableError(reason);
    }
    if (data.kind !== 'image') {
      const refs = data.kind === 'transition' ? [data.keyframeA, data.keyframeB] : [data.crossfeedFrom];
      await awaitKeyframes(job, token, data, refs.filter((ref) => ref !== undefined));
    }
    let spec: FilmSpec | undefined;
    try {
      if (data.kind !== 'image') spec = parseFilmSpec(data.spec, { path: `job ${job.id}`, format: 'yaml' });
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    if (cancelledRuns.has(data.run)) throw new UnrecoverableError('cancelled');
    activeRuns.set(job.id!, data.run);
    log(`took ${describe(data)} of run ${data.run} (job ${job.id}, attempt ${job.attemptsStarted})`);
    try {
      const result =
        data.kind === 'image'
          ? await runImage(job, data, signal)
          : data.kind === 'keyframe'
            ? await runKeyframe(job, data, spec!, signal)
            : await runTransition(job, data, spec!, signal);
      log(`${result.reused ? 'reused' : 'finished'} ${describe(data)} of run ${data.run} (job ${job.id}) in ${result.seconds.toFixed(2)} s`);
      return result;
    } catch (error) {
      if (stopping && signal?.aborted) {
        // This worker is shutting down: the job goes back to the queue for another one.
        log(`gave back ${describe(data)} of run ${data.run} (job ${job.id})`);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const message = (error as Error).name === 'AbortError' || signal?.aborted ? 'cancelled' : (error as Error).message;
      log(`failed ${describe(data)} of run ${data.run} (job ${job.id}): ${message}`);
      if (error instanceof LatentBlendError || signal?.aborted) throw new UnrecoverableError(message);
      throw error;
    } finally {
      activeRuns.delete(job.id!);
    }
  };

  events.on(CANCEL_EVENT as 'progress', ((args: { run?: string }) => {
    if (args.run === undefined) return;
    cancelledRuns.add(args.run);
    for (const [jobId, run] of activeRuns) if (run === args.run) worker?.cancelJob(jobId, 'cancelled');
  }) as never);
  // Connection errors are retried by ioredis; say so once per outage instead of crashing.
  let down = false;
  const onError = (error: Error) => {
    if (!down) log(`queue connection problem (retrying): ${error.message}`);
    down = true;
  };
  lookup.on('error', onError);
  events.on('error', onError);

  worker = new Worker(QUEUE_NAME, processor, {
    connection: { ...options.connection },
    concurrency: options.concurrency ?? 1,
    ...(options.lockDurationMs !== undefined ? { lockDuration: options.lockDurationMs } : {}),
    ...(options.stalledIntervalMs !== undefined ? { stalledInterval: options.stalledIntervalMs } : {}),
    maxStalledCount: 2,
  });
  worker.on('error', onError);
  worker.on('ready', () => {
    if (down) log('queue connection back');
    down = false;
  });

  const ready = Promise.all([worker.waitUntilReady(), events.waitUntilReady(), lookup.waitUntilReady()]).then(() => undefined);
  return {
    ready,
    async close(giveBack = false) {
      if (giveBack) {
        stopping = true;
        worker!.cancelAllJobs('worker stopping');
      }
      await worker!.close();
      await events.close();
      await lookup.close();
    },
  };
}
