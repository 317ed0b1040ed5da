/**
 * The proof that there is one engine: the same transition (tiny SD-Turbo fixture, same seeds and
 * options) computed by onnxruntime-node here and by onnxruntime-web in headless Chromium, with
 * the WebAssembly backend and with the WebGPU backend (SwiftShader, on the CPU), gives the same
 * frames within the tolerances below, and LPIPS (tiny fixture) the same neighbour distances. The model files and the bundle come from a local HTTP
 * server on 127.0.0.1; the model store's cache, fp16 preference and external data are checked on
 * the way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { tmpdir } from 'node:os';
import { externalizeOnnx } from './helpers/onnx-external.ts';
import type { Browser, Page } from 'playwright-core';
import { bundleBrowserCode } from '../src/node/browser-bundle.ts';
import { nodePlatform } from '../src/node/platform.ts';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { BlendingEngine, type Transition } from '../src/engine/engine.ts';
import { PixelMetric } from '../src/engine/pixel-metric.ts';
import { loadLpipsMetric } from '../src/engine/lpips.ts';
import type { TransitionOptions } from '../src/engine/options.ts';
import { FIXTURES, ROOT, modelDir } from './helpers/golden.ts';
import { launchChromium, modulePage, startSiteServer, type SiteServer } from './helpers/browser.ts';
import type { ProofRequest } from './browser/proof-page.ts';

const ORT_DIST = join(ROOT, 'node_modules', 'onnxruntime-web', 'dist');
const MODEL = 'tiny-sd-turbo';
const LPIPS_DIR = join(FIXTURES, 'lpips');
const LPIPS_URL = (): string => `${server.url}/lpips/tiny-lpips.onnx`;

/** Small on purpose: WebGPU on SwiftShader runs on the CPU. 32×32 px, 2 steps, 3 frames. */
const OPTIONS: TransitionOptions = {
  keyframeA: { prompt: 'a red house by the sea', seed: 11 },
  keyframeB: { prompt: 'a green forest at night', seed: 22 },
  width: 32,
  height: 32,
  steps: 2,
  maxBranches: 3,
};

/**
 * Tolerances in 8-bit levels per channel value, against onnxruntime-node's frames. Measured on
 * this fixture (Chromium 156, onnxruntime 1.30.0, 2026-12-02):
 * - WebAssembly: identical frames (max 0 levels); the same CPU kernels compiled to wasm.
 * - WebGPU on SwiftShader: max 30 levels, mean 2.7. The text encoder agrees to 1e-6; the UNet and
 *   VAE differ because WebGPU's InstanceNormalization (diffusers' GroupNorm) loses float32
 *   precision when a group's mean is large against its spread: a lone InstanceNormalization on
 *   values 10 ± 0.07 differs by 2.5e-3 (1e-7 on WebAssembly), and this tiny random-weight UNet
 *   has such activations. The tree is the same (same fracts); the frames are close, not equal.
 */
const TOLERANCE = { cpu: { max: 1, mean: 0.01 }, webgpu: { max: 48, mean: 4 } } as const;

interface PageFrame {
  fract: number;
  width: number;
  height: number;
  data: string;
  distanceToNext?: number;
}

let server: SiteServer;
let browser: Browser;
let page: Page;
let reference: Transition;
/** On disk for onnxruntime-node: the fixture with an fp16 UNet and a VAE decoder in 2 data shards. */
let layoutDir: string;
/** What the browser gets: the same, but unet/model.onnx (fp32) beside unet/model_fp16.onnx. */
const layoutFiles: Record<string, Uint8Array> = {};
/** A 32×32 PNG for a picture keyframe (the film size, so both sides decode the same pixels) and a 48×24 one. */
const pictures: Record<string, Buffer> = {};

function compare(frames: PageFrame[], expected: Transition): { max: number; mean: number } {
  assert.deepEqual(frames.map((frame) => frame.fract), expected.frames.map((frame) => frame.fract), 'same branches at the same fracts');
  let max = 0;
  let sum = 0;
  let count = 0;
  frames.forEach((frame, index) => {
    const want = expected.frames[index]!.image;
    assert.equal(frame.width, want.width);
    assert.equal(frame.height, want.height);
    const got = Buffer.from(frame.data, 'base64');
    assert.equal(got.length, want.data.length);
    for (let k = 0; k < got.length; k++) {
      const delta = Math.abs(got[k]! - want.data[k]!);
      max = Math.max(max, delta);
      sum += delta;
      count += 1;
    }
  });
  return { max, mean: sum / count };
}

function compareImages(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let k = 0; k < a.length; k++) {
    const delta = Math.abs(a[k]! - b[k]!);
    max = Math.max(max, delta);
    sum += delta;
  }
  return { max, mean: sum / a.length };
}

async function inPage(request: Omit<ProofRequest, 'modelUrl'> & { modelUrl?: string }) {
  return page.evaluate(
    async (input) => (globalThis as unknown as { latentblendTest: { transition(r: unknown): Promise<unknown> } }).latentblendTest.transition(input),
    { modelUrl: `${server.url}/models/${MODEL}`, ...request },
  ) as Promise<{ devices: string[]; metric: string; frames: PageFrame[]; downloads: { url: string; role: string; cached: boolean; total: number }[] }>;
}

before(async () => {
  const bundle = await bundleBrowserCode(join(ROOT, 'tests', 'browser', 'proof-page.ts'));
  assert.deepEqual(bundle.nodeImports, []);
  layoutDir = mkdtempSync(join(tmpdir(), 'lb-layout-'));
  cpSync(modelDir(MODEL), layoutDir, { recursive: true });
  const fp16Unet = readFileSync(join(modelDir('tiny-sd-turbo-fp16'), 'unet', 'model.onnx'));
  writeFileSync(join(layoutDir, 'unet', 'model.onnx'), fp16Unet);
  const sharded = externalizeOnnx(readFileSync(join(modelDir(MODEL), 'vae_decoder', 'model.onnx')), 'model.onnx', 2);
  writeFileSync(join(layoutDir, 'vae_decoder', 'model.onnx'), sharded.model);
  layoutFiles['/layout/unet/model.onnx'] = readFileSync(join(modelDir(MODEL), 'unet', 'model.onnx'));
  layoutFiles['/layout/unet/model_fp16.onnx'] = fp16Unet;
  layoutFiles['/layout/vae_decoder/model.onnx'] = sharded.model;
  for (const [name, data] of sharded.files) {
    writeFileSync(join(layoutDir, 'vae_decoder', name), data);
    layoutFiles[`/layout/vae_decoder/${name}`] = data;
  }
  assert.equal(sharded.files.size, 2);
  for (const [name, width, height] of [['square.png', 32, 32], ['wide.png', 48, 24]] as const) {
    const rgb = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) rgb.set([(x * 255) / width, (y * 255) / height, ((x + y) % 7) * 30], (y * width + x) * 3);
    }
    pictures[name] = await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
    writeFileSync(join(layoutDir, name), pictures[name]!);
  }
  server = await startSiteServer({
    folders: { '/ort': ORT_DIST, [`/models/${MODEL}`]: modelDir(MODEL), '/lpips': LPIPS_DIR, '/models/layout': layoutDir },
    files: {
      '/index.html': new TextEncoder().encode(modulePage('/page.js')),
      '/page.js': new TextEncoder().encode(bundle.js),
      ...Object.fromEntries(Object.entries(layoutFiles).map(([path, data]) => [`/models${path}`, data])),
      ...Object.fromEntries(Object.entries(pictures).map(([name, data]) => [`/pictures/${name}`, data])),
    },
  });
  browser = await launchChromium();
  page = await browser.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => 'latentblendTest' in globalThis);
  const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(MODEL) });
  const lpips = await loadLpipsMetric(nodePlatform, join(LPIPS_DIR, 'tiny-lpips.onnx'), 'cpu');
  reference = await new BlendingEngine(pipeline, lpips).runTransition(OPTIONS);
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (layoutDir !== undefined) rmSync(layoutDir, { recursive: true, force: true });
});

describe('onnxruntime-web in Chromium against onnxruntime-node', () => {
  test('WebAssembly: same frames and LPIPS distances; model files fetched once, then from the Cache API', async () => {
    const result = await inPage({ device: 'cpu', transition: OPTIONS, lpipsUrl: LPIPS_URL() });
    assert.ok(result.devices.includes('cpu'));
    assert.equal(result.metric, 'lpips');
    const difference = compare(result.frames, reference);
    console.log(`WebAssembly vs onnxruntime-node: max ${difference.max} levels, mean ${difference.mean.toFixed(4)}`);
    assert.ok(difference.max <= TOLERANCE.cpu.max && difference.mean <= TOLERANCE.cpu.mean, JSON.stringify(difference));
    // LPIPS through onnxruntime-web: the distances that place the branches agree.
    const want = reference.frames.slice(0, -1).map((frame) => frame.distanceToNext!);
    const got = result.frames.slice(0, -1).map((frame) => frame.distanceToNext!);
    assert.ok(want.every((value) => value > 0));
    got.forEach((value, index) => assert.ok(Math.abs(value - want[index]!) <= 1e-5 * Math.max(1, want[index]!), `gap ${index}: ${value} vs ${want[index]}`));
    const onnx = result.downloads.filter((event) => event.url.includes('/models/') && event.url.endsWith('.onnx'));
    // The VAE encoder loads only when a picture is encoded.
    assert.deepEqual(onnx.map((event) => event.role).sort(), ['UNet', 'VAE decoder', 'text encoder'].sort());
    assert.ok(onnx.every((event) => !event.cached));
    const again = await page.evaluate(
      async (input) => (globalThis as unknown as { latentblendTest: { load(r: unknown): Promise<{ downloads: { cached: boolean }[] }> } }).latentblendTest.load(input),
      { modelUrl: `${server.url}/models/${MODEL}`, device: 'cpu' },
    );
    assert.ok(again.downloads.length > 0 && again.downloads.every((event) => event.cached), 'second load from the cache');
  });

  test('an fp16 UNet is preferred over the fp32 one; a VAE decoder in two external-data shards loads', async () => {
    const result = await inPage({ device: 'cpu', transition: OPTIONS, modelUrl: `${server.url}/models/layout`, cacheName: null });
    const fetched = result.downloads.map((event) => event.url.slice(`${server.url}/models/layout/`.length));
    assert.ok(fetched.includes('unet/model_fp16.onnx') && !fetched.includes('unet/model.onnx'), fetched.join(', '));
    assert.ok(fetched.includes('vae_decoder/model.onnx_data') && fetched.includes('vae_decoder/model.onnx_data_1'), fetched.join(', '));
    // rms-pixel on both sides here: with 3 frames the tree does not depend on the metric.
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: layoutDir });
    const expected = await new BlendingEngine(pipeline, new PixelMetric()).runTransition(OPTIONS);
    const difference = compare(result.frames, expected);
    assert.ok(difference.max <= TOLERANCE.cpu.max, `against onnxruntime-node on the same files: ${JSON.stringify(difference)}`);
    // And it did change something: the fp16 UNet's frames are not the fp32 ones.
    assert.ok(compare(result.frames, reference).max > 0);
  });

  test('a picture keyframe: fetched, decoded by the browser and encoded by the VAE, the same transition as in Node', async () => {
    const withPicture = (path: string): TransitionOptions => ({ ...OPTIONS, keyframeA: { prompt: 'a photo', seed: 11, image: { path, fit: 'cover' } } });
    const result = await inPage({ device: 'cpu', transition: withPicture(`${server.url}/pictures/square.png`), cacheName: null });
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir(MODEL) });
    const expected = await new BlendingEngine(pipeline, new PixelMetric()).runTransition(withPicture(join(layoutDir, 'square.png')));
    const difference = compare(result.frames, expected);
    assert.ok(difference.max <= TOLERANCE.cpu.max, `picture keyframe against onnxruntime-node: ${JSON.stringify(difference)}`);
    assert.ok(result.downloads.some((event) => event.role === 'VAE encoder'), 'the VAE encoder was loaded for the picture');
    // A picture of another shape is cropped to the film size (Lanczos here, sharp in Node: close, not equal).
    const wide = await inPage({ device: 'cpu', transition: withPicture(`${server.url}/pictures/wide.png`), cacheName: null });
    assert.deepEqual([wide.frames[0]!.width, wide.frames[0]!.height], [32, 32]);
    const missing = page.evaluate(
      async (input) => (globalThis as unknown as { latentblendTest: { transition(r: unknown): Promise<unknown> } }).latentblendTest.transition(input),
      { modelUrl: `${server.url}/models/${MODEL}`, device: 'cpu', cacheName: null, transition: withPicture(`${server.url}/pictures/none.png`) },
    );
    await assert.rejects(missing, /pictures\/none\.png: cannot read the picture \(HTTP 404\)/);
  });

  test('WebGPU (SwiftShader): same frames within the stated tolerance', async () => {
    const result = await inPage({ device: 'webgpu', transition: OPTIONS, cacheName: null, lpipsUrl: LPIPS_URL() });
    assert.ok(result.devices.includes('webgpu'), `devices: ${result.devices.join(', ')}`);
    const difference = compare(result.frames, reference);
    console.log(`WebGPU vs onnxruntime-node: max ${difference.max} levels, mean ${difference.mean.toFixed(4)}`);
    assert.ok(difference.max <= TOLERANCE.webgpu.max && difference.mean <= TOLERANCE.webgpu.mean, JSON.stringify(difference));
    // Close means far closer than two different frames of the transition are to each other.
    const spread = compareImages(reference.frames[0]!.image.data, reference.frames.at(-1)!.image.data);
    assert.ok(difference.mean < spread.mean / 5, `WebGPU mean difference ${difference.mean} against ${spread.mean} between frames A and B`);
  });
});
