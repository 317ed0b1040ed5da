/**
 * Film spec: parsing YAML and JSON, every kind of bad spec with its exact message, defaults,
 * the commented example, YAML round trip, transitions and their cache keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatentBlendError } from '../src/errors.ts';
import {
  EXAMPLE_FILM_SPEC,
  FILM_DEFAULTS,
  filmSpecToYaml,
  loadFilmSpec,
  parseFilmSpec,
  transitionKey,
  transitionsOf,
  type FilmSpec,
} from '../src/film/spec.ts';

const MINIMAL = `keyframes:
  - prompt: a red apple
    seed: 1
  - prompt: a green pear
    seed: 2
`;

/** Parses YAML text as film.yaml. */
function yaml(text: string): FilmSpec {
  return parseFilmSpec(text, { path: 'film.yaml' });
}

/** Asserts that `run` throws a LatentBlendError whose message contains every fragment. */
function assertFails(run: () => unknown, ...fragments: string[]): string {
  let message = '';
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    message = error.message;
    for (const fragment of fragments) {
      assert.ok(message.includes(fragment), `message lacks ${JSON.stringify(fragment)}:\n${message}`);
    }
    return true;
  });
  return message;
}

/** MINIMAL with extra top-level lines before the keyframes. */
function withTop(lines: string): string {
  return `${lines}\n${MINIMAL}`;
}

test('a minimal spec gets the film defaults and leaves model settings unset', () => {
  const spec = yaml(MINIMAL);
  assert.deepEqual(spec, {
    batchSize: 1,
    fps: 30,
    transitionDuration: 6,
    retiming: 'perceptual',
    quality: 75,
    keyframes: [
      { prompt: 'a red apple', seed: 1 },
      { prompt: 'a green pear', seed: 2 },
    ],
  });
  assert.equal(FILM_DEFAULTS.fps, 30);
  assert.equal(spec.steps, undefined);
  assert.equal(spec.parentalCrossfeed, undefined);
});

test('every setting is accepted at its documented bounds', () => {
  const spec = yaml(
    withTop(`model: ./models/sd-turbo
device: cuda
preset: standard
width: 8
height: 8192
steps: 2
guidanceScale: 50
midDamper: 1
depthStrength: 0.01
negativePrompt: ""
timeBudgetPerTransition: 0.5
batchSize: 64
branch1Crossfeed: {power: 0, range: 1, decay: 0.5}
parentalCrossfeed: {power: 1, range: 0, decay: 1}
fps: 120
transitionDuration: 0.1
retiming: equal
quality: 0`),
  );
  assert.equal(spec.model, './models/sd-turbo');
  assert.equal(spec.device, 'cuda');
  assert.equal(spec.preset, 'standard');
  assert.equal(spec.negativePrompt, '');
  assert.deepEqual(spec.branch1Crossfeed, { power: 0, range: 1, decay: 0.5 });
  assert.equal(spec.timeBudgetPerTransition, 0.5);
  assert.equal(spec.retiming, 'equal');
  assert.equal(spec.quality, 0);
  assert.equal(yaml(withTop('branchesPerTransition: 4096')).branchesPerTransition, 4096);
});

test('JSON specs are read with the same schema', () => {
  const spec = parseFilmSpec(
    JSON.stringify({ fps: 24, keyframes: [{ prompt: 'a', seed: 5, duration: 2 }, { prompt: 'b', seed: -7 }] }),
    { path: 'film.json' },
  );
  assert.equal(spec.fps, 24);
  assert.deepEqual(spec.keyframes[0], { prompt: 'a', seed: 5, duration: 2 });
  assert.equal(spec.keyframes[1]!.seed, -7);
  // The explicit format wins over the extension.
  assert.equal(parseFilmSpec(MINIMAL, { path: 'spec.txt', format: 'yaml' }).keyframes.length, 2);
});

/** Bad specs, each with the fragments its message must contain. */
const BAD_SPECS: { name: string; text: string; path?: string; fragments: string[] }[] = [
  { name: 'string width', text: withTop('width: "512"'), fragments: ['width: expected an integer from 8 to 8192, got "512"'] },
  { name: 'fractional height', text: withTop('height: 12.5'), fragments: ['height: expected an integer from 8 to 8192, got 12.5'] },
  { name: 'steps too few', text: withTop('steps: 1'), fragments: ['steps: expected an integer from 2 to 1000, got 1'] },
  { name: 'guidance too high', text: withTop('guidanceScale: 51'), fragments: ['guidanceScale: expected a number from 0 to 50, got 51'] },
  { name: 'mid damper 0', text: withTop('midDamper: 0'), fragments: ['midDamper: expected a number in (0, 1], got 0'] },
  { name: 'depth strength 1', text: withTop('depthStrength: 1'), fragments: ['depthStrength: expected a number in (0, 1), got 1'] },
  { name: 'unknown device', text: withTop('device: gpu'), fragments: ['device: expected one of cpu, cuda, tensorrt, coreml, dml, webgpu, got "gpu"'] },
  { name: 'unknown preset', text: withTop('preset: fast'), fragments: ['preset: expected one of turbo, standard, got "fast"'] },
  { name: 'branches below 2', text: withTop('branchesPerTransition: 1'), fragments: ['branchesPerTransition: expected an integer from 2 to 4096, got 1'] },
  { name: 'zero budget', text: withTop('timeBudgetPerTransition: 0'), fragments: ['timeBudgetPerTransition: expected a number of seconds > 0, got 0'] },
  { name: 'batch too large', text: withTop('batchSize: 65'), fragments: ['batchSize: expected an integer from 1 to 64, got 65'] },
  { name: 'fps 0', text: withTop('fps: 0'), fragments: ['fps: expected a number from 1 to 120, got 0'] },
  { name: 'infinite fps', text: withTop('fps: .inf'), fragments: ['fps: expected a number from 1 to 120, got Infinity'] },
  { name: 'negative transition duration', text: withTop('transitionDuration: -1'), fragments: ['transitionDuration: expected a number of seconds > 0, got -1'] },
  { name: 'unknown retiming', text: withTop('retiming: linear'), fragments: ['retiming: expected one of perceptual, equal, got "linear"'] },
  { name: 'quality 101', text: withTop('quality: 101'), fragments: ['quality: expected a number from 0 to 100, got 101'] },
  { name: 'empty model', text: withTop('model: ""'), fragments: ['model: expected a model folder or Hugging Face Hub repo id (a non-empty string), got ""'] },
  {
    name: 'crossfeed out of range and incomplete',
    text: withTop('parentalCrossfeed: {power: 1.5, range: 0.5}'),
    fragments: ['parentalCrossfeed.power: expected a share in [0, 1], got 1.5', 'parentalCrossfeed.decay: expected a fraction of the power in [0, 1], got nothing'],
  },
  {
    name: 'crossfeed typo',
    text: withTop('branch1Crossfeed: {power: 0.5, rnage: 0.5, decay: 1, range: 0.2}'),
    fragments: ['branch1Crossfeed.rnage: unknown key, did you mean "range"?'],
  },
  {
    name: 'both budget and branches',
    text: withTop('maxBranches: 12\ntimeBudget: 30'),
    fragments: ['timeBudget: give either maxBranches (frames) or timeBudget (seconds), not both, got 12 and 30'],
  },
  {
    name: 'missing prompt',
    text: 'keyframes:\n  - seed: 1\n  - prompt: b\n    seed: 2\n',
    fragments: ['keyframes[0].prompt: expected a prompt, an image or both, got nothing'],
  },
  {
    name: 'blank prompt',
    text: 'keyframes:\n  - prompt: "   "\n    seed: 1\n  - prompt: b\n    seed: 2\n',
    fragments: ['keyframes[0].prompt: expected a prompt (a non-empty string), got "   "'],
  },
  {
    name: 'numeric prompt',
    text: 'keyframes:\n  - prompt: 42\n    seed: 1\n  - prompt: b\n    seed: 2\n',
    fragments: ['keyframes[0].prompt: expected a prompt (a non-empty string), got 42'],
  },
  {
    name: 'missing seed',
    text: 'keyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n',
    fragments: ['keyframes[1].seed: expected an integer seed, got nothing'],
  },
  {
    name: 'non-integer seed',
    text: 'keyframes:\n  - prompt: a\n    seed: 1.5\n  - prompt: b\n    seed: 2\n',
    fragments: ['keyframes[0].seed: expected an integer seed, got 1.5'],
  },
  {
    name: '"abc" seed',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n  - {prompt: b, seed: 2}\n  - {prompt: c, seed: 3}\n  - {prompt: d, seed: abc}\n',
    fragments: ['keyframes[3].seed: expected an integer seed, got "abc"'],
  },
  {
    name: 'unsafe seed',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n  - {prompt: b, seed: 9007199254740993}\n',
    fragments: ['keyframes[1].seed: expected a safe integer seed (|seed| < 2^53)'],
  },
  {
    name: 'keyframe that is not a mapping',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n  - just a prompt\n',
    fragments: ['keyframes[1]: expected a keyframe: a mapping with prompt and seed, got "just a prompt"'],
  },
  {
    name: 'zero keyframe duration',
    text: 'keyframes:\n  - {prompt: a, seed: 1, duration: 0}\n  - {prompt: b, seed: 2}\n',
    fragments: ['keyframes[0].duration: expected a number of seconds > 0, got 0'],
  },
  {
    name: 'one keyframe',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n',
    fragments: ['keyframes: expected a list of at least 2 keyframes, got [{"prompt":"a","seed":1}]'],
  },
  { name: 'no keyframes', text: 'fps: 24\n', fragments: ['keyframes: expected a list of at least 2 keyframes, got nothing'] },
  { name: 'keyframes not a list', text: 'keyframes: 3\n', fragments: ['keyframes: expected a list of at least 2 keyframes, got 3'] },
  {
    name: 'duration on the last keyframe',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n  - {prompt: b, seed: 2}\n  - {prompt: c, seed: 3, duration: 4}\n',
    fragments: [
      "keyframes[2].duration: not allowed on the last keyframe: a keyframe's duration is that of the transition that follows it, and none follows the last one (set it on keyframes[1]), got 4",
    ],
  },
  {
    name: 'negative prompt on the last keyframe',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n  - {prompt: b, seed: 2, negativePrompt: blur}\n',
    fragments: ['keyframes[1].negativePrompt: not allowed on the last keyframe', 'got "blur"'],
  },
  { name: 'unknown top-level key', text: withTop('keyframe: 1'), fragments: ['keyframe: unknown key, did you mean "keyframes"?'] },
  { name: 'unknown key without a guess', text: withTop('colour: red'), fragments: ['colour: unknown key, see `latentblend movie --example` for every setting'] },
  {
    name: 'unknown keyframe key',
    text: 'keyframes:\n  - {prompt: a, seed: 1}\n  - {prompt: b, seed: 2, sed: 3}\n',
    fragments: ['keyframes[1].sed: unknown key, did you mean "seed"?'],
  },
  {
    name: 'keyframe key without a guess',
    text: 'keyframes:\n  - {prompt: a, seed: 1, strength: 3}\n  - {prompt: b, seed: 2}\n',
    fragments: ['keyframes[0].strength: unknown key, a keyframe takes prompt, image, fit, imageMethod, negativePrompt, seed, duration'],
  },
  {
    name: 'snake_case keys',
    text: withTop('guidance_scale: 3\nnegative_prompt: blur'),
    fragments: [
      'guidance_scale: unknown key, did you mean "guidanceScale"? (keys are camelCase)',
      'negative_prompt: unknown key, did you mean "negativePrompt"? (keys are camelCase)',
    ],
  },
  {
    name: 'snake_case keyframe key',
    text: 'keyframes:\n  - {prompt: a, seed: 1, negative_prompt: x}\n  - {prompt: b, seed: 2}\n',
    fragments: ['keyframes[0].negative_prompt: unknown key, did you mean "negativePrompt"? (keys are camelCase)'],
  },
  {
    name: 'engine and Python names',
    text: withTop('max_branches: 10\nnum_inference_steps: 4\nduration: 3'),
    fragments: [
      'max_branches: unknown key, did you mean "maxBranches"?',
      'num_inference_steps: unknown key, did you mean "steps"?',
      'duration: unknown key, did you mean "transitionDuration"?',
    ],
  },
  { name: 'seed at the top level', text: withTop('seed: 3'), fragments: ['seed: unknown key here: each keyframe has its own seed (keyframes[i].seed)'] },
  {
    name: 'bad YAML names file, line and column',
    text: 'fps: 30\nkeyframes:\n  - prompt: a\n    seed: 1\n   - prompt: b\n',
    fragments: ['film.yaml:5:4: YAML syntax error at line 5, column 4: All sequence items must start at the same column'],
  },
  {
    name: 'tab indentation in YAML',
    text: 'fps: 30\nkeyframes:\n  - prompt: a\n\tseed: 1\n',
    fragments: ['film.yaml:4:1: YAML syntax error at line 4, column 1: Tabs are not allowed as indentation'],
  },
  {
    name: 'unclosed flow list',
    text: 'fps: 30\nkeyframes: [{prompt: a, seed: 1}\nquality: 3\n',
    fragments: ['film.yaml:', 'YAML syntax error at line'],
  },
  { name: 'duplicate YAML key', text: 'fps: 30\nfps: 24\n', fragments: ['film.yaml:2:1: YAML syntax error at line 2, column 1: a key appears twice', 'fps: 24'] },
  { name: 'two YAML documents', text: `${MINIMAL}---\n${MINIMAL}`, fragments: ['film.yaml:', 'more than one YAML document'] },
  { name: 'unresolved alias', text: 'fps: *rate\n', fragments: ['film.yaml: YAML error:', 'rate'] },
  { name: 'empty file', text: '', fragments: ['film.yaml is empty: expected film settings and a "keyframes" list'] },
  { name: 'whitespace-only file', text: '  \n\n', fragments: ['film.yaml is empty'] },
  { name: 'comments only', text: '# nothing yet\n', fragments: ['film.yaml has no settings (only comments?)'] },
  { name: 'a list at top level', text: '- prompt: a\n  seed: 1\n', fragments: ['film.yaml: expected a mapping of film settings with a "keyframes" list at the top level, got a list'] },
  { name: 'a string at top level', text: 'hello\n', fragments: ['film.yaml: expected a mapping of film settings', 'got a string "hello"'] },
  {
    name: 'JSON with a trailing comma',
    path: 'film.json',
    text: '{\n  "keyframes": [\n    {"prompt": "a", "seed": 1},\n    {"prompt": "b", "seed": 2},\n  ]\n}\n',
    fragments: ['film.json:4:31: invalid JSON at line 4, column 31: a trailing comma before "]" (JSON allows none'],
  },
  {
    name: 'JSON with a trailing comma in an object',
    path: 'film.json',
    text: '{"fps": 30,}',
    fragments: ['film.json:1:11: invalid JSON at line 1, column 11: a trailing comma before "}"'],
  },
  { name: 'JSON with a comment', path: 'film.json', text: '{\n  // the film\n  "fps": 30\n}', fragments: ['film.json:2:3: invalid JSON at line 2, column 3: a comment'] },
  { name: 'JSON with a missing quote', path: 'film.json', text: '{\n  "fps: 30\n}', fragments: ['film.json', 'invalid JSON'] },
  { name: 'JSON list at top level', path: 'film.json', text: '[1, 2]', fragments: ['film.json: expected a mapping of film settings', 'got a list'] },
  { name: 'empty JSON file', path: 'film.json', text: '\n', fragments: ['film.json is empty'] },
  { name: 'unsupported extension', path: 'film.toml', text: MINIMAL, fragments: ['film.toml: a film spec must be a .yaml, .yml or .json file, got ".toml"'] },
];

for (const bad of BAD_SPECS) {
  test(`bad spec: ${bad.name}`, () => {
    assertFails(() => parseFilmSpec(bad.text, { path: bad.path ?? 'film.yaml' }), ...bad.fragments);
  });
}

test('every problem is reported at once, each on its own line', () => {
  const message = assertFails(
    () => yaml('fps: 0\nqualty: 1\nkeyframes:\n  - {prompt: a, seed: x}\n  - {prompt: "", seed: 2}\n'),
    'Invalid film spec film.yaml:',
  );
  const lines = message.split('\n').slice(1).map((line) => line.trim());
  assert.deepEqual(lines, [
    'qualty: unknown key, did you mean "quality"?',
    'fps: expected a number from 1 to 120, got 0',
    'keyframes[0].seed: expected an integer seed, got "x"',
    'keyframes[1].prompt: expected a prompt (a non-empty string), got ""',
  ]);
});

test('YAML syntax errors quote the offending line with a caret', () => {
  const message = assertFails(() => yaml('fps: 30\nquality: [1, 2]]\n'), 'film.yaml:2:');
  assert.match(message, /\n {4}quality: \[1, 2\]\]\n {4} *\^/);
});

test('a byte order mark is ignored', () => {
  assert.equal(yaml(`\uFEFF${MINIMAL}`).keyframes.length, 2);
});

test('loadFilmSpec reads .yaml, .yml and .json files and names unreadable ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentblend-film-'));
  try {
    writeFileSync(join(dir, 'a.yaml'), MINIMAL);
    writeFileSync(join(dir, 'b.YML'), MINIMAL);
    writeFileSync(join(dir, 'c.json'), JSON.stringify(yaml(MINIMAL)));
    writeFileSync(join(dir, 'd.txt'), MINIMAL);
    writeFileSync(join(dir, 'e.json'), '{"keyframes": [],}');
    mkdirSync(join(dir, 'folder.yaml'));
    for (const name of ['a.yaml', 'b.YML', 'c.json']) assert.deepEqual(loadFilmSpec(join(dir, name)), yaml(MINIMAL));
    assertFails(() => loadFilmSpec(join(dir, 'd.txt')), 'd.txt: a film spec must be a .yaml, .yml or .json file, got ".txt"');
    assertFails(() => loadFilmSpec(join(dir, 'noext')), 'a name without extension');
    assertFails(() => loadFilmSpec(join(dir, 'e.json')), 'e.json:1:17: invalid JSON', 'trailing comma');
    assertFails(() => loadFilmSpec(join(dir, 'missing.yaml')), `Cannot read film spec ${join(dir, 'missing.yaml')}: no such file`);
    assertFails(() => loadFilmSpec(join(dir, 'folder.yaml')), 'folder.yaml: it is a folder, not a file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the example spec parses with the values it shows', () => {
  const spec = parseFilmSpec(EXAMPLE_FILM_SPEC, { path: 'example.yaml' });
  assert.deepEqual(spec, {
    model: 'stabilityai/sdxl-turbo',
    depthStrength: 0.5,
    negativePrompt: 'blurry, low quality, text, watermark',
    batchSize: 1,
    fps: 30,
    transitionDuration: 6,
    retiming: 'perceptual',
    quality: 75,
    keyframes: [
      { prompt: 'a lighthouse on a cliff at dawn, oil painting', seed: 420, duration: 8 },
      { prompt: 'a lighthouse in a thunderstorm at night, oil painting', seed: 4711, negativePrompt: 'blurry, low quality, people' },
      { prompt: 'a lighthouse under the northern lights, oil painting', seed: 1 },
    ],
  });
});

test('the example explains every key, and its optional settings are valid when enabled', () => {
  const known = [
    'model', 'device', 'preset', 'width', 'height', 'steps', 'guidanceScale', 'midDamper', 'depthStrength',
    'negativePrompt', 'maxBranches', 'timeBudget', 'batchSize', 'branch1Crossfeed',
    'parentalCrossfeed', 'fps', 'transitionDuration', 'retiming', 'quality', 'keyframes',
  ];
  for (const key of known) assert.match(EXAMPLE_FILM_SPEC, new RegExp(`^#?${key}:`, 'm'), `example lacks ${key}`);
  for (const words of ['Depth strength', 'Mid damper', 'power:', 'range:', 'decay:', 'Retiming']) assert.ok(EXAMPLE_FILM_SPEC.includes(words), words);
  // Lines with "#" directly followed by text are disabled settings; prose comments use "# ".
  const enableAll = (text: string) => text.replace(/^#(?=\S)(?!!)/gm, '');
  assertFails(() => yaml(enableAll(EXAMPLE_FILM_SPEC)), 'give either maxBranches (frames) or timeBudget (seconds), not both');
  const enabled = yaml(enableAll(EXAMPLE_FILM_SPEC.replace('#timeBudget', '# timeBudget')));
  assert.equal(enabled.device, 'cuda');
  assert.equal(enabled.steps, 4);
  assert.equal(enabled.maxBranches, 10);
  assert.deepEqual(enabled.parentalCrossfeed, { power: 0.3, range: 0.6, decay: 0.9 });
  assert.deepEqual(enabled.branch1Crossfeed, { power: 0.3, range: 0.3, decay: 0.5 });
});

test('filmSpecToYaml round trips the example, a full spec and awkward strings', () => {
  const example = yaml(EXAMPLE_FILM_SPEC);
  assert.deepEqual(yaml(filmSpecToYaml(example)), example);

  const full = yaml(
    `model: C:\\models\\sdxl
device: coreml
preset: turbo
width: 768
height: 512
steps: 6
guidanceScale: 1.5
midDamper: 0.25
depthStrength: 0.35
negativePrompt: "# not a comment: really"
timeBudgetPerTransition: 12.5
batchSize: 4
branch1Crossfeed: {power: 0.1, range: 0.2, decay: 0.3}
parentalCrossfeed: {power: 0.4, range: 0.5, decay: 0.6}
fps: 23.976
transitionDuration: 2.5
retiming: equal
quality: 90
keyframes:
  - prompt: "yes"
    seed: 0
    negativePrompt: ""
  - prompt: "123"
    seed: -5
    duration: 0.75
  - prompt: "two\\nlines: with 'quotes' and \\"double\\" ones, a tab\\tand ünïcødé 🌅"
    seed: 9007199254740991
  - prompt: " leading and trailing spaces "
    seed: 3
`,
  );
  const text = filmSpecToYaml(full);
  assert.ok(text.startsWith('# latentblend film spec'));
  assert.deepEqual(yaml(text), full);
  // Stable output: serialising the parsed output again gives the same text.
  assert.equal(filmSpecToYaml(yaml(text)), text);
  // A long prompt stays on one line.
  const long = yaml(MINIMAL.replace('a red apple', 'word '.repeat(60).trim()));
  assert.ok(filmSpecToYaml(long).includes(`prompt: ${'word '.repeat(60).trim()}\n`));
});

test('transitionsOf: K keyframes make K - 1 transitions with durations and negative prompts resolved', () => {
  const spec = yaml(EXAMPLE_FILM_SPEC);
  const transitions = transitionsOf(spec);
  assert.equal(transitions.length, 2);
  assert.deepEqual(transitions[0], {
    index: 0,
    from: spec.keyframes[0],
    to: spec.keyframes[1],
    duration: 8,
    negativePrompt: 'blurry, low quality, text, watermark',
  });
  assert.deepEqual(transitions[1], {
    index: 1,
    from: spec.keyframes[1],
    to: spec.keyframes[2],
    duration: 6,
    negativePrompt: 'blurry, low quality, people',
  });
  const plain = transitionsOf(yaml(withTop('transitionDuration: 3')));
  assert.deepEqual(plain, [{ index: 0, from: { prompt: 'a red apple', seed: 1 }, to: { prompt: 'a green pear', seed: 2 }, duration: 3 }]);
  assert.ok(!('negativePrompt' in plain[0]!));
});

/** A spec with `count` keyframes and the given extra top-level settings. */
function chain(count: number, top = ''): string {
  const keyframes = Array.from({ length: count }, (_, index) => `  - {prompt: "scene ${index}", seed: ${index * 10}}`).join('\n');
  return `${top}\nkeyframes:\n${keyframes}\n`;
}

function keysOf(spec: FilmSpec): string[] {
  return transitionsOf(spec).map((transition) => transitionKey(spec, transition.index));
}

test('transitionKey is a stable sha256 hex of what determines the frames', () => {
  const spec = yaml(chain(4));
  const keys = keysOf(spec);
  for (const key of keys) assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(new Set(keys).size, 3);
  // Same content, different text (JSON, key order, comments): same keys.
  const same = parseFilmSpec(JSON.stringify({ keyframes: spec.keyframes.map((k) => ({ seed: k.seed, prompt: k.prompt })) }), { path: 'x.json' });
  assert.deepEqual(keysOf(same), keys);
  assert.deepEqual(keysOf(yaml(filmSpecToYaml(spec))), keys);
  // The default batch size is the explicit 1.
  assert.deepEqual(keysOf(yaml(chain(4, 'batchSize: 1'))), keys);
  assertFails(() => transitionKey(spec, 3), 'transition index: expected an integer from 0 to 2, got 3');
  assertFails(() => transitionKey(spec, 0.5), 'got 0.5');
});

test('rendering-only settings do not change the keys; computing settings change them all', () => {
  const keys = keysOf(yaml(chain(4)));
  for (const top of ['fps: 12', 'transitionDuration: 2', 'retiming: equal', 'quality: 10', 'device: cpu']) {
    assert.deepEqual(keysOf(yaml(chain(4, top))), keys, top);
  }
  const durations = yaml(chain(4).replace('seed: 10}', 'seed: 10, duration: 9}'));
  assert.deepEqual(keysOf(durations), keys, 'keyframe duration');
  for (const top of [
    'model: other/model',
    'preset: standard',
    'width: 256',
    'height: 256',
    'steps: 8',
    'guidanceScale: 2',
    'midDamper: 0.7',
    'depthStrength: 0.3',
    'negativePrompt: blur',
    'branchesPerTransition: 20',
    'timeBudgetPerTransition: 20',
    'batchSize: 2',
    'branch1Crossfeed: {power: 0, range: 0, decay: 0}',
    'parentalCrossfeed: {power: 1, range: 1, decay: 1}',
  ]) {
    const changed = keysOf(yaml(chain(4, top)));
    for (let index = 0; index < keys.length; index++) assert.notEqual(changed[index], keys[index], `${top} (transition ${index})`);
  }
});

test('changing one keyframe changes only the keys of the transitions that touch it', () => {
  const keys = keysOf(yaml(chain(5)));
  const prompt = keysOf(yaml(chain(5).replace('"scene 2"', '"scene two"')));
  assert.deepEqual(
    prompt.map((key, index) => key !== keys[index]),
    [false, true, true, false],
  );
  const seed = keysOf(yaml(chain(5).replace('seed: 0}', 'seed: 1}')));
  assert.deepEqual(
    seed.map((key, index) => key !== keys[index]),
    [true, false, false, false],
  );
  const last = keysOf(yaml(chain(5).replace('"scene 4"', '"the end"')));
  assert.deepEqual(
    last.map((key, index) => key !== keys[index]),
    [false, false, false, true],
  );
  // A keyframe's negative prompt is that of the transition after it: only that key changes.
  const negative = keysOf(yaml(chain(5).replace('seed: 20}', 'seed: 20, negativePrompt: fog}')));
  assert.deepEqual(
    negative.map((key, index) => key !== keys[index]),
    [false, false, true, false],
  );
  // Appending a keyframe keeps every existing key.
  assert.deepEqual(keysOf(yaml(chain(6))).slice(0, 4), keys);
});

test('with branch-1 crossfeed a keyframe change reaches every later transition', () => {
  const top = 'branch1Crossfeed: {power: 0.5, range: 0.5, decay: 1}';
  const keys = keysOf(yaml(chain(5, top)));
  const changed = keysOf(yaml(chain(5, top).replace('"scene 1"', '"scene one"')));
  assert.deepEqual(
    changed.map((key, index) => key !== keys[index]),
    [true, true, true, true],
  );
  const later = keysOf(yaml(chain(5, top).replace('"scene 3"', '"scene three"')));
  assert.deepEqual(
    later.map((key, index) => key !== keys[index]),
    [false, false, true, true],
  );
});
