/**
 * The studio as used on a remote GPU machine, in a real browser (Debian's headless Chromium
 * through playwright-core) on the tiny SD-Turbo fixture: token access on a non-loopback bind
 * (the token form, then the cookie), and a loopback studio reached through a tunnel on another
 * port (a TCP relay, as `ssh -L` is), where a preview PNG dropped on the page restores its
 * keyframe from its text chunks. Screenshots go to test-artifacts/studio-remote/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Studio, StudioOptions } from '../src/studio/server.ts';
import { modelDir, ROOT } from './helpers/golden.ts';
import { launchStudioChromium, prepareBrowserTest } from './helpers/chromium.ts';

const ARTIFACTS = join(ROOT, 'test-artifacts', 'studio-remote');
const STEP_TIMEOUT = 20_000;

let browser: Browser | undefined;
let work: string;
const studios: Studio[] = [];
const pageErrors: string[] = [];

async function start(options: Partial<StudioOptions> & { workDir: string }): Promise<Studio> {
  const { startStudio } = await import('../src/studio/server.ts');
  const studio = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), port: 0, ...options });
  studios.push(studio);
  return studio;
}

/** A TCP relay from a new loopback port to `target` (what `ssh -L` does). */
async function tunnel(target: () => number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target() });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((closed) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => closed());
      }),
  };
}

async function newPage(): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('dialog', (dialog) => void dialog.accept());
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

/** One preview through the page: proves POST, the event stream and /api/files all pass. */
async function preview(page: Page, prompt: string, seed: number): Promise<void> {
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByLabel(/^Seeds/).fill(String(seed));
  await page.getByRole('button', { name: 'Generate previews' }).click();
  await page.getByRole('button', { name: `Add seed ${seed} to the timeline` }).waitFor({ timeout: STEP_TIMEOUT });
  await page.waitForFunction(() => [...document.querySelectorAll('#preview-batches img')].some((image) => (image as HTMLImageElement).naturalWidth > 0), undefined, {
    timeout: STEP_TIMEOUT,
  });
}

/** Drops files (name and bytes) on the page as a file manager would. */
async function dropFiles(page: Page, files: { name: string; bytes: number[] }[]): Promise<void> {
  const transfer = await page.evaluateHandle((list) => {
    const data = new DataTransfer();
    for (const file of list) data.items.add(new File([new Uint8Array(file.bytes)], file.name, { type: 'image/png' }));
    return data;
  }, files);
  await page.dispatchEvent('#timeline-panel', 'dragover', { dataTransfer: transfer });
  await page.dispatchEvent('#timeline-panel', 'drop', { dataTransfer: transfer });
}

/** A preview PNG downloaded from the page, dropped back on an empty timeline, becomes its keyframe again (other pictures: tests/studio-pictures-e2e.test.ts). */
async function dropRestoresKeyframe(page: Page): Promise<void> {
  const url = await page.locator('#preview-batches img').first().getAttribute('src');
  const bytes = await page.evaluate(async (src) => [...new Uint8Array(await (await fetch(src!)).arrayBuffer())], url);
  await page.getByLabel('Prompt', { exact: true }).fill('');
  await dropFiles(page, [{ name: 'a-red-cube-seed-1.png', bytes }]);
  const prompt = page.getByRole('textbox', { name: 'Prompt of keyframe 1' });
  await prompt.waitFor({ timeout: STEP_TIMEOUT });
  assert.equal(await prompt.inputValue(), 'a red cube');
  assert.equal(await page.getByRole('spinbutton', { name: 'Seed of keyframe 1' }).inputValue(), '1');
  assert.equal(await page.getByLabel('Prompt', { exact: true }).inputValue(), 'a red cube', 'the prompt field too');
  await page.locator('#toasts .toast').filter({ hasText: 'restored from a-red-cube-seed-1.png' }).waitFor({ timeout: STEP_TIMEOUT });
  await shot(page, '04-png-dropped');
}

describe('studio on a remote machine, in a browser', { timeout: 90_000 }, () => {
  before(async () => {
    prepareBrowserTest(ARTIFACTS);
    work = mkdtempSync(join(tmpdir(), 'latentblend-studio-remote-'));
    browser = await launchStudioChromium();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    for (const studio of studios) await studio.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('a studio on 0.0.0.0 asks for its token, then works with the cookie alone', async () => {
    const studio = await start({ workDir: join(work, 'open'), host: '0.0.0.0' });
    const port = new URL(studio.url).port;
    const page = await newPage();
    // Without the token: the page asks for it.
    const answer = await page.goto(`http://127.0.0.1:${port}/`);
    assert.equal(answer?.status(), 401);
    await shot(page, '01-token-asked');
    await page.getByLabel('Access token').fill(studio.token!);
    await page.getByRole('button', { name: 'Open the studio' }).click();
    await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    assert.equal(page.url(), `http://127.0.0.1:${port}/`, 'the token left the address bar');
    await preview(page, 'a lighthouse', 3);
    await shot(page, '02-token-granted');
    // The printed URL works the same way in a fresh browser profile.
    const other = await newPage();
    await other.goto(studio.url.replace('0.0.0.0', '127.0.0.1'));
    await other.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
    assert.doesNotMatch(other.url(), /token/);
    await other.context().close();
    await page.context().close();
  });

  test('a loopback studio works through a tunnel on another port', async () => {
    const studio = await start({ workDir: join(work, 'tunnelled') });
    const relay = await tunnel(() => Number(new URL(studio.url).port));
    try {
      const page = await newPage();
      await page.goto(`http://localhost:${relay.port}/`);
      await page.waitForSelector('body[data-state="ready"]', { timeout: STEP_TIMEOUT });
      await preview(page, 'a red cube', 1);
      await shot(page, '03-tunnel');
      await dropRestoresKeyframe(page);
      await page.context().close();
    } finally {
      await relay.close();
    }
  });

  test('the pages raised no script errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
