/**
 * `latentblend movie --queue`: the film's jobs go to the worker pool, and once every transition
 * is in the work folder the film is encoded here, exactly as renderFilm encodes it (same
 * segments, same film.json), so the two renders give the same film.
 */
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { transitionsOf, type FilmSpec } from '../film/spec.ts';
import type { Reporter } from '../film/progress.ts';
import { writeFilmWithRecord, type RenderFilmResult } from '../film/render-film.ts';
import { loadTransition } from '../io/store.ts';
import type { QueueConnection } from './connection.ts';
import { newRunName, submitFilm, type FinishedJob, type PoolProgress, type SubmittedFilm } from './submit.ts';
import type { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';

export interface RenderOnPoolOptions {
  readonly connection: QueueConnection;
  readonly spec: FilmSpec;
  readonly model: string;
  readonly preset?: 'turbo' | 'standard';
  /** Folder the spec's relative paths (control pictures, image prompts, adapters) are relative to. */
  readonly specDir?: string;
  /** Other films' work folders whose finished transitions the workers copy instead of computing. */
  readonly reuseFrom?: readonly string[];
  /**
   * The film of this transition alone (film index; its folder and key as in the whole film's
   * work folder); with branch-1 crossfeed the transitions before it are computed too.
   */
  readonly only?: number;
  readonly workDir: string;
  readonly out: string;
  readonly force: boolean;
  readonly reporter: Reporter;
  readonly signal?: AbortSignal;
  readonly ffmpegPath?: string;
  /** Start the encoder through this helper (cheap while models are loaded; see FfmpegSpawner). */
  readonly ffmpegSpawner?: FfmpegSpawner;
  readonly framesDir?: string;
  readonly run?: string;
  /** A job finished; for transitions, `dir` is relative to the work folder. */
  readonly onFinished?: (job: FinishedJob) => void;
}

export interface RenderOnPoolResult extends RenderFilmResult {
  readonly run: string;
  /** Every job's result (worker, reused, attempts), keyframes then transitions. */
  readonly jobs: readonly FinishedJob[];
  /** Workers that computed or reused a job. */
  readonly workers: readonly string[];
}

/**
 * Waits (up to 30 s) until `path`, written on another machine, shows on this one's mount of the
 * shared file system; loading it then says what is missing if it never does.
 */
async function visible(path: string, signal: AbortSignal | undefined): Promise<void> {
  for (let waited = 0; waited < 30_000 && !existsSync(path); waited += 200) {
    signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function renderFilmOnPool(options: RenderOnPoolOptions): Promise<RenderOnPoolResult> {
  const { spec, reporter, signal } = options;
  const workDir = resolve(options.workDir);
  const transitions = transitionsOf(spec);
  const run = options.run ?? newRunName();
  reporter.info(`run ${run}: ${transitions.length} transition${transitions.length === 1 ? '' : 's'} for the worker pool; waiting for workers…`);
  let barStarted = false;
  // Say so when nobody takes the jobs (no worker running, or all on other work).
  const idle = setTimeout(() => {
    reporter.warn(`no worker has taken a job of run ${run} yet; start workers with: latentblend worker --queue redis://… --model ${options.model}`);
  }, 15_000);
  idle.unref();
  const onProgress = (progress: PoolProgress) => {
    if (progress.workers.length > 0) clearTimeout(idle);
    // One bar for the whole film, in percent of its jobs (keyframes and transitions).
    if (!barStarted) {
      reporter.startBar('workers', 100, { countSteps: false });
      barStarted = true;
    }
    const detail = `${progress.transitionsDone}/${progress.transitions} transitions, ${progress.workers.length} worker${progress.workers.length === 1 ? '' : 's'}`;
    reporter.updateBar(Math.round((100 * progress.done) / Math.max(1, progress.total)), undefined, detail);
  };
  let submitted: SubmittedFilm;
  try {
    submitted = await submitFilm({
      connection: options.connection,
      spec,
      workDir,
      model: options.model,
      ...(options.preset !== undefined ? { preset: options.preset } : {}),
      ...(options.specDir !== undefined ? { specDir: resolve(options.specDir) } : {}),
      ...(options.reuseFrom !== undefined ? { reuseFrom: options.reuseFrom.map((dir) => resolve(dir)) } : {}),
      ...(options.only !== undefined ? { only: options.only } : {}),
      run,
      ...(signal !== undefined ? { signal } : {}),
      onNotice: (line) => reporter.warn(line),
      ...(options.onFinished !== undefined ? { onFinished: options.onFinished } : {}),
      onProgress,
    });
  } finally {
    clearTimeout(idle);
  }
  if (barStarted) reporter.stopBar();

  const segments = [];
  let schedulerClass: string | undefined;
  for (const [position, job] of submitted.transitions.entries()) {
    const index = submitted.plan.transitions[position]!.index;
    if (options.only !== undefined && index !== options.only) continue;
    const dir = join(workDir, job.dir);
    await visible(join(dir, 'transition.json'), signal);
    const stored = await loadTransition(dir);
    schedulerClass ??= stored.model.schedulerClass;
    segments.push({ transition: stored.transition, durationSeconds: transitions[index]!.duration, dir });
  }
  // As renderFilm: side files, then film.json, then the film.
  const film = await writeFilmWithRecord(
    segments,
    {
      workDir,
      out: options.out,
      spec,
      model: options.model,
      ...(schedulerClass !== undefined ? { scheduler: schedulerClass } : {}),
      wholeFilm: options.only === undefined,
      force: options.force,
      ...(signal !== undefined ? { signal } : {}),
      ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
      ...(options.ffmpegSpawner !== undefined ? { ffmpegSpawner: options.ffmpegSpawner } : {}),
      ...(options.framesDir !== undefined ? { framesDir: options.framesDir } : {}),
    },
    reporter,
  );
  const jobs = [...submitted.keyframes, ...submitted.transitions];
  return {
    run: submitted.run,
    out: options.out,
    workDir,
    transitions: segments.length,
    transitionsReused: submitted.transitions.filter((job) => job.reused).length,
    framesComputed: segments.reduce((sum, segment, position) => sum + segment.transition.frames.length - (position > 0 ? 1 : 0), 0),
    filmFrames: film.filmFrames,
    unetCalls: jobs.reduce((sum, job) => sum + job.unetCalls, 0),
    metric: segments[0]?.transition.metric ?? 'unknown',
    segments: segments.map((segment) => ({ dir: segment.dir, durationSeconds: segment.durationSeconds })),
    jobs,
    workers: [...new Set(jobs.map((job) => job.worker))].sort(),
  };
}
