/**
 * `latentblend eval` and the smoothness figures of `movie`/`transition --json`, film.json and the
 * metric choice (`--metric`), on the tiny SD-Turbo fixture.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { FIXTURES, modelDir } from './helpers/golden.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-eval-'));
const emptyHome = mkdtempSync(join(tmpdir(), 'latentblend-eval-home-'));
/** No LPIPS anywhere: an empty home, LATENTBLEND_LPIPS unset, the Hub offline. */
const noLpips = { HOME: emptyHome, LATENTBLEND_LPIPS: '', HF_HOME: join(emptyHome, 'hf'), HF_HUB_OFFLINE: '1' };
const TINY_LPIPS = join(FIXTURES, 'lpips', 'tiny-lpips.onnx');

interface Figures {
  frames: number;
  gaps: number;
  total: number;
  max: number;
  mean: number;
  maxOverMean: number;
  smoothness: number;
  directness: number | null;
}
interface Report {
  metric: string;
  metricFallback?: boolean;
  transitions: { index: number; computed: Figures; film: Figures | null }[];
  whole: { computed: Figures; film: Figures | null };
}

function close(actual: number, expected: number, what: string, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected}`);
}

describe('eval', () => {
  const specPath = join(work, 'film.yaml');
  const out = join(work, 'film.mp4');
  const workDir = join(work, 'film.latentblend');
  const framesDir = join(work, 'frames');
  let movie: { filmFrames: number; metric: string; smoothness: Report; metricFallback?: boolean };

  before(() => {
    writeFileSync(
      specPath,
      [`model: ${modelDir('tiny-sd-turbo')}`, 'fps: 10', 'transitionDuration: 1', 'maxBranches: 4', 'keyframes:', '  - prompt: a cat', '    seed: 1', '  - prompt: a dog', '    seed: 2', '  - prompt: a bird', '    seed: 3'].join('\n'),
    );
    const run = runCliProcess(['movie', specPath, '--out', out, '--json', '--metric', 'rms-pixel', '--frames-dir', framesDir], { env: noLpips });
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /warning/, 'rms-pixel chosen explicitly: no warning');
    movie = JSON.parse(run.stdout);
  });

  test('movie --json and film.json carry the smoothness report, named by its metric', () => {
    assert.equal(movie.metric, 'rms-pixel');
    assert.equal(movie.metricFallback, undefined);
    assert.equal(movie.smoothness.metric, 'rms-pixel');
    assert.equal(movie.smoothness.transitions.length, 2);
    assert.equal(movie.smoothness.whole.film?.frames, movie.filmFrames);
    const record = JSON.parse(readFileSync(join(workDir, 'film.json'), 'utf8'));
    assert.equal(record.metric, 'rms-pixel');
    assert.equal(record.metricFallback, undefined);
    assert.deepEqual(record.smoothness, movie.smoothness);
  });

  test('eval of the work folder: per transition and whole film, computed and film frames', () => {
    const run = runCliProcess(['eval', workDir, '--json', '--metric', 'rms-pixel']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as Report;
    assert.equal(report.metric, 'rms-pixel');
    assert.equal(report.transitions.length, 2);
    // Computed frames: the engine measured the same gaps with the same metric when it made them.
    for (const [index, entry] of report.transitions.entries()) {
      const dir = readdirSync(join(workDir, 'transitions')).sort()[index]!;
      const stored = JSON.parse(readFileSync(join(workDir, 'transitions', dir, 'transition.json'), 'utf8')).gapDistances as number[];
      assert.equal(entry.computed.frames, stored.length + 1);
      close(entry.computed.total, stored.reduce((sum, d) => sum + d, 0), `transition ${index} Σd`, 1e-6);
      close(entry.computed.max, Math.max(...stored), `transition ${index} max`, 1e-6);
      assert.ok(entry.film !== null && entry.film.frames >= 2);
    }
    // The film's gaps are split between the transitions (the seam counted once).
    const whole = report.whole;
    assert.equal(whole.film?.frames, movie.filmFrames);
    assert.equal(report.transitions[0]!.film!.gaps + report.transitions[1]!.film!.gaps, whole.film!.gaps);
    close(report.transitions[0]!.film!.total + report.transitions[1]!.film!.total, whole.film!.total, 'film Σd split');
    assert.equal(whole.computed.gaps, report.transitions[0]!.computed.gaps + report.transitions[1]!.computed.gaps);
    // Same numbers as written at render time.
    close(whole.film!.total, movie.smoothness.whole.film!.total, 'film Σd vs movie --json', 1e-9);
    close(whole.computed.smoothness, movie.smoothness.whole.computed.smoothness, 'computed smoothness vs movie --json', 1e-9);
  });

  test('eval of a frames folder and of one transition folder; the table names the metric', () => {
    const frames = runCliProcess(['eval', framesDir, '--json', '--metric', 'rms-pixel']);
    assert.equal(frames.code, 0, frames.stderr);
    const framesReport = JSON.parse(frames.stdout) as Report & { frames: number };
    assert.equal(framesReport.frames, readdirSync(framesDir).length);
    assert.equal(framesReport.transitions.length, 0);
    assert.equal(framesReport.whole.film, null);
    const movieWhole = movie.smoothness.whole.computed;
    // The frames folder holds the computed frames in film order (the shared keyframe once).
    close(framesReport.whole.computed.total, movieWhole.total, 'frames-folder Σd vs computed Σd', 1e-9);
    close(framesReport.whole.computed.directness!, movieWhole.directness!, 'directness', 1e-9);

    const transitionDir = join(workDir, 'transitions', readdirSync(join(workDir, 'transitions')).sort()[1]!);
    const table = runCliProcess(['eval', transitionDir, '--metric', 'rms-pixel']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /distance between neighbouring frames: rms-pixel/);
    assert.match(table.stdout, /transition 1, computed +4 /);
    assert.match(table.stdout, /transition 1, film +\d+ /);
    assert.match(table.stdout, /smoothness/);
  });

  test('eval with the LPIPS fixture names lpips; a fallback is never silent', () => {
    const lpips = runCliProcess(['eval', framesDir, '--json', '--lpips', TINY_LPIPS]);
    assert.equal(lpips.code, 0, lpips.stderr);
    const report = JSON.parse(lpips.stdout) as Report;
    assert.equal(report.metric, 'lpips');
    assert.ok(report.whole.computed.total > 0);

    const fallback = runCliProcess(['eval', framesDir, '--json'], { env: noLpips });
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stderr, /warning: No LPIPS model.*rms-pixel/);
    const fallbackReport = JSON.parse(fallback.stdout) as Report;
    assert.equal(fallbackReport.metric, 'rms-pixel');
    assert.equal(fallbackReport.metricFallback, true);

    const required = runCliProcess(['eval', framesDir, '--metric', 'lpips'], { env: noLpips });
    assert.equal(required.code, 2);
    assert.match(required.stderr, /--metric lpips: no LPIPS model/);
    assert.doesNotMatch(required.stderr, /at .*\.ts:/, 'no stack trace');

    const both = runCliProcess(['eval', framesDir, '--metric', 'rms-pixel', '--lpips', TINY_LPIPS]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--metric rms-pixel does not use an LPIPS model/);
  });

  test('transition without --metric and without LPIPS records the fallback in film.json', () => {
    const filmOut = join(work, 'fallback.mp4');
    const run = runCliProcess(
      ['transition', '--model', modelDir('tiny-sd-turbo'), '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '3', '--out', filmOut, '--json'],
      { env: noLpips },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /warning: No LPIPS model/);
    const summary = JSON.parse(run.stdout) as { metric: string; metricFallback?: boolean; smoothness: Report; filmFrames: number };
    assert.equal(summary.metric, 'rms-pixel');
    assert.equal(summary.metricFallback, true);
    assert.equal(summary.smoothness.whole.film?.frames, summary.filmFrames);
    const record = JSON.parse(readFileSync(join(work, 'fallback.latentblend', 'film.json'), 'utf8'));
    assert.equal(record.metric, 'rms-pixel');
    assert.match(record.metricFallback, /No LPIPS model/);
  });

  test('eval --ppl runs the model and reports the perceptual path length per transition and overall', () => {
    const run = runCliProcess(['eval', workDir, '--json', '--metric', 'rms-pixel', '--ppl', '3']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { ppl: { transitions: { index: number; samples: number; mean: number; epsilon: number }[]; whole: { samples: number; mean: number } } };
    assert.deepEqual(report.ppl.transitions.map((entry) => [entry.index, entry.samples, entry.epsilon]), [[0, 3, 1e-4], [1, 3, 1e-4]]);
    assert.equal(report.ppl.whole.samples, 6);
    for (const entry of report.ppl.transitions) assert.ok(entry.mean > 0);
    const table = runCliProcess(['eval', workDir, '--metric', 'rms-pixel', '--ppl', '2']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /perceptual path length \(rms-pixel, d\/ε²\)\ntransition 1: [\d.e+]+ ± /);
    const frames = runCliProcess(['eval', framesDir, '--metric', 'rms-pixel', '--ppl', '2']);
    assert.equal(frames.code, 2);
    assert.match(frames.stderr, /--ppl needs a work folder or a transition folder/);
  });

  test('refine rewrites the smoothness figures in film.json', () => {
    const transitionDir = join(workDir, 'transitions', readdirSync(join(workDir, 'transitions')).sort()[0]!);
    const before = JSON.parse(readFileSync(join(workDir, 'film.json'), 'utf8')).smoothness as Report;
    const run = runCliProcess(['refine', transitionDir, '--branches', '1', '--json'], { env: noLpips });
    assert.equal(run.code, 0, run.stderr);
    const record = JSON.parse(readFileSync(join(workDir, 'film.json'), 'utf8'));
    assert.equal(record.smoothness.transitions[0].computed.frames, before.transitions[0]!.computed.frames + 1);
    assert.equal(record.smoothness.transitions[1].computed.frames, before.transitions[1]!.computed.frames);
    assert.equal(record.metric, 'rms-pixel');
    assert.match(record.metricFallback, /No LPIPS model/, 'refine without LPIPS fell back, and says so');
  });

  test('eval refuses what is not a film, a transition or frames', () => {
    const empty = mkdtempSync(join(tmpdir(), 'latentblend-eval-empty-'));
    const run = runCliProcess(['eval', empty, '--metric', 'rms-pixel']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /no film\.json, no transition\.json and 0 image file/);
    assert.equal(runCliProcess(['eval', join(empty, 'missing'), '--metric', 'rms-pixel']).code, 2);
  });
});
