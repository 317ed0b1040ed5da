/** ControlNet building blocks: diffusers' guidance window, residual mixing, folder checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, cpSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlKeep, controlNetProblems, inspectControlNetFolder, mixedResiduals, type ControlNet } from '../src/pipeline/controlnet.ts';
import { controlTermsAt, controlContinuationProblem, type PreparedControl } from '../src/engine/control.ts';
import { inspectModelFolder } from '../src/model/folder.ts';
import type { Tensor32 } from '../src/pipeline/tensor.ts';
import { FIXTURES, modelDir, readJson } from './helpers/golden.ts';
import { FakeHub } from './helpers/fake-hub.ts';
import { resolveModelSource } from '../src/model/hub.ts';
import { inspectIpAdapterFolder } from '../src/pipeline/ip-adapter.ts';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { nodeFiles } from '../src/node/platform.ts';

test('the guidance window keeps the ControlNet on exactly the steps diffusers keeps it on', () => {
  for (const name of ['tiny-sd15-controlnet', 'tiny-sdxl-controlnet']) {
    const index = readJson<{ controlnets: Record<string, { cases: string[] }> }>('controlnet.json');
    for (const caseName of index.controlnets[name]!.cases) {
      const golden = readJson<{ controlnet_keep: number[]; control_guidance_start: number; control_guidance_end: number }>('goldens', name, `${caseName}.json`);
      const n = golden.controlnet_keep.length;
      const ours = Array.from({ length: n }, (_, i) => controlKeep(i, n, golden.control_guidance_start, golden.control_guidance_end));
      assert.deepEqual(ours, golden.controlnet_keep, `${name}/${caseName}`);
    }
  }
  assert.deepEqual([0, 1, 2, 3].map((i) => controlKeep(i, 4, 0, 1)), [1, 1, 1, 1]);
});

/** A stand-in ControlNet: residual of a pair = (sample row sum) * (picture's first value) in every element. */
function fakeControlNet(): ControlNet & { batches: number[] } {
  const batches: number[] = [];
  return {
    residualNames: ['down_block_0_additional_residual', 'mid_block_additional_residual'],
    batches,
    async run(sample: Tensor32, _timestep: number, conditioning: ReadonlyMap<string, Tensor32>, images: Tensor32) {
      const rows = sample.dims[0]!;
      batches.push(rows);
      assert.equal(images.dims[0], rows);
      assert.equal(conditioning.get('encoder_hidden_states')!.dims[0], rows, 'conditioning gathered per pair');
      const rowLength = sample.data.length / rows;
      const imageLength = images.data.length / rows;
      const out = new Map<string, Tensor32>();
      for (const [k, name] of ['down_block_0_additional_residual', 'mid_block_additional_residual'].entries()) {
        const data = new Float32Array(rows * 2);
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let i = 0; i < rowLength; i++) sum += sample.data[r * rowLength + i]!;
          data.fill(sum * images.data[r * imageLength]! * (k + 1), r * 2, r * 2 + 2);
        }
        out.set(name, { data, dims: [rows, 2, 1, 1] });
      }
      return out;
    },
  } as unknown as ControlNet & { batches: number[] };
}

test('residuals of a batch: every row the weighted sum over its pictures, all pairs in one call, zero weights skipped', async () => {
  const fake = fakeControlNet();
  const sample = { data: Float32Array.from([1, 1, 2, 2, 3, 3]), dims: [3, 2] };
  const conditioning = new Map([['encoder_hidden_states', { data: Float32Array.from([7, 8, 9]), dims: [3, 1] }]]);
  const image = (value: number): Tensor32 => ({ data: new Float32Array(3).fill(value), dims: [1, 3, 1, 1] });
  const result = await mixedResiduals(fake, sample, 5, conditioning, [
    [{ image: image(1), weight: 0.5 }],
    [{ image: image(1), weight: 0.25 }, { image: image(3), weight: 0.75 }],
    [{ image: image(2), weight: 0 }],
  ]);
  assert.deepEqual(fake.batches, [3], 'one call for the three non-zero pairs');
  const down = result!.get('down_block_0_additional_residual')!;
  assert.deepEqual(down.dims, [3, 2, 1, 1]);
  // row 0: sum 2, picture 1, weight 0.5 → 1; row 1: sum 4 → 0.25·4·1 + 0.75·4·3 = 10; row 2: nothing → 0
  assert.deepEqual([...down.data], [1, 1, 10, 10, 0, 0]);
  assert.deepEqual([...result!.get('mid_block_additional_residual')!.data], [2, 2, 20, 20, 0, 0]);
  assert.equal(await mixedResiduals(fake, sample, 5, conditioning, [[], [{ image: image(1), weight: 0 }], []]), undefined, 'no pair: no call');
  assert.equal(fake.batches.length, 1);
});

test('control terms along a transition: one picture interpolates the scale; two pictures mix by fract', () => {
  const a = { data: new Float32Array(3), dims: [1, 3, 1, 1] };
  const b = { data: new Float32Array(3), dims: [1, 3, 1, 1] };
  const one = { imageA: a, imageB: undefined, scaleA: 1, scaleB: 0.5 } as unknown as PreparedControl;
  assert.deepEqual(controlTermsAt(one, 0.5).map((t) => t.weight), [0.75]);
  const two = { imageA: a, imageB: b, scaleA: 1, scaleB: 0.5 } as unknown as PreparedControl;
  assert.deepEqual(controlTermsAt(two, 0).map((t) => [t.image === a, t.weight]), [[true, 1]]);
  assert.deepEqual(controlTermsAt(two, 1).map((t) => [t.image === b, t.weight]), [[true, 0.5]]);
  assert.deepEqual(controlTermsAt(two, 0.25).map((t) => [t.image === a, t.weight]), [[true, 0.75], [false, 0.125]]);
  const summary = { controlNet: '/c', pictureA: 'p', pictureB: 'q', scaleA: 1, scaleB: 0.5, guidanceStart: 0, guidanceEnd: 1 };
  assert.equal(controlContinuationProblem(summary, { ...summary, pictureA: 'q', pictureB: null, scaleA: 0.5, scaleB: 2 }), undefined);
  assert.match(controlContinuationProblem(summary, undefined)!, /differs/);
  assert.match(controlContinuationProblem(undefined, summary)!, /no ControlNet vs ControlNet/);
});

test('ControlNet folders: the fixture passes, broken ones are refused naming the file', () => {
  const good = join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx');
  const folder = inspectControlNetFolder(nodeFiles, good);
  assert.equal(folder.family, 'sd');
  assert.deepEqual(controlNetProblems(folder, inspectModelFolder(nodeFiles, modelDir('tiny-sd15'))), []);
  assert.equal(controlNetProblems(folder, inspectModelFolder(nodeFiles, modelDir('tiny-sdxl'))).length, 2);
  const scratch = mkdtempSync(join(tmpdir(), 'latentblend-cnf-'));
  try {
    const copy = join(scratch, 'cn');
    cpSync(good, copy, { recursive: true });
    writeFileSync(join(copy, 'controlnet', 'model.onnx'), 'version https://git-lfs.github.com/spec/v1\n');
    assert.throws(() => inspectControlNetFolder(nodeFiles, copy), /Git LFS pointer/);
    const description = JSON.parse(readFileSync(join(good, 'latentblend-controlnet.json'), 'utf8'));
    writeFileSync(join(copy, 'latentblend-controlnet.json'), JSON.stringify({ ...description, family: 'flux' }));
    assert.throws(() => inspectControlNetFolder(nodeFiles, copy), /"family" must be "sd" or "sdxl", got "flux"/);
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    assert.throws(() => inspectControlNetFolder(nodeFiles, empty), /latentblend-controlnet\.json: expected the ControlNet description/);
    cpSync(good, join(scratch, 'pool'), { recursive: true });
    const config = JSON.parse(readFileSync(join(good, 'controlnet', 'config.json'), 'utf8'));
    writeFileSync(join(scratch, 'pool', 'controlnet', 'config.json'), JSON.stringify({ ...config, global_pool_conditions: true }));
    assert.throws(() => inspectControlNetFolder(nodeFiles, join(scratch, 'pool')), /global_pool_conditions/);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('a ControlNet folder is accepted from the Hub like a model: its files only, then offline from the cache', async (t) => {
  const source = join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx');
  const files: Record<string, Uint8Array | string> = { 'README.md': 'a tiny ControlNet', 'diffusion_pytorch_model.safetensors': 'weights we do not need' };
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path, `${prefix}${name}/`);
      else files[`${prefix}${name}`] = readFileSync(path);
    }
  };
  walk(source, '');
  const hub = await FakeHub.start({ 'acme/tiny-controlnet': { commit: 'd'.repeat(40), files, lfs: ['controlnet/model.onnx'] } });
  const cache = mkdtempSync(join(tmpdir(), 'latentblend-cnhub-'));
  t.after(async () => {
    await hub.stop();
    rmSync(cache, { recursive: true, force: true });
  });
  const online = await resolveModelSource('acme/tiny-controlnet', { env: {}, endpoint: hub.endpoint, cacheDir: cache });
  assert.equal(inspectControlNetFolder(nodeFiles, online.dir).family, 'sd');
  assert.deepEqual(readFileSync(join(online.dir, 'controlnet', 'model.onnx')), readFileSync(join(source, 'controlnet', 'model.onnx')));
  assert.ok(!existsSync(join(online.dir, 'diffusion_pytorch_model.safetensors')), 'PyTorch weights are not downloaded');
  const offline = await resolveModelSource('acme/tiny-controlnet', { env: {}, cacheDir: cache, offline: true });
  assert.equal(offline.dir, online.dir);
});

test('an IP-Adapter folder is accepted from the Hub too', async (t) => {
  const source = join(FIXTURES, 'models', 'tiny-sd15-ip-adapter', 'onnx');
  const files: Record<string, Uint8Array | string> = { 'ip-adapter_sd15.bin': 'pytorch weights we do not need' };
  for (const folder of ['', 'image_encoder/', 'unet/']) {
    for (const name of readdirSync(join(source, folder))) {
      if (statSync(join(source, folder, name)).isFile()) files[`${folder}${name}`] = readFileSync(join(source, folder, name));
    }
  }
  const hub = await FakeHub.start({ 'acme/tiny-ip': { commit: 'e'.repeat(40), files, lfs: ['unet/model.onnx', 'image_encoder/model.onnx'] } });
  const cache = mkdtempSync(join(tmpdir(), 'latentblend-iphub-'));
  t.after(async () => {
    await hub.stop();
    rmSync(cache, { recursive: true, force: true });
  });
  const online = await resolveModelSource('acme/tiny-ip', { env: {}, endpoint: hub.endpoint, cacheDir: cache });
  assert.equal(inspectIpAdapterFolder(nodeFiles, online.dir).family, 'sd');
  assert.ok(!existsSync(join(online.dir, 'ip-adapter_sd15.bin')));
  const offline = await resolveModelSource('acme/tiny-ip', { env: {}, cacheDir: cache, offline: true });
  assert.equal(offline.dir, online.dir);
});
