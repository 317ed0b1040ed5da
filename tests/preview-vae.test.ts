/**
 * The preview decoder (a tiny autoencoder, --preview-vae): conformance with diffusers'
 * AutoencoderTiny on the tiny-taesd fixture (pipeline latents decoded unscaled, scaling factor
 * 1.0), clear refusals, and the studio: previews use it, a film render never does.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { PreviewVae, type LatentDecoder } from '../src/node/preview-vae.ts';
import { decodedToRgb, type RgbImage } from '../src/pipeline/vae.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { LatentBlendError } from '../src/errors.ts';
import { FIXTURES, maxAbsDiff, modelDir } from './helpers/golden.ts';
import { parseQueueUrl } from '../src/queue/connection.ts';
import { buildProgram } from '../src/cli/main.ts';
import { runCliProcess } from './helpers/cli.ts';
import { parseProvenance } from '../src/studio/provenance.ts';
import { nodePlatform } from '../src/node/platform.ts';
import { readPngText } from '../src/io/png-text.ts';
import { StudioClient } from './helpers/studio-client.ts';

const PREVIEW_DIR = join(FIXTURES, 'models', 'tiny-taesd', 'onnx');
const GOLDEN_DIR = join(FIXTURES, 'goldens', 'tiny-taesd');

function readFloats(path: string): Float32Array {
  const bytes = readFileSync(path);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

describe('preview VAE (tiny autoencoder)', () => {
  test('decodes pipeline latents as diffusers AutoencoderTiny does (no division by the model\'s scaling factor)', async () => {
    const golden = JSON.parse(readFileSync(join(GOLDEN_DIR, 'decode.json'), 'utf8')) as { scaling_factor: number; latent_shape: number[]; decoded_shape: number[] };
    const latents = readFloats(join(GOLDEN_DIR, 'latents.bin'));
    const expected = readFloats(join(GOLDEN_DIR, 'decoded.bin'));
    const vae = await PreviewVae.load(PREVIEW_DIR);
    try {
      assert.equal(vae.scalingFactor, golden.scaling_factor, 'scaling factor from the tiny autoencoder config');
      assert.equal(vae.scaleFactor, golden.decoded_shape[2]! / golden.latent_shape[2]!);
      const shape = golden.latent_shape.slice(1) as [number, number, number];
      const decoded = await vae.decodeRaw(latents, shape);
      assert.ok(maxAbsDiff(decoded, expected) < 1e-4, `decoded differs by ${maxAbsDiff(decoded, expected)}`);
      // What the full VAE's conversion would do (divide by SD's 0.18215) is far off: the test can fail.
      const fullVaeStyle = await vae.decodeRaw(Float32Array.from(latents, (value) => value / 0.18215), shape);
      assert.ok(maxAbsDiff(fullVaeStyle, expected) > 0.1);
      const image = await vae.decode(latents, shape);
      assert.equal(image.width, 64);
      assert.equal(image.height, 64);
      const reference = decodedToRgb(expected, 64, 64);
      assert.ok(maxAbsDiff(image.data, reference.data) <= 1, 'RGB8 as the image processor rounds');
      assert.equal(vae.decodes, 3);
      await assert.rejects(vae.decode(new Float32Array(16 * 8 * 8), [16, 8, 8]), (error: unknown) => error instanceof LatentBlendError && /takes 4 latent channels and this model makes 16/.test(error.message));
    } finally {
      await vae.release();
    }
  });

  test('refuses a folder without a decoder, and a full VAE given as a preview VAE', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'latentblend-preview-vae-'));
    await assert.rejects(PreviewVae.load(empty), (error: unknown) => error instanceof LatentBlendError && /has no vae_decoder\/model\.onnx/.test(error.message));
    const full = join(empty, 'full');
    mkdirSync(join(full, 'vae_decoder'), { recursive: true });
    copyFileSync(join(modelDir('tiny-sd-turbo'), 'vae_decoder', 'model.onnx'), join(full, 'vae_decoder', 'model.onnx'));
    copyFileSync(join(modelDir('tiny-sd-turbo'), 'vae_decoder', 'config.json'), join(full, 'vae_decoder', 'config.json'));
    await assert.rejects(PreviewVae.load(full), (error: unknown) => error instanceof LatentBlendError && /AutoencoderTiny.*"AutoencoderKL"/.test(error.message));
    writeFileSync(join(full, 'vae_decoder', 'config.json'), JSON.stringify({ _class_name: 'AutoencoderTiny', scaling_factor: 0 }));
    await assert.rejects(PreviewVae.load(full), (error: unknown) => error instanceof LatentBlendError && /scaling_factor must be a positive number, got 0/.test(error.message));
  });
});

/** A decoder that counts its calls and keeps its images (the studio is given it loaded). */
class CountingDecoder implements LatentDecoder {
  readonly images: RgbImage[] = [];
  readonly source: string | undefined;
  constructor(private readonly inner: LatentDecoder) {
    this.source = inner.source;
  }
  async decode(latents: Float32Array, shape: readonly [number, number, number]): Promise<RgbImage> {
    const image = await this.inner.decode(latents, shape);
    this.images.push(image);
    return image;
  }
}

async function pngPixels(body: Buffer): Promise<Uint8Array> {
  const { data, info } = await sharp(body).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return new Uint8Array(data);
}

describe('studio --preview-vae', () => {
  const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-preview-vae-'));
  let studio: Studio;
  let client: StudioClient;
  let preview: PreviewVae;
  let counting: CountingDecoder;

  before(async () => {
    preview = await PreviewVae.load(PREVIEW_DIR);
    counting = new CountingDecoder(preview);
    studio = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(work, 'studio'), port: 0, staticDir: join(work, 'static'), previewVae: counting });
    client = new StudioClient(new URL(studio.url));
  });

  after(async () => {
    await studio?.close();
    await preview?.release();
  });

  test('previews are decoded by the preview VAE; a film and its live frames never are', async () => {
    const reply = await client.post('/api/previews', { prompt: 'a red fox', seeds: [5], steps: 1 });
    assert.equal(reply.status, 202, reply.text);
    const job = await client.waitFor(reply.json.id);
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(counting.images.length, 1, 'one preview, one preview decode');
    const served = await pngPixels((await client.get(job.result.images[0].url)).body);
    const servedPng = (await client.get(job.result.images[0].url)).body;
    assert.deepEqual(served, counting.images[0]!.data, 'the preview served is the preview decoder\'s image');
    const previewProvenance = parseProvenance(readPngText(servedPng));
    assert.equal(previewProvenance?.kind === 'preview' ? previewProvenance.previewVae : undefined, resolve(PREVIEW_DIR), 'the preview says which decoder made it');
    assert.match(readPngText(servedPng).get('parameters') ?? '', /VAE: tiny-taesd/);

    // The same image from the model's own VAE differs: the preview VAE really was used.
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
    const own = await pipeline.generate({ prompt: 'a red fox', seed: 5, steps: 1 });
    assert.ok(maxAbsDiff(own.image.data, served) > 10, 'the model\'s VAE gives another image');

    const render = await client.post('/api/renders', {
      spec: { fps: 10, transitionDuration: 1, branchesPerTransition: 3, keyframes: [{ prompt: 'a red fox', seed: 5, duration: 1 }, { prompt: 'a blue bird', seed: 6 }] },
    });
    assert.equal(render.status, 202, render.text);
    const events = await client.watch(render.json.id, (event, data) => event === 'job' && ['done', 'failed', 'cancelled'].includes(data.state), 120_000);
    const last = events.filter((event) => event.event === 'job').at(-1)!.data;
    assert.equal(last.state, 'done', JSON.stringify(last.error));
    assert.equal(counting.images.length, 1, 'no preview decode during the render');
    const frames = events.filter((event) => event.event === 'frame').map((event) => event.data);
    assert.ok(frames.length >= 3, `live frames: ${frames.length}`);
    // Keyframe A's live frame is the model's own VAE image (the film's frame), not the preview's.
    const first = frames.find((frame) => frame.transition === 0 && frame.fract === 0);
    assert.ok(first !== undefined);
    const live = await pngPixels((await client.get(first.url)).body);
    assert.ok(maxAbsDiff(live, served) > 10, 'the live frame is not the preview decoder\'s image');
    const liveProvenance = parseProvenance(readPngText((await client.get(first.url)).body)) as Record<string, unknown> | undefined;
    assert.equal(liveProvenance?.kind, 'frame');
    assert.equal(liveProvenance?.previewVae, undefined);
    for (const model of pipeline.models) await model.session.release();
  });

  test('--preview-vae with --queue, or a folder without a decoder, is refused before anything starts', async () => {
    await assert.rejects(
      startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(work, 'never'), port: 0, previewVae: PREVIEW_DIR, pool: parseQueueUrl('redis://127.0.0.1:1') }),
      /--preview-vae cannot be used with --queue/,
    );
    await assert.rejects(startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(work, 'never'), port: 0, previewVae: work }), /has no vae_decoder\/model\.onnx/);
    assert.equal(existsSync(join(work, 'never')), false, 'no work folder made');
  });
});

describe('CLI', () => {
  test('studio offers --preview-vae; generate, transition and movie do not', () => {
    const program = buildProgram();
    const flags = (name: string) => program.commands.find((command) => command.name() === name)!.options.map((option) => option.long);
    assert.ok(flags('studio').includes('--preview-vae'));
    for (const name of ['generate', 'transition', 'movie']) assert.ok(!flags(name).includes('--preview-vae'), `${name} has no --preview-vae`);
  });

  test('studio --preview-vae on a folder without a decoder: one line, exit 2 (a usage error)', () => {
    const missing = mkdtempSync(join(tmpdir(), 'latentblend-no-preview-vae-'));
    const run = runCliProcess(['studio', '--model', modelDir('tiny-sd-turbo'), '--preview-vae', missing, '--port', '0', '--work-dir', join(missing, 'work'), '--quiet']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /has no vae_decoder\/model\.onnx/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(join(missing, 'work')), false);
  });
});
