import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTree,
  insertBranch,
  largestGap,
  findParents,
  mixingFraction,
  childFract,
  conditioningAt,
  guidanceScaleAt,
  type Branch,
  type BlendTree,
} from '../src/blend/tree.ts';
import { LatentBlendError } from '../src/errors.ts';

const N = 4;

function isLatentBlendError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

/** A branch whose latents are labels, null before the injection step. */
function branch(fract: number, injectionStep: number): Branch<string> {
  const latents = Array.from({ length: N }, (_, i) => (i >= injectionStep ? `${fract}@${i}` : null));
  return { fract, injectionStep, latents };
}

/** Fracts 0, .25 (k3), .375 (k3), .5 (k2), .75 (k3), 1; built by inserting in plan order. */
function handTree(): BlendTree<string> {
  let tree = createTree(N, branch(0, 0), branch(1, 0), 10);
  tree = insertBranch(tree, branch(0.5, 2), { toLeft: 6, toRight: 4 }).tree;
  tree = insertBranch(tree, branch(0.25, 3), { toLeft: 3, toRight: 3.5 }).tree;
  tree = insertBranch(tree, branch(0.75, 3), { toLeft: 2, toRight: 2.5 }).tree;
  tree = insertBranch(tree, branch(0.375, 3), { toLeft: 1, toRight: 1.5 }).tree;
  return tree;
}

test('inserting keeps branches in fract order and splits the gap distances', () => {
  const start = createTree(N, branch(0, 0), branch(1, 0), 10);
  const { tree, index } = insertBranch(start, branch(0.5, 2), { toLeft: 6, toRight: 4 });
  assert.equal(index, 1);
  assert.deepEqual(tree.gapDistances, [6, 4]);
  assert.deepEqual(start.gapDistances, [10], 'the old tree is unchanged');
  assert.equal(start.branches.length, 2);

  const full = handTree();
  assert.deepEqual(
    full.branches.map((b) => b.fract),
    [0, 0.25, 0.375, 0.5, 0.75, 1],
  );
  assert.deepEqual(
    full.branches.map((b) => b.injectionStep),
    [0, 3, 3, 2, 3, 0],
  );
  assert.deepEqual(full.gapDistances, [3, 1, 1.5, 2, 2.5]);
});

test('insertBranch rejects duplicate fracts, the ends and bad distances', () => {
  const tree = handTree();
  assert.throws(() => insertBranch(tree, branch(0.5, 3), { toLeft: 1, toRight: 1 }), isLatentBlendError(/0\.5.*branch 3 already/));
  assert.throws(() => insertBranch(tree, branch(0, 3), { toLeft: 1, toRight: 1 }), isLatentBlendError(/fract: got 0/));
  assert.throws(() => insertBranch(tree, branch(1.2, 3), { toLeft: 1, toRight: 1 }), isLatentBlendError(/fract: got 1\.2/));
  assert.throws(() => insertBranch(tree, branch(0.6, 0), { toLeft: 1, toRight: 1 }), isLatentBlendError(/injection step: got 0.*1 to 3/));
  assert.throws(() => insertBranch(tree, branch(0.6, 3), { toLeft: -1, toRight: 1 }), isLatentBlendError(/left neighbour: got -1/));
  assert.throws(
    () => insertBranch(tree, { fract: 0.6, injectionStep: 3, latents: [null] }, { toLeft: 1, toRight: 1 }),
    isLatentBlendError(/latents: got 1 entries.*4/),
  );
  assert.throws(() => createTree(N, branch(0.1, 0), branch(1, 0), 1), isLatentBlendError(/branch A/));
});

test('largestGap picks the furthest pair, leftmost on ties', () => {
  const tree = handTree();
  assert.equal(largestGap(tree), 0); // distances [3, 1, 1.5, 2, 2.5]
  assert.equal(largestGap(tree, [1, 3, 3, 2, 0]), 1);
  assert.equal(largestGap(tree, [0, 0, 0, 0, 0]), 0);
  assert.equal(largestGap(tree, [0, 0, 0, 0, 7]), 4);
  assert.throws(() => largestGap(tree, [1, 2]), isLatentBlendError(/2 values for 6 branches.*5/));
  assert.throws(() => largestGap(tree, [1, Number.NaN, 0, 0, 0]), isLatentBlendError(/distances\[1\]: got NaN/));
});

test('parents are the nearest branches that started before k', () => {
  const tree = handTree(); // k: [0, 3, 3, 2, 3, 0]
  // Between .25 and .375 at k = 3: both neighbours started at 3, so walk to A and to .5 (k 2).
  assert.deepEqual(findParents(tree, 1, 2, 3), { left: 0, right: 3 });
  // At k = 4 (if N allowed): the neighbours themselves. With k = 3 between .5 and .75: .5 and B.
  assert.deepEqual(findParents(tree, 3, 4, 3), { left: 3, right: 5 });
  // At k = 2 between .375 and .5: left walks past the k 3 branches to A, right past .5 and .75 to B.
  assert.deepEqual(findParents(tree, 2, 3, 2), { left: 0, right: 5 });
  // Between .75 and B at k = 3: .5 on the left.
  assert.deepEqual(findParents(tree, 4, 5, 3), { left: 3, right: 5 });
  assert.deepEqual(findParents(tree, 0, 1, 1), { left: 0, right: 5 });
  // The parents' latents at step k - 1 exist.
  const { left, right } = findParents(tree, 1, 2, 3);
  assert.notEqual(tree.branches[left]?.latents[2], null);
  assert.notEqual(tree.branches[right]?.latents[2], null);
  assert.throws(() => findParents(tree, 2, 1, 3), isLatentBlendError(/rightIndex: got 1/));
  assert.throws(() => findParents(tree, 1, 2, 0), isLatentBlendError(/injectionStep: got 0.*1 to 3/));
  assert.throws(() => findParents(tree, 1, 9, 3), isLatentBlendError(/rightIndex: got 9.*0 to 5/));
});

test('a child sits at the midpoint of its gap', () => {
  const tree = handTree();
  assert.equal(childFract(tree, 1), 0.3125);
  assert.equal(childFract(tree, 4), 0.875);
  const tiny = insertBranch(createTree(N, branch(0, 0), branch(1, 0), 1), branch(Number.MIN_VALUE, 2), {
    toLeft: 1,
    toRight: 1,
  }).tree;
  assert.throws(() => childFract(tiny, 0), isLatentBlendError(/too close/));
});

test('mixing fraction between parents', () => {
  assert.equal(mixingFraction(0.375, 0.25, 0.5), 0.5);
  assert.equal(mixingFraction(0.3, 0, 0.5), 0.6);
  assert.equal(mixingFraction(0.3125, 0, 0.5), 0.625);
  assert.equal(mixingFraction(0, 0, 1), 0);
  assert.throws(() => mixingFraction(0.6, 0, 0.5), isLatentBlendError(/fract: got 0\.6.*\[0, 0\.5\]/));
  assert.throws(() => mixingFraction(0.4, 0.5, 0.5), isLatentBlendError(/parent2 fract: got 0\.5/));
});

test('conditioning weights', () => {
  assert.deepEqual(conditioningAt(0.25), { weightA: 0.75, weightB: 0.25 });
  assert.deepEqual(conditioningAt(0), { weightA: 1, weightB: 0 });
  assert.throws(() => conditioningAt(1.5), isLatentBlendError(/fract: got 1\.5/));
});

test('guidance scale falls linearly to 1 + (scale - 1)·damper in the middle, symmetric', () => {
  assert.equal(guidanceScaleAt(0, 4, 0.5), 4);
  assert.equal(guidanceScaleAt(1, 4, 0.5), 4);
  assert.equal(guidanceScaleAt(0.5, 4, 0.5), 2.5);
  assert.equal(guidanceScaleAt(0.25, 4, 0.5), 3.25);
  assert.equal(guidanceScaleAt(0.75, 4, 0.5), 3.25);
  assert.ok(Math.abs(guidanceScaleAt(0.5, 7, 0.2) - (1 + 6 * 0.2)) < 1e-12, 'Math.abs(guidanceScaleAt(0.5, 7, 0.2) - (1 + 6 * 0.2)) < 1e-12');
  for (const f of [0, 0.1, 0.5, 0.9]) assert.equal(guidanceScaleAt(f, 4, 1), 4);
  // Guidance off (scale <= 1) stays off.
  assert.ok(guidanceScaleAt(0.5, 0, 0.5) <= 1, 'guidanceScaleAt(0.5, 0, 0.5) <= 1');
  assert.throws(() => guidanceScaleAt(0.5, 4, 0), isLatentBlendError(/mid damper: got 0.*\(0, 1\]/));
  assert.throws(() => guidanceScaleAt(0.5, 4, 1.5), isLatentBlendError(/mid damper: got 1\.5/));
  assert.throws(() => guidanceScaleAt(0.5, -1, 0.5), isLatentBlendError(/guidance scale: got -1/));
});
