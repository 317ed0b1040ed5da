/** Picture keyframes in film specs: the keys, paths relative to the spec, and a mixed film end to end. */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseFilmSpec, filmSpecToYaml } from '../src/film/spec.ts';
import { runCliProcess } from './helpers/cli.ts';
import { modelDir } from './helpers/golden.ts';
import { readRgb } from '../src/io/png.ts';
import { readPicture } from '../src/io/picture.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { LatentBlendError } from '../src/errors.ts';
import { checkRenderRequest, type StudioModel } from '../src/studio/runners.ts';
import { nodePlatform } from '../src/node/platform.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-film-pictures-'));

describe('film spec: image keys', () => {
  test('image paths are relative to the spec file; a picture needs no prompt; round trip through YAML', () => {
    const spec = parseFilmSpec(
      'keyframes:\n  - {image: pics/a.png, seed: 1, fit: contain}\n  - {prompt: a dog, seed: 2}\n  - {image: /abs/c.jpg, prompt: a bird, seed: 3, imageMethod: inversion}\n',
      { path: '/films/one/film.yaml' },
    );
    assert.deepEqual(spec.keyframes[0], { prompt: '', image: '/films/one/pics/a.png', fit: 'contain', seed: 1 });
    assert.equal(spec.keyframes[1]!.image, undefined);
    assert.deepEqual(spec.keyframes[2], { prompt: 'a bird', image: '/abs/c.jpg', imageMethod: 'inversion', seed: 3 });
    assert.deepEqual(parseFilmSpec(filmSpecToYaml(spec), { path: '/elsewhere/x.yaml' }), spec);
  });

  test('the studio refuses picture keyframes in specs from the page (no server-side file reads)', () => {
    const spec = parseFilmSpec('keyframes:\n  - {image: /etc/hostname, seed: 1}\n  - {prompt: b, seed: 2}\n', { path: 'spec', format: 'yaml' });
    const model = { source: 'm', pipeline: { defaults: { preset: 'turbo' } } } as unknown as StudioModel;
    assert.throws(() => checkRenderRequest(model, { spec, rawSpec: {}, format: 'mp4' }, work), /keyframes\[0\]\.image: expected the id of a picture uploaded to this studio/);
  });

  test('a keyframe needs a prompt or an image; fit and imageMethod only with an image', () => {
    const problems = (text: string) => {
      try {
        parseFilmSpec(text, { path: 'film.yaml' });
      } catch (error) {
        assert.ok(error instanceof LatentBlendError);
        return error.message;
      }
      return '';
    };
    assert.match(problems('keyframes:\n  - {seed: 1}\n  - {prompt: b, seed: 2}\n'), /keyframes\[0\]\.prompt: expected a prompt, an image or both/);
    assert.match(problems('keyframes:\n  - {prompt: a, seed: 1, fit: cover}\n  - {prompt: b, seed: 2}\n'), /keyframes\[0\]\.fit: only with an image on this keyframe, got "cover"/);
    assert.match(problems('keyframes:\n  - {image: a.png, seed: 1, imageMethod: invert}\n  - {prompt: b, seed: 2}\n'), /keyframes\[0\]\.imageMethod: expected noise or inversion/);
  });
});

describe('movie: picture → prompt → picture', () => {
  const model = modelDir('tiny-sd-turbo');
  const specPath = join(work, 'mixed.yaml');
  const out = join(work, 'mixed.mp4');
  const frames = join(work, 'frames');
  const pictureC = join(work, 'pics', 'c.png');
  interface Summary { transitions: number; transitionsReused: number; framesComputed: number; unetCalls: number; inversionUnetCalls?: number }
  const run = () => runCliProcess(['movie', specPath, '--out', out, '--json', '--force', '--frames-dir', frames]);

  before(async () => {
    mkdirSync(join(work, 'pics'));
    await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 240, g: 200, b: 40 } } }).png().toFile(join(work, 'pics', 'a.png'));
    await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 20, g: 60, b: 200 } } }).png().toFile(pictureC);
    writeFileSync(
      specPath,
      [`model: ${model}`, 'fps: 6', 'transitionDuration: 1', 'maxBranches: 4', 'keyframes:', '  - {image: pics/a.png, seed: 1}', '  - {prompt: a dog, seed: 2}', '  - {image: pics/c.png, prompt: the sea, seed: 3, imageMethod: inversion}', ''].join('\n'),
    );
  });

  test('the film starts and ends exactly on its pictures', async () => {
    const result = run();
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as Summary;
    assert.equal(summary.transitions, 2);
    assert.equal(summary.framesComputed, 4 + 3);
    assert.equal(summary.inversionUnetCalls, 3, 'the last picture is inverted (N - 1 = 3 UNet calls); the first uses noise');
    const names = readdirSync(frames).sort();
    assert.equal(names.length, 7);
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: model });
    const roundTrip = async (path: string) => pipeline.vae.decode(await pipeline.vae.encode(await readPicture(path, { width: 64, height: 64 })), [4, 8, 8]);
    assert.deepEqual(Buffer.from((await readRgb(join(frames, names[0]!))).data), Buffer.from((await roundTrip(join(work, 'pics', 'a.png'))).data), 'first frame');
    assert.deepEqual(Buffer.from((await readRgb(join(frames, names.at(-1)!))).data), Buffer.from((await roundTrip(pictureC)).data), 'last frame');
  });

  test('resume reuses both transitions; changing a picture recomputes only the transition touching it', async () => {
    const again = run();
    assert.equal(again.code, 0, again.stderr);
    const resumed = JSON.parse(again.stdout) as Summary;
    assert.deepEqual([resumed.transitionsReused, resumed.unetCalls], [2, 0]);
    await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 20, b: 90 } } }).png().toFile(pictureC);
    const changed = run();
    assert.equal(changed.code, 0, changed.stderr);
    const summary = JSON.parse(changed.stdout) as Summary;
    assert.equal(summary.transitionsReused, 1, 'the first transition (a.png → a dog) is reused');
    assert.equal(summary.inversionUnetCalls, 3);
    assert.ok(summary.unetCalls > 0);
  });

  test('a picture in the middle is inverted once: the second transition continues from it', () => {
    const middle = join(work, 'middle.yaml');
    writeFileSync(middle, [`model: ${model}`, 'fps: 4', 'transitionDuration: 1', 'branchesPerTransition: 3', 'keyframes:', '  - {prompt: a cat, seed: 1}', '  - {image: pics/a.png, seed: 2, imageMethod: inversion}', '  - {prompt: a bird, seed: 3}', ''].join('\n'));
    const result = runCliProcess(['movie', middle, '--out', join(work, 'middle.mp4'), '--json']);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as Summary;
    assert.equal(summary.inversionUnetCalls, 3, 'N - 1 = 3, not twice');
    // cat (4) + inversion (3) + 1 branch at k0 = 2 (2); then bird (4) + 1 branch (2).
    assert.equal(summary.unetCalls, 4 + 3 + 2 + 4 + 2);
  });

  test('a bad picture in a spec is refused before the model is looked at', () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(join(work, 'pics', 'broken.png'), 'not a picture');
    writeFileSync(bad, ['model: /nowhere/model', 'keyframes:', '  - {image: pics/broken.png, seed: 1}', '  - {prompt: a dog, seed: 2}', ''].join('\n'));
    const result = runCliProcess(['movie', bad, '--out', join(work, 'bad.mp4')]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /pics\/broken\.png: not a picture that can be read/);
    assert.ok(!existsSync(join(work, 'bad.mp4')));
  });
});
