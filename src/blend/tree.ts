/**
 * The blending tree as plain data: branches sorted by fract, with the perceptual distance between
 * the final images of every two neighbours. Pure functions only; a tree is never modified in place
 * (insertBranch returns a new tree). Latents are an opaque payload (Float32Array by default).
 */
import { LatentBlendError } from '../errors.ts';

/** One trajectory of the tree. */
export interface Branch<L = Float32Array> {
  /** Position along the transition, in [0, 1]: A is 0, B is 1. */
  readonly fract: number;
  /** First step the branch ran: 0 for A and B, 1 .. N-1 for the others. */
  readonly injectionStep: number;
  /** latents[i] = latent after step i, N entries; null before the injection step. */
  readonly latents: readonly (L | null)[];
}

export interface BlendTree<L = Float32Array> {
  /** N, the number of denoising steps of every branch. */
  readonly numInferenceSteps: number;
  /** Sorted by fract; the first is A (fract 0), the last is B (fract 1). */
  readonly branches: readonly Branch<L>[];
  /** gapDistances[j]: distance between the final images of branches j and j + 1 (>= 0). */
  readonly gapDistances: readonly number[];
}

/** Parents of a new branch: indices into tree.branches. */
export interface Parents {
  readonly left: number;
  readonly right: number;
}

function fail(message: string): never {
  throw new LatentBlendError(message);
}

function checkDistance(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(`${name}: got ${String(value)}, expected a finite distance >= 0.`);
  }
}

function checkFract(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    fail(`${name}: got ${String(value)}, expected a number in [0, 1].`);
  }
}

function checkLatents<L>(branch: Branch<L>, numInferenceSteps: number, name: string): void {
  if (branch.latents.length !== numInferenceSteps) {
    fail(`${name}.latents: got ${branch.latents.length} entries, expected one per step (${numInferenceSteps}).`);
  }
}

function checkIndex(tree: BlendTree<unknown>, index: number, name: string): void {
  const last = tree.branches.length - 1;
  if (!Number.isSafeInteger(index) || index < 0 || index > last) {
    fail(`${name}: got ${String(index)}, expected a branch index from 0 to ${last}.`);
  }
}

/**
 * A tree holding only A and B.
 *
 * @param numInferenceSteps N, integer >= 2
 * @param a branch A: fract 0, injection step 0, N latents
 * @param b branch B: fract 1, injection step 0, N latents
 * @param distance distance between A's and B's final images, >= 0
 */
export function createTree<L>(numInferenceSteps: number, a: Branch<L>, b: Branch<L>, distance: number): BlendTree<L> {
  if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 2) {
    fail(`numInferenceSteps: got ${String(numInferenceSteps)}, expected an integer >= 2.`);
  }
  if (a.fract !== 0 || a.injectionStep !== 0) {
    fail(`branch A: got fract ${a.fract} and injection step ${a.injectionStep}, expected fract 0 and injection step 0.`);
  }
  if (b.fract !== 1 || b.injectionStep !== 0) {
    fail(`branch B: got fract ${b.fract} and injection step ${b.injectionStep}, expected fract 1 and injection step 0.`);
  }
  checkLatents(a, numInferenceSteps, 'branch A');
  checkLatents(b, numInferenceSteps, 'branch B');
  checkDistance(distance, 'distance A–B');
  return { numInferenceSteps, branches: [a, b], gapDistances: [distance] };
}

/**
 * Index j of the neighbouring pair (j, j + 1) whose final images are furthest apart; ties go to the
 * leftmost pair.
 *
 * @param distances the n - 1 gap distances (default: the tree's own), each finite and >= 0
 */
export function largestGap(tree: BlendTree<unknown>, distances: readonly number[] = tree.gapDistances): number {
  if (distances.length !== tree.branches.length - 1) {
    fail(
      `distances: got ${distances.length} values for ${tree.branches.length} branches, expected ${tree.branches.length - 1} (one per neighbouring pair).`,
    );
  }
  let best = 0;
  distances.forEach((d, j) => {
    checkDistance(d, `distances[${j}]`);
    if (d > (distances[best] as number)) best = j;
  });
  return best;
}

/**
 * fract of a branch inserted between neighbours leftIndex and leftIndex + 1: their midpoint.
 *
 * @throws LatentBlendError when the gap is too narrow for a distinct float64 midpoint
 */
export function childFract(tree: BlendTree<unknown>, leftIndex: number): number {
  checkIndex(tree, leftIndex, 'leftIndex');
  checkIndex(tree, leftIndex + 1, 'leftIndex + 1');
  const left = (tree.branches[leftIndex] as Branch<unknown>).fract;
  const right = (tree.branches[leftIndex + 1] as Branch<unknown>).fract;
  const f = (left + right) / 2;
  if (!(f > left && f < right)) {
    fail(`gap ${leftIndex}: fracts ${left} and ${right} are too close to insert a branch between them.`);
  }
  return f;
}

/**
 * Parents of a branch injected at step k between neighbours L and R: walking left from L and right
 * from R, the nearest branches whose injection step is < k, so their latents at step k - 1 exist.
 * A and B (injection step 0) always qualify, so the walk always ends.
 *
 * @param leftIndex L, index of the left neighbour
 * @param rightIndex R, index of the right neighbour, > L
 * @param injectionStep k, integer 1 .. N-1
 */
export function findParents(
  tree: BlendTree<unknown>,
  leftIndex: number,
  rightIndex: number,
  injectionStep: number,
): Parents {
  checkIndex(tree, leftIndex, 'leftIndex');
  checkIndex(tree, rightIndex, 'rightIndex');
  if (rightIndex <= leftIndex) {
    fail(`rightIndex: got ${rightIndex}, expected an index greater than leftIndex (${leftIndex}).`);
  }
  const n = tree.numInferenceSteps;
  if (!Number.isSafeInteger(injectionStep) || injectionStep < 1 || injectionStep > n - 1) {
    fail(`injectionStep: got ${String(injectionStep)}, expected an integer from 1 to ${n - 1} (N - 1).`);
  }
  const startedBefore = (index: number): boolean =>
    (tree.branches[index] as Branch<unknown>).injectionStep < injectionStep;
  let left = leftIndex;
  while (!startedBefore(left)) left -= 1;
  let right = rightIndex;
  while (!startedBefore(right)) right += 1;
  return { left, right };
}

/**
 * Where a branch at fract f lies between its parents: t = (f - p1) / (p2 - p1), in [0, 1]; the
 * weight of the right parent in the parental mix.
 *
 * @param f the branch's fract, p1 <= f <= p2
 * @param parent1Fract fract of the left parent
 * @param parent2Fract fract of the right parent, > parent1Fract
 */
export function mixingFraction(f: number, parent1Fract: number, parent2Fract: number): number {
  checkFract(parent1Fract, 'parent1 fract');
  checkFract(parent2Fract, 'parent2 fract');
  if (!(parent2Fract > parent1Fract)) {
    fail(`parent2 fract: got ${parent2Fract}, expected a value greater than parent1 fract (${parent1Fract}).`);
  }
  if (typeof f !== 'number' || !Number.isFinite(f) || f < parent1Fract || f > parent2Fract) {
    fail(`fract: got ${String(f)}, expected a number in [${parent1Fract}, ${parent2Fract}] (between the parents).`);
  }
  return Math.min(1, Math.max(0, (f - parent1Fract) / (parent2Fract - parent1Fract)));
}

/**
 * A new tree with `branch` inserted in fract order. The gap it falls into is replaced by two gaps,
 * with the distances from the new branch's final image to its left and right neighbours.
 *
 * @param branch fract strictly between 0 and 1 and equal to no existing fract; injection step 1 .. N-1
 * @param distances distances to the left and right neighbours' final images, each >= 0
 * @returns the new tree and the index of the branch in it
 */
export function insertBranch<L>(
  tree: BlendTree<L>,
  branch: Branch<L>,
  distances: { readonly toLeft: number; readonly toRight: number },
): { tree: BlendTree<L>; index: number } {
  const n = tree.numInferenceSteps;
  checkFract(branch.fract, 'branch fract');
  if (!Number.isSafeInteger(branch.injectionStep) || branch.injectionStep < 1 || branch.injectionStep > n - 1) {
    fail(`branch injection step: got ${String(branch.injectionStep)}, expected an integer from 1 to ${n - 1} (N - 1).`);
  }
  checkLatents(branch, n, 'branch');
  checkDistance(distances.toLeft, 'distance to the left neighbour');
  checkDistance(distances.toRight, 'distance to the right neighbour');
  const index = tree.branches.findIndex((b) => b.fract >= branch.fract);
  const existing = tree.branches[index];
  if (existing !== undefined && existing.fract === branch.fract) {
    fail(`branch fract: got ${branch.fract}, but branch ${index} already has that fract; fracts must be distinct.`);
  }
  if (index <= 0) {
    fail(`branch fract: got ${branch.fract}, expected a value strictly between 0 and 1 (A and B hold the ends).`);
  }
  const branches = [...tree.branches.slice(0, index), branch, ...tree.branches.slice(index)];
  const gapDistances = [
    ...tree.gapDistances.slice(0, index - 1),
    distances.toLeft,
    distances.toRight,
    ...tree.gapDistances.slice(index),
  ];
  return { tree: { numInferenceSteps: n, branches, gapDistances }, index };
}

/**
 * Weights of A's and B's conditioning at fract f: conditioning(f) = weightA·A + weightB·B,
 * weightA = 1 - f, weightB = f (use lerp(condA, condB, f) on each tensor).
 *
 * @param f fract in [0, 1]
 */
export function conditioningAt(f: number): { readonly weightA: number; readonly weightB: number } {
  checkFract(f, 'fract');
  return { weightA: 1 - f, weightB: f };
}

/**
 * Guidance scale at fract f (SPEC.md "Guidance"): equal to `scale` at f = 0 and f = 1, falling
 * linearly towards the middle to 1 + (scale - 1)·midDamper at f = 0.5, symmetric about 0.5:
 *   g(f) = scale - (scale - 1)·(1 - midDamper)·(1 - |2f - 1|).
 * midDamper = 1 keeps the scale constant. For scale <= 1 (guidance off) the value stays between
 * scale and 1, so damping never switches guidance on.
 *
 * @param f fract in [0, 1]
 * @param scale guidance scale at the ends, finite and >= 0
 * @param midDamper in (0, 1]
 */
export function guidanceScaleAt(f: number, scale: number, midDamper: number): number {
  checkFract(f, 'fract');
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale < 0) {
    fail(`guidance scale: got ${String(scale)}, expected a finite number >= 0.`);
  }
  if (typeof midDamper !== 'number' || !Number.isFinite(midDamper) || midDamper <= 0 || midDamper > 1) {
    fail(`guidance scale mid damper: got ${String(midDamper)}, expected a number in (0, 1].`);
  }
  const towardsMiddle = 1 - Math.abs(2 * f - 1);
  return scale - (scale - 1) * (1 - midDamper) * towardsMiddle;
}
