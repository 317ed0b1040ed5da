/**
 * The worker pool end to end, with real processes: a private redis-server, `latentblend worker`
 * processes and `latentblend movie --queue`, on the tiny SD-Turbo fixture. Two workers share a
 * film whose frames are bit-identical to a single-process render; Ctrl-C removes the film's
 * pending jobs; a Redis restart mid-film; kill -9 of one of three workers mid-job; a worker on
 * another model refuses the job visibly.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { modelDir } from './helpers/golden.ts';
import { spawnCli, startRedis, type CliProcess, type TestRedis } from './helpers/redis.ts';
import { parseQueueUrl, QUEUE_NAME } from '../src/queue/connection.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import type { JobContext } from '../src/studio/jobs.ts';
import type { StudioModel } from '../src/studio/runners.ts';
import { parsePreviewsRequest, parseRenderRequest } from '../src/studio/requests.ts';
import { poolPreviewsJob, poolRenderJob } from '../src/studio/pool-runners.ts';
import { newFilmId } from '../src/studio/runners.ts';
import { nodePlatform } from '../src/node/platform.ts';

/** A studio job context that records what the job reports. */
function fakeContext(id: string, signal = new AbortController().signal) {
  const events: { type: string; data: unknown }[] = [];
  const progress: { done?: number; total?: number; label?: string }[] = [];
  const context: JobContext = {
    id,
    owner: 'session',
    signal,
    progress: (value) => progress.push(value),
    partial: (result) => events.push({ type: 'partial', data: result }),
    warn: (message) => events.push({ type: 'warning', data: message }),
    emit: (type, data) => events.push({ type, data }),
  };
  return { context, events, progress };
}

const work = mkdtempSync(join(tmpdir(), 'latentblend-pool-'));
const MODEL = modelDir('tiny-sd-turbo');

function writeSpec(name: string, branches: number, prompts: string[]): string {
  const path = join(work, `${name}.yaml`);
  const lines = [`model: ${MODEL}`, 'fps: 10', 'transitionDuration: 1', `branchesPerTransition: ${branches}`, 'keyframes:'];
  for (const [index, prompt] of prompts.entries()) lines.push(`  - prompt: ${prompt}`, `    seed: ${index + 1}`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

interface PoolSummary {
  transitions: number;
  filmFrames: number;
  run: string;
  workers: string[];
  jobs: { jobId: string; kind: string; worker: string; reused: boolean; attempts: number; dir: string }[];
}

/**
 * Locks shorter than BullMQ's 30 s: the job of a killed worker (or one whose lock a Redis restart
 * lost) is taken again within seconds.
 */
const LOCKS = ['--lock-duration', '3000', '--stalled-interval', '500'];

function worker(redis: TestRedis, name: string, extra: string[] = [], model = MODEL, db = 0): CliProcess {
  return spawnCli(['worker', '--queue', `${redis.url}/${db}`, '--model', model, '--name', name, ...extra]);
}

function movie(redis: TestRedis, spec: string, out: string, extra: string[] = [], db = 0): CliProcess {
  return spawnCli(['movie', spec, '--out', out, '--queue', `${redis.url}/${db}`, '--json', ...extra]);
}

/** Lines "finished transition N" over all worker logs, per N. */
function finishedCounts(logs: string[], run: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const log of logs) {
    for (const match of log.matchAll(new RegExp(`finished (transition \\d+) of run ${run}`, 'g'))) counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
  }
  return counts;
}

describe('worker pool', () => {
  let redis: TestRedis;
  const workers: CliProcess[] = [];
  before(async () => {
    redis = await startRedis({ persistent: true });
  });
  after(async () => {
    for (const process of workers) process.child.kill('SIGKILL');
    await redis.dispose();
  });

  describe('two workers', () => {
    before(async () => {
      workers.push(worker(redis, 'w1', LOCKS), worker(redis, 'w2', LOCKS));
      await Promise.all(workers.map((process) => process.waitFor(/ready on/)));
    });

    test('both take jobs, and the film is bit-identical, frame by frame, to a single-process render', async () => {
      const spec = writeSpec('same', 5, ['a cat', 'a dog', 'a bird']);
      const single = spawnCli(['movie', spec, '--out', join(work, 'single.mp4'), '--json', '--frames-dir', join(work, 'single-frames')]);
      const pooled = movie(redis, spec, join(work, 'pooled.mp4'), ['--frames-dir', join(work, 'pooled-frames')]);
      assert.equal(await pooled.exited, 0, pooled.stderr());
      assert.equal(await single.exited, 0, single.stderr());
      const summary = JSON.parse(pooled.stdout()) as PoolSummary;
      assert.deepEqual(summary.workers, ['w1', 'w2'], 'both workers computed jobs');
      assert.deepEqual(
        summary.jobs.map((job) => job.kind),
        ['keyframe', 'keyframe', 'keyframe', 'transition', 'transition'],
      );
      const frames = readdirSync(join(work, 'single-frames')).sort();
      assert.equal(frames.length, 9);
      assert.deepEqual(readdirSync(join(work, 'pooled-frames')).sort(), frames);
      for (const frame of frames) {
        assert.ok(readFileSync(join(work, 'pooled-frames', frame)).equals(readFileSync(join(work, 'single-frames', frame))), frame);
      }
      // The same transition folders, latents included, as a single-process render writes.
      const singleDirs = readdirSync(join(work, 'single.latentblend', 'transitions')).sort();
      assert.deepEqual(readdirSync(join(work, 'pooled.latentblend', 'transitions')).sort(), singleDirs);
      for (const dir of singleDirs) {
        const latents = (root: string) => readFileSync(join(work, root, 'transitions', dir, 'latents.bin'));
        assert.ok(latents('pooled.latentblend').equals(latents('single.latentblend')), `${dir}/latents.bin`);
      }
      assert.ok(existsSync(join(work, 'pooled.mp4')));
    });

    test('transition --queue: one transition on the pool', async () => {
      const out = join(work, 'one.mp4');
      const command = spawnCli(['transition', '--model', MODEL, '--prompt1', 'a cat', '--prompt2', 'a dog', '--max-branches', '4', '--duration', '1', '--fps', '8', '--out', out, '--queue', redis.url, '--json']);
      assert.equal(await command.exited, 0, command.stderr());
      const summary = JSON.parse(command.stdout()) as PoolSummary & { framesComputed: number };
      assert.equal(summary.framesComputed, 4);
      assert.equal(summary.filmFrames, 8);
      assert.ok(existsSync(out));
    });

    test('studio --queue: previews and renders of two sessions at once, each in its own folder, with progress and live frames', async () => {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: MODEL });
      const metric = { name: 'unused', distance: async () => 0 };
      const model: StudioModel = { source: MODEL, pipeline, metric, engine: new BlendingEngine(pipeline, metric), device: 'cpu', hooks: {} };
      const connection = parseQueueUrl(redis.url);
      const sessions = ['one', 'two'].map((name) => join(work, 'studio', name));
      const previews = fakeContext('p1');
      const previewRun = poolPreviewsJob(connection, () => model, sessions[0]!, parsePreviewsRequest({ prompt: 'a cat', seeds: [1, 2, 3] }), [1, 2, 3])(previews.context);
      const spec = { model: MODEL, fps: 10, transitionDuration: 1, branchesPerTransition: 4, keyframes: [{ prompt: 'a cat', seed: 1 }, { prompt: 'a dog', seed: 2 }, { prompt: 'a bird', seed: 3 }] };
      const renders = sessions.map((_, index) => fakeContext(`r${index}`));
      const renderRuns = sessions.map((session, index) => poolRenderJob(connection, () => model, session, parseRenderRequest({ spec, format: 'mp4' }), newFilmId())(renders[index]!.context));
      const [previewResult, ...renderResults] = (await Promise.all([previewRun, ...renderRuns])) as [
        { images: { seed: number; url: string }[] },
        ...{ filmId: string; filmFrames: number; workDir: string; transitions: number }[],
      ];
      assert.deepEqual(previewResult.images.map((image) => image.seed).sort(), [1, 2, 3]);
      for (const image of previewResult.images) assert.ok(existsSync(join(sessions[0]!, 'files', image.url.replace('/api/files/', ''))), image.url);
      assert.ok(previews.progress.length > 0);
      for (const [index, result] of renderResults.entries()) {
        assert.equal(result.transitions, 2);
        assert.ok(result.workDir.startsWith(sessions[index]!), 'the film stays in its session');
        assert.ok(existsSync(join(result.workDir, 'film.mp4')));
        const frames = renders[index]!.events.filter((event) => event.type === 'frame');
        assert.equal(frames.length, 4 + 3, 'every computed frame streams once, the shared keyframe once');
        assert.ok(renders[index]!.progress.some((value) => value.label?.includes('worker pool')));
      }
    });

    test('Ctrl-C of the command removes the film\'s pending jobs and stops its active ones', async () => {
      const spec = writeSpec('cancelled', 60, ['a cat', 'a dog', 'a bird', 'a fish', 'a horse']);
      const run = 'cancelled';
      const command = movie(redis, spec, join(work, 'cancelled.mp4'), ['--run', run]);
      await Promise.race(workers.map((process) => process.waitFor(new RegExp(`took transition \\d+ of run ${run}`))));
      command.child.kill('SIGINT');
      assert.equal(await command.exited, 130, command.stderr());
      assert.equal(existsSync(join(work, 'cancelled.mp4')), false);
      const queue = new Queue(QUEUE_NAME, { connection: parseQueueUrl(redis.url) });
      try {
        // Active jobs are aborted within a step; give them that long.
        let states: string[] = [];
        for (let attempt = 0; attempt < 50; attempt++) {
          const jobs = await queue.getJobs(['wait', 'delayed', 'waiting-children', 'active', 'prioritized']);
          states = jobs.filter((job) => job.id!.startsWith(`${run}.`)).map((job) => `${job.id}`);
          if (states.length === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.deepEqual(states, [], 'nothing of the film is left waiting or running');
      } finally {
        await queue.close();
      }
      assert.match(workers.map((process) => process.stderr()).join(''), new RegExp(`failed transition \\d+ of run ${run} \\(job \\S+\\): cancelled`));
    });

    test('Redis restarted mid-film: the command and the workers reconnect and finish', async () => {
      const spec = writeSpec('restart', 20, ['a cat', 'a dog', 'a bird']);
      const run = 'restart';
      const command = movie(redis, spec, join(work, 'restart.mp4'), ['--run', run]);
      await Promise.race(workers.map((process) => process.waitFor(new RegExp(`took transition \\d+ of run ${run}`))));
      await redis.stop();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await redis.start();
      assert.equal(await command.exited, 0, command.stderr());
      const summary = JSON.parse(command.stdout()) as PoolSummary;
      assert.equal(summary.transitions, 2);
      assert.match(command.stderr(), /lost the queue/);
      assert.ok(existsSync(join(work, 'restart.mp4')));
      for (const count of finishedCounts(workers.map((process) => process.stderr()), run).values()) assert.equal(count, 1);
    });

  });

  describe('three workers and a worker on another model', () => {
    let wrong: CliProcess;
    before(async () => {
      // The two workers above and a third one.
      workers.push(worker(redis, 'w3', LOCKS));
      // On database 1, so that it never sees the other tests' jobs.
      wrong = worker(redis, 'wrong', [], modelDir('tiny-sdxl-turbo'), 1);
      await Promise.all([...workers, wrong].map((process) => process.waitFor(/ready on/)));
    });
    after(async () => {
      wrong.child.kill('SIGKILL');
      await wrong.exited;
    });

    test('kill -9 of a worker mid-job: another worker takes the job, no finished transition is recomputed', async () => {
      const spec = writeSpec('killed', 20, ['a cat', 'a dog', 'a bird', 'a fish']);
      const run = 'killed';
      const command = movie(redis, spec, join(work, 'killed.mp4'), ['--run', run]);
      const [victim, jobId] = await Promise.race(
        workers.map((process) => process.waitFor(new RegExp(`took transition \\d+ of run ${run} \\(job (\\S+), attempt`)).then((match) => [process, match[1]!] as const)),
      );
      victim.child.kill('SIGKILL');
      await victim.exited;
      assert.equal(await command.exited, 0, command.stderr());
      const summary = JSON.parse(command.stdout()) as PoolSummary;
      const retaken = summary.jobs.find((job) => job.jobId === jobId)!;
      const victimName = victim.stderr().match(/worker (\S+): ready/)![1]!;
      assert.notEqual(retaken.worker, victimName, 'another worker finished the killed job');
      // Started again after the kill (a transition can also have waited once for a keyframe).
      assert.ok(retaken.attempts >= 2, `attempts ${retaken.attempts}`);
      const counts = finishedCounts(workers.map((process) => process.stderr()), run);
      assert.deepEqual([...counts.keys()].sort(), ['transition 1', 'transition 2', 'transition 3']);
      for (const [transition, count] of counts) assert.equal(count, 1, `${transition} computed once`);
    });

    test('Ctrl-C of a worker mid-job hands the job back at once, and another worker finishes it', async () => {
      const alive = workers.filter((process) => process.child.exitCode === null && process.child.signalCode === null);
      assert.ok(alive.length >= 2);
      const spec = writeSpec('handed', 20, ['a cat', 'a dog']);
      const run = 'handed';
      const command = movie(redis, spec, join(work, 'handed.mp4'), ['--run', run]);
      const stopped = await Promise.race(alive.map((process) => process.waitFor(new RegExp(`took transition 1 of run ${run}`)).then(() => process)));
      stopped.child.kill('SIGINT');
      assert.equal(await stopped.exited, 0, stopped.stderr());
      assert.match(stopped.stderr(), new RegExp(`gave back transition 1 of run ${run}`));
      assert.equal(await command.exited, 0, command.stderr());
      const summary = JSON.parse(command.stdout()) as PoolSummary;
      const transition = summary.jobs.find((job) => job.kind === 'transition')!;
      assert.notEqual(transition.worker, stopped.stderr().match(/worker (\S+): ready/)![1]);
    });

    test('a worker on another model refuses the job, and the command says why', async () => {
      const spec = writeSpec('wrong', 3, ['a cat', 'a dog']);
      const command = movie(redis, spec, join(work, 'wrong.mp4'), [], 1);
      assert.equal(await command.exited, 1, command.stderr());
      assert.match(command.stderr(), /failed on the worker pool: worker wrong runs model .*tiny-sdxl-turbo.* but this job asks for .*tiny-sd-turbo/);
      assert.match(wrong.stderr(), /refused keyframe \d/);
      assert.equal(existsSync(join(work, 'wrong.mp4')), false);
    });
  });
});
