/**
 * The submitting side of the worker pool: puts a film's jobs on the queue, follows the workers'
 * progress, and resolves once every transition is in the work folder (the caller then encodes
 * the film locally). Cancelling removes the run's pending jobs and stops its active ones.
 */
import { randomBytes } from 'node:crypto';
import { FlowProducer, Queue, QueueEvents, QueueEventsProducer } from 'bullmq';
import type { FilmSpec } from '../film/spec.ts';
import { LatentBlendError } from '../errors.ts';
import { QUEUE_NAME, describeQueue, type QueueConnection } from './connection.ts';
import { filmFlows, type FlowContext } from './flows.ts';
import { jobProgressOf, parseJobResult, type ImageJob, type JobResult } from './jobs.ts';
import { planFilmJobs, type FilmJobPlan } from './plan.ts';
import { CANCEL_EVENT } from './worker.ts';

/** The flow context (absolute, shared paths: see flows.ts) and how to follow the run. */
export interface SubmitFilmOptions extends FlowContext {
  readonly connection: QueueConnection;
  /** Only this transition (film index), and those before it with branch-1 crossfeed. */
  readonly only?: number;
  /** Names this submission; default: random. */
  readonly run?: string;
  readonly signal?: AbortSignal;
  /** Called on every change: jobs done (fractional, active jobs count their share) of all jobs. */
  readonly onProgress?: (progress: PoolProgress) => void;
  /** Connection trouble and recovery, one line each. */
  readonly onNotice?: (line: string) => void;
  /** A job finished (keyframe or transition), as soon as it is seen. */
  readonly onFinished?: (job: FinishedJob) => void;
  /** How often job states are read back besides the event stream, in ms (default 500). */
  readonly pollMs?: number;
}

export interface PoolProgress {
  /** Finished jobs plus the finished share of active ones. */
  readonly done: number;
  readonly total: number;
  readonly transitionsDone: number;
  readonly transitions: number;
  /** Workers that reported on this run so far. */
  readonly workers: readonly string[];
}

export interface FinishedJob extends JobResult {
  readonly jobId: string;
  readonly kind: 'keyframe' | 'transition' | 'image';
  /** Times a worker started it (2 after its first worker died mid-job). */
  readonly attempts: number;
}

export interface SubmittedFilm {
  readonly run: string;
  readonly plan: FilmJobPlan;
  /** Every job's result, keyframes first, then transitions in film order. */
  readonly keyframes: readonly FinishedJob[];
  readonly transitions: readonly FinishedJob[];
}

/** A fresh run name. */
export function newRunName(): string {
  return `run-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function abortError(): Error {
  return new DOMException('Interrupted', 'AbortError');
}

/** Options of followJobs: jobs to add and wait for. */
interface FollowOptions {
  readonly connection: QueueConnection;
  readonly run: string;
  /** Job ids, in the order they should be removed on cancel (parents first). */
  readonly ids: readonly string[];
  /** Adds the jobs (once the event stream listens). */
  readonly add: (producer: FlowProducer, queue: Queue) => Promise<unknown>;
  readonly describe: (jobId: string) => string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (fractions: ReadonlyMap<string, number>, finished: ReadonlyMap<string, FinishedJob>, workers: ReadonlySet<string>) => void;
  readonly onFinished?: (job: FinishedJob) => void;
  readonly onNotice?: (line: string) => void;
  readonly pollMs?: number;
}

/**
 * Adds jobs and waits for all of them: progress from the workers' events, completion read back
 * from Redis (which also covers events missed while Redis was away). A failed job rejects with a
 * LatentBlendError naming it and the worker's reason; a failed or interrupted wait removes the
 * run's pending jobs and stops its active ones.
 */
async function followJobs(options: FollowOptions): Promise<Map<string, FinishedJob>> {
  const { connection, signal, ids } = options;
  if (signal?.aborted) throw abortError();
  const ours = new Set(ids);
  const producer = new FlowProducer({ connection: { ...connection } });
  const queue = new Queue(QUEUE_NAME, { connection: { ...connection } });
  const events = new QueueEvents(QUEUE_NAME, { connection: { ...connection } });
  const notice = options.onNotice ?? (() => {});
  let down = false;
  const onError = (error: Error) => {
    if (!down) notice(`lost the queue at ${describeQueue(connection)} (${error.message}); reconnecting…`);
    down = true;
  };
  producer.on('error', onError);
  queue.on('error', onError);
  events.on('error', onError);

  const fraction = new Map<string, number>(ids.map((id) => [id, 0]));
  const finished = new Map<string, FinishedJob>();
  const workers = new Set<string>();
  const emitProgress = () => options.onProgress?.(fraction, finished, workers);

  let failWith: ((error: Error) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    failWith = reject;
  });
  failure.catch(() => {});
  const failed = (jobId: string, reason: string) => {
    // Jobs stopped by our own cancel fail too; that is not the run's failure.
    if (signal?.aborted) return;
    failWith?.(new LatentBlendError(`job ${jobId} (${options.describe(jobId)}) failed on the worker pool: ${reason}`, 'worker_failed'));
  };

  events.on('progress', ({ jobId, data }) => {
    if (!ours.has(jobId)) return;
    const progress = jobProgressOf(data);
    if (progress === undefined) return;
    workers.add(progress.worker);
    if (!finished.has(jobId)) fraction.set(jobId, progress.total > 0 ? Math.min(0.99, progress.done / progress.total) : 0);
    emitProgress();
  });
  /** The job whose failure failed `reason`'s parent (BullMQ's failParentOnFailure), if one of ours. */
  const failedChild = (reason: string | undefined): string | undefined => {
    const child = /^child bull:[^:]+:(\S+) failed$/.exec(reason ?? '')?.[1];
    return child !== undefined && ours.has(child) ? child : undefined;
  };
  events.on('failed', ({ jobId, failedReason }) => {
    // A parent failed by its child: the child's own failure (with the worker's reason) is reported.
    if (ours.has(jobId) && failedChild(failedReason) === undefined) failed(jobId, failedReason);
  });

  let cancelled = false;
  const cancel = async () => {
    if (cancelled) return;
    cancelled = true;
    await cancelJobs(connection, options.run, ids).catch(() => {});
  };
  const onAbort = () => {
    void cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    await events.waitUntilReady();
    await options.add(producer, queue);
    emitProgress();
    const pollMs = options.pollMs ?? 500;
    const stopped = signal !== undefined ? [aborted(signal)] : [];
    while (finished.size < ids.length) {
      if (signal?.aborted) throw abortError();
      for (const jobId of ids) {
        if (finished.has(jobId)) continue;
        // The state first, then the job: a job read before it completed has no return value yet.
        const state = await queue.getJobState(jobId);
        if (down) {
          notice('queue connection back');
          down = false;
        }
        if (state === 'unknown') {
          failed(jobId, 'the job is gone from the queue (removed by another command?)');
          break;
        }
        if (state !== 'completed' && state !== 'failed') continue;
        const job = await queue.getJob(jobId);
        if (job === undefined) continue;
        if (state === 'failed') {
          const child = failedChild(job.failedReason);
          const childJob = child !== undefined ? await queue.getJob(child) : undefined;
          if (child !== undefined && childJob?.failedReason) failed(child, childJob.failedReason);
          else failed(jobId, job.failedReason);
          continue;
        }
        const result = parseJobResult(job.returnvalue);
        const kind = job.name === 'keyframe' || job.name === 'image' ? job.name : 'transition';
        const entry: FinishedJob = { ...result, jobId, kind, attempts: job.attemptsStarted };
        finished.set(jobId, entry);
        workers.add(result.worker);
        fraction.set(jobId, 1);
        options.onFinished?.(entry);
        emitProgress();
      }
      await Promise.race([failure, new Promise((resolve) => setTimeout(resolve, pollMs)), ...stopped]);
    }
    return finished;
  } catch (error) {
    await cancel();
    throw signal?.aborted ? abortError() : error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled([events.close(), queue.close(), producer.close()]);
  }
}

/**
 * Submits `spec` as BullMQ flows and waits for every job. Rejects with a LatentBlendError naming
 * the job and the worker's reason when a job fails (a worker on another model refuses with one).
 */
export async function submitFilm(options: SubmitFilmOptions): Promise<SubmittedFilm> {
  const run = options.run ?? newRunName();
  const plan = planFilmJobs(options.spec, run, options.only !== undefined ? { only: options.only } : {});
  const flows = filmFlows(plan, {
    spec: options.spec,
    workDir: options.workDir,
    model: options.model,
    ...(options.preset !== undefined ? { preset: options.preset } : {}),
    ...(options.specDir !== undefined ? { specDir: options.specDir } : {}),
    ...(options.reuseFrom !== undefined ? { reuseFrom: options.reuseFrom } : {}),
  });
  const describeJob = (jobId: string) => {
    const transition = plan.transitions.find((job) => job.jobId === jobId);
    if (transition !== undefined) return `transition ${transition.index + 1}`;
    const keyframe = plan.keyframes.find((job) => job.jobId === jobId)!;
    return `keyframe ${keyframe.keyframe + 1}`;
  };
  const finished = await followJobs({
    connection: options.connection,
    run,
    ids: [...plan.transitions.map((job) => job.jobId), ...plan.keyframes.map((job) => job.jobId)],
    add: (producer) => producer.addBulk(flows),
    describe: describeJob,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onNotice !== undefined ? { onNotice: options.onNotice } : {}),
    ...(options.onFinished !== undefined ? { onFinished: options.onFinished } : {}),
    ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
    onProgress: (fractions, done, workers) => {
      let sum = 0;
      for (const value of fractions.values()) sum += value;
      options.onProgress?.({
        done: sum,
        total: fractions.size,
        transitionsDone: plan.transitions.filter((job) => done.has(job.jobId)).length,
        transitions: plan.transitions.length,
        workers: [...workers].sort(),
      });
    },
  });
  return {
    run,
    plan,
    keyframes: plan.keyframes.map((job) => finished.get(job.jobId)!),
    transitions: plan.transitions.map((job) => finished.get(job.jobId)!),
  };
}

export interface SubmitImagesOptions {
  readonly connection: QueueConnection;
  readonly model: string;
  readonly preset?: 'turbo' | 'standard';
  /** What every image shares; each image has its own seed and PNG path. */
  readonly request: Omit<ImageJob, 'kind' | 'run' | 'model' | 'preset' | 'seed' | 'out'>;
  readonly images: readonly { readonly seed: number; readonly out: string }[];
  readonly run?: string;
  readonly signal?: AbortSignal;
  /** Images done (fractional) of all, on every change. */
  readonly onProgress?: (done: number, total: number) => void;
  /** An image is written (index into `images`). */
  readonly onImage?: (index: number, job: FinishedJob) => void;
  readonly onNotice?: (line: string) => void;
}

/** Submits one image job per seed (they spread over the workers) and waits for all of them. */
export async function submitImages(options: SubmitImagesOptions): Promise<FinishedJob[]> {
  const run = options.run ?? newRunName();
  const ids = options.images.map((_, index) => `${run}.i${index}`);
  const jobs = options.images.map((image, index) => {
    const data: ImageJob = {
      kind: 'image',
      run,
      model: options.model,
      ...(options.preset !== undefined ? { preset: options.preset } : {}),
      ...options.request,
      seed: image.seed,
      out: image.out,
    };
    return { name: 'image', data, opts: { jobId: ids[index]!, removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } } };
  });
  const finished = await followJobs({
    connection: options.connection,
    run,
    ids,
    add: (_, queue) => queue.addBulk(jobs),
    describe: (jobId) => `image ${ids.indexOf(jobId) + 1} of ${ids.length}`,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onNotice !== undefined ? { onNotice: options.onNotice } : {}),
    onFinished: (job) => options.onImage?.(ids.indexOf(job.jobId), job),
    onProgress: (fractions) => {
      let sum = 0;
      for (const value of fractions.values()) sum += value;
      options.onProgress?.(sum, fractions.size);
    },
  });
  return ids.map((id) => finished.get(id)!);
}

/**
 * Removes a run's pending jobs `ids` (give parents first, so that no transition is released by the
 * removal of its keyframe) and asks the workers to stop its active ones.
 */
export async function cancelJobs(connection: QueueConnection, run: string, ids: readonly string[]): Promise<void> {
  const queue = new Queue(QUEUE_NAME, { connection: { ...connection } });
  const producer = new QueueEventsProducer(QUEUE_NAME, { connection: { ...connection } });
  queue.on('error', () => {});
  producer.on('error', () => {});
  try {
    await producer.publishEvent({ eventName: CANCEL_EVENT, run });
    for (const jobId of ids) {
      const state = await queue.getJobState(jobId);
      if (state === 'completed' || state === 'failed' || state === 'active' || state === 'unknown') continue;
      await queue.remove(jobId, { removeChildren: false }).catch(() => 0);
    }
    // Again, for a job a worker took while the others were being removed.
    await producer.publishEvent({ eventName: CANCEL_EVENT, run });
  } finally {
    await Promise.allSettled([queue.close(), producer.close()]);
  }
}

/** cancelJobs for a film's plan: transitions, then keyframes. */
export async function cancelRun(connection: QueueConnection, plan: FilmJobPlan): Promise<void> {
  await cancelJobs(connection, plan.run, [...plan.transitions.map((job) => job.jobId), ...plan.keyframes.map((job) => job.jobId)]);
}
