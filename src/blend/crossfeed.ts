/**
 * Crossfeed schedules: how much of another trajectory is mixed into a running branch before each
 * denoising step, as arrays indexed by step (0 .. N-1).
 *
 * Meaning of "falls linearly from power to power*decay over steps s .. e-1", for both schedules:
 * the ramp is anchored at the branch's start step s (0 for branch B, the injection step k for a
 * child) and at the last active step e-1, where e = round(N * range):
 *   c[s] = power, c[e-1] = power*decay, linear in between, c[i] = 0 for i >= e.
 * A single active step (e = s + 1) gets power. No active step (e <= s): all zeros.
 * This is the Python project's schedule (numpy.linspace over those steps), so its parameters carry
 * over unchanged. The start step's own value has no effect on the latents: branch B has no A latent
 * before step 0 (so c[0] is reported as 0), and a child starts from P[k-1], which mixed with P[k-1]
 * is itself. The first step whose mix changes anything is s + 1.
 *
 * round() is round half to even, as Python's round(), applied to the float64 product N*range.
 */
import { LatentBlendError } from '../errors.ts';

/** Crossfeed parameters, each in [0, 1] (SPEC.md "Crossfeed parameters and defaults"). */
export interface CrossfeedParams {
  /** Share of the other trajectory copied in at the start of the ramp. */
  readonly power: number;
  /** Fraction of the N steps after which crossfeed stops: it is active before step round(N*range). */
  readonly range: number;
  /** Power at the end of the ramp, as a fraction of power. */
  readonly decay: number;
}

/**
 * Round to the nearest integer, halves to the even neighbour (Python's round(); JavaScript's
 * Math.round would send every .5 up). Used for SPEC.md's round(): the first injection step, the
 * crossfeed ranges and the number of film frames. E.g. 2.5 → 2, 3.5 → 4, -2.5 → -2.
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest < 0.5) return floor;
  if (rest > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkSteps(numInferenceSteps: number): void {
  if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > 10_000) {
    throw new LatentBlendError(
      `numInferenceSteps: got ${String(numInferenceSteps)}, expected an integer from 1 to 10000.`,
    );
  }
}

/** Throws unless power, range and decay are numbers in [0, 1]; `prefix` names the parameter group. */
export function checkCrossfeedParams(params: CrossfeedParams, prefix: string): void {
  for (const key of ['power', 'range', 'decay'] as const) {
    const value = params[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new LatentBlendError(`${prefix} ${key}: got ${String(value)}, expected a number in [0, 1].`);
    }
  }
}

/** The step before which crossfeed stops: round(N * range), in 0 .. N. */
export function crossfeedEndStep(numInferenceSteps: number, range: number): number {
  return roundHalfEven(numInferenceSteps * range);
}

/** c[start .. end-1] falls linearly from power to power*decay; everything else is 0. */
function ramp(numInferenceSteps: number, start: number, end: number, params: CrossfeedParams): number[] {
  const coefficients = new Array<number>(numInferenceSteps).fill(0);
  const count = end - start;
  if (count <= 0 || params.power === 0) return coefficients;
  const last = params.power * params.decay;
  if (count === 1) {
    coefficients[start] = params.power;
    return coefficients;
  }
  for (let i = start; i < end - 1; i++) {
    coefficients[i] = params.power + ((last - params.power) * (i - start)) / (count - 1);
  }
  coefficients[end - 1] = last; // exactly power*decay, free of rounding in the ramp
  return coefficients;
}

/**
 * Branch-1 crossfeed: before step i (i >= 1) of branch B, latents := slerp(latents, A.latents[i-1], c[i]).
 * c falls linearly from power (anchored at step 0) to power*decay at step round(N*range) - 1,
 * and is 0 from round(N*range) on. c[0] is always 0 (there is no A latent before step 0).
 *
 * @param numInferenceSteps N, integer 1 .. 10000
 * @param params branch-1 power, range, decay, each in [0, 1]
 * @returns N coefficients in [0, 1], indexed by step
 */
export function branch1Crossfeed(numInferenceSteps: number, params: CrossfeedParams): number[] {
  checkSteps(numInferenceSteps);
  checkCrossfeedParams(params, 'branch1 crossfeed');
  const coefficients = ramp(numInferenceSteps, 0, crossfeedEndStep(numInferenceSteps, params.range), params);
  coefficients[0] = 0;
  return coefficients;
}

/**
 * Parental crossfeed of a child injected at step k: before step i (k <= i), latents :=
 * slerp(latents, P[i-1], c[i]) with P the parents' mix. c[k] = power, falling linearly to
 * power*decay at step round(N*range) - 1, 0 from round(N*range) on; 0 before k (those steps are
 * not run). If round(N*range) <= k, crossfeed is off for the whole child (all zeros).
 *
 * @param numInferenceSteps N, integer 1 .. 10000
 * @param injectionStep k, integer 1 .. N-1
 * @param params parental power, range, decay, each in [0, 1]
 * @returns N coefficients in [0, 1], indexed by step
 */
export function parentalCrossfeed(numInferenceSteps: number, injectionStep: number, params: CrossfeedParams): number[] {
  checkSteps(numInferenceSteps);
  if (!Number.isSafeInteger(injectionStep) || injectionStep < 1 || injectionStep > numInferenceSteps - 1) {
    throw new LatentBlendError(
      `injectionStep: got ${String(injectionStep)}, expected an integer from 1 to ${numInferenceSteps - 1} (N - 1).`,
    );
  }
  checkCrossfeedParams(params, 'parental crossfeed');
  return ramp(numInferenceSteps, injectionStep, crossfeedEndStep(numInferenceSteps, params.range), params);
}
