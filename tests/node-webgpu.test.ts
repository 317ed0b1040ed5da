/**
 * onnxruntime-node's bundled WebGPU provider (Dawn, on Vulkan on Linux) through the CLI, on a GPU
 * emulated on the CPU: Chromium's SwiftShader Vulkan driver with Debian's Vulkan loader (both
 * installed by tools/install-system-deps.sh). Each run is a child process, since Dawn reads the
 * driver choice (VK_ICD_FILENAMES) once per process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCliProcess } from './helpers/cli.ts';
import { FIXTURES } from './helpers/golden.ts';
import { explainWebGpuFailure } from '../src/node/webgpu.ts';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

function hasVulkanLoader(): boolean {
  try {
    return execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1 ');
  } catch {
    return false;
  }
}

const missing = [!existsSync(SWIFTSHADER) && `${SWIFTSHADER} (Debian's chromium)`, !hasVulkanLoader() && 'libvulkan.so.1 (Debian libvulkan1)'].filter(Boolean);
const skip = missing.length > 0 ? `needs ${missing.join(' and ')}; run tools/install-system-deps.sh` : false;

async function pixels(path: string): Promise<Buffer> {
  return sharp(path).removeAlpha().raw().toBuffer();
}

function maxDifference(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let index = 0; index < a.length; index++) max = Math.max(max, Math.abs(a[index]! - b[index]!));
  return max;
}

test('explainWebGpuFailure names the fix for a missing adapter and for missing float16 shaders, and leaves other failures alone', () => {
  const noAdapter = explainWebGpuFailure('webgpu_context.cc:136 ... Failed to get a WebGPU adapter: No supported adapters', 'the UNet (/m/unet/model.onnx)', 'linux');
  assert.equal(noAdapter?.code, 'unavailable');
  assert.match(noAdapter!.message, /no GPU adapter.*so the UNet \(\/m\/unet\/model\.onnx\) cannot.*libvulkan1.*VK_ICD_FILENAMES.*--device cpu/s);
  assert.match(explainWebGpuFailure('Failed to get a WebGPU adapter', 'the UNet (x)', 'win32')!.message, /Direct3D 12/);
  const noHalf = explainWebGpuFailure('shader_helper.cc:416 GenerateSourceCode Program Transpose requires f16 but the device does not support it.', 'the VAE decoder (v.onnx)');
  assert.match(noHalf!.message, /VAE decoder \(v\.onnx\) computes in float16.*shader-f16.*float32 export/);
  assert.equal(explainWebGpuFailure('Non-zero status code returned while running Gemm node', 'the UNet (x)'), undefined);
});

test('generate on --device webgpu draws the picture the CPU draws (SwiftShader)', { skip, timeout: 240_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'lb-webgpu-'));
  try {
    const model = join(FIXTURES, 'models', 'tiny-sd-turbo', 'onnx');
    const common = ['generate', '-m', model, '-p', 'a red cube on a table', '--steps', '2', '--seed', '3'];
    const cpu = runCliProcess([...common, '-o', join(work, 'cpu.png')]);
    assert.equal(cpu.code, 0, cpu.stderr);
    const gpu = runCliProcess([...common, '-d', 'webgpu', '-o', join(work, 'webgpu.png'), '--json'], { env: { VK_ICD_FILENAMES: SWIFTSHADER } });
    assert.equal(gpu.code, 0, gpu.stderr);
    assert.equal(JSON.parse(gpu.stdout).unetCalls, 2);
    // ONNX Runtime's own warnings (nodes left on the CPU) are silenced; Dawn's driver notes may remain.
    assert.doesNotMatch(gpu.stderr, /VerifyEachNodeIsAssignedToAnEp/);
    // Same graph, other kernels: a float32 rounding difference of at most a few levels of 255.
    const difference = maxDifference(await pixels(join(work, 'cpu.png')), await pixels(join(work, 'webgpu.png')));
    assert.ok(difference <= 3, `webgpu differs from the CPU by ${difference} of 255`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a float16 model on an adapter without float16 shaders is refused with the fix, or runs like the CPU where it has them', { skip, timeout: 240_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'lb-webgpu-'));
  try {
    const model = join(FIXTURES, 'models', 'tiny-sd-turbo-fp16', 'onnx');
    const common = ['generate', '-m', model, '-p', 'a red cube', '--steps', '1'];
    const gpu = runCliProcess([...common, '-d', 'webgpu', '-o', join(work, 'webgpu.png')], { env: { VK_ICD_FILENAMES: SWIFTSHADER } });
    if (gpu.code === 0) {
      const cpu = runCliProcess([...common, '-o', join(work, 'cpu.png')]);
      assert.equal(cpu.code, 0, cpu.stderr);
      const difference = maxDifference(await pixels(join(work, 'cpu.png')), await pixels(join(work, 'webgpu.png')));
      assert.ok(difference <= 8, `float16 on webgpu differs from the CPU by ${difference} of 255`);
    } else {
      assert.equal(gpu.code, 2, gpu.stderr); // unavailable, like an unknown device: exit 2
      assert.match(gpu.stderr, /computes in float16, but this GPU adapter has no float16 shaders/);
      assert.doesNotMatch(gpu.stderr, /\n\s+at .*\.[cm]?[jt]s:\d+/, 'no JavaScript stack trace (Dawn prints its own C++ source lines)');
      assert.equal(existsSync(join(work, 'webgpu.png')), false);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('--device webgpu with no Vulkan driver fails before any UNet call with the fix, not a stack trace', { skip, timeout: 120_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'lb-webgpu-'));
  try {
    const model = join(FIXTURES, 'models', 'tiny-sd-turbo', 'onnx');
    const run = runCliProcess(['generate', '-m', model, '-p', 'x', '-d', 'webgpu', '-o', join(work, 'out.png')], {
      env: { VK_ICD_FILENAMES: join(work, 'no-such-driver.json') },
    });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /device webgpu: no GPU adapter was found.*VK_ICD_FILENAMES/s);
    assert.doesNotMatch(run.stderr, /\n\s+at .*\.[cm]?[jt]s:\d+/, 'no JavaScript stack trace (Dawn prints its own C++ source lines)');
    assert.equal(existsSync(join(work, 'out.png')), false);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
