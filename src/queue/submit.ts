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
import { filmFlows } from './flows.ts';
import { jobProgressOf, parseJobResult, type JobResult } from './jobs.ts';
import { planFilmJobs, type FilmJobPlan } from './plan.ts';
import { CANCEL_EVENT } from './worker.ts';

export interface SubmitFilmOptions {
  readonly connection: QueueConnection;
  readonly spec: FilmSpec;
  /** Absolute work folder on the shared file system. */
  readonly workDir: string;
  readonly model: string;
  readonly preset?: 'turbo' | 'standard';
  /** Names this submission; default: random. */
  readonly run?: string;
  readonly signal?: AbortSignal;
  /** Called on every change: jobs done (fractional, active jobs count their share) of all jobs. */
  readonly onProgress?: (progress: PoolProgress) => void;
  /** Connection trouble and recovery, one line each. */
  readonly onNotice?: (line: string) => void;
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
  readonly kind: 'keyframe' | 'transition';
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
  return `film-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
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

/**
 * Submits `spec` as BullMQ flows and waits for every job. Rejects with a LatentBlendError naming
 * the job and the worker's reason when a job fails (a worker on another model refuses with one).
 */
export async function submitFilm(options: SubmitFilmOptions): Promise<SubmittedFilm> {
  const { connection, signal } = options;
  if (signal?.aborted) throw abortError();
  const run = options.run ?? newRunName();
  const plan = planFilmJobs(options.spec, run);
  const flows = filmFlows(plan, {
    spec: options.spec,
    workDir: options.workDir,
    model: options.model,
    ...(options.preset !== undefined ? { preset: options.preset } : {}),
  });
  const ids = [...plan.transitions.map((job) => job.jobId), ...plan.keyframes.map((job) => job.jobId)];
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
  const emitProgress = () => {
    let done = 0;
    for (const value of fraction.values()) done += value;
    options.onProgress?.({
      done,
      total: ids.length,
      transitionsDone: plan.transitions.filter((job) => finished.has(job.jobId)).length,
      transitions: plan.transitions.length,
      workers: [...workers].sort(),
    });
  };

  let failWith: ((error: Error) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    failWith = reject;
  });
  failure.catch(() => {});
  const describeJob = (jobId: string) => {
    const transition = plan.transitions.find((job) => job.jobId === jobId);
    if (transition !== undefined) return `transition ${transition.index + 1}`;
    const keyframe = plan.keyframes.find((job) => job.jobId === jobId)!;
    return `keyframe ${keyframe.keyframe + 1}`;
  };
  const failed = (jobId: string, reason: string) => {
    // Jobs stopped by our own cancel fail too; that is not the film's failure.
    if (signal?.aborted) return;
    failWith?.(new LatentBlendError(`job ${jobId} (${describeJob(jobId)}) failed on the worker pool: ${reason}`, 'worker_failed'));
  };

  events.on('progress', ({ jobId, data }) => {
    if (!ours.has(jobId)) return;
    const progress = jobProgressOf(data);
    if (progress === undefined) return;
    workers.add(progress.worker);
    if (!finished.has(jobId)) fraction.set(jobId, progress.total > 0 ? Math.min(0.99, progress.done / progress.total) : 0);
    emitProgress();
  });
  events.on('failed', ({ jobId, failedReason }) => {
    if (ours.has(jobId)) failed(jobId, failedReason);
  });

  let cancelled = false;
  const cancel = async () => {
    if (cancelled) return;
    cancelled = true;
    await cancelRun(connection, plan).catch(() => {});
  };
  const onAbort = () => {
    void cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    await events.waitUntilReady();
    await producer.addBulk(flows);
    emitProgress();
    // The event stream says what happens; reading the states back also covers events missed
    // while Redis was away.
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
          failed(jobId, job.failedReason);
          continue;
        }
        const result = parseJobResult(job.returnvalue);
        finished.set(jobId, { ...result, jobId, kind: job.name === 'keyframe' ? 'keyframe' : 'transition', attempts: job.attemptsStarted });
        workers.add(result.worker);
        fraction.set(jobId, 1);
        emitProgress();
      }
      await Promise.race([failure, new Promise((resolve) => setTimeout(resolve, pollMs)), ...stopped]);
    }
    return {
      run,
      plan,
      keyframes: plan.keyframes.map((job) => finished.get(job.jobId)!),
      transitions: plan.transitions.map((job) => finished.get(job.jobId)!),
    };
  } catch (error) {
    // A failed or interrupted film leaves nothing of its own waiting on the queue.
    await cancel();
    throw signal?.aborted ? abortError() : error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await Promise.allSettled([events.close(), queue.close(), producer.close()]);
  }
}

/**
 * Removes a run's pending jobs (parents first, so that no transition is released by the removal
 * of its keyframe) and asks the workers to stop its active ones.
 */
export async function cancelRun(connection: QueueConnection, plan: FilmJobPlan): Promise<void> {
  const queue = new Queue(QUEUE_NAME, { connection: { ...connection } });
  const producer = new QueueEventsProducer(QUEUE_NAME, { connection: { ...connection } });
  queue.on('error', () => {});
  producer.on('error', () => {});
  try {
    await producer.publishEvent({ eventName: CANCEL_EVENT, run: plan.run });
    for (const jobId of [...plan.transitions.map((job) => job.jobId), ...plan.keyframes.map((job) => job.jobId)]) {
      const state = await queue.getJobState(jobId);
      if (state === 'completed' || state === 'failed' || state === 'active' || state === 'unknown') continue;
      await queue.remove(jobId, { removeChildren: false }).catch(() => 0);
    }
  } finally {
    await Promise.allSettled([queue.close(), producer.close()]);
  }
}
