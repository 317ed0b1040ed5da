import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  makePlan,
  planCost,
  firstInjectionStep,
  injectionLadder,
  rungSequence,
  countUnetEvaluations,
  MAX_TOTAL_FRAMES,
  type PlanCosts,
} from '../src/blend/plan.ts';
import { branch1Crossfeed, parentalCrossfeed, roundHalfEven, crossfeedEndStep } from '../src/blend/crossfeed.ts';
import { LatentBlendError } from '../src/errors.ts';

function isLatentBlendError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

function assertCloseArray(actual: readonly number[], expected: readonly number[], tolerance = 1e-12): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  actual.forEach((v, i) => {
    assert.ok(Math.abs(v - (expected[i] as number)) <= tolerance, `step ${i}: ${v} vs ${expected[i]}`);
  });
}

// ---------------------------------------------------------------- rounding

test('round() is half to even, like Python', () => {
  assert.equal(roundHalfEven(0.5), 0);
  assert.equal(roundHalfEven(1.5), 2);
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(-2.5), -2);
  assert.equal(roundHalfEven(2.4999999), 2);
  assert.equal(roundHalfEven(2.5000001), 3);
  assert.equal(roundHalfEven(7), 7);
  // Products as SPEC.md computes them: Python's round(30*0.35) is 10, round(4*0.875) is 4.
  assert.equal(roundHalfEven(30 * 0.35), 10);
  assert.equal(roundHalfEven(4 * 0.875), 4);
  assert.equal(crossfeedEndStep(4, 0.625), 2);
});

// ---------------------------------------------------------------- crossfeed

test('parental crossfeed, Turbo defaults, N = 4, k = 2: full power on the steps that run', () => {
  assert.deepEqual(parentalCrossfeed(4, 2, { power: 1, range: 1, decay: 1 }), [0, 0, 1, 1]);
});

test('parental crossfeed, standard defaults, N = 30', () => {
  const params = { power: 0.3, range: 0.6, decay: 0.9 }; // ends before step round(18) = 18
  const expected = new Array<number>(30).fill(0);
  // Steps 15, 16, 17 fall from 0.3 to 0.27.
  expected[15] = 0.3;
  expected[16] = 0.285;
  expected[17] = 0.27;
  assertCloseArray(parentalCrossfeed(30, 15, params), expected);
  // A single active step gets the full power.
  const single = new Array<number>(30).fill(0);
  single[17] = 0.3;
  assertCloseArray(parentalCrossfeed(30, 17, params), single);
  // The range ends at or before k: no crossfeed at all.
  assert.deepEqual(parentalCrossfeed(30, 18, params), new Array<number>(30).fill(0));
  assert.deepEqual(parentalCrossfeed(30, 25, params), new Array<number>(30).fill(0));
});

test('parental crossfeed, N = 4, worked by hand', () => {
  // round(4 * 0.75) = 3: active at steps 1 and 2, from 0.5 to 0.5 * 0.2.
  assertCloseArray(parentalCrossfeed(4, 1, { power: 0.5, range: 0.75, decay: 0.2 }), [0, 0.5, 0.1, 0]);
  // Range 0.875: 3.5 rounds to 4 (half to even), so steps 1..3 ramp 0.6, 0.4, 0.2.
  assertCloseArray(parentalCrossfeed(4, 1, { power: 0.6, range: 0.875, decay: 1 / 3 }), [0, 0.6, 0.4, 0.2]);
});

test('branch-1 crossfeed: ramp anchored at step 0, nothing before step 1', () => {
  // N = 4, round(4 * 0.75) = 3: linspace(0.5, 0.1, 3) = 0.5, 0.3, 0.1 on steps 0..2; step 0 unused.
  assertCloseArray(branch1Crossfeed(4, { power: 0.5, range: 0.75, decay: 0.2 }), [0, 0.3, 0.1, 0]);
  // Range 0.625: 2.5 rounds to 2 (half to even), not 3.
  assertCloseArray(branch1Crossfeed(4, { power: 1, range: 0.625, decay: 0.5 }), [0, 0.5, 0, 0]);
  // N = 30, power 0.5, range 0.7 (21 steps), decay 0.2: c_i = 0.5 - 0.02 i for i = 1..20.
  const c = branch1Crossfeed(30, { power: 0.5, range: 0.7, decay: 0.2 });
  const expected = Array.from({ length: 30 }, (_, i) => (i >= 1 && i <= 20 ? 0.5 - 0.02 * i : 0));
  assertCloseArray(c, expected);
  assert.equal(c[20], 0.1);
  // Defaults (power 0) and ranges too short for step 1: all zeros.
  assert.deepEqual(branch1Crossfeed(30, { power: 0, range: 0, decay: 0 }), new Array<number>(30).fill(0));
  assert.deepEqual(branch1Crossfeed(4, { power: 1, range: 0.25, decay: 1 }), [0, 0, 0, 0]);
});

test('crossfeed rejects out-of-range values, naming them', () => {
  assert.throws(
    () => parentalCrossfeed(30, 10, { power: 1.2, range: 0.6, decay: 0.9 }),
    isLatentBlendError(/parental crossfeed power: got 1\.2.*\[0, 1\]/),
  );
  assert.throws(
    () => branch1Crossfeed(30, { power: 0.5, range: -0.1, decay: 0.9 }),
    isLatentBlendError(/branch1 crossfeed range: got -0\.1/),
  );
  assert.throws(() => parentalCrossfeed(4, 4, { power: 1, range: 1, decay: 1 }), isLatentBlendError(/injectionStep: got 4.*1 to 3/));
  assert.throws(() => branch1Crossfeed(0, { power: 1, range: 1, decay: 1 }), isLatentBlendError(/numInferenceSteps: got 0/));
});

// ---------------------------------------------------------------- plan

test("SPEC's Turbo default: 10 frames, 8 branches at k = 2 of 4, 24 UNet evaluations", () => {
  const plan = makePlan({ numInferenceSteps: 4, depthStrength: 0.5, preset: 'turbo' });
  assert.equal(plan.firstInjectionStep, 2);
  assert.equal(plan.totalFrames, 10);
  assert.equal(plan.branches, 8);
  assert.deepEqual(
    plan.insertions.map((i) => i.injectionStep),
    [2, 2, 2, 2, 2, 2, 2, 2],
  );
  assert.equal(plan.unetEvaluations, 2 * 4 + 8 * 2);
  assert.equal(plan.sizedBy, 'default');
  assert.equal(plan.predictedSeconds, null);
  assert.equal(makePlan({ numInferenceSteps: 4, depthStrength: 0.5, preset: 'turbo', guidanceFactor: 2 }).unetEvaluations, 48);
});

test('first injection step: round half to even, clamped to [1, N-1]', () => {
  assert.equal(firstInjectionStep(4, 0.625), 2); // 2.5 → 2
  assert.equal(firstInjectionStep(4, 0.875), 3); // 3.5 → 4 → clamped to 3
  assert.equal(firstInjectionStep(30, 0.25), 8); // 7.5 → 8
  assert.equal(firstInjectionStep(30, 0.35), 10); // 10.5 → 10
  assert.equal(firstInjectionStep(25, 0.5), 12); // 12.5 → 12
  assert.equal(firstInjectionStep(10, 0.05), 1); // 0.5 → 0 → clamped to 1
  assert.equal(firstInjectionStep(4, 0.99), 3);
  assert.throws(() => firstInjectionStep(30, 0), isLatentBlendError(/depthStrength: got 0.*\(0, 1\)/));
  assert.throws(() => firstInjectionStep(30, 1), isLatentBlendError(/depthStrength: got 1/));
  assert.throws(() => firstInjectionStep(1, 0.5), isLatentBlendError(/numInferenceSteps: got 1/));
});

test('standard ladder: from k0 to N-1 in steps of ceil(N/10)', () => {
  assert.deepEqual(injectionLadder(30, 0.5, 'standard'), [15, 18, 21, 24, 27]);
  assert.deepEqual(injectionLadder(30, 0.3, 'standard'), [9, 12, 15, 18, 21, 24, 27]);
  assert.deepEqual(injectionLadder(25, 0.5, 'standard'), [12, 15, 18, 21, 24]);
  assert.deepEqual(injectionLadder(4, 0.5, 'standard'), [2, 3]);
  assert.deepEqual(injectionLadder(50, 0.9, 'standard'), [45]);
  assert.deepEqual(injectionLadder(50, 0.8, 'standard'), [40, 45]);
  assert.deepEqual(injectionLadder(30, 0.5, 'turbo'), [15]);
  assert.throws(
    () => injectionLadder(30, 0.5, 'fast' as 'turbo'),
    isLatentBlendError(/preset: got "fast"/),
  );
});

test('standard default: 16 frames, coarse rungs first, later rungs more', () => {
  const plan = makePlan({ numInferenceSteps: 30, depthStrength: 0.5, preset: 'standard' });
  assert.equal(plan.totalFrames, 16);
  // Worked by hand: one per rung, then D'Hondt with weights 1..5 for the other nine.
  assert.deepEqual(
    plan.rungs.map((r) => r.branches),
    [1, 2, 3, 4, 4],
  );
  assert.deepEqual(
    plan.insertions.map((i) => i.injectionStep),
    [15, 18, 18, 21, 21, 21, 24, 24, 24, 24, 27, 27, 27, 27],
  );
  assert.equal(plan.unetEvaluations, 60 + 15 + 2 * 12 + 3 * 9 + 4 * 6 + 4 * 3);
});

test('small standard plans use the coarse rungs first', () => {
  const three = makePlan({ numInferenceSteps: 30, depthStrength: 0.5, preset: 'standard', maxBranches: 3 });
  assert.deepEqual(three.insertions, [{ injectionStep: 15 }]);
  const five = makePlan({ numInferenceSteps: 30, depthStrength: 0.5, preset: 'standard', maxBranches: 5 });
  assert.deepEqual(
    five.insertions.map((i) => i.injectionStep),
    [15, 18, 21],
  );
  const two = makePlan({ numInferenceSteps: 30, depthStrength: 0.5, preset: 'standard', maxBranches: 2 });
  assert.equal(two.branches, 0);
  assert.equal(two.unetEvaluations, 60);
});

test('branch distribution: one more branch is the same plan plus one; later rungs never get fewer', () => {
  const rungs = 7;
  const sequence = rungSequence(rungs, 300);
  const counts = new Array<number>(rungs).fill(0);
  sequence.forEach((rung, j) => {
    counts[rung] = (counts[rung] as number) + 1;
    if (j + 1 >= rungs) {
      for (let r = 1; r < rungs; r++) {
        assert.ok((counts[r] as number) >= (counts[r - 1] as number), `after ${j + 1}: ${counts.join(',')}`);
      }
    }
  });
  // Shares approach 1 : 2 : … : 7.
  const total = 300;
  counts.forEach((c, r) => assert.ok(Math.abs(c - (total * (r + 1)) / 28) <= 1.5, `rung ${r}: ${c}`));
  // Insertions are ordered by injection step.
  const plan = makePlan({ numInferenceSteps: 30, depthStrength: 0.3, preset: 'standard', maxBranches: 40 });
  const steps = plan.insertions.map((i) => i.injectionStep);
  assert.deepEqual(steps, [...steps].sort((x, y) => x - y));
  assert.equal(countUnetEvaluations(30, steps, 1), plan.unetEvaluations);
});

const turboCosts: PlanCosts = {
  unetSecondsPerStep: 0.05,
  decodeSecondsPerImage: 0.1,
  metricSecondsPerPair: 0.01,
  guidanceFactor: 1,
};

test('planCost counts UNet evaluations, decodes and distance pairs', () => {
  const plan = makePlan({ numInferenceSteps: 4, depthStrength: 0.5, preset: 'turbo', costs: turboCosts });
  const cost = planCost(plan, turboCosts);
  assert.equal(cost.unetEvaluations, 24);
  assert.equal(cost.decodes, 10);
  assert.equal(cost.metricPairs, 17);
  assert.ok(Math.abs(cost.seconds - (24 * 0.05 + 10 * 0.1 + 17 * 0.01)) < 1e-12, 'Math.abs(cost.seconds - (24 * 0.05 + 10 * 0.1 + 17 * 0.01)) < 1e-12');
  assert.equal(plan.predictedSeconds, cost.seconds);
  const withGuidance = planCost(plan, { ...turboCosts, guidanceFactor: 2, fixedSeconds: 1 });
  assert.equal(withGuidance.unetEvaluations, 48);
  assert.ok(Math.abs(withGuidance.seconds - (1 + 48 * 0.05 + 10 * 0.1 + 17 * 0.01)) < 1e-12, 'Math.abs(withGuidance.seconds - (1 + 48 * 0.05 + 10 * 0.1 + 17 * 0.01)) < 1e-12');
});

test('a time budget gives the largest plan that fits, for Turbo too', () => {
  // A and B: 8 × 0.05 + 2 × 0.1 = 0.6 s; the first branch adds 2 × 0.05 + 0.1 + 3 × 0.01 = 0.23 s,
  // each further one 0.22 s.
  const plan = (budget: number) =>
    makePlan({ numInferenceSteps: 4, depthStrength: 0.5, preset: 'turbo', timeBudgetSeconds: budget, costs: turboCosts });
  assert.equal(plan(0.61).branches, 0);
  assert.equal(plan(0.84).branches, 1);
  assert.equal(plan(1.0).branches, 1);
  assert.equal(plan(1.06).branches, 2);
  assert.equal(plan(1.0).sizedBy, 'timeBudget');
  assert.throws(() => plan(0.5), isLatentBlendError(/timeBudgetSeconds: got 0\.5 s.*0\.600 s/));
});

test('more budget never gives fewer branches, and every plan fits its budget', () => {
  const costs: PlanCosts = { unetSecondsPerStep: 0.08, decodeSecondsPerImage: 0.3, metricSecondsPerPair: 0.02, guidanceFactor: 2 };
  let previous = -1;
  for (let budget = 11; budget <= 120; budget += 0.7) {
    const plan = makePlan({ numInferenceSteps: 30, depthStrength: 0.4, preset: 'standard', timeBudgetSeconds: budget, costs });
    assert.ok(plan.branches >= previous, `budget ${budget}`);
    assert.ok((plan.predictedSeconds as number) <= budget, `budget ${budget}: predicted ${plan.predictedSeconds}`);
    // The next larger plan would not fit.
    const bigger = makePlan({ numInferenceSteps: 30, depthStrength: 0.4, preset: 'standard', maxBranches: plan.totalFrames + 1, costs });
    assert.ok((bigger.predictedSeconds as number) > budget, `budget ${budget}: one more branch, ${bigger.predictedSeconds}, still fits`);
    // Same branches as the plan of that size.
    const same = makePlan({ numInferenceSteps: 30, depthStrength: 0.4, preset: 'standard', maxBranches: plan.totalFrames, costs });
    assert.deepEqual(same.insertions, plan.insertions);
    previous = plan.branches;
  }
  const huge = makePlan({ numInferenceSteps: 4, depthStrength: 0.5, preset: 'turbo', timeBudgetSeconds: 1e9, costs: turboCosts });
  assert.equal(huge.totalFrames, MAX_TOTAL_FRAMES);
});

test('plan options are checked, naming the value and the range', () => {
  const base = { numInferenceSteps: 4, depthStrength: 0.5, preset: 'turbo' } as const;
  assert.throws(() => makePlan({ ...base, maxBranches: 10, timeBudgetSeconds: 5, costs: turboCosts }), isLatentBlendError(/both/));
  assert.throws(() => makePlan({ ...base, timeBudgetSeconds: 5 }), isLatentBlendError(/needs measured costs/));
  assert.throws(() => makePlan({ ...base, maxBranches: 1 }), isLatentBlendError(/maxBranches: got 1.*2 to 4096/));
  assert.throws(() => makePlan({ ...base, maxBranches: 2.5 }), isLatentBlendError(/maxBranches: got 2\.5/));
  assert.throws(() => makePlan({ ...base, timeBudgetSeconds: -1, costs: turboCosts }), isLatentBlendError(/timeBudgetSeconds: got -1/));
  assert.throws(
    () => makePlan({ ...base, costs: { ...turboCosts, unetSecondsPerStep: 0 } }),
    isLatentBlendError(/costs\.unetSecondsPerStep: got 0/),
  );
  assert.throws(
    () => makePlan({ ...base, costs: turboCosts, guidanceFactor: 2 }),
    isLatentBlendError(/guidanceFactor: got 2.*costs\.guidanceFactor is 1/),
  );
  assert.throws(() => makePlan({ ...base, guidanceFactor: 3 as 2 }), isLatentBlendError(/guidanceFactor: got 3/));
});
