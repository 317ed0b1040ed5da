/** `latentblend generate` end to end on every tiny fixture, and its answers to bad input. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { goldenModels, modelDir, readJson } from './helpers/golden.ts';
import { readRgb } from '../src/io/png.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { nodePlatform } from '../src/node/platform.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-cli-'));

describe('generate writes the PNG the library computes', () => {
  for (const model of goldenModels()) {
    test(model, async () => {
      const out = join(work, `${model}.png`);
      const run = runCliProcess(['generate', '--model', modelDir(model), '--prompt', 'a cat', '--seed', '1', '--out', out, '--json']);
      assert.equal(run.code, 0, run.stderr);
      const summary = JSON.parse(run.stdout) as { out: string; width: number; height: number; steps: number; unetCalls: number };
      assert.equal(summary.out, out);
      const png = await readRgb(out);
      const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(model) });
      const expected = await pipeline.generate({ prompt: 'a cat', seed: 1 });
      assert.equal(png.width, expected.width);
      assert.equal(png.height, expected.height);
      assert.deepEqual(Buffer.from(png.data), Buffer.from(expected.image.data), 'PNG pixels equal the library image');
      assert.equal(summary.steps, pipeline.defaults.steps);
      assert.equal(summary.unetCalls, pipeline.scheduler(summary.steps).timesteps.length, 'one UNet call per step');
    });
  }
});

describe('generate refuses bad input with a clear message and no output', () => {
  const model = modelDir('tiny-sd-turbo');
  const cases: [string, string[], RegExp][] = [
    ['non-integer steps', ['--steps', 'abc'], /--steps.*expected an integer from 1 to 1000, got "abc"/],
    ['zero steps', ['--steps', '0'], /expected an integer from 1 to 1000, got "0"/],
    ['negative guidance', ['--guidance-scale', '-1'], /--guidance-scale.*got "-1"/],
    ['float seed', ['--seed', '1.5'], /expected an integer seed, got "1.5"/],
    ['unknown device', ['--device', 'tpu'], /--device.*tpu/],
    ['unavailable device', ['--device', 'cuda'], /device: cuda is not available/],
    ['unknown scheduler', ['--scheduler', 'FooScheduler'], /FooScheduler.*supported: .*EulerDiscreteScheduler/],
    ['missing model folder', ['--model', join(work, 'nope')], /nope" is not an existing folder, nor a Hugging Face repo id/],
  ];
  for (const [name, args, message] of cases) {
    test(name, () => {
      const out = join(work, `bad-${name.replace(/\W+/g, '-')}.png`);
      const run = runCliProcess(['generate', '--model', model, '--prompt', 'x', '--out', out, ...args]);
      assert.equal(run.code, 2, `exit code (stderr: ${run.stderr})`);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
      assert.equal(existsSync(out), false, 'no output file');
    });
  }

  test('an existing output is not overwritten without --force', () => {
    const out = join(work, 'exists.png');
    writeFileSync(out, 'precious');
    const run = runCliProcess(['generate', '--model', model, '--prompt', 'x', '--out', out]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /already exists; use --force/);
    assert.equal(readFileSync(out, 'utf8'), 'precious');
    const forced = runCliProcess(['generate', '--model', model, '--prompt', 'x', '--out', out, '--force', '--quiet']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(readFileSync(out, 'utf8').slice(0, 8), 'precious');
    assert.deepEqual(readdirSync(work).filter((file) => file.endsWith('.partial')), [], 'no temporary files left');
  });

  test('a too-long prompt warns with the number of dropped tokens', () => {
    // The longest golden prompt, with the token count diffusers' tokenizer gave without truncation.
    const goldens = readJson<{ prompts: { prompt: string; tokenizer: { untruncated_count: number } }[] }>('goldens', 'tiny-sd-turbo', 'tokenizer.json');
    const longest = goldens.prompts.reduce((a, b) => (b.tokenizer.untruncated_count > a.tokenizer.untruncated_count ? b : a));
    const dropped = longest.tokenizer.untruncated_count - 77;
    assert.ok(dropped > 0, 'the goldens hold a prompt longer than 77 tokens');
    const out = join(work, 'long.png');
    const run = runCliProcess(['generate', '--model', model, '--prompt', longest.prompt, '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`warning: The prompt is too long: ${dropped} tokens`));
  });

  test('a width that is not a multiple of 8 is rounded with a warning', async () => {
    const out = join(work, 'rounded.png');
    const run = runCliProcess(['generate', '--model', model, '--prompt', 'x', '--width', '61', '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /width 61 rounded to 64/);
    assert.equal((await readRgb(out)).width, 64);
  });
});
