/**
 * The worker pool end to end, with real processes: a private redis-server, `latentblend worker`
 * processes and `latentblend movie --queue`, on the tiny SD-Turbo fixture. Two workers share a
 * film whose frames are bit-identical to a single-process render; Ctrl-C removes the film's
 * pending jobs; a Redis restart mid-film; kill -9 of one of three workers mid-job; a worker on
 * another model refuses the job visibly.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { FIXTURES, modelDir } from './helpers/golden.ts';
import { spawnCli, startRedis, type CliProcess, type TestRedis } from './helpers/redis.ts';
import { parseQueueUrl, QUEUE_NAME } from '../src/queue/connection.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine } from '../src/engine/engine.ts';
import { JobQueue, type JobContext, type JobRunner } from '../src/studio/jobs.ts';
import { watchPoolWorkers } from '../src/studio/pool-workers.ts';
import type { StudioModel } from '../src/studio/runners.ts';
import { parsePreviewsRequest, parseRenderRequest } from '../src/studio/requests.ts';
import { poolPreviewsJob, poolRenderJob } from '../src/studio/pool-runners.ts';
import { newFilmId } from '../src/studio/runners.ts';
import { readStudioFilmRecord } from '../src/studio/storage.ts';
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

    test('a picture → prompt → prompt film: the picture keyframe is computed in its transition job, and the frames are bit-identical to a single-process render', async () => {
      const picture = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-a.png');
      const spec = join(work, 'picture.yaml');
      writeFileSync(
        spec,
        [`model: ${MODEL}`, 'fps: 10', 'transitionDuration: 1', 'branchesPerTransition: 4', 'keyframes:', `  - {image: ${JSON.stringify(picture)}, prompt: a photo, seed: 1}`, '  - {prompt: a dog, seed: 2}', '  - {prompt: a bird, seed: 3}'].join('\n'),
      );
      const single = spawnCli(['movie', spec, '--out', join(work, 'picture-single.mp4'), '--json', '--frames-dir', join(work, 'picture-single-frames')]);
      const pooled = movie(redis, spec, join(work, 'picture-pooled.mp4'), ['--frames-dir', join(work, 'picture-pooled-frames')]);
      assert.equal(await pooled.exited, 0, pooled.stderr());
      assert.equal(await single.exited, 0, single.stderr());
      const summary = JSON.parse(pooled.stdout()) as PoolSummary;
      // No job for the picture keyframe: keyframes 2 and 3, then the two transitions.
      assert.deepEqual(
        summary.jobs.map((job) => job.kind),
        ['keyframe', 'keyframe', 'transition', 'transition'],
      );
      const frames = readdirSync(join(work, 'picture-single-frames')).sort();
      assert.equal(frames.length, 4 + 3);
      assert.deepEqual(readdirSync(join(work, 'picture-pooled-frames')).sort(), frames);
      for (const frame of frames) {
        assert.ok(readFileSync(join(work, 'picture-pooled-frames', frame)).equals(readFileSync(join(work, 'picture-single-frames', frame))), frame);
      }
      // The same folders (the picture enters the key by content), latents included.
      const singleDirs = readdirSync(join(work, 'picture-single.latentblend', 'transitions')).sort();
      assert.deepEqual(readdirSync(join(work, 'picture-pooled.latentblend', 'transitions')).sort(), singleDirs);
      for (const dir of singleDirs) {
        const latents = (root: string) => readFileSync(join(work, root, 'transitions', dir, 'latents.bin'));
        assert.ok(latents('picture-pooled.latentblend').equals(latents('picture-single.latentblend')), `${dir}/latents.bin`);
      }
    });

    test('transition --queue: one transition from a picture on the pool', async () => {
      const out = join(work, 'one.mp4');
      const picture = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-b.png');
      const command = spawnCli(['transition', '--model', MODEL, '--image1', picture, '--fit', 'contain', '--prompt2', 'a dog', '--max-branches', '4', '--duration', '1', '--fps', '8', '--out', out, '--queue', redis.url, '--json']);
      assert.equal(await command.exited, 0, command.stderr());
      const summary = JSON.parse(command.stdout()) as PoolSummary & { framesComputed: number };
      assert.equal(summary.framesComputed, 4);
      assert.equal(summary.filmFrames, 8);
      assert.deepEqual(summary.jobs.map((job) => job.kind), ['keyframe', 'transition'], 'keyframe B only: the picture is computed in the transition job');
      assert.ok(existsSync(out));
    });

    test('studio --queue: as many jobs at once as live workers; two sessions\' renders run side by side, each in its own folder, with progress and live frames', async () => {
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: MODEL });
      const metric = { name: 'unused', distance: async () => 0 };
      const model: StudioModel = { source: MODEL, pipeline, metric, engine: new BlendingEngine(pipeline, metric), device: 'cpu', hooks: {} };
      const connection = parseQueueUrl(redis.url);
      // The studio's queue, sized from the pool's live workers as `studio --queue` does.
      const queue = new JobQueue({ progressIntervalMs: 0 });
      const watch = watchPoolWorkers(connection, (count) => queue.setConcurrency(count));
      await watch.ready;
      assert.equal(queue.slots, 2, 'two live workers, two jobs at once');
      const sessions = ['one', 'two'].map((name) => join(work, 'studio', name));
      // Which jobs run at the same time, and what each reports.
      const active = new Set<string>();
      const overlaps: string[][] = [];
      const recorded = (name: string, runner: JobRunner) => {
        const record = fakeContext(name);
        const run: JobRunner = async (context) => {
          active.add(name);
          overlaps.push([...active].sort());
          try {
            return await runner({ ...context, progress: (value) => (record.progress.push(value), context.progress(value)), emit: (type, data) => (record.events.push({ type, data }), context.emit(type, data)), partial: (result) => (record.events.push({ type: 'partial', data: result }), context.partial(result)) });
          } finally {
            active.delete(name);
          }
        };
        return { record, run };
      };
      const spec = { model: MODEL, fps: 10, transitionDuration: 1, branchesPerTransition: 4, keyframes: [{ prompt: 'a cat', seed: 1 }, { prompt: 'a dog', seed: 2 }, { prompt: 'a bird', seed: 3 }] };
      const renders = sessions.map((session, index) => recorded(`render${index}`, poolRenderJob(connection, () => model, session, parseRenderRequest({ spec, format: 'mp4' }), newFilmId())));
      const previews = recorded('previews', poolPreviewsJob(connection, () => model, sessions[0]!, parsePreviewsRequest({ prompt: 'a cat', seeds: [1, 2, 3] }), [1, 2, 3]));
      const renderJobs = renders.map((render, index) => queue.submit(`session${index}`, 'render', render.run));
      const previewJob = queue.submit('session0', 'previews', previews.run);
      assert.equal(queue.get('session0', previewJob.id)!.position, 1, 'the third job waits for a free slot');
      await queue.idle();
      assert.ok(overlaps.some((running) => running.join() === 'render0,render1'), `the two sessions' renders ran at the same time: ${JSON.stringify(overlaps)}`);
      assert.ok(overlaps.every((running) => running.length <= 2), 'never more jobs than workers');
      const previewResult = queue.get('session0', previewJob.id)!.result as { images: { seed: number; url: string }[] };
      assert.deepEqual(previewResult.images.map((image) => image.seed).sort(), [1, 2, 3]);
      for (const image of previewResult.images) assert.ok(existsSync(join(sessions[0]!, 'files', image.url.replace('/api/files/', ''))), image.url);
      assert.ok(previews.record.progress.length > 0);
      for (const [index, job] of renderJobs.entries()) {
        const view = queue.get(`session${index}`, job.id)!;
        assert.equal(view.state, 'done', JSON.stringify(view.error));
        const result = view.result as { filmId: string; filmFrames: number; workDir: string; transitions: number };
        assert.equal(result.transitions, 2);
        assert.ok(result.workDir.startsWith(sessions[index]!), 'the film stays in its session');
        assert.ok(existsSync(join(result.workDir, 'film.mp4')));
        const frames = renders[index]!.record.events.filter((event) => event.type === 'frame');
        assert.equal(frames.length, 4 + 3, 'every computed frame streams once, the shared keyframe once');
        assert.ok(renders[index]!.record.progress.some((value) => value.label?.includes('worker pool')));
        assert.equal(queue.get(`session${1 - index}`, job.id), undefined, 'another session does not see it');
      }

      // One transition of the same film: the workers copy it from the session's first film. And one
      // transition of a film with branch-1 crossfeed: the one before it is computed too, not shown.
      const reused = recorded('reused', poolRenderJob(connection, () => model, sessions[0]!, parseRenderRequest({ spec, format: 'mp4', transitionIndex: 1 }), newFilmId()));
      const chainedSpec = { ...spec, branch1Crossfeed: { power: 0.5, range: 0.5, decay: 0.5 } };
      const chained = recorded('chained', poolRenderJob(connection, () => model, sessions[1]!, parseRenderRequest({ spec: chainedSpec, format: 'mp4', transitionIndex: 1 }), newFilmId()));
      const reusedJob = queue.submit('session0', 'render', reused.run);
      const chainedJob = queue.submit('session1', 'render', chained.run);
      await queue.idle();
      const reusedView = queue.get('session0', reusedJob.id)!;
      assert.equal(reusedView.state, 'done', JSON.stringify(reusedView.error));
      const reusedResult = reusedView.result as { transitions: number; transitionsReused: number; workDir: string };
      assert.deepEqual([reusedResult.transitions, reusedResult.transitionsReused], [1, 1], 'copied from the first film, not computed');
      assert.deepEqual(readdirSync(join(reusedResult.workDir, 'transitions')), [readdirSync(join(renderJobs.map((job) => (queue.get('session0', job.id)?.result as { workDir: string } | undefined)?.workDir).find((dir) => dir !== undefined)!, 'transitions')).sort()[1]!], 'the same folder (film index and key) as in the whole film');
      assert.deepEqual(reused.record.events.filter((event) => event.type === 'frame').map((event) => (event.data as { transition: number }).transition), [1, 1, 1, 1]);
      const chainedView = queue.get('session1', chainedJob.id)!;
      assert.equal(chainedView.state, 'done', JSON.stringify(chainedView.error));
      const chainedResult = chainedView.result as { transitions: number; workDir: string };
      assert.equal(chainedResult.transitions, 1);
      assert.equal(readdirSync(join(chainedResult.workDir, 'transitions')).filter((name) => !name.startsWith('.')).length, 2, 'transition 1 needs transition 0 first');
      assert.deepEqual(chained.record.events.filter((event) => event.type === 'frame').map((event) => (event.data as { transition: number }).transition), [1, 1, 1, 1]);

      // Resuming a finished film on the pool: nothing computed again, the film keeps its place and title.
      const firstFilm = (queue.get('session0', renderJobs[0]!.id)!.result as { filmId: string; workDir: string });
      const before = readStudioFilmRecord(firstFilm.workDir)!;
      const resumed = recorded('resumed', poolRenderJob(connection, () => model, sessions[0]!, parseRenderRequest({ spec, format: 'mp4' }), firstFilm.filmId, { ...before, title: 'kept' }));
      const resumedJob = queue.submit('session0', 'render', resumed.run);
      await queue.idle();
      const resumedView = queue.get('session0', resumedJob.id)!;
      assert.equal(resumedView.state, 'done', JSON.stringify(resumedView.error));
      assert.equal((resumedView.result as { transitionsReused: number }).transitionsReused, 2);
      const after = readStudioFilmRecord(firstFilm.workDir)!;
      assert.deepEqual([after.createdAt, after.title, after.state, after.earlierJobIds], [before.createdAt, 'kept', 'done', [before.jobId]]);
      await watch.close();
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

  describe('ControlNet and IP-Adapter films on a worker', () => {
    const SD15 = modelDir('tiny-sd15');
    before(async () => {
      const sd15 = worker(redis, 'sd15', LOCKS, SD15, 2);
      workers.push(sd15);
      await sd15.waitFor(/ready on/);
    });

    test('the studio counts only the workers of its own database', async () => {
      const counts: number[] = [];
      const watch = watchPoolWorkers(parseQueueUrl(`${redis.url}/2`), (count) => counts.push(count));
      await watch.ready;
      await watch.close();
      assert.deepEqual(counts, [1], 'the sd15 worker alone, not those on databases 0 and 1');
      const raw = new Queue(QUEUE_NAME, { connection: parseQueueUrl(`${redis.url}/2`) });
      try {
        assert.ok((await raw.getWorkers()).length > 1, 'Redis lists the workers of every database');
      } finally {
        await raw.close();
      }
    });

    test('each keyframe is computed in its transition jobs, control pictures relative to the spec; frames bit-identical to a single-process render', async () => {
      const dir = join(work, 'control-specs');
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(FIXTURES, 'goldens', 'tiny-sd15-controlnet', 'control-64.png'), join(dir, 'edges.png'));
      const common = [`model: ${JSON.stringify(SD15)}`, 'steps: 4', 'guidanceScale: 0', 'branchesPerTransition: 3', 'fps: 4', 'transitionDuration: 1'];
      const ipPictures = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter');
      const specs = {
        control: [
          ...common,
          `controlnet: ${JSON.stringify(join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx'))}`,
          // Relative: the workers read it beside the spec on the shared file system.
          'controlImage: edges.png',
          'controlnetScale: 0.9',
          'keyframes:',
          '  - {prompt: a cat, seed: 1}',
          '  - {prompt: a dog, seed: 2}',
          `  - {prompt: a fox, seed: 3, controlImage: ${JSON.stringify(join(FIXTURES, 'goldens', 'tiny-sd15-controlnet', 'control-96x80.png'))}, controlnetScale: 0.5}`,
        ],
        ip: [
          ...common,
          `ipAdapter: ${JSON.stringify(join(FIXTURES, 'models', 'tiny-sd15-ip-adapter', 'onnx'))}`,
          `ipImage: ${JSON.stringify(join(ipPictures, 'ip-a.png'))}`,
          'keyframes:',
          '  - {prompt: a cat, seed: 1}',
          `  - {prompt: a dog, seed: 2, ipImage: ${JSON.stringify(join(ipPictures, 'ip-b.png'))}, ipAdapterScale: 0.5}`,
        ],
      };
      const runs = Object.entries(specs).map(([name, lines]) => {
        const path = join(dir, `${name}.yaml`);
        writeFileSync(path, `${lines.join('\n')}\n`);
        const frames = (kind: string) => join(work, `${name}-${kind}-frames`);
        return {
          name,
          frames,
          single: spawnCli(['movie', path, '--out', join(work, `${name}-single.gif`), '--json', '--frames-dir', frames('single')]),
          pooled: movie(redis, path, join(work, `${name}-pooled.gif`), ['--frames-dir', frames('pooled')], 2),
        };
      });
      for (const run of runs) {
        assert.equal(await run.pooled.exited, 0, run.pooled.stderr());
        assert.equal(await run.single.exited, 0, run.single.stderr());
        const summary = JSON.parse(run.pooled.stdout()) as PoolSummary;
        assert.ok(summary.jobs.every((job) => job.kind === 'transition'), `${run.name}: no keyframe jobs`);
        const frames = readdirSync(run.frames('single')).sort();
        assert.ok(frames.length >= 3, run.name);
        assert.deepEqual(readdirSync(run.frames('pooled')).sort(), frames, run.name);
        for (const frame of frames) assert.ok(readFileSync(join(run.frames('pooled'), frame)).equals(readFileSync(join(run.frames('single'), frame))), `${run.name}: ${frame}`);
        // The same transition folders: control pictures and image prompts enter the key by content on both sides.
        assert.deepEqual(readdirSync(join(work, `${run.name}-pooled.latentblend`, 'transitions')).sort(), readdirSync(join(work, `${run.name}-single.latentblend`, 'transitions')).sort());
      }
    });

    test('transition --queue with ControlNet flags (a control picture per keyframe, two scales): the same frames as without --queue', async () => {
      const pictures = join(FIXTURES, 'goldens', 'tiny-sd15-controlnet');
      const flags = (out: string, frames: string) => [
        'transition', '--model', SD15, '--prompt1', 'a cat', '--prompt2', 'a dog', '--steps', '4', '--guidance-scale', '0', '--max-branches', '3', '--duration', '1', '--fps', '4',
        '--controlnet', join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx'), '--control-image1', join(pictures, 'control-64.png'), '--control-image2', join(pictures, 'control-96x80.png'),
        '--controlnet-scale', '0.9', '--controlnet-scale2', '0.4', '--out', join(work, out), '--frames-dir', join(work, frames), '--json',
      ];
      const single = spawnCli(flags('cn-single.gif', 'cn-single-frames'));
      const pooled = spawnCli([...flags('cn-pooled.gif', 'cn-pooled-frames'), '--queue', `${redis.url}/2`]);
      assert.equal(await pooled.exited, 0, pooled.stderr());
      assert.equal(await single.exited, 0, single.stderr());
      assert.deepEqual((JSON.parse(pooled.stdout()) as PoolSummary).jobs.map((job) => job.kind), ['transition']);
      const frames = readdirSync(join(work, 'cn-single-frames')).sort();
      assert.ok(frames.length >= 3);
      assert.deepEqual(readdirSync(join(work, 'cn-pooled-frames')).sort(), frames);
      for (const frame of frames) assert.ok(readFileSync(join(work, 'cn-pooled-frames', frame)).equals(readFileSync(join(work, 'cn-single-frames', frame))), frame);
    });
  });
});
