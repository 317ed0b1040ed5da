/** The CLI with pictures: generate --image (img2img), bad picture files refused before any model work. */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCliProcess } from './helpers/cli.ts';
import { modelDir } from './helpers/golden.ts';
import { readRgb } from '../src/io/png.ts';
import { readPicture } from '../src/io/picture.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { loadTransition } from '../src/io/store.ts';
import { nodePlatform } from '../src/node/platform.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-cli-pictures-'));
const photo = join(work, 'photo.jpg');
const model = modelDir('tiny-sd-turbo');

before(async () => {
  // 96×64 so that cover has something to crop.
  const data = Buffer.alloc(96 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 96; x++) data.set([x * 2, y * 3, 255 - x * 2], (y * 96 + x) * 3);
  writeFileSync(photo, await sharp(data, { raw: { width: 96, height: 64, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
});

describe('generate --image (img2img)', () => {
  test('writes the image the library computes from the picture', async () => {
    const out = join(work, 'img2img.png');
    const run = runCliProcess(['generate', '--model', model, '--prompt', 'a cat', '--seed', '3', '--image', photo, '--strength', '0.5', '--out', out, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { unetCalls: number; strength: number; image: string };
    assert.equal(summary.strength, 0.5);
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: model });
    const image = await readPicture(photo, { width: 64, height: 64, fit: 'cover' });
    const expected = await pipeline.generate({ prompt: 'a cat', seed: 3, image, strength: 0.5 });
    assert.deepEqual(Buffer.from((await readRgb(out)).data), Buffer.from(expected.image.data));
    // 4 steps at strength 0.5 run the last 2.
    assert.equal(summary.unetCalls, 2);
    assert.equal(expected.trajectory.length, 2);
    const text2image = await pipeline.generate({ prompt: 'a cat', seed: 3 });
    assert.notDeepEqual(Buffer.from(text2image.image.data), Buffer.from(expected.image.data), 'the picture matters');
  });

  test('bad pictures and flags are refused with one line, before the model loads, and nothing is written', () => {
    const notPicture = join(work, 'notes.png');
    writeFileSync(notPicture, 'hello');
    const cases: [string[], RegExp][] = [
      [['--image', join(work, 'missing.png')], /missing\.png: cannot read the picture \(no such file\)/],
      [['--image', notPicture], /notes\.png: not a picture that can be read/],
      [['--strength', '0.5'], /--strength needs --image/],
    ];
    for (const [flags, pattern] of cases) {
      const out = join(work, 'refused.png');
      // A model folder that does not exist: the picture must be refused before it is looked at.
      const run = runCliProcess(['generate', '--model', join(work, 'no-model'), '--prompt', 'x', '--out', out, ...flags]);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, pattern);
      assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
      assert.ok(!existsSync(out));
    }
  });
});

describe('transition --image1 --image2', () => {
  interface Summary { framesComputed: number; unetCalls: number; inversionUnetCalls?: number; resumed: boolean; transitionDir: string }
  const pictureB = join(work, 'b.png');
  const out = join(work, 'pictures.mp4');
  const frames = join(work, 'frames');
  const args = () => ['transition', '--model', model, '--image1', photo, '--image2', pictureB, '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '4', '--out', out, '--frames-dir', frames, '--json', '--force'];
  let first: Summary;

  before(async () => {
    await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 30, g: 160, b: 90 } } }).png().toFile(pictureB);
  });

  test('the film starts and ends exactly on the pictures (VAE round trip)', async () => {
    const run = runCliProcess(args());
    assert.equal(run.code, 0, run.stderr);
    first = JSON.parse(run.stdout) as Summary;
    assert.equal(first.framesComputed, 4);
    assert.equal(first.inversionUnetCalls, undefined, 'Turbo: noise method, no inversion');
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: model });
    const names = readdirSync(frames).filter((name) => name.endsWith('.png')).sort();
    assert.equal(names.length, 4);
    for (const [path, name] of [[photo, names[0]!], [pictureB, names.at(-1)!]] as const) {
      const picture = await readPicture(path, { width: 64, height: 64, fit: 'cover' });
      const roundTrip = await pipeline.vae.decode(await pipeline.vae.encode(picture), pipeline.latentShape(64, 64));
      assert.deepEqual(Buffer.from((await readRgb(join(frames, name))).data), Buffer.from(roundTrip.data), name);
    }
  });

  test('refine adds branches to a picture transition; its ends stay the pictures', async () => {
    const before = await readRgb(join(frames, readdirSync(frames).sort()[0]!));
    const run = runCliProcess(['refine', first.transitionDir, '--branches', '2', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Summary).framesComputed, 6);
    const stored = await loadTransition(first.transitionDir);
    assert.deepEqual(Buffer.from(stored.transition.images[0]!.data), Buffer.from(before.data));
    assert.equal(stored.transition.options.keyframeA.image?.path, photo, 'the picture keyframe is recorded');
  });

  test('the same command resumes; a changed picture is computed again', async () => {
    const again = runCliProcess(args());
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as Summary).resumed, true);
    await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toFile(pictureB);
    const changed = runCliProcess(args());
    assert.equal(changed.code, 0, changed.stderr);
    const summary = JSON.parse(changed.stdout) as Summary;
    assert.equal(summary.resumed, false);
    assert.notEqual(summary.transitionDir, first.transitionDir);
  });

  test('inversion is reported; a side with neither prompt nor picture is refused', () => {
    const run = runCliProcess(['transition', '--model', model, '--image1', photo, '--prompt2', 'a dog', '--image-method', 'inversion', '--duration', '1', '--fps', '4', '--max-branches', '3', '--out', join(work, 'inv.mp4'), '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as Summary).inversionUnetCalls, 3, 'N - 1 = 3 UNet calls for 4 steps');
    const refused = runCliProcess(['transition', '--model', join(work, 'no-model'), '--image1', photo, '--out', join(work, 'none.mp4')]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /keyframe B needs --prompt2, --image2 or both/);
    const bad = runCliProcess(['transition', '--model', join(work, 'no-model'), '--image1', join(work, 'notes.png'), '--prompt2', 'x', '--out', join(work, 'none.mp4')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /notes\.png: not a picture that can be read/);
    assert.ok(!existsSync(join(work, 'none.mp4')));
  });
});
