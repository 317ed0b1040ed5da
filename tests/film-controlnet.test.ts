/** ControlNet in film specs: keys, problems, transition keys, and `movie` rendering and resuming with control pictures. */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFilmSpec, filmSpecToYaml, transitionKey } from '../src/film/spec.ts';
import { runCliProcess } from './helpers/cli.ts';
import { FIXTURES, modelDir } from './helpers/golden.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-film-cn-'));
after(() => rmSync(work, { recursive: true, force: true }));
const controlnet = join(FIXTURES, 'models', 'tiny-sd15-controlnet', 'onnx');
const pictures = join(FIXTURES, 'goldens', 'tiny-sd15-controlnet');

const yaml = (extra: string, keyframes = '  - {prompt: a cat, seed: 1}\n  - {prompt: a dog, seed: 2}\n') => `model: m\n${extra}keyframes:\n${keyframes}`;

/** A film spec on tiny-sd15 (4 steps, 3 branches, 4 fps, 1 s transitions) with `lines` added. */
const smallFilmSpec = (lines: string[]) =>
  [`model: ${JSON.stringify(modelDir('tiny-sd15'))}`, 'steps: 4', 'guidanceScale: 0', 'branchesPerTransition: 3', 'fps: 4', 'transitionDuration: 1', ...lines, ''].join('\n');

describe('film spec ControlNet keys', () => {
  test('parsed, written back, and in the transition key', () => {
    const text = yaml(
      'controlnet: cn\ncontrolImage: edges.png\ncontrolnetScale: 0.8\ncontrolGuidanceEnd: 0.75\ncanny: true\n',
      '  - {prompt: a cat, seed: 1}\n  - {prompt: a dog, seed: 2, controlImage: pose.png, controlnetScale: 1.2}\n  - {prompt: a fox, seed: 3}\n',
    );
    const spec = parseFilmSpec(text, { path: 'film.yaml' });
    assert.equal(spec.controlnet, 'cn');
    assert.equal(spec.keyframes[1]!.controlImage, 'pose.png');
    assert.deepEqual(parseFilmSpec(filmSpecToYaml(spec), { path: 'x.yaml' }), spec, 'round trip');
    const otherScale = parseFilmSpec(text.replace('controlnetScale: 1.2', 'controlnetScale: 1.1'), { path: 'film.yaml' });
    assert.notEqual(transitionKey(spec, 0), transitionKey(otherScale, 0), 'a keyframe scale changes the transitions it touches');
    assert.notEqual(transitionKey(spec, 1), transitionKey(otherScale, 1));
    const noControl = parseFilmSpec(yaml(''), { path: 'film.yaml' });
    const withControl = parseFilmSpec(yaml('controlnet: cn\ncontrolImage: e.png\n'), { path: 'film.yaml' });
    assert.notEqual(transitionKey(noControl, 0), transitionKey(withControl, 0));
  });

  test('problems name the key: control keys without a ControlNet, a keyframe without a picture, an empty window', () => {
    assert.throws(() => parseFilmSpec(yaml('controlnetScale: 1\n'), { path: 'f.yaml' }), /controlnetScale: needs "controlnet"/);
    assert.throws(
      () => parseFilmSpec(yaml('', '  - {prompt: a, seed: 1, controlImage: e.png}\n  - {prompt: b, seed: 2}\n'), { path: 'f.yaml' }),
      /keyframes\[0\]\.controlImage: needs "controlnet" at the top level/,
    );
    assert.throws(
      () => parseFilmSpec(yaml('controlnet: cn\n', '  - {prompt: a, seed: 1, controlImage: e.png}\n  - {prompt: b, seed: 2}\n'), { path: 'f.yaml' }),
      /keyframes\[1\]\.controlImage: missing: with "controlnet", every keyframe needs a control picture/,
    );
    assert.throws(() => parseFilmSpec(yaml('controlnet: cn\ncontrolImage: e.png\ncontrolGuidanceStart: 0.8\ncontrolGuidanceEnd: 0.2\n'), { path: 'f.yaml' }), /controlGuidanceStart: must be below controlGuidanceEnd/);
    assert.throws(() => parseFilmSpec(yaml('controlnet: cn\ncontrolImage: e.png\ncontrolnetScale: 7\n'), { path: 'f.yaml' }), /controlnetScale: expected a number from 0 to 5/);
  });
});

test('movie renders a film with control pictures (shared and per keyframe, relative to the spec) and resumes it', () => {
  copyFileSync(join(pictures, 'control-64.png'), join(work, 'edges.png'));
  const specPath = join(work, 'film.yaml');
  writeFileSync(
    specPath,
    smallFilmSpec([
      `controlnet: ${JSON.stringify(controlnet)}`,
      'controlImage: edges.png',
      'controlnetScale: 0.9',
      'keyframes:',
      '  - {prompt: a cat, seed: 1}',
      '  - {prompt: a dog, seed: 2}',
      `  - {prompt: a fox, seed: 3, controlImage: ${JSON.stringify(join(pictures, 'control-96x80.png'))}, controlnetScale: 0.5}`,
    ]),
  );
  const out = join(work, 'film.gif');
  const first = runCliProcess(['movie', specPath, '--out', out, '--json']);
  assert.equal(first.code, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as { transitions: number; transitionsReused: number; framesComputed: number; unetCalls: number };
  assert.equal(summary.transitions, 2);
  assert.equal(summary.framesComputed, 5, 'the shared keyframe is computed once');
  const again = runCliProcess(['movie', specPath, '--out', out, '--json', '--force']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { transitionsReused: number }).transitionsReused, 2);
  writeFileSync(join(work, 'edges.png'), 'broken');
  const broken = runCliProcess(['movie', specPath, '--out', out, '--json', '--force']);
  assert.equal(broken.code, 2, broken.stderr);
  assert.match(broken.stderr, /keyframes\[0\]\.controlImage: .*edges\.png is not a picture that can be read/);
});

test('film spec IP-Adapter keys: parsed, problems named, and movie blends the image prompts keyframe to keyframe', () => {
  const ok = parseFilmSpec(yaml('ipAdapter: ip\nipImage: a.png\nipAdapterScale: 0.6\n', '  - {prompt: a cat, seed: 1, ipImage: b.png, ipAdapterScale: 1}\n  - {prompt: a dog, seed: 2}\n'), { path: 'f.yaml' });
  assert.equal(ok.keyframes[0]!.ipImage, 'b.png');
  assert.deepEqual(parseFilmSpec(filmSpecToYaml(ok), { path: 'x.yaml' }), ok);
  assert.throws(() => parseFilmSpec(yaml('ipImage: a.png\n'), { path: 'f.yaml' }), /ipImage: needs "ipAdapter"/);
  assert.throws(() => parseFilmSpec(yaml('ipAdapter: ip\n'), { path: 'f.yaml' }), /keyframes\[0\]\.ipImage: missing/);

  const ipPictures = join(FIXTURES, 'goldens', 'tiny-sd15-ip-adapter');
  const specPath = join(work, 'ip-film.yaml');
  writeFileSync(
    specPath,
    smallFilmSpec([
      `ipAdapter: ${JSON.stringify(join(FIXTURES, 'models', 'tiny-sd15-ip-adapter', 'onnx'))}`,
      `ipImage: ${JSON.stringify(join(ipPictures, 'ip-a.png'))}`,
      'keyframes:',
      '  - {prompt: a cat, seed: 1}',
      `  - {prompt: a dog, seed: 2, ipImage: ${JSON.stringify(join(ipPictures, 'ip-b.png'))}, ipAdapterScale: 0.5}`,
      '  - {prompt: a fox, seed: 3}',
    ]),
  );
  const out = join(work, 'ip-film.gif');
  const run = runCliProcess(['movie', specPath, '--out', out, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { transitions: number; framesComputed: number };
  assert.equal(summary.transitions, 2);
  assert.equal(summary.framesComputed, 5, 'the shared keyframe is computed once (same image prompt and scale)');
});
