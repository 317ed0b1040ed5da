/**
 * bench/gpu.ts and its carried form (issue #12): argument checks, one tiny model measured end to
 * end on the CPU, the pack that bench/gpu-pack.sh makes for the GPU machine run from where it is
 * unpacked on the committed tiny model, and, where a Vulkan driver is at hand (SwiftShader, the
 * CPU Vulkan driver Chromium ships), the device round trip and the IO-binding measurement.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchGpuModel, gpuTable, measureIoBinding, parseGpuBenchArgs, probeDevice, type GpuBenchResult } from '../bench/gpu.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { KeyframeNoise } from '../src/pipeline/keyframe-noise.ts';
import { nodePlatform } from '../src/node/platform.ts';
import { modelDir, ROOT } from './helpers/golden.ts';

test('arguments: defaults, devices, sizes and model folders are checked', () => {
  const dir = modelDir('tiny-sd-turbo');
  const parsed = parseGpuBenchArgs([`tiny=${dir}`]);
  assert.deepEqual(parsed.options, { device: 'cuda', size: 512, repeats: 5, frames: 10, ioBinding: true });
  assert.deepEqual(parsed.models, [['tiny', dir]]);
  assert.equal(parseGpuBenchArgs(['--no-io-binding', `tiny=${dir}`]).options.ioBinding, false);
  assert.equal(parseGpuBenchArgs(['--device', 'webgpu', '--probe']).probe, true);
  assert.equal(parseGpuBenchArgs(['--list-devices']).listDevices, true);
  assert.throws(() => parseGpuBenchArgs(['--device', 'tpu', `tiny=${dir}`]), /--device: expected one of/);
  assert.throws(() => parseGpuBenchArgs(['--size', '0', `tiny=${dir}`]), /--size: expected a positive integer/);
  assert.throws(() => parseGpuBenchArgs(['tiny=/nonexistent']), /not a model folder/);
  assert.throws(() => parseGpuBenchArgs([]), /at least one/);
  assert.throws(() => parseGpuBenchArgs(['--bogus']), /unknown argument --bogus/);
});

function checkTinyResult(result: GpuBenchResult): void {
  assert.equal(result.size, 64);
  assert.equal(result.complete, true, JSON.stringify(result.errors));
  assert.equal(result.unetInputType, 'float32');
  for (const value of [result.loadSeconds, result.unetMsPerStep, result.decodeMs, result.decodeMsPerImageBatch4]) assert.ok(value !== undefined && value > 0 && Number.isFinite(value));
  assert.deepEqual(result.transition?.map((entry) => entry.batchSize), [1, 4]);
  const [one, four] = result.transition!;
  assert.equal(one!.unetEvaluations, four!.unetEvaluations, 'batching changes calls, not evaluations');
  assert.ok(four!.unetCalls < one!.unetCalls, `batch 4 makes fewer UNet calls (${four!.unetCalls} vs ${one!.unetCalls})`);
  assert.ok(result.budget !== undefined && result.budget.frames >= 2 && result.budget.budgetSeconds > 0);
  // IO binding needs gpu-buffer tensors: on the CPU it is skipped, and says so.
  assert.equal(result.ioBinding, undefined);
  assert.deepEqual(result.errors.map((error) => error.stage), ['io binding']);
  assert.match(result.errors[0]!.message, /webgpu only/);
}

test('a tiny model is measured on the CPU: every figure present and consistent, each stage reported', async () => {
  const stages: string[] = [];
  const result = await benchGpuModel('tiny', modelDir('tiny-sd-turbo'), { device: 'cpu', size: 64, repeats: 1, frames: 4, ioBinding: true }, undefined, (partial) => {
    stages.push(partial.transition !== undefined ? `transition ${partial.transition.length}` : partial.unetMsPerStep !== undefined ? 'unet' : 'load');
  });
  checkTinyResult(result);
  // Partial results after the load, the UNet, each transition, and the end (unattended runs keep them).
  assert.deepEqual(stages, ['load', 'unet', 'transition 1', 'transition 2', 'transition 2']);
  const [row] = gpuTable([result]);
  assert.equal(row!.model, 'tiny');
  assert.equal(row!['io saved'], '-');
});

test('a model folder that does not load is reported as an error, not thrown', async () => {
  const result = await benchGpuModel('broken', join(ROOT, 'fixtures', 'lpips'), { device: 'cpu', size: 64, repeats: 1, frames: 3, ioBinding: false });
  assert.equal(result.complete, false);
  assert.equal(result.errors[0]?.stage, 'load');
  assert.equal(result.unetMsPerStep, undefined);
  assert.equal(gpuTable([result])[0]!['unet ms/step'], '-');
});

// The pack is for the x86-64 Linux GPU machine: it carries this Node and onnxruntime-node's linux/x64 binaries.
const packSkip =
  process.platform !== 'linux' || process.arch !== 'x64'
    ? 'packs for Linux x86-64 only'
    : ['xz', 'python3'].every((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0)
      ? false
      : 'needs xz and python3';

test('the pack for the GPU machine runs from where it is unpacked, with its own Node and modules', { skip: packSkip }, () => {
  const temp = mkdtempSync(join(tmpdir(), 'gpu-pack-'));
  try {
    // The committed tiny model, under the folder name the pack and the results use.
    mkdirSync(join(temp, 'graphs'));
    symlinkSync(modelDir('tiny-sd-turbo'), join(temp, 'graphs', 'tiny-sd-turbo'));
    const carry = join(temp, 'carry');
    const env = { ...process.env, GRAPHS: join(temp, 'graphs'), FOLDERS: 'tiny-sd-turbo', PACK_FAST: '1', PACK_DEBS: '0', NODE_BIN: process.execPath };
    execFileSync('bash', [join(ROOT, 'bench', 'gpu-pack.sh'), carry], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const manifest = readFileSync(join(carry, 'MANIFEST'), 'utf8');
    assert.match(manifest, /^folders: tiny-sd-turbo$/m);
    assert.match(manifest, /^runtime\.tar\.xz \d+$/m);
    const work = join(temp, 'work');
    const results = join(temp, 'results');
    const run = spawnSync('bash', [join(ROOT, 'bench', 'gpu.sh'), 'carried', carry], {
      env: { ...process.env, DEVICE: 'cpu', SIZE: '64', REPEATS: '1', FRAMES: '3', GPU_WORK: work, RESULTS: results, FOLDERS: '', OUT: '' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const report = JSON.parse(readFileSync(join(results, 'gpu-tiny-sd-turbo.json'), 'utf8')) as {
      machine: { execPath: string };
      results: GpuBenchResult[];
    };
    // The carried Node ran the bundle: neither the project's Node nor its node_modules.
    assert.equal(report.machine.execPath, join(work, 'bin', 'node'));
    assert.ok(existsSync(join(work, 'bench', 'gpu.mjs')) && !existsSync(join(work, 'node_modules', 'sharp')));
    assert.equal(report.results.length, 1);
    const [result] = report.results;
    assert.equal(result!.model, 'tiny-sd-turbo');
    assert.equal(result!.complete, true, JSON.stringify(result!.errors));
    assert.ok(result!.unetMsPerStep! > 0 && result!.transition!.length === 2 && result!.budget!.frames >= 2);
    const log = readFileSync(join(results, 'gpu.log'), 'utf8');
    assert.match(log, /tiny-sd-turbo: \d+ s \(weights and measurements\)/);
    assert.match(log, /done in \d+ s; results: gpu-tiny-sd-turbo\.json/);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
});

// SwiftShader: Vulkan on the CPU, the way WebGPU (Dawn, inside onnxruntime-node) runs without a GPU.
const SWIFTSHADER = process.env.LATENTBLEND_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
const swiftShader = existsSync(SWIFTSHADER) && (spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '').includes('libvulkan.so.1 ');
const noSwiftShader = swiftShader ? false : `needs the Vulkan loader (libvulkan1) and SwiftShader at ${SWIFTSHADER}`;

test('webgpu: a tensor goes to the device and back; IO binding is measured with the right byte counts', { skip: noSwiftShader }, async () => {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER;
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  assert.match(await probeDevice('webgpu'), /GPU buffer and back unchanged/);
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo'), device: 'webgpu' });
  try {
    const shape = pipeline.latentShape(64, 64);
    const { conditioning } = await pipeline.adapter.encodePrompt('a lighthouse', { width: 64, height: 64 });
    const sample = new KeyframeNoise(1).start(shape[0] * shape[1] * shape[2]);
    const io = await measureIoBinding(pipeline, 'webgpu', { sample, shape, timestep: 999, conditioning }, 1);
    // float32: the sample, a 0-d timestep and the conditioning tensors in; one sample-sized output.
    const conditioningBytes = [...conditioning.values()].reduce((sum, tensor) => sum + tensor.data.length * 4, 0);
    assert.equal(io.bytesIn, sample.length * 4 + 4 + conditioningBytes);
    assert.equal(io.bytesOut, sample.length * 4);
    assert.ok(io.maxAbsDiff < 1e-4, `the device-resident call computes what the host one does (max diff ${io.maxAbsDiff})`);
    for (const value of [io.hostMs, io.deviceMs, io.uploadMs, io.downloadMs]) assert.ok(value > 0 && Number.isFinite(value));
    assert.ok(Math.abs(io.savedMs - (io.hostMs - io.deviceMs)) < 1e-9 && Math.abs(io.savedShare - io.savedMs / io.hostMs) < 1e-9);
  } finally {
    for (const model of pipeline.models) await model.session.release();
  }
});
