/**
 * Noise-schedule maths shared by every scheduler: beta tables, cumulative alphas, the zero-terminal-SNR
 * rescale, and numpy-exact helpers for the timestep spacings diffusers uses.
 *
 * The tables that define a schedule (betas, alphas_cumprod, the per-step sigmas) hold the float32
 * values diffusers builds with torch/numpy, because they are the noise levels the model is run at
 * and the float32 rounding is not negligible in places (zero-SNR rescale near t = T). Everything
 * computed from them (interpolation, step coefficients, the latents update) is done in float64.
 */

import { LatentBlendError } from '../errors.ts';

const f32 = Math.fround;

/** Beta schedules diffusers can build from `beta_start`/`beta_end`. */
export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

/** Timestep spacings of diffusers' `timestep_spacing`. */
export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';

/**
 * `torch.linspace(start, end, steps, dtype=float32)` bit for bit: torch's CPU kernel fills the
 * first half from the start and the second half from the end with a float32 step and a fused
 * multiply-add (one rounding), which is what this reproduces.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const a = f32(start);
  const b = f32(end);
  const step = f32(f32(b - a) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    // step * i is exact in float64, so one fround gives the single rounding of a fused multiply-add.
    out[i] = i < half ? f32(a + step * i) : f32(b - step * (steps - 1 - i));
  }
  return out;
}

/**
 * `np.linspace(start, stop, num, endpoint)` in float64, following numpy's formula (i * step + start,
 * with the exact stop as last value when endpoint is true; a single sample is `start`).
 */
export function numpyLinspace(start: number, stop: number, num: number, endpoint = true): number[] {
  const div = endpoint ? num - 1 : num;
  const out: number[] = [];
  if (num <= 0) return out;
  if (div <= 0) return [start];
  const step = (stop - start) / div;
  for (let i = 0; i < num; i++) out.push(i * step + start);
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/**
 * `np.arange(start, stop, step)` for float64 arguments: numpy takes ceil((stop - start) / step)
 * values and fills them as start + i * (second - start), which this reproduces (the length can
 * come out one larger than expected, e.g. arange(1000, 0, -1000/61) has 62 values).
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const length = Math.ceil((stop - start) / step);
  const out: number[] = [];
  if (!(length > 0)) return out;
  out.push(start);
  if (length === 1) return out;
  const delta = start + step - start;
  for (let i = 1; i < length; i++) out.push(start + i * delta);
  return out;
}

/** numpy's `round`: to the nearest integer, halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends halves up; numpy sends them to the even neighbour.
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Settings that define a scheduler's training noise schedule. */
export interface NoiseScheduleConfig {
  readonly numTrainTimesteps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly betaSchedule: BetaSchedule;
  readonly trainedBetas: readonly number[] | null;
  readonly rescaleBetasZeroSnr: boolean;
}

/** The cosine ("squaredcos_cap_v2") schedule of diffusers' `betas_for_alpha_bar`, rounded to float32. */
export function cosineBetas(numTrainTimesteps: number, maxBeta = 0.999): Float64Array {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const out = new Float64Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    const t1 = i / numTrainTimesteps;
    const t2 = (i + 1) / numTrainTimesteps;
    out[i] = f32(Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta));
  }
  return out;
}

/** The beta table (float32 values) for a config, before any zero-SNR rescale. */
export function makeBetas(config: NoiseScheduleConfig): Float64Array {
  const n = config.numTrainTimesteps;
  if (config.trainedBetas !== null) return Float64Array.from(config.trainedBetas, (b) => f32(b));
  switch (config.betaSchedule) {
    case 'linear':
      return torchLinspaceF32(config.betaStart, config.betaEnd, n);
    case 'scaled_linear': {
      const roots = torchLinspaceF32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), n);
      return roots.map((r) => f32(r * r));
    }
    case 'squaredcos_cap_v2':
      return cosineBetas(n);
  }
}

/**
 * Cumulative product of (1 - beta) as torch computes it for float32 tensors on CPU: the alphas are
 * float32, the running product is kept in float64 and each element is stored as float32.
 */
export function cumprodAlphas(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]!);
    out[i] = f32(acc);
  }
  return out;
}

/**
 * diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1) with its float32 rounding:
 * shifts and scales sqrt(alphas_cumprod) so the last one is exactly 0, keeping the first.
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const cumprod = cumprodAlphas(betas);
  const roots = cumprod.map((a) => f32(Math.sqrt(a)));
  const first = roots[0]!;
  const last = roots[roots.length - 1]!;
  const scale = f32(first / f32(first - last));
  const alphaBar = roots.map((r) => {
    const shifted = f32(f32(r - last) * scale);
    return f32(shifted * shifted);
  });
  const out = new Float64Array(betas.length);
  for (let i = 0; i < betas.length; i++) {
    const alpha = i === 0 ? alphaBar[0]! : f32(alphaBar[i]! / alphaBar[i - 1]!);
    out[i] = f32(1 - alpha);
  }
  return out;
}

/** Training noise tables of a scheduler. */
export interface NoiseTables {
  /** betas[t], float32 values. */
  readonly betas: Float64Array;
  /** alphas_cumprod[t] = prod_{s<=t} (1 - betas[s]), float32 values. */
  readonly alphasCumprod: Float64Array;
}

/**
 * Builds betas and alphas_cumprod. `zeroSnrFloor`: with the zero-SNR rescale the last
 * alphas_cumprod is exactly 0; the sigma-based schedulers (Euler, Euler ancestral, DPM-Solver)
 * replace it by 2^-24 to keep sigma finite, DDIM and LCM do not.
 */
export function noiseTables(config: NoiseScheduleConfig, zeroSnrFloor: boolean): NoiseTables {
  let betas = makeBetas(config);
  if (config.rescaleBetasZeroSnr) betas = rescaleZeroTerminalSnr(betas);
  const alphasCumprod = cumprodAlphas(betas);
  if (config.rescaleBetasZeroSnr && zeroSnrFloor) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
  return { betas, alphasCumprod };
}

/**
 * Karras noise levels sigma_t = sqrt((1 - alphas_cumprod[t]) / alphas_cumprod[t]), ascending in t,
 * rounded as diffusers computes them on float32 tensors: inference sigmas are interpolated from
 * these values, and at t = T-1 of a zero-SNR schedule the rounding is not negligible (sqrt(2^24 - 1)
 * becomes 4096).
 */
export function trainSigmas(alphasCumprod: Float64Array): Float64Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** Natural logs of `trainSigmas`, as float32 like numpy's log of a float32 array. */
export function logTrainSigmas(sigmas: Float64Array): Float64Array {
  return sigmas.map((s) => f32(Math.log(s)));
}

/** `np.interp(x, arange(len(fp)), fp)`: linear interpolation on the integer grid, clamped at the ends. */
export function interpOnIndexGrid(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0]!;
  if (x >= last) return fp[last]!;
  const low = Math.floor(x);
  const w = x - low;
  if (w === 0) return fp[low]!;
  return fp[low]! + (fp[low + 1]! - fp[low]!) * w;
}

/**
 * diffusers' `_sigma_to_t`: the fractional training timestep whose log-sigma (interpolated
 * linearly in log space) equals log(sigma). `logSigmas` is ascending in t.
 */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const count = logSigmas.length;
  // Last index whose log-sigma is <= log(sigma) (0 when none), as numpy's cumsum/argmax finds it.
  let low = 0;
  for (let i = 0; i < count; i++) if (logSigma - logSigmas[i]! >= 0) low = i;
  low = Math.min(low, count - 2);
  const lo = logSigmas[low]!;
  const hi = logSigmas[low + 1]!;
  let w = (lo - logSigma) / (lo - hi);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** Karras et al. (2022) noise levels, rho = 7, from sigmaMax down to sigmaMin in `steps` values. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return numpyLinspace(0, 1, steps).map((ramp) => (maxInv + ramp * (minInv - maxInv)) ** rho);
}

/**
 * The descending timestep grid that Euler, Euler ancestral, DDIM and PNDM derive from
 * `timestep_spacing` (DPM-Solver has its own variant):
 * - linspace: n values from T-1 down to 0, evenly spaced (fractional unless `roundLinspace`);
 * - leading: multiples of T // n, plus `steps_offset`;
 * - trailing: T - k * T/n rounded, minus 1.
 * Values are float64 holding diffusers' float32 or int64 values.
 */
export function spacedTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  steps: number,
  stepsOffset: number,
  roundLinspace: boolean,
): number[] {
  switch (spacing) {
    case 'linspace': {
      const values = numpyLinspace(0, numTrainTimesteps - 1, steps).reverse();
      return values.map((v) => (roundLinspace ? roundHalfEven(v) : f32(v)));
    }
    case 'leading': {
      const ratio = Math.floor(numTrainTimesteps / steps);
      const values: number[] = [];
      for (let i = steps - 1; i >= 0; i--) values.push(i * ratio + stepsOffset);
      return values;
    }
    case 'trailing':
      return numpyArange(numTrainTimesteps, 0, -numTrainTimesteps / steps).map((v) => roundHalfEven(v) - 1);
  }
}

/** The fields of a step input that every scheduler checks. */
interface StepArrays {
  readonly modelOutput: Float32Array;
  readonly sample: Float32Array;
  readonly stepIndex: number;
  readonly noise?: Float32Array | undefined;
}

/**
 * Checks a step's index and array lengths. Violations are programming errors of the caller (not
 * user input), so they throw RangeError rather than LatentBlendError.
 */
export function checkStepInput(className: string, numSteps: number, input: StepArrays): void {
  const { stepIndex, modelOutput, sample, noise } = input;
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= numSteps) {
    throw new RangeError(`${className}.step: stepIndex ${stepIndex} is outside [0, ${numSteps}).`);
  }
  if (modelOutput.length !== sample.length) {
    throw new RangeError(`${className}.step: modelOutput has ${modelOutput.length} values, sample has ${sample.length}.`);
  }
  if (noise !== undefined && noise.length !== sample.length) {
    throw new RangeError(`${className}.step: noise has ${noise.length} values, sample has ${sample.length}.`);
  }
}

/** Returns the step noise, or throws when a step that adds noise was given none. */
export function requireNoise(className: string, stepIndex: number, noise: Float32Array | undefined): Float32Array {
  if (noise === undefined) {
    throw new RangeError(`${className}.step: step ${stepIndex} adds noise, but no noise was given (see needsStepNoise).`);
  }
  return noise;
}

/** Throws unless `index` is a valid scaleModelInput step index. */
export function checkScaleIndex(className: string, numSteps: number, stepIndex: number): void {
  if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= numSteps) {
    throw new RangeError(`${className}.scaleModelInput: stepIndex ${stepIndex} is outside [0, ${numSteps}).`);
  }
}

/**
 * Rejects step counts for which diffusers' timestep grid is broken: with "trailing" spacing some
 * counts (61, 103, 121, ... of 1000) make numpy's arange yield one extra value (a timestep of -1),
 * and "leading" with steps_offset can push the first timestep past the training range.
 */
export function checkTimestepGrid(
  className: string,
  spacing: TimestepSpacing,
  steps: number,
  expectedLength: number,
  timesteps: readonly number[],
  numTrainTimesteps: number,
): void {
  if (timesteps.length !== expectedLength) {
    throw new LatentBlendError(
      `${className}: ${steps} inference steps with timestep_spacing "${spacing}" give ${timesteps.length} timesteps instead of ${expectedLength} in diffusers (a floating-point quirk of numpy's arange); choose another step count.`,
    );
  }
  for (const t of timesteps) {
    if (!(t >= 0 && t < numTrainTimesteps)) {
      throw new LatentBlendError(
        `${className}: ${steps} inference steps with timestep_spacing "${spacing}" give the timestep ${t}, outside the training range [0, ${numTrainTimesteps - 1}]; choose another step count.`,
      );
    }
  }
}
