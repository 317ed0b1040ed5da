/** `latentblend transition` and `refine` end to end on a tiny fixture: films decoded back and counted. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCliProcess } from './helpers/cli.ts';
import { modelDir } from './helpers/golden.ts';
import { probeVideo } from '../src/io/video.ts';
import { readPngText } from '../src/io/png-text.ts';
import { parseProvenance } from '../src/studio/provenance.ts';

const model = modelDir('tiny-sd-turbo');
const work = mkdtempSync(join(tmpdir(), 'latentblend-film-'));

interface Summary {
  out: string;
  transitionDir: string;
  framesComputed: number;
  filmFrames: number;
  unetCalls: number;
  unetEvaluations: number;
  resumed: boolean;
}

describe('transition → film', () => {
  const out = join(work, 'cat-dog.mp4');
  const args = ['transition', '--model', model, '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '2', '--fps', '12', '--max-branches', '6', '--out', out, '--json'];
  let first: Summary;

  test('renders an mp4 whose frame count and size are what was asked, with contact sheet and plot', async () => {
    const run = runCliProcess(args);
    assert.equal(run.code, 0, run.stderr);
    first = JSON.parse(run.stdout) as Summary;
    assert.equal(first.framesComputed, 6);
    assert.equal(first.filmFrames, 24);
    assert.equal(first.unetEvaluations, 2 * 4 + 4 * 2, 'A and B, then 4 branches at k = 2 of 4');
    const video = await probeVideo(out);
    assert.equal(video.frames, 24);
    assert.equal(video.width, 64);
    assert.equal(video.height, 64);
    const sheet = await sharp(join(work, 'cat-dog.contact-sheet.png')).metadata();
    assert.ok((sheet.width ?? 0) > 64 && (sheet.height ?? 0) > 64, 'contact sheet');
    assert.equal((await sharp(join(work, 'cat-dog.smoothness.png')).metadata()).format, 'png');
    assert.ok(existsSync(join(work, 'cat-dog.latentblend', 'film.json')));
  });

  test('running the same command again recomputes nothing', () => {
    const run = runCliProcess([...args, '--force']);
    assert.equal(run.code, 0, run.stderr);
    const again = JSON.parse(run.stdout) as Summary;
    assert.equal(again.resumed, true);
    assert.equal(again.unetCalls, 0);
    assert.equal(again.transitionDir, first.transitionDir);
  });

  test('refine adds branches, runs only them, and renders the film again', async () => {
    const run = runCliProcess(['refine', first.transitionDir, '--branches', '3', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const refined = JSON.parse(run.stdout) as Summary;
    assert.equal(refined.framesComputed, 9);
    assert.equal(refined.unetEvaluations, 3 * 2, 'three new branches of two steps each');
    assert.equal(refined.filmFrames, 24);
    assert.equal((await probeVideo(out)).frames, 24);
    const manifest = JSON.parse(readFileSync(join(first.transitionDir, 'transition.json'), 'utf8')) as { branches: unknown[] };
    assert.equal(manifest.branches.length, 9);
  });

  test('--frames-dir writes the computed frames as PNGs; gif and webm by extension', async () => {
    const framesDir = join(work, 'frames');
    for (const extension of ['gif', 'webm']) {
      const film = join(work, `film-${extension}.${extension}`);
      const run = runCliProcess(['transition', '--model', model, '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '3', '--out', film, '--frames-dir', framesDir, '--quiet']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await probeVideo(film)).frames, 8, extension);
    }
    assert.deepEqual(readdirSync(framesDir).sort(), ['0000.png', '0001.png', '0002.png']);
    // Each frame says how it was made, as the studio's frames do (a drop on the studio restores it).
    const made = ['0000.png', '0001.png', '0002.png'].map((name) => parseProvenance(readPngText(readFileSync(join(framesDir, name)))));
    assert.deepEqual(made.map((entry) => entry?.kind), ['frame', 'frame', 'frame']);
    const fracts = made.map((entry) => (entry?.kind === 'frame' ? entry.fract : NaN));
    assert.equal(fracts[0], 0);
    assert.equal(fracts[2], 1);
    assert.ok(fracts[1]! > 0 && fracts[1]! < 1, `middle frame at ${fracts[1]}`);
    const first = made[0]!;
    assert.ok(first.kind === 'frame');
    assert.deepEqual([first.from.prompt, first.to.prompt, first.transition, first.width, first.height], ['a cat', 'a dog', 0, 64, 64]);
    assert.equal(first.model, model);
    assert.match(first.scheduler, /Scheduler$/);
    assert.match(readPngText(readFileSync(join(framesDir, '0001.png'))).get('parameters') ?? '', /^a cat\nSteps: \d+, Sampler: \w+Scheduler.*Blend: a cat -> a dog/);
  });
});

describe('film commands refuse bad input before computing anything', () => {
  const base = ['transition', '--model', model, '--prompt1', 'a', '--prompt2', 'b'];
  const cases: [string, string[], RegExp][] = [
    ['unknown film format', ['--out', join(work, 'x.avi')], /x\.avi.*use one of: \.mp4, \.webm, \.gif/],
    ['bad crossfeed triple', ['--out', join(work, 'y.mp4'), '--parental-crossfeed', '0.5,2,1'], /--parental-crossfeed.*three numbers in \[0, 1\].*"0.5,2,1"/],
    ['budget and branches together', ['--out', join(work, 'z.mp4'), '--max-branches', '5', '--time-budget', '3'], /either maxBranches or timeBudget, not both/],
    ['depth strength out of range', ['--out', join(work, 'w.mp4'), '--depth-strength', '1.2'], /--depth-strength.*got "1.2"/],
    ['zero fps', ['--out', join(work, 'v.mp4'), '--fps', '0'], /--fps.*got "0"/],
  ];
  for (const [name, extra, message] of cases) {
    test(name, () => {
      const run = runCliProcess([...base, ...extra]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');
    });
  }

  test('an existing film is kept without --force, and no work folder is made', () => {
    const out = join(work, 'kept.mp4');
    writeFileSync(out, 'precious');
    const run = runCliProcess([...base, '--out', out]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /kept\.mp4 already exists; use --force/);
    assert.equal(readFileSync(out, 'utf8'), 'precious');
    assert.equal(existsSync(join(work, 'kept.latentblend')), false);
  });

  test('refine of a folder that is not a saved transition names it', () => {
    const run = runCliProcess(['refine', work, '--branches', '2']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /is not a saved transition/);
  });
});
