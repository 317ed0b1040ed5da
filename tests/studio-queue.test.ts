/**
 * A waiting job says its place, what runs before it and about when it starts (src/studio/jobs.ts):
 * a queue of jobs whose progress the test drives, no server and no model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobQueue, type JobContext } from '../src/studio/jobs.ts';

/** A job that runs until `release` is called; `context` is its job context once it runs. */
function controlled() {
  let release: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  const job = { context: undefined as JobContext | undefined, release: () => release() };
  const run = async (context: JobContext) => {
    job.context = context;
    await done;
    return 'ok';
  };
  return { job, run };
}

test('queued jobs see what runs before them and a start estimate from earlier jobs of the same kind', async () => {
  const queue = new JobQueue({ progressIntervalMs: 0 });
  // One finished previews job of 10 units teaches the queue its speed.
  const first = controlled();
  const warm = queue.submit('alice', 'previews', first.run, { done: 0, total: 10, label: 'waiting' });
  await new Promise((resolve) => setTimeout(resolve, 5));
  first.job.release();
  await queue.idle();
  const learned = queue.get('alice', warm.id)!;
  const secondsPerUnit = (Date.parse(learned.finishedAt!) - Date.parse(learned.startedAt!)) / 1000 / 10;

  const running = controlled();
  const render = queue.submit('bob', 'render', running.run, { done: 0, total: 1100, label: 'waiting' });
  const previews = queue.submit('alice', 'previews', async () => 'ok', { done: 0, total: 20, label: 'waiting' });
  const mine = queue.submit('alice', 'render', async () => 'ok', { done: 0, total: 1100, label: 'waiting' });
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(queue.get('bob', render.id)!.state, 'running');

  // The running render has no estimate yet: places and kinds, but no start time.
  let view = queue.get('alice', mine.id)!;
  assert.equal(view.position, 2);
  assert.deepEqual(view.ahead, [
    { kind: 'render', state: 'running' },
    { kind: 'previews', state: 'queued' },
  ]);
  assert.equal(view.waitSeconds, undefined);
  assert.equal(queue.get('bob', mine.id), undefined, 'another owner cannot see it');

  // Once the render estimates 30 s left: 30 s + the previews' 20 units at the learned speed.
  running.job.context!.progress({ done: 500, total: 1100, etaSeconds: 30 });
  view = queue.get('alice', mine.id)!;
  assert.deepEqual(view.ahead![0], { kind: 'render', state: 'running', etaSeconds: 30 });
  assert.ok(Math.abs(view.waitSeconds! - (30 + 20 * secondsPerUnit)) < 1e-9, `${view.waitSeconds}`);
  const next = queue.get('alice', previews.id)!;
  assert.equal(next.position, 1);
  assert.equal(next.waitSeconds, 30);
  // No render finished yet, so nothing is known about renders; running and finished jobs have no queue view.
  assert.equal(queue.get('bob', render.id)!.ahead, undefined);
  running.job.release();
  await queue.idle();
  assert.equal(queue.get('alice', mine.id)!.ahead, undefined);
  assert.equal(queue.get('alice', mine.id)!.state, 'done');
});

test('the page words a waiting job: place, what runs before it', async () => {
  const { queuedStatus } = await import('../src/studio/web/progress.ts');
  const job = (position: number, ahead: { kind: string; state: 'running' | 'queued'; etaSeconds?: number }[]) =>
    ({ id: 'x', kind: 'render', state: 'queued', position, ahead, progress: { done: 0, total: 1, label: 'waiting' } }) as const;
  assert.equal(
    queuedStatus(job(2, [{ kind: 'render', state: 'running', etaSeconds: 40 }, { kind: 'previews', state: 'queued' }])),
    'Waiting: 2nd in the queue, after a render (running, about 40 s left) and previews',
  );
  assert.equal(queuedStatus(job(1, [{ kind: 'model', state: 'running' }])), 'Waiting: 1st in the queue, after loading a model (running)');
  assert.equal(
    queuedStatus(job(5, [{ kind: 'render', state: 'running' }, ...Array.from({ length: 4 }, () => ({ kind: 'previews', state: 'queued' as const }))])),
    'Waiting: 5th in the queue, after a render (running), previews and 3 more jobs',
  );
  assert.equal(queuedStatus(job(1, [])), 'Waiting to start…');
});
