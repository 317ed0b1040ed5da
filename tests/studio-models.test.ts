/**
 * The model picker (src/studio/model-catalog.ts): model folders under --models-dir and Optimum
 * pipelines in a Hugging Face cache, each with family, preset, size, precision and the
 * schedulers that suit it; loading one with another scheduler. Copies of the tiny fixtures in a
 * temporary folder.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnxInputTypes, ONNX_FLOAT, ONNX_FLOAT16 } from '../src/model/onnx-inputs.ts';
import { compatibleSchedulers, listModels } from '../src/studio/model-catalog.ts';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { FIXTURES, modelDir } from './helpers/golden.ts';
import { StudioClient } from './helpers/studio-client.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-models-'));
const modelsDir = join(work, 'models');
const hubCache = join(work, 'hub');
const REVISION = 'a'.repeat(40);

before(() => {
  cpSync(modelDir('tiny-sd-turbo'), join(modelsDir, 'turbo', 'onnx'), { recursive: true });
  cpSync(modelDir('tiny-sd-turbo-fp16'), join(modelsDir, 'turbo-fp16'), { recursive: true });
  mkdirSync(join(modelsDir, 'notes'), { recursive: true });
  writeFileSync(join(modelsDir, 'notes', 'readme.txt'), 'not a model');
  // A link out of the models folder: not offered (loading it would be refused).
  symlinkSync(modelDir('tiny-sd15'), join(modelsDir, 'outside'));
  const repo = join(hubCache, 'models--test-org--tiny-sdxl');
  cpSync(modelDir('tiny-sdxl'), join(repo, 'snapshots', REVISION, 'onnx'), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), REVISION);
  // A repo whose download never finished: no model_index.json.
  mkdirSync(join(hubCache, 'models--test-org--partial', 'snapshots', REVISION), { recursive: true });
  mkdirSync(join(hubCache, 'models--test-org--partial', 'refs'), { recursive: true });
  writeFileSync(join(hubCache, 'models--test-org--partial', 'refs', 'main'), REVISION);
});

after(() => rmSync(work, { recursive: true, force: true }));

describe('model catalog (no server)', () => {
  test('ONNX input types are read from the file head, as the fp16 fixture records them', () => {
    const check = JSON.parse(readFileSync(join(FIXTURES, 'models', 'tiny-sd-turbo-fp16', 'fp16-check.json'), 'utf8')) as {
      files: Record<string, { inputs: { name: string; dtype: string }[] }>;
    };
    const code: Record<string, number> = { float16: ONNX_FLOAT16, float32: ONNX_FLOAT, int64: 7, int32: 6 };
    for (const [file, { inputs }] of Object.entries(check.files)) {
      const types = onnxInputTypes(join(modelDir('tiny-sd-turbo-fp16'), file));
      assert.deepEqual(Object.fromEntries(types), Object.fromEntries(inputs.map((input) => [input.name, code[input.dtype]])), file);
    }
    assert.throws(() => onnxInputTypes(join(modelDir('tiny-sd-turbo'), 'model_index.json')));
  });

  test('models folder and Hugging Face cache: family, preset, size, precision, schedulers', () => {
    const listed = listModels({ modelsDir, hubCache });
    const byName = Object.fromEntries(listed.models.map((model) => [model.name, model]));
    assert.deepEqual(Object.keys(byName).sort(), ['test-org/tiny-sdxl/onnx', 'turbo-fp16', 'turbo/onnx']);
    const turbo = byName['turbo/onnx']!;
    assert.deepEqual(
      [turbo.source, turbo.origin, turbo.family, turbo.preset, turbo.width, turbo.height, turbo.precision],
      [join(modelsDir, 'turbo', 'onnx'), 'models-dir', 'sd', 'turbo', 64, 64, 'float32'],
    );
    assert.equal(byName['turbo-fp16']!.precision, 'float16');
    assert.ok(byName['turbo-fp16']!.sizeBytes < turbo.sizeBytes, 'float16 weights take less room');
    assert.ok(turbo.sizeBytes > 100_000);
    assert.deepEqual(turbo.schedulers, ['EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler']);
    const sdxl = byName['test-org/tiny-sdxl/onnx']!;
    assert.deepEqual([sdxl.source, sdxl.origin, sdxl.family, sdxl.preset], ['test-org/tiny-sdxl/onnx', 'hub-cache', 'sdxl', 'standard']);
    assert.equal(sdxl.schedulers[0], sdxl.scheduler, 'the shipped scheduler first');
    assert.ok(sdxl.schedulers.includes('DPMSolverMultistepScheduler'));
    assert.ok(!sdxl.schedulers.includes('LCMScheduler'), 'LCM only for a model that ships it');
    assert.deepEqual(compatibleSchedulers('LCMScheduler', 'standard')[0], 'LCMScheduler');
    // Without --models-dir, only the cache.
    assert.deepEqual(listModels({ hubCache }).models.map((model) => model.name), ['test-org/tiny-sdxl/onnx']);
  });
});

describe('model picker on a studio', () => {
  let studio: Studio;
  let alice: StudioClient;

  before(async () => {
    studio = await startStudio({ modelDir: join(modelsDir, 'turbo', 'onnx'), workDir: join(work, 'studio'), port: 0, modelsDir, hub: { cacheDir: hubCache, offline: true } });
    alice = new StudioClient(new URL(studio.url));
  });

  after(async () => {
    await studio?.close();
  });

  test('GET /api/models lists them; a model loads with another compatible scheduler', async () => {
    const listed = (await alice.get('/api/models')).json;
    assert.equal(listed.hubCache, hubCache);
    assert.equal(listed.models.length, 3);
    const model = (await alice.get('/api/model')).json;
    assert.equal(model.shippedScheduler, 'EulerDiscreteScheduler');
    assert.deepEqual(model.schedulers, ['EulerDiscreteScheduler', 'EulerAncestralDiscreteScheduler']);

    const bad = await alice.post('/api/model', { source: 'turbo-fp16', scheduler: 'NoSuchScheduler' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /scheduler: expected one of EulerDiscreteScheduler/);
    // The model in use, with another scheduler: loaded again.
    const job = await alice.waitFor((await alice.post('/api/model', { source: 'turbo/onnx', scheduler: 'EulerAncestralDiscreteScheduler' })).json.id);
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.deepEqual(job.warnings, []);
    assert.equal(job.result.schedulerClass, 'EulerAncestralDiscreteScheduler');
    // A cached Hub model by the id the list gives.
    const hub = await alice.waitFor((await alice.post('/api/model', { source: 'test-org/tiny-sdxl/onnx' })).json.id);
    assert.equal(hub.state, 'done', JSON.stringify(hub.error));
    assert.equal(hub.result.family, 'sdxl');
  });
});
