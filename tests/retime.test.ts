import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retime, crossFade, filmFrameCount, type Retiming } from '../src/blend/retime.ts';
import { LatentBlendError } from '../src/errors.ts';

function isLatentBlendError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

/** Position of each film frame in computed-frame units (left + weight). */
function track(r: Retiming): number[] {
  return r.filmFrames.map((f) => f.left + f.weight);
}

function assertWellFormed(r: Retiming, frameCount: number): void {
  const frames = r.filmFrames;
  assert.deepEqual(frames[0], { left: 0, right: 0, weight: 0 });
  assert.deepEqual(frames[frames.length - 1], { left: frameCount - 1, right: frameCount - 1, weight: 0 });
  const t = track(r);
  for (let m = 1; m < t.length; m++) assert.ok((t[m] as number) >= (t[m - 1] as number), `film frame ${m} goes back`);
  for (const f of frames) {
    assert.ok(f.weight >= 0 && f.weight < 1, 'f.weight >= 0 && f.weight < 1');
    assert.ok(f.right === f.left + 1 || (f.right === f.left && f.weight === 0), 'f.right === f.left + 1 || (f.right === f.left && f.weight === 0)');
  }
}

test('equal distances give equal spacing, hitting every computed frame', () => {
  // 9 film frames over 5 computed frames: computed frame j at film frame 2j.
  const r = retime({ frameCount: 5, distances: [1, 1, 1, 1], durationSeconds: 3, fps: 3 });
  assertWellFormed(r, 5);
  assert.equal(r.mode, 'perceptual');
  assert.deepEqual(r.positions, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(track(r), [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
  assert.deepEqual(r.filmFrames[2], { left: 1, right: 1, weight: 0 });
  assert.deepEqual(r.filmFrames[3], { left: 1, right: 2, weight: 0.5 });
  // Equal mode agrees here.
  const equal = retime({ frameCount: 5, durationSeconds: 3, fps: 3, mode: 'equal' });
  assert.deepEqual(equal.filmFrames, r.filmFrames);
  [0, 2 / 3, 4 / 3, 2, 8 / 3].forEach((t, j) => assert.ok(Math.abs((r.times[j] as number) - t) < 1e-12, 'Math.abs((r.times[j] as number) - t) < 1e-12'));
});

test('one big gap gets most of the film frames', () => {
  const r = retime({ frameCount: 4, distances: [1, 8, 1], durationSeconds: 4, fps: 25 });
  assertWellFormed(r, 4);
  assert.equal(r.filmFrames.length, 100);
  assert.deepEqual(r.positions, [0, 0.1, 0.9, 1]);
  const inBigGap = r.filmFrames.filter((f) => f.left === 1 && f.right === 2).length;
  assert.ok(inBigGap >= 78 && inBigGap <= 80, `big gap got ${inBigGap}`);
  const inFirstGap = r.filmFrames.filter((f) => f.left === 0 && f.right === 1).length;
  assert.ok(inFirstGap >= 9 && inFirstGap <= 10, `first gap got ${inFirstGap}`);
  // Film frame 33 sits at u = 1/3, i.e. 29.17% of the way through the big gap (0.1 .. 0.9).
  const f33 = r.filmFrames[33];
  assert.equal(f33?.left, 1);
  assert.ok(Math.abs((f33?.weight as number) - (1 / 3 - 0.1) / 0.8) < 1e-12, 'Math.abs((f33?.weight as number) - (1 / 3 - 0.1) / 0.8) < 1e-12');
  // Equal mode ignores the distances: about a third of the film per gap.
  const equal = retime({ frameCount: 4, distances: [1, 8, 1], durationSeconds: 4, fps: 25, mode: 'equal' });
  const perGap = [0, 1, 2].map((j) => equal.filmFrames.filter((f) => f.left === j && f.right === j + 1).length);
  assert.ok(Math.max(...perGap) - Math.min(...perGap) <= 1, `equal mode: ${perGap.join(',')}`);
  assert.equal(equal.mode, 'equal');
});

test('gaps of distance zero take no time and are never cross-faded', () => {
  const r = retime({ frameCount: 4, distances: [1, 0, 1], durationSeconds: 1, fps: 5 });
  assertWellFormed(r, 4);
  assert.deepEqual(r.positions, [0, 0.5, 0.5, 1]);
  assert.deepEqual(r.filmFrames, [
    { left: 0, right: 0, weight: 0 },
    { left: 0, right: 1, weight: 0.5 },
    { left: 2, right: 2, weight: 0 },
    { left: 2, right: 3, weight: 0.5 },
    { left: 3, right: 3, weight: 0 },
  ]);
  // First and last stay exact even when the outer gaps are empty.
  const edges = retime({ frameCount: 4, distances: [0, 1, 0], durationSeconds: 1, fps: 5 });
  assertWellFormed(edges, 4);
});

test('zero total distance falls back to equal spacing', () => {
  const r = retime({ frameCount: 3, distances: [0, 0], durationSeconds: 1, fps: 5 });
  assert.equal(r.mode, 'equal');
  assert.deepEqual(track(r), [0, 0.5, 1, 1.5, 2]);
});

test('more film frames than computed frames, and fewer: always monotone with exact ends', () => {
  const distances = [0.3, 0.05, 0.9, 0.2, 0.2, 0.01, 0.6];
  for (const [d, fps] of [
    [10, 30],
    [0.2, 10],
    [1, 3],
  ] as const) {
    const r = retime({ frameCount: 8, distances, durationSeconds: d, fps });
    assertWellFormed(r, 8);
    assert.equal(r.filmFrames.length, filmFrameCount(d, fps));
    assert.ok(Math.abs((r.times[7] as number) - (r.filmFrames.length - 1) / fps) < 1e-12, 'Math.abs((r.times[7] as number) - (r.filmFrames.length - 1) / fps) < 1e-12');
  }
});

test('film frame count is round(d * fps), half to even, at least 2', () => {
  assert.equal(filmFrameCount(0.5, 5), 2); // 2.5 → 2
  assert.equal(filmFrameCount(0.7, 5), 4); // 3.5 → 4
  assert.equal(filmFrameCount(12, 30), 360);
  assert.equal(filmFrameCount(10, 29.97), 300);
  assert.throws(
    () => retime({ frameCount: 3, distances: [1, 1], durationSeconds: 0.2, fps: 5 }),
    isLatentBlendError(/0\.2 s × 5 fps = 1 film frame.*at least 2/),
  );
});

test('retime rejects bad inputs, naming them', () => {
  assert.throws(() => retime({ frameCount: 3, distances: [1], durationSeconds: 1, fps: 30 }), isLatentBlendError(/1 values for 3 frames.*2/));
  assert.throws(() => retime({ frameCount: 3, distances: [1, -2], durationSeconds: 1, fps: 30 }), isLatentBlendError(/distances\[1\]: got -2/));
  assert.throws(() => retime({ frameCount: 3, durationSeconds: 1, fps: 30 }), isLatentBlendError(/distances: missing/));
  assert.throws(() => retime({ frameCount: 1, distances: [], durationSeconds: 1, fps: 30 }), isLatentBlendError(/frameCount: got 1/));
  assert.throws(() => retime({ frameCount: 3, distances: [1, 1], durationSeconds: 1, fps: 0 }), isLatentBlendError(/fps: got 0/));
  assert.throws(() => retime({ frameCount: 3, distances: [1, 1], durationSeconds: -1, fps: 30 }), isLatentBlendError(/duration: got -1/));
  assert.throws(
    () => retime({ frameCount: 3, distances: [1, 1], durationSeconds: 1, fps: 30, mode: 'fast' as 'equal' }),
    isLatentBlendError(/mode: got "fast"/),
  );
});

test('crossFade rounds to nearest, halves up, with exact ends', () => {
  const a = Uint8Array.from([0, 10, 255, 7]);
  const b = Uint8Array.from([255, 11, 0, 7]);
  assert.deepEqual(Array.from(crossFade(a, b, 0.5)), [128, 11, 128, 7]); // 127.5, 10.5, 127.5
  assert.deepEqual(Array.from(crossFade(a, b, 0.25)), [64, 10, 191, 7]); // 63.75, 10.25, 191.25
  assert.deepEqual(Array.from(crossFade(a, b, 0)), Array.from(a));
  assert.deepEqual(Array.from(crossFade(a, b, 1)), Array.from(b));
  assert.notEqual(crossFade(a, b, 0), a);
  assert.throws(() => crossFade(a, new Uint8Array(3), 0.5), isLatentBlendError(/4 and 3 bytes/));
  assert.throws(() => crossFade(a, b, 1.5), isLatentBlendError(/weight: got 1\.5.*\[0, 1\]/));
});

test("the former mode name 'distance' is refused with its new name, not taken silently", () => {
  const options = { frameCount: 4, distances: [1, 3, 2], durationSeconds: 2, fps: 5 };
  assert.throws(() => retime({ ...options, mode: 'distance' as never }), isLatentBlendError(/'distance' was renamed 'perceptual'/));
  assert.equal(retime({ ...options, mode: 'perceptual' }).mode, 'perceptual');
  assert.throws(() => retime({ ...options, mode: 'nonsense' as never }), /expected 'perceptual' or 'equal'/);
});
