/**
 * `node --import tsx bench/pool.ts`: the worker pool.
 *
 * 1. Measured: the wall time of one film (tiny SD-Turbo fixture, 5 keyframes, 20 frames per
 *    transition) rendered by `movie --queue` with 1 and then 2 `latentblend worker` processes on
 *    this machine, and their ratio. Workers on one CPU share its cores (and ONNX Runtime already
 *    uses every core for one worker), so this shows the pool's overhead and that jobs spread, not
 *    GPU scaling: each GPU is a separate machine's worth of compute.
 * 2. Planned: the speed-up with N GPUs (one worker each) from the film's dependency graph
 *    (keyframe jobs, then transitions; see src/queue/plan.ts), with job costs in UNet evaluations
 *    from the engine's plan, for typical films.
 *
 * Writes bench/results/pool.json.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { parseFilmSpec, type FilmSpec } from '../src/film/spec.ts';
import { makePlan, type PlanPreset } from '../src/blend/plan.ts';
import { planFilmJobs, plannedScaling } from '../src/queue/plan.ts';
import { spawnCli, startRedis, type CliProcess } from '../tests/helpers/redis.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = join(ROOT, 'fixtures', 'models', 'tiny-sd-turbo', 'onnx');
const KEYFRAMES = Number(process.env.BENCH_POOL_KEYFRAMES ?? 5);
const BRANCHES = Number(process.env.BENCH_POOL_BRANCHES ?? 20);

function filmYaml(keyframes: number, extra: string[]): string {
  const lines = [...extra, 'keyframes:'];
  for (let index = 0; index < keyframes; index++) lines.push(`  - prompt: scene number ${index}`, `    seed: ${index + 1}`);
  return lines.join('\n');
}

async function measure(workers: number, redisUrl: string, work: string): Promise<number> {
  const processes: CliProcess[] = [];
  for (let index = 0; index < workers; index++) processes.push(spawnCli(['worker', '--queue', redisUrl, '--model', MODEL, '--name', `bench${index + 1}`, '--quiet']));
  try {
    await Promise.all(processes.map((process) => process.waitFor(/ready on/, 120_000)));
    const spec = join(work, `film-${workers}.yaml`);
    writeFileSync(spec, filmYaml(KEYFRAMES, [`model: ${MODEL}`, 'fps: 10', 'transitionDuration: 1', `branchesPerTransition: ${BRANCHES}`]));
    const started = performance.now();
    const command = spawnCli(['movie', spec, '--out', join(work, `film-${workers}.mp4`), '--queue', redisUrl, '--json', '--quiet']);
    const code = await command.exited;
    if (code !== 0) throw new Error(`movie --queue failed: ${command.stderr()}`);
    const seconds = (performance.now() - started) / 1000;
    const summary = JSON.parse(command.stdout()) as { workers: string[] };
    console.log(`${workers} worker(s): ${seconds.toFixed(2)} s wall, jobs taken by ${summary.workers.join(', ')}`);
    return seconds;
  } finally {
    for (const process of processes) process.child.kill('SIGKILL');
  }
}

/** Planned speed-up for N workers of a typical film: K keyframes, a model's steps and frames. */
function planned(name: string, keyframes: number, preset: PlanPreset, steps: number, frames: number, guidanceFactor: 1 | 2) {
  const spec: FilmSpec = parseFilmSpec(filmYaml(keyframes, [`branchesPerTransition: ${frames}`, `steps: ${steps}`]), { path: 'planned.yaml' });
  const plan = planFilmJobs(spec, 'planned');
  const transitionPlan = makePlan({ numInferenceSteps: steps, depthStrength: 0.5, preset, maxBranches: frames, guidanceFactor });
  // A transition job computes only the branches between its keyframes.
  const transitionCost = transitionPlan.unetEvaluations - 2 * steps * guidanceFactor;
  const keyframeCost = steps * guidanceFactor;
  const isKeyframe = new Set(plan.keyframes.map((job) => job.jobId));
  const rows = [1, 2, 4, 8, 16, 32].map((workers) => {
    const scaling = plannedScaling(plan, workers, (job) => (isKeyframe.has(job.jobId) ? keyframeCost : transitionCost));
    return { workers, speedup: Number(scaling.speedup.toFixed(2)), makespan: scaling.makespan, criticalPath: scaling.criticalPath };
  });
  return { film: name, keyframes, steps, framesPerTransition: frames, keyframeJobCost: keyframeCost, transitionJobCost: transitionCost, unit: 'UNet evaluations', rows };
}

const redis = await startRedis();
const work = mkdtempSync(join(os.tmpdir(), 'latentblend-bench-pool-'));
try {
  const one = await measure(1, redis.url, work);
  const two = await measure(2, redis.url, work);
  const measured = {
    film: `tiny-sd-turbo, ${KEYFRAMES} keyframes, ${BRANCHES} frames per transition`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage: os.loadavg()[0],
    oneWorkerSeconds: Number(one.toFixed(2)),
    twoWorkersSeconds: Number(two.toFixed(2)),
    ratio: Number((one / two).toFixed(2)),
    note: 'Both workers share this CPU, so no GPU-like scaling is expected here; see `planned` for N GPUs.',
  };
  console.log(`ratio 1 worker / 2 workers: ${measured.ratio} on ${measured.cpus} CPU core(s) (load average ${(measured.loadAverage ?? 0).toFixed(1)})`);
  const plannedRows = [
    planned('SDXL Turbo defaults, 10 keyframes', 10, 'turbo', 4, 10, 1),
    planned('SDXL Turbo, 10 keyframes, 30 frames per transition', 10, 'turbo', 4, 30, 1),
    planned('SDXL 30 steps with guidance, 10 keyframes, 16 frames', 10, 'standard', 30, 16, 2),
    planned('SDXL 30 steps with guidance, 40 keyframes, 16 frames', 40, 'standard', 30, 16, 2),
  ];
  for (const entry of plannedRows) {
    console.log(`planned, ${entry.film}: ${entry.rows.map((row) => `${row.workers} GPUs ×${row.speedup}`).join(', ')}`);
  }
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'pool.json'), `${JSON.stringify({ date: new Date().toISOString(), measured, planned: plannedRows }, null, 2)}\n`);
  console.log('written bench/results/pool.json');
} finally {
  await redis.dispose();
}
