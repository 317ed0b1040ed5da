/** `latentblend movie`: a 3-keyframe film end to end, resumed after a hard kill, and bad specs. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess, startCliProcess } from './helpers/cli.ts';
import { modelDir } from './helpers/golden.ts';
import { probeVideo } from '../src/io/video.ts';
import { parseFilmSpec } from '../src/film/spec.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-movie-'));

function spec(branches: number, keyframes: string[]): string {
  return [
    `model: ${modelDir('tiny-sd-turbo')}`,
    'fps: 10',
    'transitionDuration: 1',
    `branchesPerTransition: ${branches}`,
    'keyframes:',
    ...keyframes.map((prompt, index) => `  - prompt: ${prompt}\n    seed: ${index + 1}${index === 0 ? '\n    duration: 2' : ''}`),
  ].join('\n');
}

interface MovieSummary {
  transitions: number;
  transitionsReused: number;
  framesComputed: number;
  filmFrames: number;
  unetCalls: number;
}

describe('movie', () => {
  test('a 3-keyframe spec renders an mp4 with the right frame count and size, without a seam frame', async () => {
    const specPath = join(work, 'three.yaml');
    writeFileSync(specPath, spec(5, ['a cat', 'a dog', 'a bird']));
    const out = join(work, 'three.mp4');
    const framesDir = join(work, 'three-frames');
    const run = runCliProcess(['movie', specPath, '--out', out, '--json', '--frames-dir', framesDir]);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as MovieSummary;
    assert.equal(summary.transitions, 2);
    assert.equal(readdirSync(framesDir).length, 9, 'computed frames as PNGs, the shared keyframe once');
    // 2 s + 1 s at 10 fps, the shared keyframe shown once.
    assert.equal(summary.filmFrames, 29);
    assert.equal(summary.framesComputed, 5 + 4);
    assert.equal(summary.unetCalls, 2 * 4 + 3 * 2 + (4 + 3 * 2), "the second transition reuses keyframe 2's trajectory");
    const video = await probeVideo(out);
    assert.deepEqual([video.frames, video.width, video.height], [29, 64, 64]);
  });

  test('a render killed after its first transition resumes and recomputes nothing that finished', async () => {
    const specPath = join(work, 'killed.yaml');
    writeFileSync(specPath, spec(40, ['a cat', 'a dog', 'a bird']));
    const out = join(work, 'killed.mp4');
    const transitions = join(work, 'killed.latentblend', 'transitions');
    const child = startCliProcess(['movie', specPath, '--out', out, '--quiet'], 'ignore');
    const killedAfterFirst = await new Promise<boolean>((resolve) => {
      const timer = setInterval(() => {
        const done = existsSync(transitions) ? readdirSync(transitions).filter((name) => !name.startsWith('.')) : [];
        if (done.length >= 1) {
          child.kill('SIGKILL');
          clearInterval(timer);
          resolve(done.length === 1);
        }
      }, 5);
      child.on('exit', () => {
        clearInterval(timer);
        resolve(false);
      });
    });
    assert.ok(killedAfterFirst, 'the process was killed with exactly one finished transition');
    assert.equal(existsSync(out), false, 'no half-written film');
    const run = runCliProcess(['movie', specPath, '--out', out, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as MovieSummary;
    assert.equal(summary.transitionsReused, 1);
    assert.equal(summary.unetCalls, 4 + 38 * 2, 'only the second transition runs (its keyframe A reused)');
    assert.equal((await probeVideo(out)).frames, 29);
  });

  test('Ctrl-C stops cleanly: exit 130, no film, finished transitions kept for the next run', async () => {
    const specPath = join(work, 'interrupted.yaml');
    writeFileSync(specPath, spec(40, ['a cat', 'a dog', 'a bird']));
    const out = join(work, 'interrupted.mp4');
    const transitions = join(work, 'interrupted.latentblend', 'transitions');
    const child = startCliProcess(['movie', specPath, '--out', out, '--quiet'], ['ignore', 'ignore', 'pipe']);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      let sent = false;
      const timer = setInterval(() => {
        if (!sent && existsSync(transitions) && readdirSync(transitions).some((name) => !name.startsWith('.'))) {
          sent = true;
          child.kill('SIGINT');
        }
      }, 5);
      child.on('exit', (exitCode) => {
        clearInterval(timer);
        resolve(exitCode);
      });
    });
    assert.equal(code, 130, stderr);
    assert.match(stderr, /stopping after the current step/);
    assert.doesNotMatch(stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');
    assert.equal(existsSync(out), false, 'no film');
    assert.deepEqual(readdirSync(join(work)).filter((name) => name.includes('.partial')), [], 'no temporary files');
    const run = runCliProcess(['movie', specPath, '--out', out, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.ok((JSON.parse(run.stdout) as MovieSummary).transitionsReused >= 1);
  });

  test('--example prints a spec that parses', () => {
    const run = runCliProcess(['movie', '--example']);
    assert.equal(run.code, 0, run.stderr);
    const parsed = parseFilmSpec(run.stdout, { path: 'example.yaml' });
    assert.ok(parsed.keyframes.length >= 3);
  });
});

describe('movie refuses bad specs with the key path and leaves no output', () => {
  const cases: [string, string, RegExp][] = [
    ['seed not an integer', 'keyframes:\n  - prompt: a\n    seed: abc\n  - prompt: b\n    seed: 2\n', /keyframes\[0\]\.seed: expected an integer seed, got "abc"/],
    ['one keyframe', 'keyframes:\n  - prompt: a\n    seed: 1\n', /keyframes/],
    ['unknown key', 'fsp: 30\nkeyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n    seed: 2\n', /fsp/],
    ['fps out of range', 'fps: 0\nkeyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n    seed: 2\n', /fps: expected/],
    ['duration on the last keyframe', 'keyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n    seed: 2\n    duration: 3\n', /keyframes\[1\]\.duration/],
    ['bad YAML', 'keyframes: [\n  - prompt: a\n', /line \d+/],
  ];
  for (const [name, text, message] of cases) {
    test(name, () => {
      const specPath = join(work, `${name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(specPath, text);
      const out = join(work, `${name.replace(/\W+/g, '-')}.mp4`);
      const run = runCliProcess(['movie', specPath, '--out', out]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');
      assert.equal(existsSync(out), false);
    });
  }

  test('a missing spec file and a missing --out are usage errors', () => {
    assert.match(runCliProcess(['movie', join(work, 'nope.yaml'), '--out', join(work, 'n.mp4')]).stderr, /nope\.yaml/);
    const run = runCliProcess(['movie', join(work, 'three.yaml')]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--out <file> is required/);
  });
});
