/**
 * The studio's job queue: one job runs at a time (the model and the accelerator are shared),
 * the others wait first in, first out and know their place. Every job belongs to an owner (a
 * session); lookups, cancels and subscriptions by another owner behave as if the job did not
 * exist. The queue knows nothing about HTTP or models: a job is a kind name and an async
 * function that receives a context (abort signal, progress, partial result, extra events), so it
 * is tested without either.
 */
import { randomBytes } from 'node:crypto';
import { LatentBlendError, fileSystemError } from '../errors.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobProgress {
  readonly done: number;
  readonly total: number;
  readonly label: string;
  /** Seconds left, when the job can estimate it. */
  readonly etaSeconds?: number;
}

/** What clients see of a job (JSON-safe). */
export interface JobView {
  readonly id: string;
  readonly kind: string;
  readonly state: JobState;
  /** 1-based place in the queue while queued (1 = next to run), 0 when running or finished. */
  readonly position: number;
  /**
   * While queued: the jobs that run before it, in order (the running one first), by kind only
   * (other sessions' jobs are not identified), with the running one's seconds left when known.
   */
  readonly ahead?: readonly { readonly kind: string; readonly state: 'running' | 'queued'; readonly etaSeconds?: number }[];
  /**
   * While queued: about how many seconds until it starts, from the running job's estimate and
   * the speed of earlier jobs of the same kinds (progress units per second); absent when a job
   * ahead cannot be estimated yet.
   */
  readonly waitSeconds?: number;
  readonly progress: JobProgress;
  /** The job's result when done; while running, what it has produced so far (if anything). */
  readonly result?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  /** Warnings the job raised (e.g. a size rounded to the model's grid). */
  readonly warnings: readonly string[];
  /** ISO 8601 times. */
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
}

/** An event of a job: a change of the job itself, or a job-specific event (e.g. 'frame'). */
export type JobEvent = { readonly type: 'job'; readonly job: JobView } | { readonly type: string; readonly data: unknown };

export type JobListener = (event: JobEvent) => void;

/** Handed to a running job. */
export interface JobContext {
  readonly id: string;
  readonly owner: string;
  /** Aborted when the job is cancelled or the queue closes. */
  readonly signal: AbortSignal;
  /** Updates the progress (merged into the current one). */
  progress(progress: Partial<JobProgress> & { etaSeconds?: number | undefined }): void;
  /** Sets the partial result that clients see while the job runs. */
  partial(result: unknown): void;
  /** Records a warning on the job. */
  warn(message: string): void;
  /** Sends a job-specific event to subscribers and keeps it for later subscribers (replayed in order). */
  emit(type: string, data: unknown): void;
}

export type JobRunner = (context: JobContext) => Promise<unknown>;

interface JobRecord {
  readonly id: string;
  readonly owner: string;
  readonly kind: string;
  readonly run: JobRunner;
  readonly controller: AbortController;
  readonly createdAt: number;
  state: JobState;
  progress: JobProgress;
  result: unknown;
  error: { code: string; message: string } | undefined;
  warnings: string[];
  startedAt: number | undefined;
  finishedAt: number | undefined;
  readonly events: { type: string; data: unknown }[];
  readonly listeners: Set<JobListener>;
  /** When the last progress-only notification went out, and a pending trailing one. */
  lastNotified: number;
  pendingNotify: NodeJS.Timeout | undefined;
}

export interface JobQueueOptions {
  /** Most jobs one owner may have waiting or running at once (default 16). */
  readonly maxPendingPerOwner?: number;
  /** Most jobs of all owners together waiting or running at once (default 64). */
  readonly maxPendingTotal?: number;
  /** Finished jobs kept per owner for GET /jobs (oldest dropped first; default 100). */
  readonly keepFinishedPerOwner?: number;
  /** Most job-specific events kept per job for replay (default 2000). */
  readonly keepEventsPerJob?: number;
  /** Least milliseconds between two progress-only notifications of a job (default 100). */
  readonly progressIntervalMs?: number;
  /** Called when a job fails with an unexpected error (not a LatentBlendError). */
  readonly onUnexpectedError?: (job: JobView, error: unknown) => void;
}

/** Thrown by submit when an owner has too many jobs waiting. */
export class QueueFullError extends LatentBlendError {
  constructor(limit: number) {
    super(`You already have ${limit} jobs waiting or running; wait for one to finish or cancel one.`, 'queue_full');
  }
}

function isAbort(error: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (error as { name?: string } | undefined)?.name === 'AbortError';
}

/** A JSON error for a failed job: the message of a user-facing error, or a generic one. */
function errorOf(caught: unknown): { code: string; message: string } {
  const error = fileSystemError(caught);
  if (error instanceof LatentBlendError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message: `Unexpected error: ${message}` };
}

export class JobQueue {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly waiting: JobRecord[] = [];
  private running: JobRecord | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly maxPending: number;
  private readonly keepFinished: number;
  private readonly keepEvents: number;
  private readonly progressInterval: number;
  /** Seconds and progress units of finished jobs, per kind: how fast a unit of each kind goes. */
  private readonly speed = new Map<string, { seconds: number; units: number }>();
  /** When the waiting jobs were last told about the running one's progress. */
  private lastQueueNotify = 0;

  constructor(private readonly options: JobQueueOptions = {}) {
    this.maxPending = options.maxPendingPerOwner ?? 16;
    this.keepFinished = options.keepFinishedPerOwner ?? 100;
    this.keepEvents = options.keepEventsPerJob ?? 2000;
    this.progressInterval = options.progressIntervalMs ?? 100;
  }

  /** Queues a job for `owner`; it starts at once when nothing else runs. */
  submit(owner: string, kind: string, run: JobRunner, progress: JobProgress = { done: 0, total: 1, label: 'waiting' }): JobView {
    if (this.closed) throw new LatentBlendError('The studio is shutting down.', 'unavailable');
    const pending = [...this.jobs.values()].filter((job) => job.owner === owner && (job.state === 'queued' || job.state === 'running')).length;
    if (pending >= this.maxPending) throw new QueueFullError(this.maxPending);
    const total = this.waiting.length + (this.running === undefined ? 0 : 1);
    if (total >= (this.options.maxPendingTotal ?? 64)) {
      throw new LatentBlendError(`The studio already has ${total} jobs waiting or running (all sessions together); try again when some have finished.`, 'queue_full');
    }
    const record: JobRecord = {
      id: randomBytes(12).toString('hex'),
      owner,
      kind,
      run,
      controller: new AbortController(),
      createdAt: Date.now(),
      state: 'queued',
      progress,
      result: undefined,
      error: undefined,
      warnings: [],
      startedAt: undefined,
      finishedAt: undefined,
      events: [],
      listeners: new Set(),
      lastNotified: 0,
      pendingNotify: undefined,
    };
    this.jobs.set(record.id, record);
    this.waiting.push(record);
    this.pump();
    return this.view(record);
  }

  /** The job `id` of `owner`, or undefined (also when it belongs to someone else). */
  get(owner: string, id: string): JobView | undefined {
    const record = this.find(owner, id);
    return record === undefined ? undefined : this.view(record);
  }

  /** The owner's jobs, oldest first. */
  list(owner: string): JobView[] {
    return [...this.jobs.values()].filter((job) => job.owner === owner).map((job) => this.view(job));
  }

  /** Jobs waiting and running, all owners together (no details). */
  counts(): { running: number; queued: number } {
    return { running: this.running === undefined ? 0 : 1, queued: this.waiting.length };
  }

  /**
   * Cancels a job: a queued one leaves the queue at once, a running one is aborted (it ends
   * 'cancelled' within a denoising step). Returns the job, 'finished' when it had already ended,
   * or undefined when there is no such job of this owner.
   */
  cancel(owner: string, id: string): JobView | 'finished' | undefined {
    const record = this.find(owner, id);
    if (record === undefined) return undefined;
    if (record.state === 'queued') {
      this.waiting.splice(this.waiting.indexOf(record), 1);
      this.finish(record, 'cancelled');
      for (const other of this.waiting) this.notify(other, true);
      return this.view(record);
    }
    if (record.state === 'running') {
      record.controller.abort();
      return this.view(record);
    }
    return 'finished';
  }

  /**
   * Subscribes to a job's events: first the job as it is and the job-specific events so far,
   * then every change. Returns an unsubscribe function, or undefined when there is no such job
   * of this owner. A finished job's subscriber gets its final state and nothing more.
   */
  subscribe(owner: string, id: string, listener: JobListener): (() => void) | undefined {
    const record = this.find(owner, id);
    if (record === undefined) return undefined;
    for (const event of record.events) listener(event);
    listener({ type: 'job', job: this.view(record) });
    if (this.isFinished(record)) return () => {};
    record.listeners.add(listener);
    return () => record.listeners.delete(listener);
  }

  /** Resolves when no job runs and none waits. */
  idle(): Promise<void> {
    if (this.running === undefined && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new jobs, cancels every waiting and running job and waits for the running one to stop. */
  async close(): Promise<void> {
    this.closed = true;
    for (const record of this.waiting.splice(0)) this.finish(record, 'cancelled');
    this.running?.controller.abort();
    await this.idle();
  }

  private find(owner: string, id: string): JobRecord | undefined {
    const record = this.jobs.get(id);
    return record !== undefined && record.owner === owner ? record : undefined;
  }

  private isFinished(record: JobRecord): boolean {
    return record.state === 'done' || record.state === 'failed' || record.state === 'cancelled';
  }

  /** Seconds a job of this kind and total progress units takes, from earlier ones; undefined when none finished yet. */
  private estimate(record: JobRecord): number | undefined {
    const speed = this.speed.get(record.kind);
    if (speed === undefined || speed.units <= 0 || record.progress.total <= 0) return undefined;
    return (speed.seconds / speed.units) * record.progress.total;
  }

  /** What runs before a queued job, and about when it starts. */
  private queueView(record: JobRecord): Pick<JobView, 'ahead' | 'waitSeconds'> {
    const index = this.waiting.indexOf(record);
    if (record.state !== 'queued' || index < 0) return {};
    const before = this.waiting.slice(0, index);
    const running = this.running;
    const ahead = [
      ...(running !== undefined
        ? [{ kind: running.kind, state: 'running' as const, ...(running.progress.etaSeconds !== undefined ? { etaSeconds: running.progress.etaSeconds } : {}) }]
        : []),
      ...before.map((job) => ({ kind: job.kind, state: 'queued' as const })),
    ];
    let wait: number | undefined = running === undefined ? 0 : running.progress.etaSeconds;
    for (const job of before) {
      const seconds = this.estimate(job);
      wait = wait === undefined || seconds === undefined ? undefined : wait + seconds;
    }
    return { ahead, ...(wait !== undefined && Number.isFinite(wait) ? { waitSeconds: wait } : {}) };
  }

  private view(record: JobRecord): JobView {
    return {
      id: record.id,
      kind: record.kind,
      state: record.state,
      position: record.state === 'queued' ? this.waiting.indexOf(record) + 1 : 0,
      ...this.queueView(record),
      progress: record.progress,
      ...(record.result !== undefined ? { result: record.result } : {}),
      ...(record.error !== undefined ? { error: record.error } : {}),
      warnings: [...record.warnings],
      createdAt: new Date(record.createdAt).toISOString(),
      ...(record.startedAt !== undefined ? { startedAt: new Date(record.startedAt).toISOString() } : {}),
      ...(record.finishedAt !== undefined ? { finishedAt: new Date(record.finishedAt).toISOString() } : {}),
    };
  }

  /**
   * Tells the job's subscribers about a change. State changes go out at once; progress-only
   * changes at most every progressIntervalMs (the last one is never lost).
   */
  private notify(record: JobRecord, immediate: boolean): void {
    if (record.listeners.size === 0) return;
    const now = Date.now();
    if (!immediate && now - record.lastNotified < this.progressInterval) {
      record.pendingNotify ??= setTimeout(() => {
        record.pendingNotify = undefined;
        this.notify(record, true);
      }, this.progressInterval - (now - record.lastNotified));
      return;
    }
    if (record.pendingNotify !== undefined) {
      clearTimeout(record.pendingNotify);
      record.pendingNotify = undefined;
    }
    record.lastNotified = now;
    const event: JobEvent = { type: 'job', job: this.view(record) };
    for (const listener of [...record.listeners]) listener(event);
  }

  private finish(record: JobRecord, state: 'done' | 'failed' | 'cancelled'): void {
    record.state = state;
    record.finishedAt = Date.now();
    if (state === 'done' && record.startedAt !== undefined && record.progress.total > 0) {
      const speed = this.speed.get(record.kind) ?? { seconds: 0, units: 0 };
      this.speed.set(record.kind, { seconds: speed.seconds + (record.finishedAt - record.startedAt) / 1000, units: speed.units + record.progress.total });
    }
    this.notify(record, true);
    record.listeners.clear();
    this.prune(record.owner);
  }

  /** Drops the owner's oldest finished jobs beyond the limit. */
  private prune(owner: string): void {
    const finished = [...this.jobs.values()].filter((job) => job.owner === owner && this.isFinished(job));
    for (const old of finished.slice(0, Math.max(0, finished.length - this.keepFinished))) this.jobs.delete(old.id);
  }

  private pump(): void {
    if (this.running !== undefined) return;
    const next = this.waiting.shift();
    if (next === undefined) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    this.running = next;
    next.state = 'running';
    next.startedAt = Date.now();
    this.notify(next, true);
    for (const other of this.waiting) this.notify(other, true);
    void this.execute(next);
  }

  private async execute(record: JobRecord): Promise<void> {
    const signal = record.controller.signal;
    const context: JobContext = {
      id: record.id,
      owner: record.owner,
      signal,
      progress: (progress) => {
        const merged: Record<string, unknown> = { ...record.progress, ...progress };
        if (merged.etaSeconds === undefined) delete merged.etaSeconds;
        record.progress = merged as unknown as JobProgress;
        this.notify(record, false);
        // The jobs waiting behind it learn its new estimate, every few seconds.
        const now = Date.now();
        if (this.waiting.length > 0 && now - this.lastQueueNotify >= 2000) {
          this.lastQueueNotify = now;
          for (const other of this.waiting) this.notify(other, true);
        }
      },
      partial: (result) => {
        record.result = result;
        this.notify(record, false);
      },
      warn: (message) => {
        if (record.warnings.length < 50 && !record.warnings.includes(message)) record.warnings.push(message);
        this.notify(record, false);
      },
      emit: (type, data) => {
        const event = { type, data };
        if (record.events.length < this.keepEvents) record.events.push(event);
        for (const listener of [...record.listeners]) listener(event);
      },
    };
    try {
      // Let the submitter see the job before it starts working.
      await Promise.resolve();
      if (signal.aborted) throw signal.reason;
      const result = await record.run(context);
      if (signal.aborted) throw signal.reason;
      record.result = result;
      this.finish(record, 'done');
    } catch (error) {
      if (isAbort(error, signal)) {
        this.finish(record, 'cancelled');
      } else {
        record.error = errorOf(error);
        if (!(fileSystemError(error) instanceof LatentBlendError)) this.options.onUnexpectedError?.(this.view(record), error);
        this.finish(record, 'failed');
      }
    } finally {
      this.running = undefined;
      this.pump();
    }
  }
}
