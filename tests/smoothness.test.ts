import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gini, percentileOfSorted, perceptualPathLength, smoothnessFigures } from '../src/eval/smoothness.ts';
import { LatentBlendError } from '../src/errors.ts';
import { smoothnessPlotSvg } from '../src/io/plot.ts';
import { formatReport, summaryLine } from '../src/eval/report.ts';

function close(actual: number | null, expected: number, what: string, tolerance = 1e-12): void {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${String(actual)} vs ${expected}`);
}

test('figures of d = [1, 2, 3, 6] with d(first, last) = 4, worked by hand', () => {
  // total 12, n 4, mean 3, max 6, max/mean 2.
  // |d_i − d_j| over i < j: 1, 2, 5, 1, 4, 3 → 16; over all ordered pairs 32.
  // Gini = 32 / (2 · 4² · 3) = 1/3; smoothness 2/3; directness 12 / 4 = 3.
  const figures = smoothnessFigures([1, 2, 3, 6], 4);
  assert.equal(figures.gaps, 4);
  close(figures.total, 12, 'total');
  close(figures.max, 6, 'max');
  close(figures.mean, 3, 'mean');
  close(figures.maxOverMean, 2, 'max/mean');
  close(figures.gini, 1 / 3, 'gini');
  close(figures.smoothness, 2 / 3, 'smoothness');
  close(figures.endToEnd, 4, 'endToEnd');
  close(figures.directness, 3, 'directness');
});

test('even steps are perfectly smooth; one step carrying everything gives Gini 1 − 1/n', () => {
  const even = smoothnessFigures([0.5, 0.5, 0.5]);
  close(even.gini, 0, 'even gini');
  close(even.smoothness, 1, 'even smoothness');
  close(even.maxOverMean, 1, 'even max/mean');
  assert.equal(even.directness, null);
  assert.equal(even.endToEnd, null);
  // [0, 0, 0, 1]: three ordered pairs each way differ by 1 → 6; mean 1/4; 6 / (2 · 16 · 1/4) = 3/4.
  const jump = smoothnessFigures([0, 0, 0, 1], 1);
  close(jump.gini, 0.75, 'jump gini');
  close(jump.smoothness, 0.25, 'jump smoothness');
  close(jump.maxOverMean, 4, 'jump max/mean');
  close(jump.directness, 1, 'jump directness');
});

test('degenerate inputs: all distances 0, one gap, first = last', () => {
  const still = smoothnessFigures([0, 0], 0);
  close(still.gini, 0, 'gini');
  close(still.smoothness, 1, 'smoothness');
  close(still.maxOverMean, 1, 'max/mean');
  assert.equal(still.directness, null, 'directness undefined when d(first, last) = 0');
  const one = smoothnessFigures([0.3], 0.3);
  close(one.gini, 0, 'one gap gini');
  close(one.directness, 1, 'one gap directness');
});

test('gini agrees with the double sum of the issue on irregular values', () => {
  const values = [0.12, 0.5, 0.07, 0.33, 0.33, 0.9, 0.01, 0.25];
  let double = 0;
  for (const a of values) for (const b of values) double += Math.abs(a - b);
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  close(gini(values), double / (2 * values.length ** 2 * mean), 'gini', 1e-12);
});

test('bad distances are refused with a clear message', () => {
  assert.throws(() => smoothnessFigures([]), LatentBlendError);
  assert.throws(() => smoothnessFigures([0.1, -0.2]), /distance 1 is -0\.2/);
  assert.throws(() => smoothnessFigures([0.1, Number.NaN]), /distance 1 is NaN/);
  assert.throws(() => smoothnessFigures([0.1], -1), /first-to-last/);
});

test('percentiles like numpy lower/higher', () => {
  const sorted = [10, 20, 30, 40, 50];
  // rank = q/100 · 4: q = 30 → 1.2 → lower 20, higher 30; q = 50 → 2 exactly → 30 both.
  assert.equal(percentileOfSorted(sorted, 30, 'lower'), 20);
  assert.equal(percentileOfSorted(sorted, 30, 'higher'), 30);
  assert.equal(percentileOfSorted(sorted, 50, 'lower'), 30);
  assert.equal(percentileOfSorted(sorted, 50, 'higher'), 30);
  assert.equal(percentileOfSorted(sorted, 0, 'lower'), 10);
  assert.equal(percentileOfSorted(sorted, 100, 'higher'), 50);
});

test('perceptual path length: d/ε², 1st–99th percentiles kept, mean ± population std', () => {
  const epsilon = 1e-2;
  // 201 samples k = 0…200 (d_k = k ε²), shuffled. Ranks of the 1st/99th percentiles: 2 and 198,
  // so k = 2…198 are kept: 197 values, mean 100, std sqrt((197² − 1) / 12) = sqrt(3234).
  const ks = Array.from({ length: 201 }, (_, k) => (k * 37) % 201);
  const result = perceptualPathLength(ks.map((k) => k * epsilon * epsilon), epsilon);
  assert.equal(result.samples, 201);
  assert.equal(result.kept, 197);
  close(result.mean, 100, 'mean', 1e-9);
  close(result.std, Math.sqrt(3234), 'std', 1e-9);
  assert.equal(result.epsilon, epsilon);
  assert.throws(() => perceptualPathLength([1], 0), /ε must be/);
});

test('the plot caption and the table show the figures and name the metric', () => {
  const figures = smoothnessFigures([1, 2, 3, 6], 4);
  const line = summaryLine('lpips', figures);
  assert.equal(line, 'lpips: Σd 12, max 6, mean 3, max/mean 2, smoothness 0.667, directness 3');
  const svg = smoothnessPlotSvg([{ fract: 0.5, distance: 1 }], { caption: `${line} & more` });
  assert.ok(svg.includes('lpips: Σd 12, max 6, mean 3, max/mean 2, smoothness 0.667, directness 3 &amp; more'));
  const table = formatReport({ metric: 'rms-pixel', transitions: [], whole: { computed: { frames: 5, ...figures }, film: null } });
  assert.match(table, /^distance between neighbouring frames: rms-pixel\n/);
  assert.match(table, /frames +5 +12 +6 +3 +2 +0\.667 +3\n?$/);
});
