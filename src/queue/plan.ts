/**
 * How a film is split into jobs for a worker pool (pure: no Redis, no files).
 *
 * Transitions are independent once their two keyframes' trajectories exist, so a film of K
 * keyframes becomes K keyframe jobs (each keyframe's full trajectory, computed once) and K - 1
 * transition jobs. In BullMQ a child job has one parent, so each keyframe job is the child of the
 * first transition that needs it; a transition's other keyframe (shared with the transition before
 * it) is a listed dependency that the worker checks before starting (see worker.ts). With
 * branch-1 crossfeed, keyframe B depends on keyframe A, a dependency of the same kind.
 *
 * A keyframe is shared by the transitions on either side only when it is computed the same way
 * for both, i.e. with the same negative prompt (everything else that shapes a trajectory is set
 * film-wide); otherwise each transition gets its own keyframe job, as a single-process render
 * computes it again.
 *
 * Some keyframes get no job: a picture keyframe (its trajectory comes from the picture, cheaply)
 * and every keyframe of a film with a ControlNet or an IP-Adapter (its trajectory depends on the
 * transition's control and image-prompt settings). The transition job computes those itself, as
 * a single-process render does, so the frames stay the same.
 */
import { createHash } from 'node:crypto';
import { imageSettingsForKey, transitionsOf, type FilmSpec } from '../film/spec.ts';
import { LatentBlendError } from '../errors.ts';

/** Bumped when what a keyframe key covers changes. */
const KEYFRAME_KEY_VERSION = 'latentblend-keyframe/1';

export interface PlannedKeyframe {
  /** BullMQ job id. */
  readonly jobId: string;
  /** Folder name under `<work>/keyframes/`. */
  readonly name: string;
  /** Keyframe index in the spec. */
  readonly keyframe: number;
  /** The transition whose settings compute it and the end of it this keyframe is. */
  readonly transition: number;
  readonly end: 'A' | 'B';
  /** The keyframe job it depends on (branch-1 crossfeed), if any. */
  readonly crossfeedFrom?: string;
  /** The transition job that is this job's BullMQ parent. */
  readonly parent: string;
}

export interface PlannedTransition {
  readonly jobId: string;
  readonly index: number;
  /** The keyframe jobs of its ends; absent: the transition job computes that keyframe itself. */
  readonly keyframeA?: string;
  readonly keyframeB?: string;
}

/** A film's jobs and their dependencies. */
export interface FilmJobPlan {
  readonly run: string;
  /** In the order they are queued (film order). */
  readonly keyframes: readonly PlannedKeyframe[];
  readonly transitions: readonly PlannedTransition[];
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

function chained(spec: FilmSpec): boolean {
  const crossfeed = spec.branch1Crossfeed;
  return crossfeed !== undefined && crossfeed.power > 0 && crossfeed.range > 0;
}

/**
 * Splits `spec` into jobs. `run` names this submission (letters, digits, '-' and '_'); job ids
 * are `<run>.k<keyframe><end><transition>` and `<run>.t<index>`. With `only`, the jobs of that
 * transition alone (film index), and with branch-1 crossfeed those of the transitions before it
 * too, which it depends on (as renderFilm's `only`).
 */
export function planFilmJobs(spec: FilmSpec, run: string, options: { readonly only?: number } = {}): FilmJobPlan {
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(run)) throw new LatentBlendError(`run: expected 1 to 100 letters, digits, '-' or '_', got ${JSON.stringify(run)}`);
  const transitions = transitionsOf(spec);
  const chain = chained(spec);
  const { only } = options;
  if (only !== undefined && (!Number.isInteger(only) || only < 0 || only >= transitions.length)) {
    throw new LatentBlendError(`transitionIndex: expected an integer from 0 to ${transitions.length - 1} (the spec has ${transitions.length} transitions), got ${only}`);
  }
  const wanted = (index: number) => only === undefined || index === only || (chain && index < only);
  const inline = (keyframe: number) => spec.controlnet !== undefined || spec.ipAdapter !== undefined || spec.keyframes[keyframe]!.image !== undefined;
  if (chain && spec.keyframes.some((_, keyframe) => inline(keyframe))) {
    // Each keyframe would then depend on one computed inside another transition's job.
    throw new LatentBlendError('branch-1 crossfeed together with picture keyframes, a ControlNet or an IP-Adapter is not supported on the worker pool; render this film without --queue, or without branch1Crossfeed.');
  }
  const keyframes: PlannedKeyframe[] = [];
  const planned: PlannedTransition[] = [];
  const keys = new Map<string, string>();
  const keyframeJob = (keyframe: number, transition: number, end: 'A' | 'B', parent: string, crossfeedFrom: PlannedKeyframe | undefined): PlannedKeyframe => {
    const t = transitions[transition]!;
    const source = end === 'A' ? t.from : t.to;
    const key = hash({
      version: KEYFRAME_KEY_VERSION,
      ...imageSettingsForKey(spec),
      prompt: source.prompt,
      seed: source.seed,
      negativePrompt: t.negativePrompt ?? null,
      crossfeed:
        crossfeedFrom === undefined
          ? null
          : [spec.branch1Crossfeed!.power, spec.branch1Crossfeed!.range, spec.branch1Crossfeed!.decay, keys.get(crossfeedFrom.jobId)!],
    });
    const job: PlannedKeyframe = {
      jobId: `${run}.k${keyframe}${end}${transition}`,
      name: `${String(keyframe).padStart(2, '0')}-${key.slice(0, 16)}`,
      keyframe,
      transition,
      end,
      parent,
      ...(crossfeedFrom !== undefined ? { crossfeedFrom: crossfeedFrom.jobId } : {}),
    };
    keys.set(job.jobId, key);
    keyframes.push(job);
    return job;
  };

  let previousB: PlannedKeyframe | undefined;
  for (const [index, transition] of transitions.entries()) {
    if (!wanted(index)) continue;
    const jobId = `${run}.t${index}`;
    const before = index > 0 ? transitions[index - 1]! : undefined;
    const shared = previousB !== undefined && before !== undefined && before.negativePrompt === transition.negativePrompt;
    const a = inline(index) ? undefined : shared ? previousB! : keyframeJob(index, index, 'A', jobId, undefined);
    const b = inline(index + 1) ? undefined : keyframeJob(index + 1, index, 'B', jobId, chain ? a : undefined);
    planned.push({ jobId, index, ...(a !== undefined ? { keyframeA: a.jobId } : {}), ...(b !== undefined ? { keyframeB: b.jobId } : {}) });
    previousB = b;
  }
  return { run, keyframes, transitions: planned };
}

/** The jobs a job needs finished before it can start: its BullMQ children and the listed ones. */
export function dependenciesOf(plan: FilmJobPlan, jobId: string): string[] {
  const transition = plan.transitions.find((candidate) => candidate.jobId === jobId);
  if (transition !== undefined) return [transition.keyframeA, transition.keyframeB].filter((id) => id !== undefined);
  const keyframe = plan.keyframes.find((candidate) => candidate.jobId === jobId);
  if (keyframe === undefined) throw new Error(`no job ${jobId} in this plan`);
  return keyframe.crossfeedFrom !== undefined ? [keyframe.crossfeedFrom] : [];
}

/** The children of a transition job in the BullMQ flow (the keyframe jobs it is parent of). */
export function childrenOf(plan: FilmJobPlan, transitionJobId: string): PlannedKeyframe[] {
  return plan.keyframes.filter((keyframe) => keyframe.parent === transitionJobId);
}

export interface PlannedScaling {
  readonly workers: number;
  /** Sum of all jobs' costs (the time of one worker), in the cost unit. */
  readonly totalCost: number;
  /** Finish time of the last job with `workers` workers, in the cost unit. */
  readonly makespan: number;
  /** totalCost / makespan: how many times faster than one worker. */
  readonly speedup: number;
  /** The longest chain of dependent jobs: no number of workers finishes sooner. */
  readonly criticalPath: number;
}

/**
 * The wall time of a film's jobs on `workers` identical workers, each taking the oldest job whose
 * dependencies are done as soon as it is free (what BullMQ's FIFO queue does), with `cost(job)`
 * the time of each job (e.g. its UNet evaluations). Pure list scheduling; transfers and encoding
 * are not counted.
 */
export function plannedScaling(plan: FilmJobPlan, workers: number, cost: (job: PlannedKeyframe | PlannedTransition) => number): PlannedScaling {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers: expected an integer >= 1, got ${workers}`);
  const jobs = [...plan.keyframes, ...plan.transitions];
  const costOf = new Map(jobs.map((job) => [job.jobId, cost(job)] as const));
  const finished = new Map<string, number>();
  // Longest dependency chain ending at each job.
  const chainEnd = new Map<string, number>();
  for (const job of jobs) {
    const before = Math.max(0, ...dependenciesOf(plan, job.jobId).map((dependency) => chainEnd.get(dependency) ?? 0));
    chainEnd.set(job.jobId, before + costOf.get(job.jobId)!);
  }
  const free = new Array<number>(workers).fill(0);
  const pending = [...jobs];
  while (pending.length > 0) {
    // The earliest free worker takes the first queued job that is ready by then, or waits for one.
    const worker = free.indexOf(Math.min(...free));
    const now = free[worker]!;
    const readyAt = (job: (typeof jobs)[number]) => Math.max(0, ...dependenciesOf(plan, job.jobId).map((dependency) => finished.get(dependency) ?? Infinity));
    let pick = pending.findIndex((job) => readyAt(job) <= now);
    if (pick < 0) {
      // Nothing ready yet: take the job that is ready soonest (jobs are in dependency order, so
      // the first pending job's dependencies are all scheduled and its time is finite).
      const times = pending.map(readyAt);
      pick = times.indexOf(Math.min(...times));
    }
    const job = pending.splice(pick, 1)[0]!;
    const start = Math.max(now, readyAt(job));
    const end = start + costOf.get(job.jobId)!;
    finished.set(job.jobId, end);
    free[worker] = end;
  }
  const totalCost = jobs.reduce((sum, job) => sum + costOf.get(job.jobId)!, 0);
  const makespan = Math.max(0, ...finished.values());
  return { workers, totalCost, makespan, speedup: makespan > 0 ? totalCost / makespan : 1, criticalPath: Math.max(0, ...chainEnd.values()) };
}
