/** Every scheduler's add_noise (noiseLevel) against diffusers' (tests/golden/schedulers/add_noise.json). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createScheduler, addNoise, SUPPORTED_SCHEDULERS } from '../src/schedulers/index.ts';
import { ROOT } from './helpers/golden.ts';
import { parseConfigJson } from '../src/model/folder.ts';

interface AddNoiseCase {
  class: string;
  name: string;
  config: Record<string, unknown>;
  steps: number;
  timesteps: number[];
  original: number[];
  noise: number[];
  noisy: number[][];
}
const golden = parseConfigJson(readFileSync(join(ROOT, 'tests', 'golden', 'schedulers', 'add_noise.json'), 'utf8')) as { cases: AddNoiseCase[] };

test('the add_noise goldens cover every scheduler class', () => {
  const covered = new Set(golden.cases.map((c) => c.class));
  for (const name of SUPPORTED_SCHEDULERS) assert.ok(covered.has(name), `no add_noise golden for ${name}`);
});

for (const c of golden.cases) {
  test(`${c.class} ${c.name}: add_noise at every step matches diffusers`, () => {
    const scheduler = createScheduler(c.class, c.config, c.steps);
    assert.deepEqual([...scheduler.timesteps].map((t) => Math.fround(t)), c.timesteps.map((t) => Math.fround(t)), 'timesteps');
    const original = Float32Array.from(c.original);
    const noise = Float32Array.from(c.noise);
    c.noisy.forEach((expected, stepIndex) => {
      const ours = addNoise(scheduler, original, noise, stepIndex);
      for (let k = 0; k < expected.length; k++) {
        const tolerance = 2e-6 * Math.max(1, Math.abs(expected[k]!));
        assert.ok(Math.abs(ours[k]! - expected[k]!) <= tolerance, `step ${stepIndex} value ${k}: ${ours[k]} vs ${expected[k]}`);
      }
    });
    // The level after the last step is never noisier than the last step's.
    const last = scheduler.noiseLevel(scheduler.numInferenceSteps);
    assert.ok(last.noise <= scheduler.noiseLevel(scheduler.numInferenceSteps - 1).noise);
    assert.throws(() => scheduler.noiseLevel(scheduler.numInferenceSteps + 1), RangeError);
  });
}
