/** bench/gpu.ts's CPU-runnable parts (issue #12): argument checks and one tiny model measured end to end. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchGpuModel, gpuTable, parseGpuBenchArgs } from '../bench/gpu.ts';
import { modelDir } from './helpers/golden.ts';

test('arguments: defaults, devices, sizes and model folders are checked', () => {
  const dir = modelDir('tiny-sd-turbo');
  const parsed = parseGpuBenchArgs([`tiny=${dir}`]);
  assert.deepEqual(parsed.options, { device: 'cuda', size: 512, repeats: 5, frames: 10 });
  assert.deepEqual(parsed.models, [['tiny', dir]]);
  assert.throws(() => parseGpuBenchArgs(['--device', 'tpu', `tiny=${dir}`]), /--device: expected one of/);
  assert.throws(() => parseGpuBenchArgs(['--size', '0', `tiny=${dir}`]), /--size: expected a positive integer/);
  assert.throws(() => parseGpuBenchArgs(['tiny=/nonexistent']), /not a model folder/);
  assert.throws(() => parseGpuBenchArgs([]), /at least one/);
  assert.throws(() => parseGpuBenchArgs(['--bogus']), /unknown argument --bogus/);
});

test('a tiny model is measured on the CPU: every figure present and consistent', async () => {
  const result = await benchGpuModel('tiny', modelDir('tiny-sd-turbo'), { device: 'cpu', size: 64, repeats: 1, frames: 4 });
  assert.equal(result.size, 64);
  assert.equal(result.unetInputType, 'float32');
  for (const value of [result.loadSeconds, result.unetMsPerStep, result.decodeMs, result.decodeMsPerImageBatch4]) assert.ok(value > 0 && Number.isFinite(value));
  assert.deepEqual(result.transition.map((entry) => entry.batchSize), [1, 4]);
  const [one, four] = result.transition;
  assert.equal(one!.unetEvaluations, four!.unetEvaluations, 'batching changes calls, not evaluations');
  assert.ok(four!.unetCalls < one!.unetCalls, `batch 4 makes fewer UNet calls (${four!.unetCalls} vs ${one!.unetCalls})`);
  assert.ok(result.budget.frames >= 2 && result.budget.budgetSeconds > 0);
  const [row] = gpuTable([result]);
  assert.equal(row!.model, 'tiny');
});
