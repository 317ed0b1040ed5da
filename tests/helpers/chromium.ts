/**
 * Debian's headless Chromium for the browser tests. playwright-core is loaded only when a browser
 * is launched, so test files that import this and skip their page tests never load it.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

/** The Chromium binary: $LATENTBLEND_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.LATENTBLEND_CHROMIUM ?? '/usr/bin/chromium';

/** Fails with how to install it when the Chromium binary is missing (call it before a browser test's setup). */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `This test needs Debian's Chromium at ${CHROMIUM}, which is missing. Install it with: apt-get update && apt-get install -y chromium (CI installs it; set LATENTBLEND_CHROMIUM to use another Chromium binary).`,
    );
  }
}

/** What a studio page test does first: checks for Chromium, then empties its screenshots folder `artifacts`. */
export function prepareBrowserTest(artifacts: string): void {
  requireChromium();
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
}

/** Headless Chromium without a GPU, as the studio page's tests drive it. */
export async function launchStudioChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu'],
  });
}

/**
 * A new 1280x900 page of `browser` on the studio at `url`, once the studio says it is ready
 * (within 20 s), with the page's uncaught errors collected in `errors`.
 */
export async function openStudioPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 20_000 });
  return { page, errors };
}
