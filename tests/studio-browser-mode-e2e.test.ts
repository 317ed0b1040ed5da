/**
 * The server studio's "Run in this browser" mode, in headless Chromium: the choice in the top
 * bar switches the page to the in-page engine (the studio's model files fetched from the server,
 * behind its access token), the page renders a film on WebAssembly (`?device=cpu`, to keep the
 * test fast) without the server computing anything, and the other choice goes back to the server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { modelFilesId } from '../src/studio/browser-mode.ts';
import { modelDir } from './helpers/golden.ts';
import { launchChromium, playVideo, SMALL_FILM_SPEC } from './helpers/browser.ts';

const TIMEOUT = 60_000;
const TOKEN = 'browser-mode-test-token';

let workDir: string;
let modelFolder: string;
let studio: Studio;
let origin: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

/** A copy of `source` made of links to its files, as in a Hub cache's snapshot folder. */
function linkedCopy(source: string, target: string): void {
  mkdirSync(target, { recursive: true });
  for (const name of readdirSync(source)) {
    if (statSync(join(source, name)).isDirectory()) linkedCopy(join(source, name), join(target, name));
    else symlinkSync(join(source, name), join(target, name));
  }
}

function videoFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => /\.(mp4|webm)$/.test(name));
}

describe('the server studio run in the browser', { timeout: 180_000 }, () => {
  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'lb-browser-mode-'));
    modelFolder = join(mkdtempSync(join(tmpdir(), 'lb-browser-mode-model-')), 'tiny-sd-turbo');
    linkedCopy(modelDir('tiny-sd-turbo'), modelFolder);
    studio = await startStudio({ modelDir: modelFolder, workDir, port: 0, token: TOKEN });
    origin = new URL(studio.url).origin;
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await studio?.close();
    rmSync(workDir, { recursive: true, force: true });
    rmSync(join(modelFolder, '..'), { recursive: true, force: true });
  });

  test("the model's files (links followed) are served read-only, only with the access token", async () => {
    const id = modelFilesId({ dir: modelFolder, source: modelFolder });
    assert.match(id, /^tiny-sd-turbo-[0-9a-f]{12}$/);
    const listing = `${origin}/api/model/files/${id}/files.json`;
    assert.equal((await fetch(listing)).status, 401);
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const files = (await (await fetch(listing, auth)).json()) as { path: string; size: number }[];
    const unet = files.find((file) => file.path === 'unet/model.onnx');
    assert.ok(unet !== undefined && unet.size > 0, JSON.stringify(files));
    const bytes = await fetch(`${origin}/api/model/files/${id}/unet/model.onnx`, auth);
    assert.equal(bytes.status, 200);
    assert.equal((await bytes.arrayBuffer()).byteLength, unet.size);
    assert.equal((await fetch(`${origin}/api/model/files/tiny-sd-turbo-000000000000/unet/model.onnx`, auth)).status, 404, 'another id is not the loaded model');
    assert.equal((await fetch(`${origin}/api/model/files/${id}/unet/model.onnx`, { ...auth, method: 'DELETE' })).status, 405);
  });

  test('"Run in this browser" switches the page to the in-page engine, and shows WebGPU or WebAssembly', async () => {
    await page.goto(studio.url);
    await page.waitForSelector('body[data-state="ready"][data-engine="server"]', { timeout: TIMEOUT });
    await page.getByRole('link', { name: 'Run in this browser' }).click();
    await page.waitForURL(`${origin}/browser/`, { timeout: TIMEOUT });
    await page.getByRole('status').filter({ hasText: /Runs in this browser on (WebGPU|WebAssembly)/ }).waitFor({ timeout: TIMEOUT });
  });

  test('on WebAssembly the page loads the server\'s model and renders a film itself', async () => {
    await page.goto(`${origin}/browser/?device=cpu`);
    await page.waitForSelector('body[data-state="ready"][data-engine="browser"]', { timeout: TIMEOUT });
    assert.match(await page.locator('#local-status').innerText(), /WebAssembly \(CPU\).*tiny-sd-turbo/);
    await page.getByLabel('Spec text').fill(SMALL_FILM_SPEC);
    await page.getByRole('button', { name: 'Load this text' }).click();
    await page.getByRole('button', { name: /^Render film/ }).click();
    const video = page.locator('video.player');
    await video.waitFor({ timeout: TIMEOUT });
    assert.equal(await page.getByRole('list', { name: 'Computed frames' }).getByRole('img').count(), 4);
    const played = await playVideo(video);
    assert.equal(played.error, null);
    assert.equal(played.width, 64);
    assert.ok(played.src.startsWith(`${origin}/browser/api/files/`), `the film is kept in this browser: ${played.src}`);
    assert.deepEqual(videoFiles(workDir), [], 'the server wrote no film');
  });

  test('"Run on the server" goes back to the server mode', async () => {
    await page.getByRole('link', { name: 'Run on the server' }).click();
    await page.waitForURL(`${origin}/`, { timeout: TIMEOUT });
    await page.waitForSelector('body[data-state="ready"][data-engine="server"]', { timeout: TIMEOUT });
    assert.deepEqual(pageErrors, []);
  });
});
