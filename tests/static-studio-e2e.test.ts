/**
 * `latentblend studio --static`: the static site served from a sub-path of a plain HTTP server
 * on 127.0.0.1 (no API behind it), in headless Chromium. The page shows that it runs on WebGPU
 * (SwiftShader here), then — on WebAssembly, `?device=cpu`, to keep the test fast — loads the tiny
 * model, takes a film spec, renders the transition in the browser, shows frames, the contact
 * sheet and the smoothness plot (LPIPS on the tiny LPIPS fixture), plays the film, downloads it
 * (decoded back with ffmpeg here) and saves the spec as YAML. A picture uploaded in the page
 * becomes a keyframe rendered in the browser, as Node would compute it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { DiffusionPipeline } from '../src/pipeline/pipeline.ts';
import { nodePlatform } from '../src/node/platform.ts';
import { readPicture } from '../src/io/picture.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Download, Page } from 'playwright-core';
import { writeStaticSite } from '../src/studio/static-site.ts';
import { probeVideo } from '../src/io/video.ts';
import { FIXTURES, modelDir } from './helpers/golden.ts';
import { launchChromium, playVideo, SMALL_FILM_SPEC, startSiteServer, type SiteServer } from './helpers/browser.ts';

const TIMEOUT = 60_000;

let siteDir: string;
let downloadsDir: string;
let server: SiteServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

async function downloadOf(click: () => Promise<void>): Promise<Download> {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: TIMEOUT }), click()]);
  return download;
}

describe('the static studio in a browser', { timeout: 240_000 }, () => {
  before(async () => {
    siteDir = mkdtempSync(join(tmpdir(), 'lb-static-'));
    downloadsDir = mkdtempSync(join(tmpdir(), 'lb-static-downloads-'));
    const files = await writeStaticSite({ outDir: siteDir, model: modelDir('tiny-sd-turbo'), lpips: join(FIXTURES, 'lpips', 'tiny-lpips.onnx'), force: true });
    for (const expected of ['index.html', 'app.js', 'sw.js', 'latentblend-site.json', 'models/tiny-sd-turbo/files.json', 'models/tiny-sd-turbo/unet/model.onnx', 'lpips/lpips.onnx', 'README.md']) {
      assert.ok(files.includes(expected), `the site has ${expected}`);
    }
    server = await startSiteServer({ folders: { '/space': siteDir } });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await server?.close();
    rmSync(siteDir, { recursive: true, force: true });
    rmSync(downloadsDir, { recursive: true, force: true });
  });

  test('WebGPU is chosen when the browser has it, and the choice is shown', async () => {
    await page.goto(`${server.url}/space/`);
    await page.getByRole('status').filter({ hasText: 'Runs in this browser on WebGPU' }).waitFor({ timeout: TIMEOUT });
  });

  test('with WebAssembly: the model loads and the page is ready, with no server API', async () => {
    await page.goto(`${server.url}/space/?device=cpu`);
    await page.waitForSelector('body[data-state="ready"]', { timeout: TIMEOUT });
    assert.match(await page.locator('#local-status').innerText(), /WebAssembly \(CPU\).*tiny-sd-turbo/);
    assert.match(await page.locator('#model-source').innerText(), /tiny-sd-turbo/);
    assert.ok(!server.requests.some((path) => path.startsWith('/api/')), 'nothing asked the server for /api');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'cross-origin isolated (multi-threaded WebAssembly)');
  });

  test('a spec is loaded, rendered in the browser, played, downloaded and decoded back', async () => {
    await page.getByLabel('Spec text').fill(SMALL_FILM_SPEC);
    await page.getByRole('button', { name: 'Load this text' }).click();
    const formats = await page.locator('#render-format option:not([hidden])').evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
    assert.ok(formats.includes('gif') && formats.some((format) => format === 'mp4' || format === 'webm'), `formats offered: ${formats.join(', ')}`);
    const format = formats.includes('mp4') ? 'mp4' : 'webm';
    await page.locator('#render-format').selectOption(format);
    await page.getByRole('button', { name: /^Render film/ }).click();
    await page.getByRole('list', { name: 'Computed frames' }).getByRole('img').first().waitFor({ timeout: TIMEOUT });
    const video = page.locator('video.player');
    await video.waitFor({ timeout: TIMEOUT });
    const frames = await page.getByRole('list', { name: 'Computed frames' }).getByRole('img').count();
    assert.equal(frames, 4);
    const played = await playVideo(video);
    assert.equal(played.error, null);
    assert.equal(played.width, 64);
    // The figures are real images: the contact sheet (PNG) and the smoothness plot (SVG).
    await page.waitForFunction(() => {
      const images = [...document.querySelectorAll('figure img')] as HTMLImageElement[];
      return images.length >= 2 && images.every((image) => image.complete && image.naturalWidth > 0);
    }, undefined, { timeout: TIMEOUT });
    const name = format === 'mp4' ? 'MP4' : 'WebM';
    const download = await downloadOf(() => page.getByRole('link', { name: `Download ${name}` }).click());
    assert.match(download.suggestedFilename(), new RegExp(`\\.${format}$`), `requests to the server: ${server.requests.filter((path) => path.includes('/api/')).join(', ')}`);
    const target = join(downloadsDir, `film.${format}`);
    await download.saveAs(target);
    const info = await probeVideo(target);
    console.log(`film: ${format} (${info.codec}), ${info.frames} frames of ${info.width}x${info.height}; formats offered: ${formats.join(', ')}`);
    assert.equal(info.width, 64);
    assert.equal(info.height, 64);
    assert.equal(info.frames, 8, `1 s at 8 fps: ${JSON.stringify(info)}`);
  });

  test('a picture keyframe: uploaded to the page, kept in this browser, rendered there like Node reads it', async () => {
    // In the page, as the drop zone does it: POST /api/pictures, then a render whose keyframe names the picture by id.
    const result = await page.evaluate(async () => {
      const canvas = new OffscreenCanvas(64, 64);
      const context = canvas.getContext('2d')!;
      context.fillStyle = '#e07020';
      context.fillRect(0, 0, 64, 64);
      context.fillStyle = '#2040c0';
      context.fillRect(16, 8, 24, 40);
      const upload = await fetch('api/pictures', { method: 'POST', headers: { 'content-type': 'image/png' }, body: await canvas.convertToBlob({ type: 'image/png' }) });
      const picture = (await upload.json()) as { id: string; url: string; width: number; height: number };
      const refused = await fetch('api/renders', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ spec: { keyframes: [{ image: 'picture-000000000000000000000000.png', seed: 1 }, { prompt: 'x', seed: 2 }] } }),
      });
      const spec = { keyframes: [{ image: picture.id, seed: 1 }, { prompt: 'a blue sphere', seed: 2 }], fps: 8, transitionDuration: 1, maxBranches: 3 };
      const rendering = await fetch('api/renders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec }) });
      const job = (await rendering.json()) as { id: string };
      if (rendering.status !== 202) return { upload: upload.status, picture, refused: { status: refused.status, body: await refused.text() }, final: { state: `render answered ${rendering.status}`, error: job }, frames: 0, first: [], stored: [] };
      const frames: { fract: number; url: string }[] = [];
      const events = new EventSource(`api/jobs/${job.id}/events`);
      events.addEventListener('frame', (event) => frames.push(JSON.parse((event as MessageEvent).data)));
      let final: { state: string; error?: unknown; progress?: unknown } = { state: 'unknown' };
      for (const started = Date.now(); Date.now() - started < 90_000; await new Promise((resolve) => setTimeout(resolve, 200))) {
        final = (await (await fetch(`api/jobs/${job.id}`)).json()) as typeof final;
        if (['done', 'failed', 'cancelled'].includes(final.state)) break;
      }
      events.close();
      const first = frames.find((frame) => frame.fract === 0);
      const bytes = first === undefined ? [] : Array.from(new Uint8Array(await (await fetch(first.url)).arrayBuffer()));
      const stored = Array.from(new Uint8Array(await (await fetch(picture.url)).arrayBuffer()));
      return { upload: upload.status, picture, refused: { status: refused.status, body: await refused.text() }, final, frames: frames.length, first: bytes, stored };
    });
    assert.equal(result.upload, 201);
    assert.match(result.picture.id, /^picture-[0-9a-f]{24}\.png$/);
    assert.deepEqual([result.picture.width, result.picture.height], [64, 64]);
    assert.equal(result.refused.status, 400);
    assert.match(result.refused.body, /expected the id of a picture uploaded in this visit/);
    assert.equal(result.final.state, 'done', JSON.stringify(result.final.error));
    assert.equal(result.frames, 3);
    // The picture keyframe's frame is decode(encode(picture)), as onnxruntime-node computes it from the stored PNG.
    const pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: modelDir('tiny-sd-turbo') });
    const picture = await readPicture({ name: 'stored.png', bytes: Buffer.from(result.stored) });
    const expected = await pipeline.vae.decode(await pipeline.vae.encode(picture), pipeline.latentShape(64, 64));
    const got = await sharp(Buffer.from(result.first)).removeAlpha().raw().toBuffer();
    let max = 0;
    for (let k = 0; k < got.length; k++) max = Math.max(max, Math.abs(got[k]! - expected.data[k]!));
    assert.ok(max <= 1, `the browser's picture keyframe differs from Node's by ${max} levels`);
  });

  test('a GIF is made in the browser too: one palette, delays that keep the film\'s time', async () => {
    const result = await page.evaluate(async () => {
      const spec = { keyframes: [{ prompt: 'a red cube', seed: 1 }, { prompt: 'a blue sphere', seed: 2 }], fps: 8, transitionDuration: 1, maxBranches: 3 };
      // No named helper functions in here: the test runner's transform would wrap them in a name helper the page lacks.
      const requests = [60, 8].map((fps) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec: { ...spec, fps }, format: 'gif' }) }));
      const tooFast = await fetch('api/renders', requests[0]);
      const job = (await (await fetch('api/renders', requests[1])).json()) as { id: string };
      let view: { state: string; error?: unknown; result?: { filmUrl: string; format: string; codec: string } } = { state: 'unknown' };
      for (const started = Date.now(); Date.now() - started < 90_000; await new Promise((resolve) => setTimeout(resolve, 200))) {
        view = (await (await fetch(`api/jobs/${job.id}`)).json()) as typeof view;
        if (['done', 'failed', 'cancelled'].includes(view.state)) break;
      }
      const bytes = view.result === undefined ? [] : Array.from(new Uint8Array(await (await fetch(view.result.filmUrl)).arrayBuffer()));
      return { tooFast: { status: tooFast.status, body: await tooFast.text() }, view, bytes };
    });
    // Refused before any work, as on the server.
    assert.equal(result.tooFast.status, 400);
    assert.match(result.tooFast.body, /a GIF plays at most 50 fps, and the spec's fps is 60/);
    assert.equal(result.view.state, 'done', JSON.stringify(result.view.error));
    assert.deepEqual([result.view.result?.format, result.view.result?.codec], ['gif', 'gif']);
    const target = join(downloadsDir, 'film.gif');
    writeFileSync(target, Buffer.from(result.bytes));
    const info = await probeVideo(target);
    assert.deepEqual([info.width, info.height, info.frames], [64, 64, 8], JSON.stringify(info));
  });

  test('another model is loaded from the Model card (from this browser\'s cache)', async () => {
    // The card is folded: loading another model is behind one click.
    await page.getByText('Change model or scheduler').click();
    await page.getByLabel('Model folder or Hub id').fill('models/tiny-sd-turbo');
    await page.getByRole('button', { name: 'Load model' }).click();
    await page.getByRole('button', { name: 'Loading…' }).waitFor({ state: 'detached', timeout: TIMEOUT }).catch(() => undefined);
    await page.getByRole('button', { name: 'Load model' }).waitFor({ timeout: TIMEOUT });
    assert.equal(await page.locator('#model-error').innerText(), '');
    await page.waitForFunction(
      async () => {
        const { jobs } = (await (await fetch('/api/jobs')).json()) as { jobs: { kind: string; state: string }[] };
        return jobs.some((job) => job.kind === 'model' && job.state === 'done');
      },
      undefined,
      { timeout: TIMEOUT, polling: 200 },
    );
    assert.match(await page.locator('#model-help').innerText(), /downloaded into this browser/);
  });

  test('the spec is saved as YAML, and the film is listed', async () => {
    const download = await downloadOf(() => page.getByRole('button', { name: 'Save spec (YAML)' }).click());
    assert.match(download.suggestedFilename(), /^a-red-cube\.yaml$/, 'named after the film (its first prompt)');
    const path = join(downloadsDir, 'film.yaml');
    await download.saveAs(path);
    const yaml = readFileSync(path, 'utf8');
    for (const expected of ['prompt: a red cube', 'prompt: a blue sphere', 'fps: 8', 'maxBranches: 4']) assert.ok(yaml.includes(expected), yaml);
    await page.getByRole('list', { name: 'Your films' }).getByRole('listitem').first().waitFor({ timeout: TIMEOUT });
  });

  test('after a reload the films are listed again and still play from this browser\'s storage', async () => {
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]', { timeout: TIMEOUT });
    const films = page.getByRole('list', { name: 'Your films' }).getByRole('listitem');
    await films.first().waitFor({ timeout: TIMEOUT });
    assert.equal(await films.count(), 3, 'the spec film, the picture keyframe film and the GIF');
    await films.first().getByRole('button', { name: 'Play', exact: true }).click();
    // The newest film is the GIF: the player shows it as an image.
    await page.waitForFunction(
      () => {
        const player = document.querySelector('.player');
        if (player instanceof HTMLVideoElement) return player.readyState >= 1;
        return player instanceof HTMLImageElement && player.complete && player.naturalWidth > 0;
      },
      undefined,
      { timeout: TIMEOUT },
    );
    assert.equal(await page.locator('img.player').count(), 1, 'the GIF plays as an image');
    assert.deepEqual(pageErrors, []);
  });
});
