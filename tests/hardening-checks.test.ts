/**
 * Hardening, class 3: everything is checked before the first UNet call. Each bad input is
 * refused with one line, the documented exit status, no stack trace, no output file and no
 * work folder; sizes too large for memory name the estimated memory; picture formats follow the
 * extension; numbers are decimal only; ONNX Runtime allocation failures are clean errors.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCliProcess } from './helpers/cli.ts';
import { modelDir } from './helpers/golden.ts';
import { checkPictureSize, estimatePictureMemory } from '../src/pipeline/size-limit.ts';
import { runModel, type OnnxModel } from '../src/runtime/onnx.ts';
import { LatentBlendError } from '../src/errors.ts';
import { parseFilmSpec } from '../src/film/spec.ts';
import { decimalInteger, decimalNumber } from '../src/cli/parse.ts';

const model = modelDir('tiny-sd-turbo');
const work = mkdtempSync(join(tmpdir(), 'latentblend-hardening-checks-'));
after(() => rmSync(work, { recursive: true, force: true }));
const STACK = /\n\s+at .*:\d+:\d+/;

function assertRefusedEarly(args: string[], message: RegExp, code = 2): void {
  const run = runCliProcess([...args, '--model', model]);
  assert.equal(run.code, code, run.stderr);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, STACK, 'no stack trace');
  assert.doesNotMatch(run.stderr, /UNet|denoising/, 'nothing was computed');
  assert.deepEqual(readdirSync(work).filter((name) => !name.startsWith('kept')), [], 'no file and no work folder');
}

describe('the CLI refuses before computing', () => {
  const transition = ['transition', '--prompt1', 'a', '--prompt2', 'b', '--quiet'];
  const cases: [string, string[], RegExp][] = [
    ['GIF faster than 50 fps', [...transition, '--out', join(work, 'fast.gif'), '--fps', '60'], /fps must be a number in \(0, 50\] for gif; got 60/],
    ['fewer than two film frames', [...transition, '--out', join(work, 'short.mp4'), '--fps', '1', '--duration', '1'], /1 s at 1 fps gives 1 film frame.*at least 2/],
    ['a missing ffmpeg', [...transition, '--out', join(work, 'f.mp4'), '--ffmpeg', join(work, 'no-ffmpeg')], /no-ffmpeg.*not an executable/],
    ['hexadecimal seed', [...transition, '--out', join(work, 'h.mp4'), '--seed1', '0x10'], /--seed1.*"0x10"/],
    ['binary steps', ['generate', '--prompt', 'a', '--out', join(work, 'b.png'), '--steps', '0b11'], /--steps.*"0b11"/],
    ['an unknown picture format', ['generate', '--prompt', 'a', '--out', join(work, 'x.bmp')], /picture format of .*x\.bmp.*\.png, \.jpg, \.jpeg, \.webp/],
    ['a picture far above the native area', ['generate', '--prompt', 'a', '--out', join(work, 'big.png'), '--width', '8192', '--height', '8192'], /8192x8192 is 16384 times the model's native 64x64 area.*about \d+(\.\d)? TB of memory.*--max-area/],
    ['a transition frame above the native area', [...transition, '--out', join(work, 'big.mp4'), '--width', '512', '--height', '512'], /512x512 is 64 times.*--max-area/],
  ];
  for (const [name, args, message] of cases) {
    test(name, () => assertRefusedEarly(args, message));
  }

  test('--max-area raises the limit', () => {
    const out = join(work, 'kept-wide.png');
    const run = runCliProcess(['generate', '--model', model, '--prompt', 'a', '--out', out, '--width', '256', '--height', '64', '--max-area', '4', '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    const refused = runCliProcess(['generate', '--model', model, '--prompt', 'a', '--out', join(work, 'wider.png'), '--width', '320', '--height', '64', '--quiet']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /5\.0 times/);
  });

  test('generate writes JPEG and WebP by the extension (any letter case)', async () => {
    for (const [extension, format] of [['jpg', 'jpeg'], ['JPEG', 'jpeg'], ['webp', 'webp']] as const) {
      const out = join(work, `kept-picture.${extension}`);
      const run = runCliProcess(['generate', '--model', model, '--prompt', 'a cat', '--out', out, '--quiet']);
      assert.equal(run.code, 0, run.stderr);
      const metadata = await sharp(out).metadata();
      assert.equal(metadata.format, format, extension);
      assert.equal(metadata.width, 64);
    }
  });
});

describe('damaged model folders are named, not crashed on', () => {
  /** A copy of the tiny model with one file replaced. */
  function damagedModel(name: string, file: string, content: string | Buffer): string {
    const copy = join(tmpdir(), `latentblend-damaged-model-${name}-${process.pid}`);
    rmSync(copy, { recursive: true, force: true });
    cpSync(model, copy, { recursive: true, dereference: true });
    writeFileSync(join(copy, file), content);
    return copy;
  }
  const cases: [string, string, string | Buffer, RegExp][] = [
    ['a truncated UNet', 'unet/model.onnx', Buffer.alloc(1000, 7), /unet\/model\.onnx is a file that is not an ONNX model/],
    ['a scheduler config that is not JSON', 'scheduler/scheduler_config.json', '{bad', /scheduler_config\.json is not valid JSON/],
    ['a model index that is a list', 'model_index.json', '[]', /model_index\.json holds an array/],
  ];
  for (const [name, file, content, message] of cases) {
    test(name, () => {
      const folder = damagedModel(name.replace(/\W+/g, '-'), file, content);
      try {
        const run = runCliProcess(['generate', '--model', folder, '--prompt', 'a', '--out', join(work, 'kept-damaged.png'), '--quiet']);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, message);
        assert.doesNotMatch(run.stderr, STACK);
        assert.equal(existsSync(join(work, 'kept-damaged.png')), false);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    });
  }
});

describe('numbers are decimal only', () => {
  test('the CLI parsers', () => {
    for (const text of ['12', '-3', '+4']) assert.equal(decimalInteger(text), Number(text));
    for (const text of ['0x10', '0b1', '0o7', '1e3', '1.0', ' 12', '12 ', '', 'Infinity', '1_000']) assert.ok(Number.isNaN(decimalInteger(text)), text);
    for (const text of ['0.5', '.5', '5.', '1e-3', '-2.5E2']) assert.equal(decimalNumber(text), Number(text));
    for (const text of ['0x10', 'Infinity', 'NaN', ' 1', '1,5', '']) assert.ok(Number.isNaN(decimalNumber(text)), text);
  });

  test('hexadecimal and octal numbers in a YAML spec are refused with their line', () => {
    const spec = (value: string) => `fps: ${value}\nkeyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n    seed: 2\n`;
    assert.equal(parseFilmSpec(spec('24'), { path: 'f.yaml' }).fps, 24);
    for (const value of ['0x10', '0o17']) {
      assert.throws(() => parseFilmSpec(spec(value), { path: 'f.yaml' }), (error: unknown) => error instanceof LatentBlendError && new RegExp(`line 1: "${value}" is not a decimal number`).test(error.message));
    }
    assert.throws(() => parseFilmSpec('keyframes:\n  - prompt: a\n    seed: 0x1F\n  - prompt: b\n    seed: 2\n', { path: 'f.yaml' }), /line 3: "0x1F"/);
  });
});

describe('film timing in a spec', () => {
  const keyframes = 'keyframes:\n  - prompt: a\n    seed: 1\n  - prompt: b\n    seed: 2\n';
  test('fewer than two frames, too long a transition, too many frames', () => {
    assert.throws(() => parseFilmSpec(`fps: 1\ntransitionDuration: 1\n${keyframes}`, { path: 's.yaml' }), /transitionDuration: 1 s at 1 fps gives 1 film frame/);
    assert.throws(() => parseFilmSpec(`transitionDuration: 1000000000\n${keyframes}`, { path: 's.yaml' }), /transitionDuration: expected at most 3600 seconds, got 1000000000/);
    const many = `fps: 120\ntransitionDuration: 3600\nkeyframes:\n${[1, 2, 3].map((seed) => `  - prompt: p\n    seed: ${seed}\n`).join('')}`;
    assert.throws(() => parseFilmSpec(many, { path: 's.yaml' }), /the film would have 864000 frames; the limit is 432000/);
  });
});

describe('sizes and memory', () => {
  const sd = { family: 'sd', width: 512, height: 512, vaeScaleFactor: 8 };
  test('the limit is 4 times the native area by default', () => {
    checkPictureSize(1024, 1024, sd);
    checkPictureSize(2048, 512, sd);
    assert.throws(() => checkPictureSize(1032, 1024, sd), (error: unknown) => error instanceof LatentBlendError && error.code === 'too_large');
    checkPictureSize(2048, 2048, sd, 16);
  });

  test('the estimate grows with the square of the area and names terabytes for 8192x8192 on a 512 model', () => {
    const small = estimatePictureMemory(512, 512, sd);
    const large = estimatePictureMemory(1024, 1024, sd);
    assert.ok(large > 10 * small, `${large} vs ${small}`);
    assert.throws(() => checkPictureSize(8192, 8192, sd), /8192x8192 is 256 times.*about \d+ TB of memory/);
  });

  test('an ONNX Runtime allocation failure becomes a clean error; other failures stay bugs', async () => {
    const failing = (message: string): OnnxModel =>
      ({
        role: 'UNet',
        path: '/models/unet/model.onnx',
        session: { run: () => Promise.reject(new Error(message)) },
        stats: { calls: 0, seconds: 0 },
      }) as unknown as OnnxModel;
    await assert.rejects(runModel(failing('std::bad_alloc'), {}), (error: unknown) => error instanceof LatentBlendError && error.code === 'out_of_memory' && /Not enough memory to run the UNet.*smaller width and height/.test(error.message));
    await assert.rejects(
      runModel(failing('[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer of size 68719476736'), {}),
      (error: unknown) => error instanceof LatentBlendError && error.code === 'out_of_memory',
    );
    await assert.rejects(runModel(failing('Got invalid dimensions for input'), {}), (error: unknown) => !(error instanceof LatentBlendError) && /UNet .* failed: Got invalid dimensions/.test((error as Error).message));
  });
});

test('the work folder stays untouched by refused commands', () => {
  assert.equal(existsSync(join(work, 'fast.latentblend')), false);
});
