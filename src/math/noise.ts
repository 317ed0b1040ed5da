/**
 * Deterministic standard Gaussian noise from integer seeds.
 *
 * Every tensor of noise is addressed by a key (seed, purpose, stream, step) and drawn from its own
 * generator, so any tensor can be produced directly, without drawing the ones before it:
 * - the start noise of a keyframe: `gaussianNoise(seed, length)`;
 * - the step noise of stochastic schedulers: `stepNoise(seed, stream, step, length)`, or a
 *   `NoiseStream` that hands out steps 0, 1, 2, … in turn.
 *
 * Generator: xoroshiro128+ from pure-rand, with its full 128-bit state set from the key by a hash
 * (murmur3's 32-bit finaliser, chained over the key's words, a different salt per state word).
 * Uniforms: 53 bits per number, from the upper 27 and 26 bits of two 32-bit outputs (the low bits of
 * xoroshiro128+ are its weakest). Gaussians: Box–Muller in float64, both outputs of each pair used,
 * rounded once to float32. The same key gives bit-identical tensors on every run and machine with the
 * same Node major version (V8's Math.log, Math.cos and Math.sin are platform-independent ports).
 *
 * Seeds: any safe integer (|seed| <= 2^53 - 1), negative, zero and above 2^32 included. A seed is
 * folded without loss into two 32-bit words: the low 32 bits of |seed|, and its upper 21 bits with
 * bit 31 set for negative seeds. So 1 and -1 differ, as do 1 and 2^32 + 1 (-0 counts as 0).
 */
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { LatentBlendError } from '../errors.ts';

/** Uniform generator interface as pure-rand defines it: next() is a signed 32-bit integer. */
interface Generator32 {
  next(): number;
}

/** Purpose words of the key: keeps start noise and step noise of one seed unrelated. */
const PURPOSE_START = 0x5354_4152; // 'STAR'
const PURPOSE_STEP = 0x5354_4550; // 'STEP'
/** Salts for the four 32-bit words of the generator state. */
const LANE_SALTS = [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344] as const;
const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_26 = 0x400_0000;
const TWO_POW_53 = 2 ** 53;
/** Upper limit on one tensor's length (2^30 values = 4 GiB of float32). */
const MAX_LENGTH = 2 ** 30;

/** murmur3's 32-bit finaliser: a bijection on 32-bit words with full avalanche. */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85eb_ca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2_ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkSeed(seed: number, name = 'seed'): void {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new LatentBlendError(
      `${name}: got ${String(seed)}, expected an integer between -(2^53 - 1) and 2^53 - 1 (a safe integer).`,
    );
  }
}

function checkLength(length: number): void {
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length > MAX_LENGTH) {
    throw new LatentBlendError(`length: got ${String(length)}, expected an integer from 0 to 2^30.`);
  }
}

function checkWord(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value >= TWO_POW_32) {
    throw new LatentBlendError(`${name}: got ${String(value)}, expected an integer from 0 to 2^32 - 1.`);
  }
}

/** Folds a safe-integer seed into two 32-bit words without loss (see the module comment). */
export function foldSeed(seed: number): [low: number, high: number] {
  checkSeed(seed);
  const magnitude = Math.abs(seed);
  const low = magnitude % TWO_POW_32;
  const high = Math.floor(magnitude / TWO_POW_32);
  return [low >>> 0, (high | (seed < 0 ? 0x8000_0000 : 0)) >>> 0];
}

/** A xoroshiro128+ generator whose whole state is a hash of the key words. */
function generatorFor(words: readonly number[]): Generator32 {
  const state: number[] = LANE_SALTS.map((salt) => {
    let h = mix32(salt);
    for (const word of words) h = mix32(h ^ mix32(word ^ salt));
    return h | 0;
  });
  // The all-zero state is xoroshiro's only fixed point; a hash hitting it is ~2^-128 unlikely.
  if (!state.some((w) => w !== 0)) state[0] = 1;
  return xoroshiro128plusFromState(state);
}

/** Uniform in [0, 1) with 53 random bits, taken from the upper bits of two outputs. */
function uniform53(rng: Generator32): number {
  const high = rng.next() >>> 5; // 27 bits
  const low = rng.next() >>> 6; // 26 bits
  return (high * TWO_POW_26 + low) / TWO_POW_53;
}

function fillGaussian(rng: Generator32, length: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const u1 = 1 - uniform53(rng); // in (0, 1], so the log is finite
    const u2 = uniform53(rng);
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    out[i] = radius * Math.cos(angle);
    if (i + 1 < length) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/**
 * The start noise of a keyframe: `length` independent standard Gaussian values (mean 0, variance 1)
 * as float32, a pure function of (seed, length). The first values do not depend on length:
 * a longer tensor extends a shorter one with the same seed.
 *
 * @param seed any safe integer
 * @param length number of values, 0 to 2^30
 */
export function gaussianNoise(seed: number, length: number): Float32Array {
  const [low, high] = foldSeed(seed);
  checkLength(length);
  return fillGaussian(generatorFor([PURPOSE_START, low, high, 0, 0]), length);
}

/**
 * The noise a stochastic scheduler draws at denoising step `step`, for the keyframe with this seed:
 * standard Gaussian float32 values, a pure function of (seed, stream, step, length) and unrelated
 * to the start noise `gaussianNoise(seed, …)` and to other streams and steps.
 *
 * @param seed any safe integer (the keyframe's seed)
 * @param stream integer 0 to 2^32 - 1, for independent streams of one seed (0 by default in NoiseStream)
 * @param step denoising step index, integer 0 to 2^32 - 1
 * @param length number of values, 0 to 2^30
 */
export function stepNoise(seed: number, stream: number, step: number, length: number): Float32Array {
  const [low, high] = foldSeed(seed);
  checkWord(stream, 'stream');
  checkWord(step, 'step');
  checkLength(length);
  return fillGaussian(generatorFor([PURPOSE_STEP, low, high, stream, step]), length);
}

/**
 * Step noise of one keyframe, handed out step by step: the n-th call of next() returns
 * stepNoise(seed, stream, n, length), and at(step, length) returns any step directly.
 */
export class NoiseStream {
  readonly seed: number;
  readonly stream: number;
  #step = 0;

  /**
   * @param seed any safe integer (the keyframe's seed)
   * @param stream integer 0 to 2^32 - 1 (default 0)
   */
  constructor(seed: number, stream = 0) {
    checkSeed(seed);
    checkWord(stream, 'stream');
    this.seed = seed;
    this.stream = stream;
  }

  /** Index of the step the next call of next() returns. */
  get position(): number {
    return this.#step;
  }

  /** The noise of the current step (`length` values), then advances to the following step. */
  next(length: number): Float32Array {
    const noise = stepNoise(this.seed, this.stream, this.#step, length);
    this.#step += 1;
    return noise;
  }

  /** The noise of step `step` directly; does not move the stream's position. */
  at(step: number, length: number): Float32Array {
    return stepNoise(this.seed, this.stream, step, length);
  }
}
