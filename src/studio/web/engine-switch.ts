/// <reference lib="dom" />
/**
 * The "Run in this browser" / "Run on the server" choice of the server studio's top bar. The
 * server mode is the page at `/`; the browser mode is the same front end at `/browser/`, whose
 * API runs in the page (./local-app.ts) on the model files the server hands out
 * (src/studio/browser-mode.ts). The static site (`studio --static`) has no server: no choice.
 */
import { h } from './dom.ts';

/** Adds the choice to the top bar; `data-engine` on the body says which mode this page is. */
export function setupEngineSwitch(): void {
  const body = document.body;
  const serverPage = body.dataset.serverPage;
  const inBrowser = serverPage !== undefined;
  // The static site's local-app.ts sets data-device but no server page.
  if (!inBrowser && body.dataset.device !== undefined) return;
  body.dataset.engine = inBrowser ? 'browser' : 'server';
  const topbar = document.querySelector('.topbar');
  if (topbar === null) return;
  const link = h(
    'a',
    {
      id: 'engine-switch',
      class: 'button small',
      href: inBrowser ? serverPage : '/browser/',
      title: inBrowser
        ? 'Go back to the server: previews and films are computed by the studio server again (films made in this browser stay in this browser).'
        : "Compute previews and films in this browser (WebGPU, else WebAssembly) with the server's model; nothing is computed on the server.",
    },
    inBrowser ? 'Run on the server' : 'Run in this browser',
  );
  topbar.append(link);
}
