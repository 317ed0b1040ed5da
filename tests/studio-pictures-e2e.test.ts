/**
 * Picture keyframes in the studio (issue #9), in a real browser (Debian's headless Chromium
 * through playwright-core) on the tiny SD-Turbo fixture: pictures are uploaded (checked, stored
 * under a content hash in the session), a spec from the page may name only uploaded pictures,
 * a JPEG and a plain PNG dropped on the page become picture keyframes and the film renders, and
 * a computed frame becomes a keyframe with "use this frame as a keyframe". The page sends the
 * spec's current key names (maxBranches, issue #8) and reads drafts saved with the former ones.
 * Screenshots go to test-artifacts/studio-pictures/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Browser, Page } from 'playwright-core';
import type { Studio } from '../src/studio/server.ts';
import { modelDir, ROOT } from './helpers/golden.ts';
import { launchStudioChromium, prepareBrowserTest } from './helpers/chromium.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'studio-pictures');
const STEP_TIMEOUT = 20_000;

let browser: Browser | undefined;
let studio: Studio | undefined;
let page: Page;
let workDir: string;
const pageErrors: string[] = [];

/** A small picture: a two-colour gradient of this size in this format. */
async function picture(width: number, height: number, from: [number, number, number], to: [number, number, number], format: 'png' | 'jpeg'): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = x / (width - 1);
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.round(from[c]! * (1 - t) + to[c]! * t);
    }
  }
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 90 }).toBuffer();
}

/** Drops files on the page as a file manager would. */
async function dropFiles(files: { name: string; type: string; bytes: Buffer }[]): Promise<void> {
  const transfer = await page.evaluateHandle((list) => {
    const data = new DataTransfer();
    for (const file of list) data.items.add(new File([new Uint8Array(file.bytes)], file.name, { type: file.type }));
    return data;
  }, files.map((file) => ({ name: file.name, type: file.type, bytes: [...file.bytes] })));
  await page.dispatchEvent('#timeline-panel', 'dragover', { dataTransfer: transfer });
  await page.dispatchEvent('#timeline-panel', 'drop', { dataTransfer: transfer });
}

/** A request from the page (its session, its origin): status and JSON answer. */
async function fromPage(method: string, path: string, body: { json?: unknown; bytes?: number[]; type?: string }): Promise<{ status: number; json: any }> {
  return page.evaluate(
    async ({ method, path, body }) => {
      const response = await fetch(path, {
        method,
        headers: { 'content-type': body.type ?? 'application/json' },
        body: body.bytes !== undefined ? new Uint8Array(body.bytes) : JSON.stringify(body.json),
      });
      return { status: response.status, json: await response.json() };
    },
    { method, path, body },
  );
}

describe('picture keyframes in the studio, in a browser', { timeout: 120_000 }, () => {
  before(async () => {
    prepareBrowserTest(ARTIFACTS);
    workDir = mkdtempSync(join(tmpdir(), 'latentblend-studio-pictures-'));
    const { startStudio } = await import('../src/studio/server.ts');
    // No LPIPS model anywhere (no env, empty home, Hub offline): the studio uses the rms-pixel fallback.
    const saved = { HOME: process.env.HOME, LATENTBLEND_LPIPS: process.env.LATENTBLEND_LPIPS, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE, HF_HOME: process.env.HF_HOME };
    process.env.HOME = join(workDir, 'home');
    process.env.HF_HOME = join(workDir, 'home', 'hf');
    process.env.HF_HUB_OFFLINE = '1';
    delete process.env.LATENTBLEND_LPIPS;
    try {
      studio = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir, port: 0 });
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
    browser = await launchStudioChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(studio.url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await studio?.close();
    if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  });

  test('the rms-pixel fallback is named on the page once, with its reason', async () => {
    const model = await page.evaluate(async () => (await fetch('/api/model')).json());
    assert.equal(model.metric, 'rms-pixel');
    assert.match(model.metricFallback, /^No LPIPS model \(/);
    await page.locator('#toasts .toast').filter({ hasText: 'Warning: No LPIPS model' }).waitFor({ timeout: STEP_TIMEOUT });
    assert.match(await page.locator('#model-card').innerText(), /rms-pixel \(no LPIPS model found/);
  });

  test('uploads are checked and named by content; a spec may name only uploaded pictures', async () => {
    const junk = await fromPage('POST', '/api/pictures', { bytes: [...Buffer.from('not a picture at all')], type: 'image/png' });
    assert.equal(junk.status, 400);
    assert.match(junk.json.error.message, /not a picture that can be read/);
    const bytes = [...(await picture(40, 30, [200, 30, 30], [30, 30, 200], 'png'))];
    const asText = await fromPage('POST', '/api/pictures', { bytes, type: 'text/plain' });
    assert.equal(asText.status, 415);
    const first = await fromPage('POST', '/api/pictures', { bytes, type: 'image/png' });
    const again = await fromPage('POST', '/api/pictures', { bytes, type: 'image/png' });
    assert.equal(first.status, 201);
    assert.match(first.json.id, /^picture-[0-9a-f]{24}\.png$/);
    assert.deepEqual([first.json.width, first.json.height], [40, 30]);
    assert.equal(again.json.id, first.json.id, 'the same picture is stored once');
    const render = (image: string) => fromPage('POST', '/api/renders', { json: { spec: { keyframes: [{ image, seed: 1 }, { prompt: 'a dog', seed: 2 }] } } });
    for (const outside of ['/etc/hostname', '../../etc/passwd', `../${first.json.id}`]) {
      const answer = await render(outside);
      assert.equal(answer.status, 400, outside);
      assert.match(answer.json.error.message, /keyframes\[0\]\.image: expected the id of a picture uploaded to this studio/);
    }
    // The IP-Adapter's image prompt (where the film spec has it) is a picture key like the others.
    const imagePrompt = await fromPage('POST', '/api/renders', { json: { spec: { ipAdapter: 'owner/adapter', ipImage: '/etc/hostname', keyframes: [{ prompt: 'a cat', seed: 1 }, { prompt: 'a dog', seed: 2 }] } } });
    assert.equal(imagePrompt.status, 400);
    assert.match(imagePrompt.json.error.message, /ipImage/);
    const missing = await render('picture-000000000000000000000000.png');
    assert.equal(missing.status, 400);
    assert.match(missing.json.error.message, /no picture picture-0{24}\.png in this session/);
  });

  test('dropped pictures become keyframes, the film renders, and a computed frame becomes a keyframe', async () => {
    await page.getByRole('spinbutton', { name: 'Frames per second' }).fill('4');
    await page.getByRole('spinbutton', { name: 'Images per transition' }).fill('3');
    // A JPEG (not square) and a PNG without our parameters: both are pictures to use as they are.
    await dropFiles([{ name: 'sunset.jpg', type: 'image/jpeg', bytes: await picture(96, 72, [250, 140, 20], [60, 0, 90], 'jpeg') }]);
    const first = page.getByRole('article', { name: 'Keyframe 1' });
    await first.waitFor({ timeout: STEP_TIMEOUT });
    await dropFiles([{ name: 'holiday.png', type: 'image/png', bytes: await picture(64, 64, [20, 120, 220], [240, 240, 240], 'png') }]);
    const second = page.getByRole('article', { name: 'Keyframe 2' });
    await second.waitFor({ timeout: STEP_TIMEOUT });
    await page.locator('#toasts .toast').filter({ hasText: 'Keyframe 2 is the picture holiday.png' }).waitFor({ timeout: STEP_TIMEOUT });
    // Each card shows its picture (served by the studio), and the picture's options.
    await page.waitForFunction(() => [...document.querySelectorAll('#timeline img')].filter((image) => (image as HTMLImageElement).naturalWidth > 0).length === 2, undefined, { timeout: STEP_TIMEOUT });
    assert.equal(await page.getByRole('combobox', { name: 'Fit of the picture of keyframe 1' }).inputValue(), 'cover');
    await page.getByRole('textbox', { name: 'Prompt of keyframe 2' }).fill('a blue sky');
    await page.getByLabel('Duration of transition 1 → 2 in seconds').fill('1');
    await page.getByLabel('Duration of transition 1 → 2 in seconds').press('Tab');
    const sent: Record<string, unknown>[] = [];
    page.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/api/renders')) sent.push(request.postDataJSON() as Record<string, unknown>);
    });
    await page.getByRole('button', { name: /^Render film/ }).click();
    await page.locator('video.player').waitFor({ timeout: 60_000 });
    // The page sends the spec's current key names (issue #8).
    const sentSpec = sent[0]!.spec as Record<string, unknown>;
    assert.equal(sentSpec.maxBranches, 3);
    assert.ok(!('branchesPerTransition' in sentSpec), JSON.stringify(sentSpec));
    // Saved as YAML, the pictures keep their ids (not a path on the server).
    const saved = await fromPage('POST', '/api/spec/yaml', { json: { spec: sentSpec } });
    assert.equal(saved.status, 200);
    assert.deepEqual([...(saved.json.yaml as string).matchAll(/image: (.+)/g)].map((match) => match[1]), [(sentSpec.keyframes as { image: string }[])[0]!.image, (sentSpec.keyframes as { image: string }[])[1]!.image]);
    assert.match((sentSpec.keyframes as { image: string }[])[0]!.image, /^picture-[0-9a-f]{24}\.png$/);
    const frames = page.getByRole('list', { name: 'Computed frames' });
    assert.ok((await frames.getByRole('img').count()) >= 3);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(ARTIFACTS, '01-picture-film.png'), fullPage: true });

    // The film's spec names the session's stored pictures; the first frame keeps the picture's colours.
    const sessions = join(workDir, 'sessions');
    const session = readdirSync(sessions).find((name) => existsSync(join(sessions, name, 'films')))!;
    const films = join(sessions, session, 'films');
    const spec = readFileSync(join(films, readdirSync(films)[0]!, 'spec.yaml'), 'utf8');
    const images = [...spec.matchAll(/image: (.+)/g)].map((match) => match[1]!.trim());
    assert.equal(images.length, 2, spec);
    for (const image of images) assert.ok(image.startsWith(join(sessions, session, 'files', 'picture-')), image);
    assert.match(spec, /prompt: a blue sky/);
    // film.json records why the metric is rms-pixel (issue #11), as the CLI's does.
    const record = JSON.parse(readFileSync(join(films, readdirSync(films)[0]!, 'film.json'), 'utf8'));
    assert.equal(record.metric, 'rms-pixel');
    assert.match(record.metricFallback, /^No LPIPS model \(/);

    // "Use this frame as a keyframe" on the middle computed image.
    await frames.getByRole('button', { name: /^Use the image at 50% of transition 1 as a keyframe$/ }).click();
    const third = page.getByRole('article', { name: 'Keyframe 3' });
    await third.waitFor({ timeout: STEP_TIMEOUT });
    await page.waitForFunction(() => [...document.querySelectorAll('#timeline img')].filter((image) => (image as HTMLImageElement).naturalWidth > 0).length === 3, undefined, { timeout: STEP_TIMEOUT });
    await page.screenshot({ path: join(ARTIFACTS, '02-frame-as-keyframe.png'), fullPage: true });
    // The draft survives a reload with its pictures; a draft saved by an older page (former key names) is read.
    await page.evaluate(() => {
      const draft = JSON.parse(localStorage.getItem('latentblend-studio-draft-v1')!);
      delete draft.settings.maxBranches;
      draft.settings.branchesPerTransition = 7;
      localStorage.setItem('latentblend-studio-draft-v1', JSON.stringify(draft));
    });
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    await page.getByRole('article', { name: 'Keyframe 3' }).waitFor({ timeout: STEP_TIMEOUT });
    // The fallback warning was shown once: not again after the reload.
    assert.equal(await page.locator('.toast').filter({ hasText: 'Warning: No LPIPS model' }).count(), 0);
    assert.equal(await page.getByRole('textbox', { name: 'Prompt of keyframe 2' }).inputValue(), 'a blue sky');
    assert.equal(await page.getByRole('spinbutton', { name: 'Images per transition' }).inputValue(), '7');
  });

  test('the page raised no script errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
