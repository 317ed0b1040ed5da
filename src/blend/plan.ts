/**
 * The plan (SPEC.md "The plan"): how many branches a transition gets and at which injection step
 * each is inserted, decided before any UNet runs, so its cost is known in advance.
 *
 * - First injection step k0 = clamp(round(N * depthStrength), 1, N - 1), round half to even.
 * - Turbo preset: one rung, every branch at k0.
 * - Standard preset: a ladder of rungs k0, k0 + s, k0 + 2s, … <= N - 1 with s = ceil(N / 10).
 *   Branches are shared out one at a time: the first ones give each rung one branch, coarse to fine
 *   (so a small plan uses the coarse rungs, which make real in-between images, not the fine ones,
 *   which only refine); the rest go by the D'Hondt rule with weights 1, 2, 3, … (rung r gets a
 *   share proportional to r + 1; ties to the coarser rung). So later rungs get more branches, and a
 *   plan with one more branch is the same plan plus one branch (cost grows strictly with size).
 * - Insertion order: rung by rung, coarse (small k) to fine, so every branch's parents exist.
 * - Size: maxBranches (total frames including A and B), or the largest plan whose predicted time
 *   fits a budget in seconds, or the preset's default: Turbo 10 frames, standard 16 frames
 *   (about the Python project's 20-second default budget on a fast GPU, but the same on every
 *   machine, so the same settings give the same frames).
 */
import { LatentBlendError } from '../errors.ts';
import { roundHalfEven } from './crossfeed.ts';

/** 'turbo': distilled few-step models; 'standard': everything else (same words as the model preset). */
export type PlanPreset = 'turbo' | 'standard';

/** Default total frames (including A and B) when neither maxBranches nor a budget is given. */
export const DEFAULT_TOTAL_FRAMES: Readonly<Record<PlanPreset, number>> = { turbo: 10, standard: 16 };

/** Largest plan: total frames including A and B. */
export const MAX_TOTAL_FRAMES = 4096;

/** Measured costs on this machine, in seconds. */
export interface PlanCosts {
  /** Wall time of one UNet evaluation as it will be run (one latent, one pass), > 0. */
  readonly unetSecondsPerStep: number;
  /** Wall time of one VAE decode (one frame), >= 0. */
  readonly decodeSecondsPerImage: number;
  /** Wall time of one perceptual distance between two frames, >= 0 (default 0). */
  readonly metricSecondsPerPair?: number;
  /** UNet evaluations per denoising step: 2 with unbatched classifier-free guidance, else 1. */
  readonly guidanceFactor: 1 | 2;
  /** One-off time of a transition (text encoding, set-up), >= 0 (default 0). */
  readonly fixedSeconds?: number;
}

export interface PlanOptions {
  /** N, the scheduler's number of denoising steps: integer 2 .. 10000. */
  readonly numInferenceSteps: number;
  /** In (0, 1): where the first branches are injected (k0 = round(N * depthStrength)). */
  readonly depthStrength: number;
  readonly preset: PlanPreset;
  /** Total frames including A and B, integer 2 .. 4096. Not together with timeBudgetSeconds. */
  readonly maxBranches?: number;
  /** Seconds the transition may take, > 0; needs costs. Not together with maxBranches. */
  readonly timeBudgetSeconds?: number;
  /** Needed with a budget; with them a plan also gets predictedSeconds. */
  readonly costs?: PlanCosts;
  /** UNet evaluations per step when no costs are given (default 1); must agree with costs. */
  readonly guidanceFactor?: 1 | 2;
}

/** One rung of the ladder: an injection step and how many branches start there. */
export interface PlanRung {
  readonly injectionStep: number;
  readonly branches: number;
}

/** One insertion, in the order the engine performs them. */
export interface PlanInsertion {
  readonly injectionStep: number;
}

export interface Plan {
  readonly preset: PlanPreset;
  readonly numInferenceSteps: number;
  readonly depthStrength: number;
  /** k0 = clamp(round(N * depthStrength), 1, N - 1). */
  readonly firstInjectionStep: number;
  /** What set the size: an explicit maxBranches, a time budget, or the preset's default. */
  readonly sizedBy: 'maxBranches' | 'timeBudget' | 'default';
  /** Ascending injection steps; a rung may have 0 branches in a small plan. */
  readonly rungs: readonly PlanRung[];
  /** Insertions in order (coarse rungs first). */
  readonly insertions: readonly PlanInsertion[];
  /** Number of branches besides A and B. */
  readonly branches: number;
  /** branches + 2. */
  readonly totalFrames: number;
  readonly guidanceFactor: 1 | 2;
  /** (2N + sum over branches of (N - k)) * guidanceFactor. */
  readonly unetEvaluations: number;
  /** Predicted wall time in seconds when costs were given, else null. */
  readonly predictedSeconds: number | null;
}

/** A plan's predicted work and time. */
export interface PlanCost {
  readonly unetEvaluations: number;
  /** One VAE decode per frame. */
  readonly decodes: number;
  /** Distances measured: A–B once, then each branch to its two neighbours (0 without branches). */
  readonly metricPairs: number;
  readonly seconds: number;
}

function fail(message: string): never {
  throw new LatentBlendError(message);
}

function checkSteps(numInferenceSteps: number): void {
  if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 2 || numInferenceSteps > 10_000) {
    fail(`numInferenceSteps: got ${String(numInferenceSteps)}, expected an integer from 2 to 10000.`);
  }
}

function checkGuidanceFactor(value: unknown, name: string): asserts value is 1 | 2 {
  if (value !== 1 && value !== 2) fail(`${name}: got ${String(value)}, expected 1 or 2.`);
}

function checkCosts(costs: PlanCosts): void {
  const positive = costs.unetSecondsPerStep;
  if (typeof positive !== 'number' || !Number.isFinite(positive) || positive <= 0) {
    fail(`costs.unetSecondsPerStep: got ${String(positive)}, expected a finite number of seconds > 0.`);
  }
  const nonNegative: [string, number | undefined][] = [
    ['decodeSecondsPerImage', costs.decodeSecondsPerImage],
    ['metricSecondsPerPair', costs.metricSecondsPerPair ?? 0],
    ['fixedSeconds', costs.fixedSeconds ?? 0],
  ];
  for (const [name, value] of nonNegative) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      fail(`costs.${name}: got ${String(value)}, expected a finite number of seconds >= 0.`);
    }
  }
  checkGuidanceFactor(costs.guidanceFactor, 'costs.guidanceFactor');
}

/**
 * k0 = clamp(round(N * depthStrength), 1, N - 1), with round half to even (Python's round).
 *
 * @param numInferenceSteps N, integer 2 .. 10000
 * @param depthStrength in the open interval (0, 1)
 */
export function firstInjectionStep(numInferenceSteps: number, depthStrength: number): number {
  checkSteps(numInferenceSteps);
  if (typeof depthStrength !== 'number' || !Number.isFinite(depthStrength) || depthStrength <= 0 || depthStrength >= 1) {
    fail(`depthStrength: got ${String(depthStrength)}, expected a number in the open interval (0, 1).`);
  }
  const k0 = roundHalfEven(numInferenceSteps * depthStrength);
  return Math.min(Math.max(k0, 1), numInferenceSteps - 1);
}

/**
 * Injection steps of the rungs: [k0] for Turbo; k0, k0 + ceil(N/10), … up to N - 1 for standard.
 */
export function injectionLadder(numInferenceSteps: number, depthStrength: number, preset: PlanPreset): number[] {
  const k0 = firstInjectionStep(numInferenceSteps, depthStrength);
  if (preset === 'turbo') return [k0];
  if (preset !== 'standard') fail(`preset: got ${JSON.stringify(preset)}, expected 'turbo' or 'standard'.`);
  const stride = Math.ceil(numInferenceSteps / 10);
  const ladder: number[] = [];
  for (let k = k0; k <= numInferenceSteps - 1; k += stride) ladder.push(k);
  return ladder;
}

/**
 * The rung each successive branch goes to (see the module comment): the first `rungCount` go to
 * rungs 0, 1, 2, …; then D'Hondt with weights r + 1. Element j is the rung of branch j + 1, so the
 * plan with B branches takes the first B elements.
 */
export function rungSequence(rungCount: number, branches: number): number[] {
  const counts = new Array<number>(rungCount).fill(0);
  const sequence: number[] = [];
  for (let j = 0; j < branches; j++) {
    let pick = 0;
    if (j < rungCount) {
      pick = j;
    } else {
      // Largest (r + 1) / (counts[r] + 1); compared by cross-multiplying, so exact.
      for (let r = 1; r < rungCount; r++) {
        if ((r + 1) * ((counts[pick] as number) + 1) > (pick + 1) * ((counts[r] as number) + 1)) pick = r;
      }
    }
    counts[pick] = (counts[pick] as number) + 1;
    sequence.push(pick);
  }
  return sequence;
}

/**
 * UNet evaluations of a transition: (2N for A and B + sum of (N - k) over branches) * guidanceFactor.
 *
 * @param injectionSteps the injection step of every branch besides A and B
 */
export function countUnetEvaluations(
  numInferenceSteps: number,
  injectionSteps: readonly number[],
  guidanceFactor: 1 | 2,
): number {
  let steps = 2 * numInferenceSteps;
  for (const k of injectionSteps) steps += numInferenceSteps - k;
  return steps * guidanceFactor;
}

function secondsOf(unetEvaluations: number, decodes: number, metricPairs: number, costs: PlanCosts): number {
  return (
    (costs.fixedSeconds ?? 0) +
    unetEvaluations * costs.unetSecondsPerStep +
    decodes * costs.decodeSecondsPerImage +
    metricPairs * (costs.metricSecondsPerPair ?? 0)
  );
}

/**
 * A plan's predicted work and wall time under `costs` (its guidanceFactor is the one in costs).
 * seconds = fixed + UNet evaluations * unetSecondsPerStep + frames * decodeSecondsPerImage
 *         + metric pairs * metricSecondsPerPair, with metric pairs = 1 + 2 * branches (0 if none).
 */
export function planCost(plan: Pick<Plan, 'numInferenceSteps' | 'insertions'>, costs: PlanCosts): PlanCost {
  checkCosts(costs);
  const branches = plan.insertions.length;
  const unetEvaluations = countUnetEvaluations(
    plan.numInferenceSteps,
    plan.insertions.map((insertion) => insertion.injectionStep),
    costs.guidanceFactor,
  );
  const decodes = branches + 2;
  const metricPairs = branches > 0 ? 1 + 2 * branches : 0;
  return { unetEvaluations, decodes, metricPairs, seconds: secondsOf(unetEvaluations, decodes, metricPairs, costs) };
}

/**
 * Builds the plan (see the module comment).
 *
 * @throws LatentBlendError for a bad value (named, with its allowed range), for maxBranches together
 *   with a budget, for a budget without costs, and for a budget below the cost of A and B alone.
 */
export function makePlan(options: PlanOptions): Plan {
  const { numInferenceSteps, depthStrength, preset, maxBranches, timeBudgetSeconds, costs } = options;
  const ladder = injectionLadder(numInferenceSteps, depthStrength, preset);
  if (maxBranches !== undefined && timeBudgetSeconds !== undefined) {
    fail(
      `maxBranches (${String(maxBranches)}) and timeBudgetSeconds (${String(timeBudgetSeconds)}) were both given; give one of them, or neither for the default.`,
    );
  }
  if (costs !== undefined) checkCosts(costs);
  if (options.guidanceFactor !== undefined) checkGuidanceFactor(options.guidanceFactor, 'guidanceFactor');
  if (options.guidanceFactor !== undefined && costs !== undefined && options.guidanceFactor !== costs.guidanceFactor) {
    fail(
      `guidanceFactor: got ${options.guidanceFactor} but costs.guidanceFactor is ${costs.guidanceFactor}; they must agree.`,
    );
  }
  const guidanceFactor = options.guidanceFactor ?? costs?.guidanceFactor ?? 1;

  let branches: number;
  let sizedBy: Plan['sizedBy'];
  let sequence: number[];
  if (timeBudgetSeconds !== undefined) {
    if (typeof timeBudgetSeconds !== 'number' || !Number.isFinite(timeBudgetSeconds) || timeBudgetSeconds <= 0) {
      fail(`timeBudgetSeconds: got ${String(timeBudgetSeconds)}, expected a finite number of seconds > 0.`);
    }
    if (costs === undefined) {
      fail('timeBudgetSeconds needs measured costs (costs.unetSecondsPerStep, costs.decodeSecondsPerImage, …).');
    }
    sequence = rungSequence(ladder.length, MAX_TOTAL_FRAMES - 2);
    branches = largestFit(numInferenceSteps, ladder, sequence, costs, timeBudgetSeconds);
    sizedBy = 'timeBudget';
  } else {
    if (maxBranches !== undefined) {
      if (!Number.isSafeInteger(maxBranches) || maxBranches < 2 || maxBranches > MAX_TOTAL_FRAMES) {
        fail(
          `maxBranches: got ${String(maxBranches)}, expected an integer from 2 to ${MAX_TOTAL_FRAMES} (total frames including A and B).`,
        );
      }
      branches = maxBranches - 2;
      sizedBy = 'maxBranches';
    } else {
      branches = DEFAULT_TOTAL_FRAMES[preset] - 2;
      sizedBy = 'default';
    }
    sequence = rungSequence(ladder.length, branches);
  }

  const counts = new Array<number>(ladder.length).fill(0);
  for (const rung of sequence.slice(0, branches)) counts[rung] = (counts[rung] as number) + 1;
  const rungs = ladder.map((injectionStep, r) => ({ injectionStep, branches: counts[r] as number }));
  const insertions: PlanInsertion[] = [];
  for (const rung of rungs) {
    for (let j = 0; j < rung.branches; j++) insertions.push({ injectionStep: rung.injectionStep });
  }
  const unetEvaluations = countUnetEvaluations(
    numInferenceSteps,
    insertions.map((insertion) => insertion.injectionStep),
    guidanceFactor,
  );
  return {
    preset,
    numInferenceSteps,
    depthStrength,
    firstInjectionStep: ladder[0] as number,
    sizedBy,
    rungs,
    insertions,
    branches,
    totalFrames: branches + 2,
    guidanceFactor,
    unetEvaluations,
    predictedSeconds: costs === undefined ? null : planCost({ numInferenceSteps, insertions }, costs).seconds,
  };
}

/** Largest number of branches (a prefix of `sequence`) whose predicted time is <= the budget. */
function largestFit(
  numInferenceSteps: number,
  ladder: readonly number[],
  sequence: readonly number[],
  costs: PlanCosts,
  budgetSeconds: number,
): number {
  const g = costs.guidanceFactor;
  let steps = 2 * numInferenceSteps;
  const minimum = secondsOf(steps * g, 2, 0, costs);
  if (minimum > budgetSeconds) {
    fail(
      `timeBudgetSeconds: got ${budgetSeconds} s, but keyframes A and B alone are predicted to take ${minimum.toFixed(3)} s on this machine; the budget must be at least that.`,
    );
  }
  let branches = 0;
  for (const rung of sequence) {
    steps += numInferenceSteps - (ladder[rung] as number);
    const next = branches + 1;
    // Integers in, one formula: the same value planCost gives for this plan.
    if (secondsOf(steps * g, next + 2, 1 + 2 * next, costs) > budgetSeconds) break;
    branches = next;
  }
  return branches;
}
