/** GIF timing in the browser's film encoder: hundredths of a second that keep the film's time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gifDelays } from '../src/browser/video.ts';

test('delays alternate so that the total stays exact (8 fps: 12 and 13 hundredths)', () => {
  const delays = gifDelays(8, 8);
  assert.deepEqual(delays, [13, 12, 13, 12, 13, 12, 13, 12]);
  assert.equal(delays.reduce((sum, value) => sum + value, 0), 100);
});

test('whole hundredths stay whole; 30 fps and 24 fps keep a second per 30 and 24 frames', () => {
  assert.deepEqual(gifDelays(3, 10), [10, 10, 10]);
  for (const fps of [24, 30, 50]) {
    const total = gifDelays(fps * 3, fps).reduce((sum, value) => sum + value, 0);
    assert.equal(total, 300, `${fps} fps for 3 s`);
    assert.ok(gifDelays(fps, fps).every((value) => value >= 2), `${fps} fps: no delay under 2 hundredths`);
  }
});
