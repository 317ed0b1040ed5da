/**
 * Nothing lost across restarts, in a real browser (Debian's headless Chromium through
 * playwright-core) on the tiny SD-Turbo fixture: a render whose `latentblend studio` process is
 * killed shows as interrupted after a restart and resumes from its finished transitions; films
 * are renamed and deleted (after a confirmation); loading a spec over a non-empty timeline asks
 * first and can be undone. Screenshots go to test-artifacts/studio-restart/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Studio } from '../src/studio/server.ts';
import { modelDir, ROOT } from './helpers/golden.ts';
import { StudioClient } from './helpers/studio-client.ts';
import { spawnStudio } from './helpers/studio-process.ts';
import { launchStudioChromium, prepareBrowserTest } from './helpers/chromium.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'studio-restart');
const STEP_TIMEOUT = 20_000;
const MODEL = modelDir('tiny-sd-turbo');
const PROMPTS = ['a red cube', 'a blue sphere', 'a green cone'];
const SPEC_YAML = `fps: 8\ntransitionDuration: 0.5\nbranchesPerTransition: 8\nkeyframes:\n${PROMPTS.map((prompt, index) => `  - prompt: ${prompt}\n    seed: ${index + 1}\n`).join('')}`;

let browser: Browser | undefined;
let context: BrowserContext | undefined;
let page: Page;
let studio: Studio | undefined;
let work: string;
const pageErrors: string[] = [];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function prompts(): Promise<string[]> {
  return page
    .getByRole('list', { name: 'Timeline' })
    .getByRole('textbox', { name: /^Prompt of keyframe \d+$/ })
    .evaluateAll((inputs) => inputs.map((input) => (input as HTMLTextAreaElement).value));
}

async function waitForPrompts(expected: string[]): Promise<void> {
  const deadline = Date.now() + STEP_TIMEOUT;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await prompts();
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    await page.waitForTimeout(50);
  }
  assert.deepEqual(last, expected, 'the timeline');
}

describe('studio across restarts, in a browser', { timeout: 120_000 }, () => {
  before(async () => {
    prepareBrowserTest(ARTIFACTS);
    work = mkdtempSync(join(tmpdir(), 'latentblend-studio-restart-'));
    browser = await launchStudioChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await studio?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('a render killed with its server shows as interrupted after a restart, and resumes', async () => {
    const workDir = join(work, 'studio');
    const crashed = await spawnStudio(['--model', MODEL, '--work-dir', workDir, '--port', '0']);
    try {
      await page.goto(crashed.url);
      await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
      await page.getByLabel('Spec text').fill(SPEC_YAML);
      await page.getByRole('button', { name: 'Load this text' }).click();
      await waitForPrompts(PROMPTS);
      // The browser's session, to watch the render from the test and kill the server at the right time.
      const client = new StudioClient(new URL(crashed.url));
      for (const cookie of await context!.cookies()) client.setCookie(cookie.name, cookie.value);
      await page.getByRole('button', { name: 'Render film (2 transitions)' }).click();
      let jobId: string | undefined;
      while (jobId === undefined) jobId = ((await client.get('/api/jobs')).json.jobs as { id: string; kind: string }[]).find((job) => job.kind === 'render')?.id;
      await client.watch(jobId, (event, data) => event === 'frame' && data.transition >= 1);
    } finally {
      await crashed.kill();
    }
    const { startStudio } = await import('../src/studio/server.ts');
    // The same port, as a restarted server has: the page's draft (localStorage) is per origin.
    studio = await startStudio({ modelDir: MODEL, modelSource: MODEL, workDir, port: Number(new URL(crashed.url).port) });
    await page.goto(studio.url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    const film = page.getByRole('list', { name: 'Your films' }).getByRole('listitem');
    await film.first().waitFor({ timeout: STEP_TIMEOUT });
    assert.equal(await film.count(), 1);
    const text = await film.first().innerText();
    assert.match(text, /Interrupted/);
    // Killed at the first frame of the second transition: the first is finished; on a fast machine
    // the tiny second one may have finished too before the kill landed (then only the film is left).
    const finished = Number(/(\d) of 2 transitions finished/.exec(text)?.[1]);
    assert.ok(finished === 1 || finished === 2, text);
    await film.first().scrollIntoViewIfNeeded();
    await shot('01-interrupted');

    await page.getByRole('button', { name: /^Resume a red cube/ }).click();
    await page.locator('video.player').waitFor({ timeout: 40_000 });
    const reused = await page.evaluate(async () => {
      const { jobs } = (await (await fetch('/api/jobs')).json()) as { jobs: { kind: string; result?: { transitionsReused: number } }[] };
      return jobs.find((job) => job.kind === 'render')?.result?.transitionsReused;
    });
    assert.equal(reused, finished, 'every finished transition was reused');
    await page.getByRole('list', { name: 'Your films' }).getByRole('button', { name: 'Play', exact: true }).waitFor({ timeout: STEP_TIMEOUT });
    assert.doesNotMatch(await film.first().innerText(), /Interrupted/);
    await shot('02-resumed');
  });

  test('a film is renamed, and deleted only after a confirmation', async () => {
    const films = page.getByRole('list', { name: 'Your films' });
    await films.getByRole('button', { name: /^Rename a red cube/ }).click();
    const field = films.getByRole('textbox', { name: /^New title of/ });
    await field.fill('Shapes at dawn');
    await field.press('Enter');
    await films.getByText('Shapes at dawn').waitFor({ timeout: STEP_TIMEOUT });
    assert.equal(await films.getByRole('link', { name: 'Download' }).getAttribute('download'), 'Shapes-at-dawn.mp4');
    // Delete, but keep it.
    await films.getByRole('button', { name: /^Delete Shapes at dawn/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this film?' });
    await dialog.waitFor({ timeout: STEP_TIMEOUT });
    await shot('03-delete-asked');
    await dialog.getByRole('button', { name: 'Keep it' }).click();
    await dialog.waitFor({ state: 'detached', timeout: STEP_TIMEOUT });
    assert.equal(await films.getByRole('listitem').count(), 1);
    // Delete for real.
    await films.getByRole('button', { name: /^Delete Shapes at dawn/ }).click();
    await page.getByRole('dialog', { name: 'Delete this film?' }).getByRole('button', { name: 'Delete film' }).click();
    await films.getByRole('listitem').first().waitFor({ state: 'detached', timeout: STEP_TIMEOUT });
    assert.ok(await page.locator('#films-empty').isVisible());
  });

  test('loading over a non-empty timeline asks first, and can be undone', async () => {
    await waitForPrompts(PROMPTS);
    await page.getByRole('button', { name: 'Load example' }).click();
    const dialog = page.getByRole('dialog', { name: 'Replace the timeline?' });
    await dialog.waitFor({ timeout: STEP_TIMEOUT });
    assert.match(await dialog.innerText(), /3 keyframes/);
    await dialog.getByRole('button', { name: 'Keep my timeline' }).click();
    await dialog.waitFor({ state: 'detached', timeout: STEP_TIMEOUT });
    await waitForPrompts(PROMPTS);
    // Now replace, then undo.
    await page.getByRole('button', { name: 'Load example' }).click();
    await page.getByRole('dialog', { name: 'Replace the timeline?' }).getByRole('button', { name: 'Replace' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#timeline .keyframe-prompt').length > 0 && (document.querySelector('#timeline .keyframe-prompt') as HTMLTextAreaElement).value !== 'a red cube', undefined, {
      timeout: STEP_TIMEOUT,
    });
    assert.notDeepEqual(await prompts(), PROMPTS);
    await shot('04-replaced');
    await page.getByRole('button', { name: /^Undo loading the example/ }).click();
    await waitForPrompts(PROMPTS);
    assert.equal(await page.locator('#undo-replace').isVisible(), false);
  });

  test('on a phone: 44 px touch targets, toasts within a quarter of the screen, readable grey defaults', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    // The prompt comes first.
    const first = await page.evaluate(() => document.querySelector('main .card:not([hidden])')?.id);
    assert.equal(first, 'previews-panel');
    const small = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('button, .button, select, input:not([type=checkbox]):not([type=radio]):not([type=file])')]
        .filter((element) => element.offsetParent !== null && element.getClientRects().length > 0)
        .map((element) => ({ name: element.getAttribute('aria-label') ?? element.textContent?.trim() ?? element.id, box: element.getBoundingClientRect() }))
        .filter(({ box }) => box.height < 44 - 0.5 || box.width < 24)
        .map(({ name, box }) => `${name} ${Math.round(box.width)}×${Math.round(box.height)}`),
    );
    assert.deepEqual(small, [], 'controls smaller than 44 px');
    // Three messages at once (three PNGs without parameters dropped) take at most a quarter of the screen.
    const transfer = await page.evaluateHandle(() => {
      const data = new DataTransfer();
      for (const name of ['one.png', 'two.png', 'three.png']) data.items.add(new File([new Uint8Array([1, 2, 3])], name, { type: 'image/png' }));
      return data;
    });
    await page.dispatchEvent('body', 'dragover', { dataTransfer: transfer });
    await page.dispatchEvent('body', 'drop', { dataTransfer: transfer });
    await page.locator('#alerts .toast').filter({ hasText: 'three.png' }).waitFor({ timeout: STEP_TIMEOUT });
    assert.equal(await page.locator('#alerts .toast').count(), 2, 'two messages at most on a phone');
    const stack = (await page.locator('.toast-stack').boundingBox())!;
    assert.ok(stack.height <= 844 / 4 + 0.5, `the toasts take ${stack.height} px of 844`);
    // Grey placeholders (the defaults) reach 4.5:1 against their field.
    // (A string, so that the test runner's transform adds no helpers to the page's code.)
    const ratio = (await page.evaluate(`(() => {
      const input = document.querySelector('#preview-seeds');
      const luminance = (color) => {
        const [r, g, b] = color.match(/[\\d.]+/g).slice(0, 3).map(Number).map((value) => {
          const c = value / 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const text = luminance(getComputedStyle(input, '::placeholder').color);
      const field = luminance(getComputedStyle(input).backgroundColor);
      return (Math.max(text, field) + 0.05) / (Math.min(text, field) + 0.05);
    })()`)) as number;
    assert.ok(ratio >= 4.5, `placeholder contrast ${ratio.toFixed(2)}:1`);
    await page.screenshot({ path: join(ARTIFACTS, '05-phone.png') });
  });

  test('the page raised no script errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
