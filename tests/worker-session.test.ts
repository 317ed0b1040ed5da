/** Sessions in worker threads (issue #12): same results as on the main thread, a free event loop, concurrent loads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadOnnxModel, runModel, floatTensor, type OnnxModel } from '../src/runtime/onnx.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { modelDir } from './helpers/golden.ts';
import { nodePlatform } from '../src/node/platform.ts';

function unetFeeds(model: OnnxModel, batch: number, size: number) {
  const sample = new Float32Array(batch * 4 * size * size);
  for (let k = 0; k < sample.length; k++) sample[k] = Math.sin(k * 0.37);
  const hidden = new Float32Array(batch * 77 * 32);
  for (let k = 0; k < hidden.length; k++) hidden[k] = Math.cos(k * 0.11) * 0.5;
  const timestepRank = model.inputRanks.get('timestep') ?? 1;
  return {
    sample: floatTensor(model.inputTypes.get('sample')!, sample, [batch, 4, size, size]),
    timestep: floatTensor(model.inputTypes.get('timestep')!, new Float32Array(timestepRank === 0 ? 1 : batch).fill(999), timestepRank === 0 ? [] : [batch]),
    encoder_hidden_states: floatTensor(model.inputTypes.get('encoder_hidden_states')!, hidden, [batch, 77, 32]),
  };
}

test('a UNet in a worker thread gives exactly the main thread result and leaves the event loop free', async () => {
  const path = join(modelDir('tiny-sd-turbo'), 'unet', 'model.onnx');
  const main = await loadOnnxModel(nodePlatform.runtime, path, 'UNet', 'cpu');
  const worker = await loadOnnxModel(nodePlatform.runtime, path, 'UNet', 'cpu', { thread: 'worker' });
  try {
    assert.deepEqual([...worker.inputTypes], [...main.inputTypes]);
    assert.deepEqual(worker.outputNames, main.outputNames);
    const feeds = unetFeeds(main, 2, 8);
    const expected = (await runModel(main, feeds)).out_sample!;
    const actual = (await runModel(worker, feeds)).out_sample!;
    assert.deepEqual(actual.dims, expected.dims);
    assert.deepEqual(actual.data, expected.data);
    assert.equal(worker.stats.calls, 1);

    // A larger call: timers keep firing while the worker computes.
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 1);
    try {
      await runModel(worker, unetFeeds(main, 32, 32));
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 1, `the event loop ran ${ticks} timer callbacks during the worker's call`);

    // An abort rejects at once with its reason; the worker stays usable.
    const controller = new AbortController();
    const running = runModel(worker, unetFeeds(main, 32, 32), controller.signal);
    controller.abort(new Error('stopped by the test'));
    await assert.rejects(running, /stopped by the test/);
    assert.deepEqual((await runModel(worker, feeds)).out_sample!.data, expected.data);
  } finally {
    await worker.session.release();
    await main.session.release();
  }
});

test('a worker session reports model errors with the role, and a bad file names it', async () => {
  const path = join(modelDir('tiny-sd-turbo'), 'unet', 'model.onnx');
  const worker = await loadOnnxModel(nodePlatform.runtime, path, 'UNet', 'cpu', { thread: 'worker' });
  try {
    await assert.rejects(runModel(worker, {}), /UNet .*failed/);
  } finally {
    await worker.session.release();
  }
  await assert.rejects(loadOnnxModel(nodePlatform.runtime, join(modelDir('tiny-sd-turbo'), 'model_index.json'), 'UNet', 'cpu', { thread: 'worker' }), /Could not load the UNet .*model_index\.json on cpu/);
});

test('SDXL pipeline in worker threads generates the same image as on the main thread', async () => {
  const dir = modelDir('tiny-sdxl-turbo');
  const options = { prompt: 'a lighthouse at dawn', seed: 3, steps: 2, width: 64, height: 64 };
  const main = await DiffusionPipeline.load(nodePlatform, { modelDir: dir });
  const worker = await DiffusionPipeline.load(nodePlatform, { modelDir: dir, inferenceThread: 'worker' });
  try {
    assert.deepEqual(worker.models.map((model) => model.role), main.models.map((model) => model.role));
    const [a, b] = await Promise.all([main.generate(options), worker.generate(options)]);
    assert.deepEqual(b.image.data, a.image.data);
    assert.deepEqual(await worker.vae.encode(b.image), await main.vae.encode(a.image));
  } finally {
    for (const model of [...main.models, ...worker.models]) await model.session.release();
  }
});

test('idle worker threads do not keep the process alive (a caller that never releases still exits)', () => {
  const pipelineUrl = new URL('../src/pipeline/pipeline.ts', import.meta.url).href;
  const platformUrl = new URL('../src/node/platform.ts', import.meta.url).href;
  const script = `
    const { DiffusionPipeline } = await import(${JSON.stringify(pipelineUrl)});
    const { nodePlatform } = await import(${JSON.stringify(platformUrl)});
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: ${JSON.stringify(modelDir('tiny-sd-turbo'))}, inferenceThread: 'worker' });
    const result = await pipeline.generate({ prompt: 'a cat', steps: 1, width: 64, height: 64 });
    console.log('pixels', result.image.data.length);
  `;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.signal, null, `killed by ${run.signal}: the process did not exit on its own`);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /pixels 12288/);
});
