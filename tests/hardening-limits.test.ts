/**
 * Hardening, class 4: inputs of unbounded size. Long prompts are cut before tokenizing (a 30 kB
 * command-line prompt works, with the warning); specs and request bodies nested 200,000 levels
 * deep are answered with a clear error (HTTP 400), not a stack overflow; the studio bounds
 * durations, fps, film frames, picture sizes and its queue, and outlives failing jobs.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { modelDir } from './helpers/golden.ts';
import { loadClipTokenizer, promptHead } from '../src/model/tokenizer.ts';
import { parseFilmSpec } from '../src/film/spec.ts';
import { checkNesting, MAX_SPEC_DEPTH } from '../src/film/spec-guards.ts';
import { LatentBlendError } from '../src/errors.ts';
import { JobQueue } from '../src/studio/jobs.ts';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { nodeFiles } from '../src/node/platform.ts';

const model = modelDir('tiny-sd-turbo');
const work = mkdtempSync(join(tmpdir(), 'latentblend-hardening-limits-'));
after(() => rmSync(work, { recursive: true, force: true }));
const keyframes = [
  { prompt: 'a', seed: 1 },
  { prompt: 'b', seed: 2 },
];

describe('prompts of any length', () => {
  const tokenizer = loadClipTokenizer(nodeFiles, join(model, 'tokenizer'));

  test('a prompt is cut before tokenizing without changing the tokens the encoder gets', () => {
    const words = Array.from({ length: 40_000 }, (_, index) => `word${index % 97}`).join('  \n ');
    const head = promptHead(words, tokenizer.maxLength);
    assert.ok(head.length <= tokenizer.maxLength * 64, `${head.length}`);
    const full = tokenizer.tokenize(words);
    const cut = tokenizer.tokenize(head);
    assert.deepEqual([...cut.ids], [...full.ids]);
    assert.ok(cut.droppedTokens > 0);
    assert.equal(promptHead('a short prompt', tokenizer.maxLength), 'a short prompt');
  });

  test('a 5 MB prompt and a prompt of whitespace runs', () => {
    const huge = 'a lighthouse at dawn, '.repeat(240_000);
    assert.ok(huge.length > 5_000_000);
    assert.equal(tokenizer.tokenize(huge).ids.length, tokenizer.maxLength);
    const spaced = `first${' '.repeat(100_000)}second`;
    const ids = tokenizer.tokenize(spaced).ids;
    assert.deepEqual([...ids], [...tokenizer.tokenize('first second').ids], 'whitespace runs collapse before the cut');
  });

  test('a 30 kB command-line prompt generates with the warning (no crash)', () => {
    const prompt = 'a cat on a hat '.repeat(2000);
    const run = runCliProcess(['generate', '--model', model, '--prompt', prompt, '--out', join(work, 'long.png')]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /The prompt is too long: \d+ tokens beyond the text encoder's limit were dropped/);
  });
});

describe('nesting depth', () => {
  test('a JSON spec 200,000 levels deep is a clear error', () => {
    const deep = `{"keyframes": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    assert.throws(() => parseFilmSpec(deep, { path: 'deep.json' }), (error: unknown) => error instanceof LatentBlendError && /more than 32 levels deep/.test(error.message));
  });

  test('YAML nested in flow and in block style', () => {
    assert.throws(() => parseFilmSpec(`keyframes: ${'['.repeat(100_000)}`, { path: 'deep.yaml' }), (error: unknown) => error instanceof LatentBlendError && /levels deep/.test(error.message));
    const block = `keyframes:\n${'- '.repeat(50_000)}x\n`;
    assert.throws(() => parseFilmSpec(block, { path: 'block.yaml' }), (error: unknown) => error instanceof LatentBlendError && /deep/.test(error.message));
  });

  test('quoted brackets do not count, and a normal spec passes', () => {
    const spec = parseFilmSpec(`keyframes:\n  - prompt: "${'['.repeat(100)}"\n    seed: 1\n  - prompt: 'it''s {'\n    seed: 2\n`, { path: 'ok.yaml' });
    assert.equal(spec.keyframes.length, 2);
  });

  test('checkNesting walks without recursion', () => {
    let value: unknown = 1;
    for (let depth = 0; depth < 300_000; depth++) value = [value];
    assert.throws(() => checkNesting(value, 'the body'), /the body nests lists or mappings more than 32 levels deep/);
    let shallow: unknown = 1;
    for (let depth = 0; depth < MAX_SPEC_DEPTH; depth++) shallow = { a: shallow };
    checkNesting(shallow, 'the body');
  });

  test('a spec text above 1 MiB is refused', () => {
    assert.throws(() => parseFilmSpec(`# ${'x'.repeat(1_100_000)}\nkeyframes: []\n`, { path: 'big.yaml' }), /at most 1048576/);
  });
});

describe('the job queue is bounded for all sessions together', () => {
  test('the global cap refuses with queue_full, each session under its own cap', async () => {
    const queue = new JobQueue({ maxPendingPerOwner: 5, maxPendingTotal: 3 });
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const slow = async () => {
      await blocked;
      return 'done';
    };
    queue.submit('s1', 'x', slow);
    queue.submit('s2', 'x', slow);
    queue.submit('s3', 'x', slow);
    assert.throws(() => queue.submit('s4', 'x', slow), (error: unknown) => error instanceof LatentBlendError && error.code === 'queue_full' && /all sessions together/.test(error.message));
    release();
    await queue.close();
  });
});

describe('the studio bounds its requests and outlives failing jobs', () => {
  let studio: Studio;
  let base: string;
  const logs: string[] = [];
  before(async () => {
    studio = await startStudio({ modelDir: model, workDir: join(work, 'studio'), port: 0, onLog: (line) => logs.push(line) });
    base = studio.url.replace(/\/$/, '');
  });
  after(async () => studio?.close());

  async function post(path: string, body: string | object, cookie?: string): Promise<{ status: number; json: any; cookie: string | undefined }> {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie !== undefined ? { cookie } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: JSON.parse(text), cookie: response.headers.get('set-cookie')?.split(';')[0] ?? cookie };
  }

  const cases: [string, string, object | string, RegExp][] = [
    ['a duration of a billion seconds', '/api/renders', { spec: { transitionDuration: 1_000_000_000, keyframes } }, /transitionDuration: expected at most 3600 seconds/],
    ['a keyframe duration too long', '/api/renders', { spec: { keyframes: [{ prompt: 'a', seed: 1, duration: 1e12 }, { prompt: 'b', seed: 2 }] } }, /keyframes\[0\]\.duration: expected at most 3600/],
    ['fps of a thousand', '/api/renders', { spec: { fps: 1000, keyframes } }, /fps: expected a number from 1 to 120/],
    ['a GIF above 50 fps', '/api/renders', { spec: { fps: 60, keyframes }, format: 'gif' }, /GIF plays at most 50 fps/],
    ['too many film frames', '/api/renders', { spec: { fps: 120, transitionDuration: 3600, keyframes: [...keyframes, { prompt: 'c', seed: 3 }] } }, /film would have 864000 frames/],
    ['a render larger than the model allows', '/api/renders', { spec: { width: 4096, height: 4096, keyframes } }, /4096x4096 is \d+ times the model's native/],
    ['a preview larger than the model allows', '/api/previews', { prompt: 'a cat', width: 4096, height: 4096 }, /memory/],
    ['a body nested 200,000 levels', '/api/spec/yaml', `{"spec": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`, /levels deep/],
    ['a YAML text nested 50,000 levels', '/api/spec/parse', { text: `keyframes:\n${'- '.repeat(50_000)}x\n`, format: 'yaml' }, /deep/],
  ];
  for (const [name, path, body, message] of cases) {
    test(`${name}: 400`, async () => {
      const reply = await post(path, body);
      assert.equal(reply.status, 400, JSON.stringify(reply.json));
      assert.match(reply.json.error.message, message);
    });
  }

  test('a failing job fails alone; the server still answers', async () => {
    const submitted = await post('/api/model', { source: join(work, 'no-such-model') });
    if (submitted.status === 202) {
      const id = submitted.json.id as string;
      for (let tries = 0; tries < 500; tries++) {
        const job = await (await fetch(`${base}/api/jobs/${id}`, { headers: { cookie: submitted.cookie! } })).json();
        if (job.state === 'failed' || job.state === 'done') break;
        await new Promise((wait) => setTimeout(wait, 20));
      }
    } else {
      assert.equal(submitted.status, 400, JSON.stringify(submitted.json));
    }
    const health = await fetch(`${base}/api/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(logs.filter((line) => /unexpected/.test(line)), []);
  });
});
