/**
 * Debian's headless Chromium for the browser tests. playwright-core is loaded only when a browser
 * is launched, so test files that import this and skip their page tests never load it.
 */
import type { Browser } from 'playwright-core';

/** The Chromium binary: $LATENTBLEND_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.LATENTBLEND_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium without a GPU, as the studio page's tests drive it. */
export async function launchStudioChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu'],
  });
}
