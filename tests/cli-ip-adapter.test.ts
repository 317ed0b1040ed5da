/** IP-Adapter on the command line: generate and transition with image prompts, and refusals. */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { generateRefusalTests } from './helpers/cli-refusals.ts';
import { FIXTURES, modelDir } from './helpers/golden.ts';
import { readRgb } from '../src/io/png.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import { nodePlatform } from '../src/node/platform.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-cli-ip-'));
after(() => rmSync(work, { recursive: true, force: true }));
const model = modelDir('tiny-sd15');
const ipAdapter = join(FIXTURES, 'models', 'tiny-sd15-ip-adapter', 'onnx');
const ipA = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-a.png');
const ipB = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter', 'ip-b.png');

test('generate with an image prompt writes the image the library computes', async () => {
  const out = join(work, 'ip.png');
  const run = runCliProcess(['generate', '--model', model, '--steps', '4', '--guidance-scale', '3', '--prompt', 'a cat', '--seed', '4', '--ip-adapter', ipAdapter, '--ip-image', ipA, '--ip-adapter-scale', '0.8', '--out', out, '--quiet']);
  assert.equal(run.code, 0, run.stderr);
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: model });
  const ip = await pipeline.loadIpAdapter(ipAdapter);
  const expected = await pipeline.generate({ prompt: 'a cat', seed: 4, steps: 4, guidanceScale: 3, ipAdapter: { adapter: ip.adapter, picture: await readControlPicture(ipA), scale: 0.8 } });
  assert.deepEqual(Buffer.from((await readRgb(out)).data), Buffer.from(expected.image.data));
  for (const onnx of [...pipeline.models, ...ip.models]) await onnx.session.release();
});

test('transition with one image prompt per keyframe renders and resumes', () => {
  const out = join(work, 'film.gif');
  const args = ['transition', '--model', model, '--steps', '4', '--guidance-scale', '0', '--prompt1', 'a cat', '--prompt2', 'a dog', '--max-branches', '3', '--duration', '1', '--fps', '6', '--ip-adapter', ipAdapter, '--ip-image1', ipA, '--ip-image2', ipB, '--ip-adapter-scale2', '0.5', '--out', out, '--json'];
  const first = runCliProcess(args);
  assert.equal(first.code, 0, first.stderr);
  assert.equal((JSON.parse(first.stdout) as { framesComputed: number }).framesComputed, 3);
  const again = runCliProcess([...args, '--force']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { resumed: boolean }).resumed, true);
});

describe('refusals: one line, exit 2, nothing written', () => {
  const cases: [string, string[], RegExp][] = [
    ['an image prompt without --ip-adapter', ['--ip-image', ipA], /an image prompt needs --ip-adapter/],
    ['--ip-adapter without an image', ['--ip-adapter', ipAdapter], /--ip-adapter needs an image prompt/],
    ['a missing image prompt', ['--ip-adapter', ipAdapter, '--ip-image', join(work, 'none.png')], /--ip-image: .*none\.png does not exist/],
    ['an SD IP-Adapter on SDXL', ['--model', modelDir('tiny-sdxl'), '--ip-adapter', ipAdapter, '--ip-image', ipA], /is for SD 1\.x\/2\.x models but the model is SDXL/],
  ];
  generateRefusalTests(work, model, cases);
});
