/** The end jump next to picture keyframes: capped for retiming so it plays as a short cross-fade. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capEndJumps, END_JUMP_MAX_RATIO } from '../src/blend/end-jump.ts';
import { planFilm } from '../src/film/render.ts';
import type { Transition } from '../src/engine/engine.ts';

test('capEndJumps caps only picture ends, at the ratio times the median of the other gaps', () => {
  const gaps = [8, 1, 2, 1, 3, 6];
  // Other gaps 1, 2, 1, 3: median 1.5, limit 2.25.
  assert.deepEqual(capEndJumps(gaps, { start: true, end: true }), [1.5 * END_JUMP_MAX_RATIO, 1, 2, 1, 3, 1.5 * END_JUMP_MAX_RATIO]);
  // Only the start is a picture: the other gaps are 1, 2, 1, 3, 6 (median 2), limit 3.
  assert.deepEqual(capEndJumps(gaps, { start: true, end: false }), [3, 1, 2, 1, 3, 6]);
  assert.deepEqual(capEndJumps(gaps, { start: false, end: false }), gaps);
  assert.deepEqual(capEndJumps([0.5, 9], { start: true, end: false }, 2), [0.5, 9], 'a small end gap stays');
  assert.deepEqual(capEndJumps([4], { start: true, end: true }), [4], 'nothing to compare with');
  assert.deepEqual(capEndJumps([4, 0, 0, 5], { start: true, end: true }), [4, 0, 0, 5], 'median 0: unchanged');
});

test('a film gives a picture end gap a short cross-fade, a prompt end gap its full share', () => {
  const image = { width: 1, height: 1, data: new Uint8Array(3) };
  const tree = { numInferenceSteps: 4, branches: [], gapDistances: [10, 1, 1, 1] } as unknown as Transition['tree'];
  const transition = (picture: boolean) =>
    ({
      images: [image, image, image, image, image],
      tree,
      options: { keyframeA: { prompt: '', seed: 0, ...(picture ? { image: { path: 'a.png', fit: 'cover' } } : {}) }, keyframeB: { prompt: 'b', seed: 1 } },
    }) as unknown as Transition;
  const framesInFirstGap = (picture: boolean) => planFilm([{ transition: transition(picture), durationSeconds: 10 }], 10, 'perceptual')[0]!.filter((frame) => frame.left === 0).length;
  // Prompt end: 10 of 13 distance units → about 77 of 100 film frames; picture end: 1.5 of 4.5 → about 33.
  assert.ok(framesInFirstGap(false) > 70, `prompt end: ${framesInFirstGap(false)}`);
  const picture = framesInFirstGap(true);
  assert.ok(picture > 25 && picture < 40, `picture end: ${picture}`);
});
