/**
 * One vocabulary: a film spec uses the CLI's names in camelCase (maxBranches, timeBudget; the
 * former names still read with a deprecation warning), retiming is 'perceptual' everywhere
 * ('distance' still read), and the library writes a film in one call (writeFilm).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFilmSpec, filmSpecToYaml, transitionKey } from '../src/film/spec.ts';
import { readFilmRecord } from '../src/film/film-record.ts';
import { writeFilm } from '../src/index.ts';
import { probeVideo } from '../src/io/video.ts';
import { LatentBlendError } from '../src/errors.ts';
import type { FilmSegment } from '../src/film/render.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-vocabulary-'));
after(() => rmSync(work, { recursive: true, force: true }));
const keyframes = 'keyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n    seed: 2\n';

describe('film spec keys are the CLI names in camelCase', () => {
  test('maxBranches and timeBudget are read without warnings', () => {
    const warnings: string[] = [];
    const spec = parseFilmSpec(`maxBranches: 12\n${keyframes}`, { path: 'f.yaml', onWarning: (message) => warnings.push(message) });
    assert.equal(spec.maxBranches, 12);
    assert.deepEqual(warnings, []);
    assert.equal(parseFilmSpec(`timeBudget: 2.5\n${keyframes}`, { path: 'f.yaml' }).timeBudget, 2.5);
  });

  test('the former names are read with a deprecation warning and mean the same', () => {
    const warnings: string[] = [];
    const former = parseFilmSpec(`branchesPerTransition: 12\n${keyframes}`, { path: 'old.yaml', onWarning: (message) => warnings.push(message) });
    assert.equal(former.maxBranches, 12);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /old\.yaml: "branchesPerTransition" is deprecated; call it "maxBranches" \(the CLI's --max-branches\)/);
    const current = parseFilmSpec(`maxBranches: 12\n${keyframes}`, { path: 'f.yaml' });
    assert.equal(transitionKey(former, 0), transitionKey(current, 0), 'the same cache key: finished work is reused');
    parseFilmSpec(`timeBudgetPerTransition: 3\n${keyframes}`, { path: 'old.yaml', onWarning: (message) => warnings.push(message) });
    assert.match(warnings[1]!, /"timeBudgetPerTransition" is deprecated; call it "timeBudget"/);
  });

  test('a former and a current name with different values, or branches with a budget, are refused', () => {
    assert.throws(() => parseFilmSpec(`maxBranches: 12\nbranchesPerTransition: 8\n${keyframes}`, { path: 'f.yaml' }), /branchesPerTransition: the former name of maxBranches, which is also given: keep only maxBranches/);
    assert.throws(() => parseFilmSpec(`branchesPerTransition: 8\ntimeBudget: 3\n${keyframes}`, { path: 'f.yaml' }), /give either maxBranches \(frames\) or timeBudget \(seconds\), not both/);
    assert.throws(() => parseFilmSpec(`max_branches: 8\n${keyframes}`, { path: 'f.yaml' }), /max_branches: unknown key, did you mean "maxBranches"\?/);
  });

  test('specs are written with the current names and read back equal', () => {
    const spec = parseFilmSpec(`branchesPerTransition: 7\n${keyframes}`, { path: 'old.yaml' });
    const yaml = filmSpecToYaml(spec);
    assert.match(yaml, /^maxBranches: 7$/m);
    assert.doesNotMatch(yaml, /branchesPerTransition/);
    assert.deepEqual(parseFilmSpec(yaml, { path: 'new.yaml' }), spec);
  });
});

describe("retiming is 'perceptual' everywhere", () => {
  test("a film.json written with 'distance' is still read, as 'perceptual'", () => {
    const dir = join(work, 'old-work');
    mkdirSync(dir);
    const record = { kind: 'transition', model: '/m', out: '../x.mp4', fps: 10, retiming: 'distance', transitions: [{ dir: 'transitions/00-a', durationSeconds: 1 }] };
    writeFileSync(join(dir, 'film.json'), JSON.stringify(record));
    assert.equal(readFilmRecord(dir).retiming, 'perceptual');
    writeFileSync(join(dir, 'film.json'), JSON.stringify({ ...record, retiming: 'equal' }));
    assert.equal(readFilmRecord(dir).retiming, 'equal');
  });
});

/** A three-frame transition of 16x16 pictures with uneven distances. */
function tinyTransition(): FilmSegment['transition'] {
  const picture = (value: number) => ({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(value) });
  const branch = (fract: number) => ({ fract, injectionStep: fract === 0 || fract === 1 ? 0 : 2, latents: [] });
  return {
    images: [picture(10), picture(120), picture(240)],
    tree: { numInferenceSteps: 4, branches: [branch(0), branch(0.5), branch(1)], gapDistances: [0.2, 0.6] },
  } as unknown as FilmSegment['transition'];
}

describe('writeFilm(path, transition, { duration })', () => {
  test('writes duration × fps frames in one call', async () => {
    const out = join(work, 'one-call.mp4');
    const progress: number[] = [];
    const result = await writeFilm(out, tinyTransition(), { duration: 2, fps: 6, onFrame: (written, total) => progress.push(written / total) });
    assert.equal(result.filmFrames, 12);
    assert.equal((await probeVideo(out)).frames, 12);
    assert.equal(progress.at(-1), 1);
  });

  test('two transitions join without repeating the shared keyframe', async () => {
    const out = join(work, 'two.webm');
    const result = await writeFilm(out, [tinyTransition(), tinyTransition()], { duration: 1, fps: 6, retiming: 'equal' });
    assert.equal(result.filmFrames, 6 + 6 - 1);
  });

  test('refuses before encoding: an existing file, a GIF too fast, too short a film', async () => {
    const kept = join(work, 'kept.mp4');
    writeFileSync(kept, 'precious');
    await assert.rejects(writeFilm(kept, tinyTransition(), { duration: 1 }), (error: unknown) => error instanceof LatentBlendError && error.code === 'exists');
    assert.equal(readFileSync(kept, 'utf8'), 'precious');
    await assert.rejects(writeFilm(join(work, 'fast.gif'), tinyTransition(), { duration: 1, fps: 60 }), /fps must be a number in \(0, 50\] for gif/);
    await assert.rejects(writeFilm(join(work, 'short.mp4'), tinyTransition(), { duration: 0.01, fps: 10 }), /at least 2/);
    await assert.rejects(writeFilm(join(work, 'x.mp4'), tinyTransition(), { duration: 1, retiming: 'distance' as never }), /expected 'perceptual' or 'equal'/);
  });
});
