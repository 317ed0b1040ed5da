/** ControlNet on the command line: generate and transition with control pictures, resume, refine, refusals. */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { generateRefusalTests } from './helpers/cli-refusals.ts';
import { FIXTURES, modelDir } from './helpers/golden.ts';
import { readRgb } from '../src/io/png.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { readControlPicture } from '../src/image/control-picture.ts';
import { canny } from '../src/image/canny.ts';
import { nodePlatform } from '../src/node/platform.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-cli-cn-'));
after(() => rmSync(work, { recursive: true, force: true }));
const model = modelDir('tiny-sd15');
const controlnet = join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx');
const edges = join(FIXTURES, 'goldens', 'tiny-sd15-controlnet', 'control-64.png');
const photo = join(FIXTURES, 'goldens', 'tiny-sd15-controlnet', 'control-96x80.png');
const base = ['--model', model, '--steps', '4', '--guidance-scale', '0', '--controlnet', controlnet];

describe('generate with a ControlNet', () => {
  test('writes the image the library computes with the Canny map of the picture, and the map itself', async () => {
    const out = join(work, 'canny.png');
    const map = join(work, 'map.png');
    const run = runCliProcess(['generate', ...base, '--prompt', 'a cat', '--seed', '3', '--control-image', photo, '--canny', '--canny-low', '30', '--canny-high', '60', '--canny-out', map, '--controlnet-scale', '0.7', '--out', out, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { unetCalls: number; steps: number };
    assert.equal(summary.unetCalls, 5, 'PNDM: 4 steps, 5 UNet calls, counted on the residual UNet too');
    const edgeMap = canny(await readControlPicture(photo), { low: 30, high: 60 });
    assert.deepEqual(Buffer.from((await readRgb(map)).data), Buffer.from(edgeMap.data), 'the Canny map written');
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: model });
    const control = await pipeline.loadControlNet(controlnet);
    const expected = await pipeline.generate({ prompt: 'a cat', seed: 3, steps: 4, guidanceScale: 0, control: { controlNet: control.controlNet, picture: edgeMap, scale: 0.7 } });
    assert.deepEqual(Buffer.from((await readRgb(out)).data), Buffer.from(expected.image.data));
    for (const onnx of [...pipeline.models, ...control.models]) await onnx.session.release();
  });
});

describe('transition with one control picture per keyframe', () => {
  const out = join(work, 'film.gif');
  const args = ['transition', ...base, '--prompt1', 'a cat', '--prompt2', 'a dog', '--max-branches', '3', '--duration', '1', '--fps', '6', '--control-image1', edges, '--control-image2', photo, '--controlnet-scale', '1', '--controlnet-scale2', '0.5', '--out', out, '--json'];
  let transitionDir = '';

  test('renders and resumes with the same pictures', () => {
    const first = runCliProcess(args);
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as { framesComputed: number; resumed: boolean; transitionDir: string };
    assert.equal(summary.framesComputed, 3);
    assert.equal(summary.resumed, false);
    transitionDir = summary.transitionDir;
    const again = runCliProcess([...args, '--force']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { resumed: boolean }).resumed, true, 'same control: the finished transition is reused');
  });

  test('refine needs the same ControlNet flags', () => {
    const without = runCliProcess(['refine', transitionDir, '--branches', '1', '--json']);
    assert.equal(without.code, 2);
    assert.match(without.stderr, /computed with a ControlNet/);
    const refined = runCliProcess(['refine', transitionDir, '--branches', '1', '--json', '--controlnet', controlnet, '--control-image1', edges, '--control-image2', photo, '--controlnet-scale', '1', '--controlnet-scale2', '0.5']);
    assert.equal(refined.code, 0, refined.stderr);
    assert.equal((JSON.parse(refined.stdout) as { framesComputed: number }).framesComputed, 4);
  });
});

describe('refusals: one line, exit 2, nothing written', () => {
  const text = join(work, 'notes.png');
  writeFileSync(text, 'not a picture');
  const cases: [string, string[], RegExp][] = [
    ['an unreadable picture', ['--controlnet', controlnet, '--control-image', text], /--control-image: .*notes\.png is not a picture that can be read/],
    ['a missing picture', ['--controlnet', controlnet, '--control-image', join(work, 'nope.png')], /nope\.png does not exist/],
    ['a picture without --controlnet', ['--control-image', edges], /a control picture needs --controlnet/],
    ['--controlnet without a picture', ['--controlnet', controlnet], /--controlnet needs a control picture/],
    ['an SDXL ControlNet on an SD model', ['--controlnet', join(FIXTURES, 'models', 'tiny-sdxl-controlnet', 'onnx'), '--control-image', edges], /is for SDXL models but the model is SD 1\.x\/2\.x/],
    ['a model without unet_controlnet', ['--model', modelDir('tiny-sd-turbo'), '--controlnet', controlnet, '--control-image', edges], /has no unet_controlnet\/model\.onnx/],
    ['an empty guidance window', ['--controlnet', controlnet, '--control-image', edges, '--control-guidance-start', '0.5', '--control-guidance-end', '0.5'], /must be below --control-guidance-end/],
  ];
  generateRefusalTests(work, model, cases);
});
