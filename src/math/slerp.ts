/**
 * Interpolation of whole tensors: spherical (slerp) for latents and noise, linear (lerp) for text
 * conditioning. Tensors are flat Float32Arrays; all arithmetic is done in float64 and rounded to
 * float32 once, at the end.
 */
import { LatentBlendError } from '../errors.ts';

/** Below this angle (radians) between a and b, slerp is linear interpolation (error ~angle²/8). */
const PARALLEL_ANGLE = 1e-7;
/** Within this many radians of π, a and b count as antiparallel (see slerp). */
const ANTIPARALLEL_ANGLE = 1e-6;

function checkPair(a: Float32Array, b: Float32Array, t: number, what: string): void {
  if (a.length !== b.length) {
    throw new LatentBlendError(
      `${what}: tensor lengths differ (a has ${a.length} values, b has ${b.length}); both must have the same length.`,
    );
  }
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 1) {
    throw new LatentBlendError(`${what}: t = ${String(t)} is out of range; expected a number in [0, 1].`);
  }
}

/**
 * Linear interpolation (1 - t)·a + t·b, element by element, in float64.
 * Used for conditioning tensors (prompt embeddings, pooled embeddings).
 *
 * @param a tensor at t = 0
 * @param b tensor at t = 1, same length as a
 * @param t position in [0, 1]; t = 0 returns a copy of a and t = 1 a copy of b, bit for bit
 */
export function lerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  checkPair(a, b, t, 'lerp');
  if (t === 0) return a.slice();
  if (t === 1) return b.slice();
  const out = new Float32Array(a.length);
  const s = 1 - t;
  for (let i = 0; i < a.length; i++) {
    out[i] = s * (a[i] as number) + t * (b[i] as number);
  }
  return out;
}

/**
 * Spherical interpolation over the whole flattened tensor, computed in float64.
 *
 * With θ the angle between a and b: slerp = sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b (the same
 * formula as the Python project, applied to the raw tensors, so two tensors of equal norm give a
 * result of that norm; unequal norms give a norm between the two). θ is computed as
 * 2·atan2(|â - b̂|, |â + b̂|), which stays accurate near 0 and near π, unlike acos of a dot product.
 *
 * Degenerate cases, all deterministic:
 * - θ < 1e-7 rad (parallel), or a or b is all zeros: linear interpolation (the formula's limit).
 * - π - θ < 1e-6 rad (antiparallel): the plane of rotation is undefined, so we rotate a by t·θ
 *   towards a fixed unit direction u orthogonal to a — u is the unit vector of the leftmost element
 *   of smallest magnitude in â, with its â component removed — and give the result the norm
 *   (1-t)|a| + t|b|. Norm-keeping and independent of anything but a, b and t.
 * - tensors of length 1 that are antiparallel have no orthogonal direction: linear interpolation.
 *
 * @param a tensor at t = 0 (e.g. a latent or a noise tensor)
 * @param b tensor at t = 1, same length as a
 * @param t position in [0, 1]; t = 0 returns a copy of a and t = 1 a copy of b, bit for bit
 * @throws LatentBlendError on different lengths, t outside [0, 1], or non-finite tensor values
 */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  checkPair(a, b, t, 'slerp');
  if (t === 0) return a.slice();
  if (t === 1) return b.slice();
  const n = a.length;

  let sumA = 0;
  let sumB = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    sumA += x * x;
    sumB += y * y;
  }
  if (!Number.isFinite(sumA) || !Number.isFinite(sumB)) {
    throw new LatentBlendError('slerp: a tensor holds non-finite values (NaN or ±Infinity); expected finite numbers.');
  }
  const normA = Math.sqrt(sumA);
  const normB = Math.sqrt(sumB);
  if (normA === 0 || normB === 0) return lerp(a, b, t);

  let diff2 = 0;
  let sum2 = 0;
  for (let i = 0; i < n; i++) {
    const x = (a[i] as number) / normA;
    const y = (b[i] as number) / normB;
    diff2 += (x - y) * (x - y);
    sum2 += (x + y) * (x + y);
  }
  const theta = 2 * Math.atan2(Math.sqrt(diff2), Math.sqrt(sum2));

  if (theta < PARALLEL_ANGLE) return lerp(a, b, t);
  if (Math.PI - theta < ANTIPARALLEL_ANGLE) {
    return n < 2 ? lerp(a, b, t) : rotateAway(a, normA, normB, theta, t);
  }

  const sinTheta = Math.sin(theta);
  const wa = Math.sin((1 - t) * theta) / sinTheta;
  const wb = Math.sin(t * theta) / sinTheta;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = wa * (a[i] as number) + wb * (b[i] as number);
  }
  return out;
}

/** The antiparallel case of slerp: rotation of â by t·θ in a fixed plane, norm interpolated. */
function rotateAway(a: Float32Array, normA: number, normB: number, theta: number, t: number): Float32Array {
  const n = a.length;
  // The smallest |â_j| makes e_j as far from â as possible, so u is well conditioned.
  let j = 0;
  let smallest = Infinity;
  for (let i = 0; i < n; i++) {
    const m = Math.abs(a[i] as number);
    if (m < smallest) {
      smallest = m;
      j = i;
    }
  }
  const aj = (a[j] as number) / normA;
  // u = (e_j - aj·â) / |e_j - aj·â|, and |e_j - aj·â|² = 1 - aj².
  const uNorm = Math.sqrt(1 - aj * aj);
  const radius = (1 - t) * normA + t * normB;
  const ca = (radius * Math.cos(t * theta)) / normA;
  const cu = (radius * Math.sin(t * theta)) / uNorm;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const ahat = (a[i] as number) / normA;
    const u = (i === j ? 1 : 0) - aj * ahat;
    out[i] = ca * (a[i] as number) + cu * u;
  }
  return out;
}
