/** `latentblend doctor`: real test sessions per device, ffmpeg's formats, the LPIPS model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import type { DoctorReport } from '../src/cli/doctor.ts';
import { probeDeviceIsolated, probeModel } from '../src/node/device-probe.ts';
import { writeFileSync } from 'node:fs';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const home = mkdtempSync(join(tmpdir(), 'lb-doctor-'));
const env = { HOME: home, LATENTBLEND_LPIPS: '' };

test.after(() => rmSync(home, { recursive: true, force: true }));

test('the probe model is a valid ONNX file of one Add node (a few dozen bytes)', () => {
  const model = probeModel();
  assert.ok(model.length > 40 && model.length < 200, `${model.length} bytes`);
  assert.ok(Buffer.from(model).includes(Buffer.from('Add')));
});

test('--json: the CPU works, CUDA says how to install it, ffmpeg writes all three formats, LPIPS absent is explained', () => {
  const run = runCliProcess(['doctor', '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as DoctorReport;
  const cpu = report.devices.find((probe) => probe.device === 'cpu')!;
  assert.equal(cpu.works, true);
  assert.ok(cpu.milliseconds! > 0);
  const cuda = report.devices.find((probe) => probe.device === 'cuda')!;
  assert.equal(cuda.installed, false);
  assert.match(cuda.reason!, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
  assert.deepEqual(report.ffmpeg.formats, { mp4: true, webm: true, gif: true });
  assert.equal(report.lpips.found, false);
  assert.match(report.lpips.note!, /No LPIPS model/);
  assert.match(report.onnxruntime, /^\d+\.\d+\.\d+$/);
});

test('--device cuda exits 2 with the reason when CUDA is not installed; the table still prints', () => {
  const run = runCliProcess(['doctor', '--device', 'cuda'], { env });
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stdout, /^onnxruntime-node .*\n.*\n\s+cpu\s+works/m);
  assert.match(run.stderr, /device cuda does not work here: not in this installation/);
  assert.doesNotMatch(run.stderr, /\n\s+at .*\.[cm]?[jt]s:\d+/);
});

const vulkan = existsSync(SWIFTSHADER) ? false : `needs ${SWIFTSHADER} (Debian's chromium)`;

test('--device webgpu: works on a Vulkan driver (SwiftShader here), exits 2 with the fix without one', { skip: vulkan }, () => {
  const works = runCliProcess(['doctor', '--device', 'webgpu', '--json'], { env: { ...env, VK_ICD_FILENAMES: SWIFTSHADER } });
  assert.equal(works.code, 0, works.stderr);
  const webgpu = (JSON.parse(works.stdout) as DoctorReport).devices.find((probe) => probe.device === 'webgpu')!;
  assert.equal(webgpu.works, true);
  // SwiftShader has no shader-f16: float16 models would be refused there.
  assert.equal(webgpu.float16, false);
  const fails = runCliProcess(['doctor', '--device', 'webgpu'], { env: { ...env, VK_ICD_FILENAMES: join(home, 'none.json') } });
  assert.equal(fails.code, 2, fails.stderr);
  assert.match(fails.stdout, /webgpu\s+does not work: device webgpu: no GPU adapter/);
  assert.match(fails.stderr, /device webgpu does not work here: .*VK_ICD_FILENAMES/);
});

test('a probe whose process aborts (a crashing driver) is reported, not fatal; a good probe process reports as in-process', async () => {
  const aborting = join(home, 'aborting-probe.mjs');
  writeFileSync(aborting, "process.stderr.write('driver fault at 0xdead\\n'); process.abort();\n");
  const crashed = await probeDeviceIsolated('webgpu', aborting);
  assert.equal(crashed.works, false);
  assert.match(crashed.reason!, /the probe process was killed by SIGABRT \(the webgpu driver may have crashed\): driver fault at 0xdead/);
  const cpu = await probeDeviceIsolated('cpu');
  assert.equal(cpu.works, true, cpu.reason);
});
