/** The worker pool's pure parts: queue URLs, the film → jobs planner, its flows and planned scaling. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseFilmSpec, type FilmSpec } from '../src/film/spec.ts';
import { parseQueueUrl } from '../src/queue/connection.ts';
import { planFilmJobs, plannedScaling, dependenciesOf, childrenOf, type FilmJobPlan } from '../src/queue/plan.ts';
import { filmFlows } from '../src/queue/flows.ts';
import { parseFilmJob, filmJobSchema } from '../src/queue/jobs.ts';
import { LatentBlendError } from '../src/errors.ts';

function film(keyframes: number, extra: string[] = [], negatives: Record<number, string> = {}): FilmSpec {
  const lines = ['model: some/model', ...extra, 'keyframes:'];
  for (let index = 0; index < keyframes; index++) {
    lines.push(`  - prompt: prompt ${index}`, `    seed: ${index + 10}`);
    if (negatives[index] !== undefined) lines.push(`    negativePrompt: ${negatives[index]}`);
  }
  return parseFilmSpec(lines.join('\n'), { path: 'film.yaml' });
}

describe('queue URL', () => {
  test('host, port, database, credentials and TLS', () => {
    const plain = parseQueueUrl('redis://10.0.0.5:6380');
    assert.deepEqual([plain.host, plain.port, plain.db, plain.password, plain.tls], ['10.0.0.5', 6380, 0, undefined, undefined]);
    const full = parseQueueUrl('rediss://me:p%40ss@redis.example:7000/3');
    assert.deepEqual([full.host, full.port, full.db, full.username, full.password, full.tls], ['redis.example', 7000, 3, 'me', 'p@ss', {}]);
    assert.equal(parseQueueUrl('redis://localhost').port, 6379);
    assert.equal(parseQueueUrl('redis://[::1]:6379').host, '::1');
    assert.equal(plain.maxRetriesPerRequest, null, 'BullMQ workers need commands to wait for a reconnect');
  });

  test('bad values are named', () => {
    for (const bad of ['localhost:6379', 'http://localhost:6379', 'redis://', 'redis://host:6379/x', 'redis://host:6379/99', 'redis://host:6379?db=1']) {
      assert.throws(() => parseQueueUrl(bad), (error: unknown) => error instanceof LatentBlendError && error.message.includes(JSON.stringify(bad).slice(1, -1)), bad);
    }
  });
});

describe('film → jobs', () => {
  test('K keyframes give K keyframe jobs and K-1 transitions, each transition needing its two keyframes', () => {
    const plan = planFilmJobs(film(4), 'run1');
    assert.equal(plan.keyframes.length, 4);
    assert.equal(plan.transitions.length, 3);
    assert.deepEqual(
      plan.keyframes.map((job) => job.keyframe),
      [0, 1, 2, 3],
    );
    for (const transition of plan.transitions) {
      const a = plan.keyframes.find((job) => job.jobId === transition.keyframeA)!;
      const b = plan.keyframes.find((job) => job.jobId === transition.keyframeB)!;
      assert.deepEqual([a.keyframe, b.keyframe], [transition.index, transition.index + 1]);
      assert.deepEqual(dependenciesOf(plan, transition.jobId), [a.jobId, b.jobId]);
    }
    // A BullMQ child has one parent: every keyframe job is the child of exactly one transition.
    const children = plan.transitions.flatMap((transition) => childrenOf(plan, transition.jobId).map((job) => job.jobId));
    assert.deepEqual([...children].sort(), plan.keyframes.map((job) => job.jobId).sort());
    assert.equal(childrenOf(plan, plan.transitions[0]!.jobId).length, 2);
    // Keyframes are independent without branch-1 crossfeed.
    for (const keyframe of plan.keyframes) assert.deepEqual(dependenciesOf(plan, keyframe.jobId), []);
    assert.equal(new Set(plan.keyframes.map((job) => job.name)).size, 4);
    for (const id of [...plan.keyframes, ...plan.transitions].map((job) => job.jobId)) assert.ok(!id.includes(':') && id.startsWith('run1.'));
  });

  test('a keyframe is computed twice only when the two transitions use different negative prompts', () => {
    const plan = planFilmJobs(film(3, [], { 1: 'blurry' }), 'r');
    assert.equal(plan.keyframes.length, 4, 'keyframe 2 once as B of transition 1 and once as A of transition 2');
    const [first, second] = plan.transitions;
    assert.notEqual(first!.keyframeB, second!.keyframeA);
    const b = plan.keyframes.find((job) => job.jobId === first!.keyframeB)!;
    const a = plan.keyframes.find((job) => job.jobId === second!.keyframeA)!;
    assert.notEqual(a.name, b.name, 'different folders');
  });

  test('branch-1 crossfeed chains every keyframe B to its keyframe A', () => {
    const chain = film(4, ['branch1Crossfeed: { power: 0.5, range: 0.5, decay: 0.5 }']);
    const plan = planFilmJobs(chain, 'r');
    assert.equal(plan.keyframes.length, 4);
    for (const transition of plan.transitions) {
      assert.deepEqual(dependenciesOf(plan, transition.keyframeB), [transition.keyframeA]);
    }
    // Keys follow the chain: another keyframe 1 seed changes every later keyframe's folder.
    const other = planFilmJobs(changeSeed(chain, 0), 'r');
    assert.deepEqual(
      plan.keyframes.map((job, index) => job.name === other.keyframes[index]!.name),
      [false, false, false, false],
    );
    const independent = planFilmJobs(changeSeed(film(4), 0), 'r');
    const base = planFilmJobs(film(4), 'r');
    assert.deepEqual(
      base.keyframes.map((job, index) => job.name === independent.keyframes[index]!.name),
      [false, true, true, true],
    );
  });

  test('flows: transitions are parents of the keyframe jobs they own, payloads pass the schema', () => {
    const spec = film(3);
    const plan = planFilmJobs(spec, 'r');
    const flows = filmFlows(plan, { spec, workDir: '/shared/work', model: '/models/m' });
    assert.equal(flows.length, 2);
    assert.deepEqual(
      flows.map((flow) => [flow.name, flow.opts?.jobId, (flow.children ?? []).map((child) => child.opts?.jobId)]),
      plan.transitions.map((transition) => ['transition', transition.jobId, childrenOf(plan, transition.jobId).map((job) => job.jobId)]),
    );
    for (const flow of flows) {
      const job = parseFilmJob(flow.data);
      assert.equal(job.kind, 'transition');
      for (const child of flow.children ?? []) {
        assert.equal(parseFilmJob(child.data).kind, 'keyframe');
        assert.equal(child.opts?.failParentOnFailure, true);
      }
      // The spec travels as YAML and reads back as the same spec.
      assert.deepEqual(parseFilmSpec(job.spec, { path: 'job.yaml' }), spec);
    }
    assert.throws(() => parseFilmJob({ ...(flows[0]!.data as object), index: -1 }), LatentBlendError);
    assert.equal(filmJobSchema.safeParse({ kind: 'other' }).success, false);
  });
});

function changeSeed(spec: FilmSpec, index: number): FilmSpec {
  return { ...spec, keyframes: spec.keyframes.map((keyframe, position) => (position === index ? { ...keyframe, seed: keyframe.seed + 100 } : keyframe)) };
}

describe('planned scaling', () => {
  // Costs in UNet evaluations: a Turbo keyframe 4 steps, a default transition 8 branches × 2 steps.
  const cost = (plan: FilmJobPlan) => (job: { jobId: string }) => (plan.keyframes.some((keyframe) => keyframe.jobId === job.jobId) ? 4 : 16);

  test('one worker takes the sum of all jobs; more workers never take longer; no faster than the critical path', () => {
    const plan = planFilmJobs(film(10), 'r');
    const one = plannedScaling(plan, 1, cost(plan));
    assert.equal(one.makespan, 10 * 4 + 9 * 16);
    assert.equal(one.speedup, 1);
    assert.equal(one.criticalPath, 4 + 16);
    let previous = one.makespan;
    for (const workers of [2, 3, 4, 8, 16, 32]) {
      const scaled = plannedScaling(plan, workers, cost(plan));
      assert.ok(scaled.makespan <= previous, `${workers} workers`);
      assert.ok(scaled.makespan >= scaled.criticalPath);
      previous = scaled.makespan;
    }
    // With a worker per keyframe, all keyframes run at once, then all transitions at once.
    assert.equal(plannedScaling(plan, 10, cost(plan)).makespan, 4 + 16);
  });

  test('two workers on a 3-keyframe film: the keyframes split, then the transitions', () => {
    const plan = planFilmJobs(film(3), 'r');
    // k0 and k1 at once (4), k2 (4) while nothing else is ready, then t0 and t1 at once (16).
    assert.equal(plannedScaling(plan, 2, cost(plan)).makespan, 4 + 4 + 16);
  });

  test('a branch-1-crossfeed chain limits the speed-up', () => {
    const plan = planFilmJobs(film(10, ['branch1Crossfeed: { power: 0.5, range: 0.5, decay: 0.5 }']), 'r');
    const many = plannedScaling(plan, 32, cost(plan));
    assert.equal(many.criticalPath, 10 * 4 + 16);
    assert.equal(many.makespan, many.criticalPath);
  });
});
