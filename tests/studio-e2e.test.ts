/**
 * The studio in a real browser (Debian's headless Chromium through playwright-core), against a
 * real server on the tiny SD-Turbo fixture (64×64): previews, a 3-keyframe timeline (add,
 * reorder by button and by drag, delete, re-add, replace), durations, a film rendered with live
 * progress and frames, the video playing, the mp4 downloaded, the page reloaded (draft and film
 * found again), the spec saved as YAML and loaded back, a render cancelled, and another model
 * (tiny SDXL, standard preset) loaded from the Model card.
 * Screenshots go to test-artifacts/studio/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Download, Page } from 'playwright-core';
import { modelDir, ROOT } from './helpers/golden.ts';
import { launchStudioChromium, prepareBrowserTest } from './helpers/chromium.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'studio');
const STEP_TIMEOUT = 20_000;

let studio: { url: string; close(): Promise<void> } | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let page: Page;
let workDir: string;
const pageErrors: string[] = [];
const serverLog: string[] = [];

async function shot(name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The prompts and seeds on the timeline, in order ("prompt#seed"). */
async function timeline(): Promise<string[]> {
  const list = page.getByRole('list', { name: 'Timeline' });
  const prompts = await list.getByRole('textbox', { name: /^Prompt of keyframe \d+$/ }).evaluateAll((inputs) => inputs.map((input) => (input as HTMLTextAreaElement).value));
  const seeds = await list.getByRole('spinbutton', { name: /^Seed of keyframe \d+$/ }).evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value));
  return prompts.map((prompt, index) => `${prompt}#${seeds[index]}`);
}

async function waitForTimeline(expected: string[]): Promise<void> {
  let last: string[] = [];
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    last = await timeline();
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    await page.waitForTimeout(50);
  }
  assert.deepEqual(last, expected, 'the timeline');
}

async function generatePreviews(prompt: string, seeds: string): Promise<void> {
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel(/^Seeds/).fill(seeds);
  await page.getByRole('button', { name: 'Generate previews' }).click();
  const batch = page.getByRole('region', { name: `Previews for “${prompt}”` });
  const count = seeds.split(',').length;
  await batch.getByRole('img').nth(count - 1).waitFor({ timeout: STEP_TIMEOUT });
  await page.getByRole('button', { name: 'Generate previews' }).waitFor({ timeout: STEP_TIMEOUT });
  // Every preview image really loaded (a PNG the browser could decode).
  await page.waitForFunction(
    (name) => {
      const region = [...document.querySelectorAll('section.batch')].find((section) => section.getAttribute('aria-label') === name);
      const images = region === undefined ? [] : [...region.querySelectorAll('img')];
      return images.length > 0 && images.every((image) => image.complete && image.naturalWidth > 0);
    },
    `Previews for “${prompt}”`,
    { timeout: STEP_TIMEOUT },
  );
}

async function downloadOf(click: () => Promise<void>): Promise<Download> {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_TIMEOUT }), click()]);
  return download;
}

describe('studio in a browser', { timeout: 120_000 }, () => {
  before(async () => {
    prepareBrowserTest(ARTIFACTS);
    workDir = mkdtempSync(join(tmpdir(), 'latentblend-studio-e2e-'));
    const { startStudio } = await import('../src/studio/server.ts');
    studio = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir, port: 0, onLog: (line: string) => serverLog.push(line) });
    browser = await launchStudioChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await studio?.close();
    if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
  });

  test('the page shows the model and how to start', async () => {
    await page.goto(studio!.url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /latentblend/);
    assert.match(await page.locator('#model-source').innerText(), /tiny-sd-turbo/);
    assert.ok(await page.getByRole('list', { name: 'How to make a film' }).isVisible());
    assert.equal(await page.getByRole('spinbutton', { name: 'Width' }).getAttribute('placeholder'), '64');
    assert.ok(await page.getByRole('button', { name: 'Render film' }).isDisabled(), 'nothing to render yet');
    await shot('01-start');
  });

  test('previews show their seeds and go onto the timeline', async () => {
    await generatePreviews('a red cube', '1, 2, 3');
    const batch = page.getByRole('region', { name: 'Previews for “a red cube”' });
    assert.deepEqual(await batch.locator('.seed').allInnerTexts(), ['seed 1', 'seed 2', 'seed 3']);
    await page.getByRole('button', { name: 'Add seed 1 to the timeline' }).click();
    // The focus stays on that preview's button (the list is drawn again), ready for the next one.
    await page.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'Add seed 1 to the timeline', undefined, { timeout: STEP_TIMEOUT });
    await page.getByRole('button', { name: 'Add seed 2 to the timeline' }).click();
    await generatePreviews('a blue sphere', '7, 8');
    await page.getByRole('button', { name: 'Add seed 7 to the timeline' }).click();
    await waitForTimeline(['a red cube#1', 'a red cube#2', 'a blue sphere#7']);
    await shot('02-previews');
  });

  test('keyframes reorder by button and by drag, delete, re-add and replace', async () => {
    await page.getByRole('button', { name: 'Move keyframe 3 left' }).click();
    await waitForTimeline(['a red cube#1', 'a blue sphere#7', 'a red cube#2']);
    // Drag keyframe 1 onto the right half of keyframe 2: it lands after it.
    const second = page.getByRole('article', { name: 'Keyframe 2' });
    const box = (await second.boundingBox())!;
    await page.getByRole('article', { name: 'Keyframe 1' }).dragTo(second, { sourcePosition: { x: 60, y: 60 }, targetPosition: { x: box.width - 12, y: 60 } });
    await waitForTimeline(['a blue sphere#7', 'a red cube#1', 'a red cube#2']);
    await page.getByRole('button', { name: 'Delete keyframe 3' }).click();
    await waitForTimeline(['a blue sphere#7', 'a red cube#1']);
    await page.getByRole('button', { name: 'Add seed 3 to the timeline' }).click();
    await waitForTimeline(['a blue sphere#7', 'a red cube#1', 'a red cube#3']);
    await page.getByRole('button', { name: 'Replace keyframe 1' }).click();
    await page.getByRole('button', { name: 'Use seed 8 for keyframe 1' }).click();
    await waitForTimeline(['a blue sphere#8', 'a red cube#1', 'a red cube#3']);
    const images = page.getByRole('list', { name: 'Timeline' }).getByRole('img');
    assert.equal(await images.count(), 3, 'every keyframe shows its preview');
  });

  test('durations and options are set', async () => {
    await page.getByLabel('Duration of transition 1 → 2 in seconds').fill('1');
    await page.getByLabel('Duration of transition 1 → 2 in seconds').press('Tab');
    await page.getByLabel('Duration of transition 2 → 3 in seconds').fill('0.5');
    await page.getByLabel('Duration of transition 2 → 3 in seconds').press('Tab');
    await page.getByRole('spinbutton', { name: 'Frames per second' }).fill('8');
    await page.getByRole('spinbutton', { name: 'Images per transition' }).fill('5');
    // Each option explains itself next to its field.
    const depth = page.getByRole('spinbutton', { name: 'Depth strength' });
    assert.match((await depth.getAttribute('aria-describedby')) ?? '', /help/);
    assert.match(await page.locator('#setting-depthStrength-help').innerText(), /cross-fade/);
    // A value out of range is flagged and blocks the render until fixed.
    await depth.fill('1.5');
    assert.equal(await depth.getAttribute('aria-invalid'), 'true');
    await depth.fill('');
    assert.match(await page.locator('#timeline-summary').innerText(), /3 keyframes · 2 transitions · 2 s film/);
    await shot('03-timeline');
  });

  test('the film renders with live progress and frames, plays, and downloads as mp4', async () => {
    // Record every progress line the page shows while rendering.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      const status = document.querySelector('#render-progress .progress-status')!;
      const detail = document.querySelector('#render-progress .progress-detail')!;
      new MutationObserver(() => seen.push(`${status.textContent} | ${detail.textContent}`)).observe(document.querySelector('#render-progress')!, {
        subtree: true,
        childList: true,
        characterData: true,
      });
    });
    await page.getByRole('button', { name: 'Render film (2 transitions)' }).click();
    await page.getByRole('progressbar', { name: 'Render progress' }).waitFor({ timeout: STEP_TIMEOUT });
    await page.getByRole('list', { name: 'Computed frames' }).getByRole('img').first().waitFor({ timeout: STEP_TIMEOUT });
    const video = page.locator('video.player');
    await video.waitFor({ timeout: 40_000 });
    const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
    assert.ok(seen.some((line) => /transition \d of 2/i.test(line)), `progress names the transition: ${seen.join(' / ')}`);
    assert.ok(seen.some((line) => /frame \d+ of \d+|\d+ of \d+/.test(line)), `progress counts: ${seen.join(' / ')}`);
    const frames = await page.getByRole('list', { name: 'Computed frames' }).getByRole('img').count();
    assert.ok(frames >= 5, `computed frames appeared (${frames})`);
    const played = await video.evaluate(async (element) => {
      const media = element as HTMLVideoElement;
      media.muted = true;
      await media.play();
      const started = Date.now();
      while (media.currentTime === 0 && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 50));
      return { readyState: media.readyState, currentTime: media.currentTime, width: media.videoWidth, error: media.error?.message ?? null };
    });
    assert.equal(played.error, null);
    assert.ok(played.readyState >= 2 && played.currentTime > 0, `the video plays: ${JSON.stringify(played)}`);
    assert.equal(played.width, 64);
    await shot('04-rendered');
    const download = await downloadOf(() => page.getByRole('link', { name: 'Download MP4' }).click());
    const target = join(ARTIFACTS, 'film.mp4');
    await download.saveAs(target);
    assert.match(download.suggestedFilename(), /\.mp4$/);
    const bytes = readFileSync(target);
    assert.ok(bytes.length > 1000, `a non-empty mp4 (${bytes.length} bytes)`);
    assert.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp', 'an MP4 file');
  });

  test('after a reload the draft and the film are there again', async () => {
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    await waitForTimeline(['a blue sphere#8', 'a red cube#1', 'a red cube#3']);
    const films = page.getByRole('list', { name: 'Your films' }).getByRole('listitem');
    await films.first().waitFor({ timeout: STEP_TIMEOUT });
    assert.equal(await films.count(), 1);
    assert.match(await films.first().innerText(), /a blue sphere → a red cube → a red cube/);
    await films.first().getByRole('button', { name: 'Play', exact: true }).click();
    const video = page.locator('video.player');
    await video.waitFor({ timeout: STEP_TIMEOUT });
    assert.match((await video.getAttribute('src')) ?? '', /^\/api\/files\/[a-z0-9-]+\.mp4$/);
    await page.waitForFunction(() => (document.querySelector('video.player') as HTMLVideoElement | null)?.readyState! >= 1, undefined, { timeout: STEP_TIMEOUT });
    await shot('05-reloaded');
  });

  test('the spec is saved as YAML and loaded back', async () => {
    const download = await downloadOf(() => page.getByRole('button', { name: 'Save spec (YAML)' }).click());
    assert.equal(download.suggestedFilename(), 'a-blue-sphere.yaml', 'named after the film (its first prompt)');
    const path = join(ARTIFACTS, 'film.yaml');
    await download.saveAs(path);
    const yaml = readFileSync(path, 'utf8');
    for (const expected of ['keyframes:', 'prompt: a blue sphere', 'seed: 8', 'duration: 1', 'duration: 0.5', 'fps: 8', 'maxBranches: 5', 'tiny-sd-turbo']) {
      assert.ok(yaml.includes(expected), `the YAML has "${expected}":\n${yaml}`);
    }
    assert.equal(await page.getByLabel('Spec text').inputValue(), yaml);
    // Empty the timeline, then load the text back.
    await page.getByRole('button', { name: 'Clear' }).click();
    await waitForTimeline([]);
    await page.getByRole('button', { name: 'Load this text' }).click();
    await waitForTimeline(['a blue sphere#8', 'a red cube#1', 'a red cube#3']);
    assert.equal(await page.getByLabel('Duration of transition 1 → 2 in seconds').inputValue(), '1');
    assert.equal(await page.getByLabel('Duration of transition 2 → 3 in seconds').inputValue(), '0.5');
    assert.equal(await page.getByRole('spinbutton', { name: 'Frames per second' }).inputValue(), '8');
    // The images come back for keyframes whose prompt and seed did not change.
    assert.equal(await page.getByRole('list', { name: 'Timeline' }).getByRole('img').count(), 3);
    // A bad spec names the problem and leaves the timeline alone.
    await page.getByLabel('Spec text').fill('keyframes:\n  - prompt: only one\n    seed: 1\n');
    await page.getByRole('button', { name: 'Load this text' }).click();
    await page.locator('#spec-error').waitFor({ timeout: STEP_TIMEOUT });
    assert.match(await page.locator('#spec-error').innerText(), /keyframes/);
    await waitForTimeline(['a blue sphere#8', 'a red cube#1', 'a red cube#3']);
    await shot('06-spec');
  });

  test('a render can be cancelled', async () => {
    await page.getByRole('spinbutton', { name: 'Images per transition' }).fill('2000');
    await page.getByRole('button', { name: 'Render transition 1 → 2' }).click();
    const cancel = page.getByRole('button', { name: 'Cancel' }).and(page.locator('#render-cancel'));
    await cancel.waitFor({ timeout: STEP_TIMEOUT });
    await page.getByRole('list', { name: 'Computed frames' }).getByRole('img').first().waitFor({ timeout: STEP_TIMEOUT });
    await cancel.click();
    await page.locator('#render-progress .progress[data-state="cancelled"]').waitFor({ timeout: STEP_TIMEOUT });
    assert.match(await page.locator('#render-progress .progress-status').innerText(), /Cancelled/);
    assert.ok(await page.getByRole('button', { name: 'Render film (2 transitions)' }).isEnabled());
    await shot('07-cancelled');
  });

  test('another model is loaded from the Model card; its facts and defaults show', async () => {
    // The card is folded: loading another model is behind one click.
    const field = page.getByLabel('Model folder or Hub id');
    assert.equal(await field.isVisible(), false);
    await page.getByText('Change model or scheduler').click();
    assert.match(await field.inputValue(), /tiny-sd-turbo/);
    const steps = page.getByRole('spinbutton', { name: 'Denoising steps' });
    assert.equal(await steps.getAttribute('placeholder'), '4');
    // A folder that does not exist: the job fails, the message shows under the field, the model stays.
    await field.fill(join(workDir, 'no-model-here'));
    await page.getByRole('button', { name: 'Load model' }).click();
    await page.locator('#model-error').filter({ hasText: /no-model-here does not exist/ }).waitFor({ timeout: STEP_TIMEOUT });
    assert.equal(await field.getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('#model-source').innerText(), /tiny-sd-turbo/);

    await field.fill(modelDir('tiny-sdxl'));
    await page.getByRole('button', { name: 'Load model' }).click();
    await page.locator('#model-card[data-family="sdxl"]').waitFor({ timeout: STEP_TIMEOUT });
    assert.match(await page.locator('#model-source').innerText(), /tiny-sdxl\/onnx$/);
    const chips = await page.getByRole('list', { name: 'Model facts' }).getByRole('listitem').allInnerTexts();
    assert.deepEqual(chips.slice(0, 4), ['SDXL', 'standard preset', '64×64 px', '30 steps']);
    assert.equal(await page.locator('#model-error').innerText(), '');
    // The options' defaults follow the model.
    assert.equal(await steps.getAttribute('placeholder'), '30');
    assert.match(await page.locator('#setting-steps-help').innerText(), /Empty: 30 \(from the model\)/);
    assert.ok(await page.getByRole('button', { name: 'Load model' }).isEnabled());
    assert.match(await page.title(), /tiny-sdxl$/);
    await shot('08-model');
  });

  test('the page raised no script errors', () => {
    assert.deepEqual(pageErrors, []);
    assert.ok(statSync(join(ARTIFACTS, '04-rendered.png')).size > 0);
  });
});
