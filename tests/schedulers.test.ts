/**
 * Scheduler tests: replays diffusers' recorded behaviour (tests/golden/schedulers, made by
 * tools/scheduler_goldens.py) through the TypeScript schedulers, and checks config errors, step
 * count errors and the multistep `state` contract.
 *
 * Tolerances (max abs difference, relative to the magnitude of the values involved):
 * - timesteps: integer ones exactly; fractional ones (float32) within 1e-6 relative (1-2 ulp);
 * - init_noise_sigma: 1e-6 relative;
 * - each step, fed diffusers' own input sample (and our state from the previous step):
 *   scaled input, prev_sample and predicted x0 within 1e-5 * max(1, |input|, |expected|);
 *   observed worst: 1e-6;
 * - the free-running trajectory (our own outputs fed back): final sample within
 *   1e-4 * max(1, |expected|). Observed worst: 1.5e-5, on a zero-SNR schedule whose first step
 *   (sigma = 4096) cancels large terms, where diffusers' own float32 arithmetic is that noisy;
 *   1e-6 elsewhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createScheduler, SUPPORTED_SCHEDULERS, parseSchedulerConfig } from '../src/schedulers/index.ts';
import type { Scheduler, SchedulerState } from '../src/schedulers/scheduler.ts';
import { LatentBlendError } from '../src/errors.ts';

interface GoldenRecord {
  readonly scaled_input: number[];
  readonly model_output: number[];
  readonly noise: number[] | null;
  readonly prev_sample: number[];
  readonly pred_original?: number[];
}
interface GoldenCase {
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly steps: number;
  readonly timesteps: number[];
  readonly init_noise_sigma: number;
  readonly begin: number;
  readonly eta?: number;
  readonly start_sample: number[];
  readonly records: GoldenRecord[];
}
interface GoldenFile {
  readonly class: string;
  readonly cases: GoldenCase[];
}
interface SweepCase {
  readonly class: string;
  readonly config: Record<string, unknown>;
  readonly steps: number;
  readonly timesteps: number[];
  readonly init_noise_sigma: number;
}

const GOLDEN_DIR = new URL('./golden/schedulers/', import.meta.url);
const loadJson = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, GOLDEN_DIR), 'utf8')) as T;

const STEP_TOLERANCE = 1e-5;
const TRAJECTORY_TOLERANCE = 1e-4;
const SCALAR_TOLERANCE = 1e-6;

const f32 = (values: readonly number[]): Float32Array => Float32Array.from(values);
const absMax = (values: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
};

/** Asserts max |actual - expected| <= tolerance * max(1, scaleHints..., |expected|). */
function assertClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number, what: string, ...scaleHints: number[]): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const want = f32(expected);
  const scale = Math.max(1, absMax(want), ...scaleHints);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(actual[i]! - want[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(
    worst <= tolerance * scale,
    `${what}: max abs diff ${worst} at ${at} (got ${actual[at]}, want ${want[at]}) exceeds ${tolerance} * ${scale}`,
  );
}

function assertTimesteps(scheduler: Scheduler, expected: readonly number[], what: string): void {
  assert.equal(scheduler.timesteps.length, expected.length, `${what}: number of timesteps`);
  assert.equal(scheduler.numInferenceSteps, scheduler.timesteps.length, `${what}: numInferenceSteps = timesteps.length`);
  expected.forEach((want, i) => {
    const got = scheduler.timesteps[i]!;
    if (Number.isInteger(want)) assert.equal(got, want, `${what}: timestep ${i}`);
    else assert.ok(Math.abs(got - Math.fround(want)) <= SCALAR_TOLERANCE * Math.abs(want), `${what}: timestep ${i}: got ${got}, want ${want}`);
  });
}

function makeScheduler(className: string, c: GoldenCase): Scheduler {
  return createScheduler(className, c.config, c.steps, c.eta !== undefined ? { eta: c.eta } : {});
}

const GOLDEN_FILES = [
  'EulerDiscreteScheduler.json',
  'EulerAncestralDiscreteScheduler.json',
  'DDIMScheduler.json',
  'LCMScheduler.json',
  'DPMSolverMultistepScheduler.json',
  'PNDMScheduler.json',
];

for (const file of GOLDEN_FILES) {
  const golden = loadJson<GoldenFile>(file);
  for (const c of golden.cases) {
    test(`${golden.class} matches diffusers: ${c.name}`, () => {
      const scheduler = makeScheduler(golden.class, c);
      assert.equal(scheduler.className, golden.class);
      assertTimesteps(scheduler, c.timesteps, c.name);
      assert.ok(
        Math.abs(scheduler.initNoiseSigma - c.init_noise_sigma) <= SCALAR_TOLERANCE * c.init_noise_sigma,
        `init_noise_sigma: got ${scheduler.initNoiseSigma}, want ${c.init_noise_sigma}`,
      );
      if (c.records.some((r) => r.noise !== null)) assert.equal(scheduler.needsStepNoise, true, 'needsStepNoise');

      // Step by step from diffusers' own inputs, threading our state.
      let state: SchedulerState = undefined;
      c.records.forEach((r, j) => {
        const stepIndex = c.begin + j;
        const where = `step ${stepIndex}`;
        const sample = f32(j === 0 ? c.start_sample : c.records[j - 1]!.prev_sample);
        const inputScale = absMax(sample);
        assertClose(scheduler.scaleModelInput(sample, stepIndex), r.scaled_input, STEP_TOLERANCE, `${where} scaled input`, inputScale);
        const out = scheduler.step({
          modelOutput: f32(r.model_output),
          sample,
          stepIndex,
          ...(r.noise !== null ? { noise: f32(r.noise) } : {}),
          state,
        });
        assertClose(out.prevSample, r.prev_sample, STEP_TOLERANCE, `${where} prev_sample`, inputScale);
        if (r.pred_original !== undefined) {
          assertClose(out.predictedOriginal, r.pred_original, STEP_TOLERANCE, `${where} predicted x0`, inputScale, absMax(r.prev_sample));
        }
        state = out.state;
      });

      // Free-running: our own outputs fed back.
      let sample = f32(c.start_sample);
      state = undefined;
      c.records.forEach((r, j) => {
        const out = scheduler.step({
          modelOutput: f32(r.model_output),
          sample,
          stepIndex: c.begin + j,
          ...(r.noise !== null ? { noise: f32(r.noise) } : {}),
          state,
        });
        sample = out.prevSample;
        state = out.state;
      });
      assertClose(sample, c.records[c.records.length - 1]!.prev_sample, TRAJECTORY_TOLERANCE, 'final sample (free-running)');
    });
  }
}

test('timesteps and init_noise_sigma match diffusers across step counts, spacings and offsets', () => {
  const sweep = loadJson<{ cases: SweepCase[] }>('timesteps.json');
  assert.ok(sweep.cases.length > 100);
  for (const c of sweep.cases) {
    const what = `${c.class} ${String(c.config['timestep_spacing'])} offset ${String(c.config['steps_offset'])} n=${c.steps}`;
    const scheduler = createScheduler(c.class, c.config, c.steps);
    assertTimesteps(scheduler, c.timesteps, what);
    assert.ok(Math.abs(scheduler.initNoiseSigma - c.init_noise_sigma) <= SCALAR_TOLERANCE * c.init_noise_sigma, `${what}: init_noise_sigma`);
  }
});

// ---- errors ----

/** Asserts that fn throws a LatentBlendError whose message contains every fragment. */
function assertUserError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${error.message}" should mention ${fragment}`);
    return true;
  });
}

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000 };
const SD15 = { ...SD, skip_prk_steps: true, steps_offset: 1, set_alpha_to_one: false };

test('SUPPORTED_SCHEDULERS lists the implemented diffusers classes', () => {
  assert.deepEqual([...SUPPORTED_SCHEDULERS].sort(), [
    'DDIMScheduler',
    'DPMSolverMultistepScheduler',
    'EulerAncestralDiscreteScheduler',
    'EulerDiscreteScheduler',
    'LCMScheduler',
    'PNDMScheduler',
  ]);
});

test('an unknown scheduler class is an error listing the supported ones', () => {
  assertUserError(() => createScheduler('UniPCMultistepScheduler', SD, 20), 'UniPCMultistepScheduler', ...SUPPORTED_SCHEDULERS);
});

test('config errors name the key, the value and what is allowed', () => {
  assertUserError(() => createScheduler('EulerDiscreteScheduler', { beta_schedule: 'cosine' }, 4), 'beta_schedule', '"cosine"', 'scaled_linear', 'squaredcos_cap_v2');
  assertUserError(() => createScheduler('DDIMScheduler', { timestep_spacing: 'uniform' }, 4), 'timestep_spacing', '"uniform"', 'trailing');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', { prediction_type: 'flow_prediction' }, 4), 'prediction_type', '"flow_prediction"', 'v_prediction');
  assertUserError(() => createScheduler('EulerAncestralDiscreteScheduler', { prediction_type: 'sample' }, 4), 'prediction_type', '"sample"', '"epsilon", "v_prediction"');
  assertUserError(() => createScheduler('PNDMScheduler', { ...SD15, prediction_type: 'sample' }, 4), 'prediction_type', '"sample"');
  assertUserError(() => createScheduler('DDIMScheduler', { thresholding: true }, 4), 'thresholding', 'true', 'not implemented');
  assertUserError(() => createScheduler('DPMSolverMultistepScheduler', { algorithm_type: 'sde-dpmsolver++' }, 4), 'algorithm_type', '"sde-dpmsolver++"', 'dpmsolver++');
  assertUserError(() => createScheduler('DPMSolverMultistepScheduler', { solver_order: 4 }, 4), 'solver_order', '4', '1, 2 or 3');
  assertUserError(() => createScheduler('DPMSolverMultistepScheduler', { use_exponential_sigmas: true }, 4), 'use_exponential_sigmas', 'true');
  assertUserError(() => createScheduler('DPMSolverMultistepScheduler', { variance_type: 'learned_range' }, 4), 'variance_type', '"learned_range"');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', { final_sigmas_type: 'one' }, 4), 'final_sigmas_type', '"one"', '"zero", "sigma_min"');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', { num_train_timesteps: 'many' }, 4), 'num_train_timesteps', '"many"');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', { num_train_timesteps: 10.5 }, 4), 'num_train_timesteps', '10.5', 'int');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', { trained_betas: [0.1, 0.2] }, 1), 'trained_betas', '1000');
  assertUserError(() => createScheduler('PNDMScheduler', { ...SD15, skip_prk_steps: false }, 10), 'skip_prk_steps', 'false', 'PLMS');
  assertUserError(() => createScheduler('PNDMScheduler', SD, 10), 'skip_prk_steps', 'missing');
  assertUserError(() => createScheduler('LCMScheduler', { original_inference_steps: 2000 }, 4), 'original_inference_steps', '2000');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', 'scaled_linear', 4), 'JSON object');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', null, 4), 'JSON object');
});

test('unknown keys and keys the class does not read are ignored, as diffusers does', () => {
  const config = {
    ...SD,
    _class_name: 'PNDMScheduler',
    _diffusers_version: '0.6.0',
    skip_prk_steps: false, // PNDM-only key: irrelevant for Euler
    use_karras_sigmas: true, // EulerAncestral has no Karras option in diffusers
    clip_sample: 'whatever',
    something_new: [1, 2, 3],
  };
  const parsed = parseSchedulerConfig('EulerAncestralDiscreteScheduler', config);
  assert.deepEqual([...parsed.ignoredKeys].sort(), ['_class_name', '_diffusers_version', 'clip_sample', 'skip_prk_steps', 'something_new', 'use_karras_sigmas']);
  assert.equal(createScheduler('EulerAncestralDiscreteScheduler', config, 4).timesteps.length, 4);
  // null means "unset" in diffusers' JSON.
  assert.equal(parseSchedulerConfig('EulerDiscreteScheduler', { trained_betas: null, sigma_min: null }).trainedBetas, null);
});

test('class defaults follow diffusers', () => {
  assert.equal(parseSchedulerConfig('DDIMScheduler', {}).clipSample, true);
  assert.equal(parseSchedulerConfig('DDIMScheduler', {}).timestepSpacing, 'leading');
  assert.equal(parseSchedulerConfig('EulerDiscreteScheduler', {}).timestepSpacing, 'linspace');
  assert.equal(parseSchedulerConfig('PNDMScheduler', { skip_prk_steps: true }).setAlphaToOne, false);
  assert.equal(parseSchedulerConfig('LCMScheduler', {}).betaSchedule, 'scaled_linear');
  assert.equal(parseSchedulerConfig('DPMSolverMultistepScheduler', { algorithm_type: 'deis', solver_type: 'bh2' }).solverType, 'midpoint');
});

test('invalid step counts are errors naming the value and the allowed range', () => {
  for (const bad of [0, -1, 2.5, Number.NaN, 1001]) {
    assertUserError(() => createScheduler('EulerDiscreteScheduler', SD, bad), String(bad), 'from 1 to 1000');
  }
  assertUserError(() => createScheduler('DDIMScheduler', { ...SD, num_train_timesteps: 100 }, 101), '101', 'from 1 to 100');
  assertUserError(() => createScheduler('LCMScheduler', { original_inference_steps: 50 }, 51), '51', 'from 1 to 50');
  assertUserError(() => createScheduler('LCMScheduler', { original_inference_steps: 50 }, 0), '0', 'from 1 to 50');
  // numpy's arange gives 62 trailing timesteps for 61 steps; diffusers would run a timestep -1.
  assertUserError(() => createScheduler('EulerAncestralDiscreteScheduler', { ...SD, timestep_spacing: 'trailing' }, 61), '61', 'trailing');
  assertUserError(() => createScheduler('DPMSolverMultistepScheduler', { ...SD, timestep_spacing: 'trailing' }, 103), '103');
  // leading with steps_offset 1 and 1000 steps would index timestep 1000.
  assertUserError(() => createScheduler('DDIMScheduler', { ...SD, steps_offset: 1 }, 1000), '1000', 'training range');
  assertUserError(() => createScheduler('DDIMScheduler', SD, 10, { eta: 1.5 }), 'eta', '1.5');
  assertUserError(() => createScheduler('EulerDiscreteScheduler', SD, 10, { eta: 0.5 }), 'eta');
});

// ---- the step contract ----

function gaussianLike(length: number, seed: number): Float32Array {
  // A small deterministic pseudo-random vector (not a real Gaussian; the maths does not care).
  const out = new Float32Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out[i] = (x / 2147483648) * 2 - 1;
  }
  return out;
}

test('stochastic schedulers require noise exactly where diffusers draws it', () => {
  const ea = createScheduler('EulerAncestralDiscreteScheduler', { ...SD, timestep_spacing: 'trailing' }, 4);
  assert.equal(ea.needsStepNoise, true);
  const x = gaussianLike(8, 1);
  const m = gaussianLike(8, 2);
  assert.throws(() => ea.step({ modelOutput: m, sample: x, stepIndex: 0 }), /noise/);
  ea.step({ modelOutput: m, sample: x, stepIndex: 3 }); // sigma_up = 0 at the last step
  const lcm = createScheduler('LCMScheduler', {}, 4);
  assert.equal(lcm.needsStepNoise, true);
  assert.throws(() => lcm.step({ modelOutput: m, sample: x, stepIndex: 2 }), /noise/);
  const last = lcm.step({ modelOutput: m, sample: x, stepIndex: 3 });
  assert.deepEqual(last.prevSample, last.predictedOriginal); // the last LCM step returns x0
  assert.equal(createScheduler('LCMScheduler', {}, 1).needsStepNoise, false);
  assert.equal(createScheduler('DDIMScheduler', SD, 4).needsStepNoise, false);
  assert.equal(createScheduler('DDIMScheduler', SD, 4, { eta: 0.5 }).needsStepNoise, true);
  for (const name of ['EulerDiscreteScheduler', 'DPMSolverMultistepScheduler', 'PNDMScheduler']) {
    assert.equal(createScheduler(name, SD15, 4).needsStepNoise, false, name);
  }
});

test('steps never modify their inputs and check lengths', () => {
  const s = createScheduler('DPMSolverMultistepScheduler', SD, 10);
  const x = gaussianLike(8, 3);
  const m = gaussianLike(8, 4);
  const xCopy = x.slice();
  const mCopy = m.slice();
  const first = s.step({ modelOutput: m, sample: x, stepIndex: 0 });
  s.step({ modelOutput: m, sample: first.prevSample, stepIndex: 1, state: first.state });
  assert.deepEqual(x, xCopy);
  assert.deepEqual(m, mCopy);
  assert.throws(() => s.step({ modelOutput: m.subarray(1), sample: x, stepIndex: 0 }), RangeError);
  assert.throws(() => s.step({ modelOutput: m, sample: x, stepIndex: 10 }), RangeError);
  assert.throws(() => s.scaleModelInput(x, -1), RangeError);
});

test('PNDM: n + 1 steps for n >= 2, second timestep repeated', () => {
  const s = createScheduler('PNDMScheduler', SD15, 10);
  assert.equal(s.numInferenceSteps, 11);
  assert.deepEqual(s.timesteps, [901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  assert.equal(createScheduler('PNDMScheduler', SD15, 1).numInferenceSteps, 1);
});

/*
 * Fresh start (state undefined) at step k > 0 means diffusers' first step of a run:
 * - DPM-Solver++: a first-order update from sigma_k to sigma_{k+1} (what diffusers does after
 *   set_begin_index(k); the golden cases "start at step k" check the whole continuation), then
 *   the order rises step by step;
 * - PNDM/PLMS: the first-order update from t_k to t_k - T//n (diffusers' counter-0 formula), then
 *   Adams-Bashforth of order 2, 3, 4; at k = 1 (the repeated timestep) the sample is returned
 *   unchanged because it already sits at that step's output noise level;
 * - the other schedulers are stateless: state is ignored and returned undefined.
 */
test('DPM-Solver++: a fresh start at step k is a first-order step, then the order rises', () => {
  const second = createScheduler('DPMSolverMultistepScheduler', SD, 10);
  const first = createScheduler('DPMSolverMultistepScheduler', { ...SD, solver_order: 1 }, 10);
  const x = gaussianLike(8, 5);
  const m5 = gaussianLike(8, 6);
  const m6 = gaussianLike(8, 7);
  const a = second.step({ modelOutput: m5, sample: x, stepIndex: 5 });
  const b = first.step({ modelOutput: m5, sample: x, stepIndex: 5 });
  assert.deepEqual(a.prevSample, b.prevSample);
  const a2 = second.step({ modelOutput: m6, sample: a.prevSample, stepIndex: 6, state: a.state });
  const b2 = first.step({ modelOutput: m6, sample: b.prevSample, stepIndex: 6, state: b.state });
  assert.notDeepEqual(a2.prevSample, b2.prevSample, 'the second step of the trajectory is second order');
  const fresh = second.step({ modelOutput: m6, sample: a.prevSample, stepIndex: 6 });
  assert.deepEqual(fresh.prevSample, b2.prevSample, 'without state, step 6 is first order again');
  assert.throws(() => second.step({ modelOutput: m6, sample: x, stepIndex: 7, state: a.state }), /state comes from step 5/);
  assert.throws(() => second.step({ modelOutput: m6, sample: x, stepIndex: 6, state: { foreign: true } }), RangeError);
});

test('PNDM: a fresh start at step k >= 2 is the first-order PLMS step, then Adams-Bashforth', () => {
  const s = createScheduler('PNDMScheduler', SD15, 10); // timesteps 901 801 801 701 ... 1
  const x = gaussianLike(8, 8);
  const e4 = gaussianLike(8, 9);
  const e5 = gaussianLike(8, 10);
  const k = 4; // timestep 601 -> 501
  const out = s.step({ modelOutput: e4, sample: x, stepIndex: k });
  // The same first-order update is deterministic DDIM between the same two timesteps.
  const ddim = createScheduler('DDIMScheduler', { ...SD15, clip_sample: false }, 10);
  const viaDdim = ddim.step({ modelOutput: e4, sample: x, stepIndex: ddim.timesteps.indexOf(601) });
  assertClose(out.prevSample, Array.from(viaDdim.prevSample), 1e-6, 'PLMS first step = DDIM step');
  // Next step with state: second-order Adams-Bashforth, i.e. a first-order step with (3 e5 - e4) / 2.
  const next = s.step({ modelOutput: e5, sample: out.prevSample, stepIndex: k + 1, state: out.state });
  const combined = e5.map((v, i) => (3 * v - e4[i]!) / 2);
  const expected = s.step({ modelOutput: combined, sample: out.prevSample, stepIndex: k + 1 });
  assertClose(next.prevSample, Array.from(expected.prevSample), 1e-6, 'PLMS second step');
  // Fresh at the repeated timestep: identity.
  const atOne = s.step({ modelOutput: e4, sample: x, stepIndex: 1 });
  assert.deepEqual(atOne.prevSample, x);
  const afterOne = s.step({ modelOutput: e5, sample: x, stepIndex: 2, state: atOne.state });
  assert.deepEqual(afterOne.prevSample, s.step({ modelOutput: e5, sample: x, stepIndex: 2 }).prevSample);
});

test('stateless schedulers ignore state', () => {
  const x = gaussianLike(8, 11);
  const m = gaussianLike(8, 12);
  for (const name of ['EulerDiscreteScheduler', 'DDIMScheduler']) {
    const s = createScheduler(name, SD, 10);
    const a = s.step({ modelOutput: m, sample: x, stepIndex: 3 });
    assert.equal(a.state, undefined);
    assert.deepEqual(s.step({ modelOutput: m, sample: x, stepIndex: 3, state: 'anything' }).prevSample, a.prevSample);
  }
});
