/// <reference lib="dom" />
/**
 * The studio front end in "run in this browser" mode (the static site of `latentblend studio
 * --static`): the page answers the studio's API itself (src/browser/studio-local.ts) by standing
 * in for `fetch('/api/…')` and `EventSource`, loads the model with WebGPU when the browser has it
 * (WebAssembly otherwise; `?device=cpu` forces it), shows which, and then starts the same front
 * end as the server mode (./app.ts).
 */
import { createBrowserPlatform, deviceLabel } from '../../browser/platform.ts';
import { LocalStudio } from '../../browser/studio-local.ts';
import type { DownloadProgress } from '../../browser/model-store.ts';
import { FILES_CACHE } from './local-files.ts';

/** latentblend-site.json, written by `studio --static`. */
interface SiteConfig {
  /** A folder of this site (e.g. "models/tiny-sd-turbo") or a Hub repo id. */
  model: string;
  /** An LPIPS .onnx of this site (e.g. "lpips/lpips.onnx"). */
  lpips?: string;
  /** The server studio's page, when this is its "Run in this browser" mode (src/studio/browser-mode.ts). */
  server?: string;
}

function statusLine(): HTMLElement {
  let element = document.getElementById('local-status');
  if (element === null) {
    element = document.createElement('p');
    element.id = 'local-status';
    element.setAttribute('role', 'status');
    element.style.cssText = 'margin:0;padding:6px 12px;font:14px system-ui,sans-serif;background:#eef3ff;border-bottom:1px solid #c9d6f5';
    document.body.prepend(element);
  }
  return element;
}

function showBootError(message: string): void {
  const box = document.getElementById('boot-error');
  const text = document.getElementById('boot-error-text');
  if (box !== null && text !== null) {
    box.hidden = false;
    text.textContent = message;
  } else {
    statusLine().textContent = message;
  }
  document.body.dataset.state = 'error';
}

/** Resolves once a service worker controls this page (it claims the page when it activates). */
async function serviceWorker(): Promise<boolean> {
  if (!('serviceWorker' in navigator) || !isSecureContext) return false;
  await navigator.serviceWorker.register('./sw.js');
  await navigator.serviceWorker.ready;
  if (navigator.serviceWorker.controller === null) {
    await new Promise<void>((resolve) => navigator.serviceWorker.addEventListener('controllerchange', () => resolve(), { once: true }));
  }
  return true;
}

function installApi(studio: LocalStudio, basePath: string): void {
  const realFetch = window.fetch.bind(window);
  const apiPath = (url: URL): string | undefined => {
    if (url.origin !== location.origin) return undefined;
    const path = url.pathname.startsWith(`${basePath}api/`) ? url.pathname.slice(basePath.length - 1) : url.pathname;
    // Made files come from the service worker; in the server studio's browser mode, model files from the server.
    return path.startsWith('/api/') && !path.startsWith('/api/files/') && !path.startsWith('/api/model/files/') ? path : undefined;
  };
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : undefined;
    const url = new URL(request?.url ?? String(input), location.href);
    const path = apiPath(url);
    if (path === undefined) return realFetch(input, init);
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
    // A picture upload (POST /api/pictures) is bytes, not JSON.
    if (method === 'POST' && /^\/api\/pictures\/?$/.test(path)) {
      const given = init?.body;
      const bytes =
        given instanceof Blob ? given
        : given instanceof ArrayBuffer || ArrayBuffer.isView(given) ? new Blob([given as BlobPart])
        : request !== undefined ? await request.blob()
        : new Blob([]);
      const answer = await studio.handle(method, path, bytes);
      return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { 'content-type': 'application/json' } });
    }
    const text = typeof init?.body === 'string' ? init.body : request !== undefined ? await request.text() : '';
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      return new Response(JSON.stringify({ error: { code: 'bad_json', message: 'The body is not valid JSON.' } }), { status: 400, headers: { 'content-type': 'application/json' } });
    }
    const answer = await studio.handle(method, path, body);
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers: { 'content-type': 'application/json' } });
  };

  class LocalEventSource extends EventTarget {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSED = 2;
    readyState = 0;
    readonly url: string;
    readonly withCredentials = false;
    private unsubscribe: (() => void) | undefined;
    constructor(url: string | URL) {
      super();
      this.url = new URL(String(url), location.href).href;
      const match = /\/api\/jobs\/([^/]+)\/events$/.exec(new URL(this.url).pathname);
      setTimeout(() => {
        if (this.readyState === 2) return;
        if (match === null) {
          this.readyState = 2;
          this.dispatchEvent(new Event('error'));
          return;
        }
        this.readyState = 1;
        try {
          this.unsubscribe = studio.listen(decodeURIComponent(match[1]!), (type, data) => {
            this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(data) }));
          });
        } catch {
          this.readyState = 2;
          this.dispatchEvent(new Event('error'));
        }
      }, 0);
    }
    close(): void {
      this.readyState = 2;
      this.unsubscribe?.();
    }
  }
  (window as unknown as { EventSource: unknown }).EventSource = LocalEventSource;
}

/**
 * Downloads of made files (`…/api/files/<name>?download=1` links) straight from the Cache API:
 * Chromium fetches `<a download>` targets without asking the service worker.
 */
function installDownloads(cache: Cache, basePath: string): void {
  document.addEventListener(
    'click',
    (event) => {
      const link = (event.target as Element | null)?.closest?.('a[href]') as HTMLAnchorElement | null;
      if (link === null) return;
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || !url.pathname.startsWith(`${basePath}api/files/`) || url.searchParams.get('download') !== '1') return;
      event.preventDefault();
      void (async () => {
        const hit = await cache.match(`${url.origin}${url.pathname}`);
        if (hit === undefined) return;
        const blobUrl = URL.createObjectURL(await hit.blob());
        const save = document.createElement('a');
        save.href = blobUrl;
        save.download = `latentblend-${url.pathname.slice(url.pathname.lastIndexOf('/') + 1)}`;
        save.hidden = true;
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(blobUrl), 30_000);
      })();
    },
    true,
  );
}

function describeDownload(event: DownloadProgress): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  return event.cached ? `${event.role}: from this browser's storage` : `${event.role}: ${mb(event.loaded)} of ${mb(event.total)} MB`;
}

async function main(): Promise<void> {
  const status = statusLine();
  status.textContent = 'Starting the studio in this browser…';
  const basePath = new URL('./', location.href).pathname;
  let config: SiteConfig;
  try {
    const response = await fetch('./latentblend-site.json');
    config = (await response.json()) as SiteConfig;
  } catch (error) {
    showBootError(`This static studio has no readable latentblend-site.json: ${(error as Error).message}`);
    return;
  }
  let problem = 'this page is not a secure context (a https:// address or http://localhost)';
  const registered = await serviceWorker().catch((error: unknown) => {
    problem = (error as Error).message;
    return false;
  });
  if (!registered) {
    showBootError(`This page needs a service worker (it serves the films made here), and it could not start one: ${problem}.`);
    return;
  }
  // On the first visit the page was loaded before the service worker could add the headers that
  // make it cross-origin isolated (multi-threaded WebAssembly); one reload fixes that.
  if (!crossOriginIsolated && sessionStorage.getItem('latentblend-isolation-reload') === null) {
    sessionStorage.setItem('latentblend-isolation-reload', '1');
    location.reload();
    return;
  }
  const cache = await caches.open(FILES_CACHE);
  // The film list, kept beside the films (not under api/files/, so the service worker never serves it).
  const filmsKey = `${location.origin}${basePath}latentblend-films.json`;
  const forced = new URLSearchParams(location.search).get('device');
  let studio: LocalStudio | undefined;
  // Threads need a cross-origin isolated page (see the reload above); half the cores, at most 4.
  const threads = crossOriginIsolated ? Math.max(1, Math.min(4, Math.ceil((navigator.hardwareConcurrency || 2) / 2))) : 1;
  const platform = await createBrowserPlatform({
    wasmPaths: new URL('./ort/', location.href).href,
    numThreads: threads,
    noWebGpu: forced === 'cpu',
    onProgress: (event) => studio?.downloadProgress(event),
  });
  const device = platform.devices[0] === 'webgpu' ? 'webgpu' : 'cpu';
  const why = device === 'webgpu' ? ' (WebAssembly is the fallback)' : forced === 'cpu' ? ' (chosen with ?device=cpu)' : ' (no WebGPU adapter found)';
  const threadNote = device === 'cpu' ? `, ${threads} thread${threads === 1 ? '' : 's'}` : '';
  const where = `Runs in this browser on ${deviceLabel(device)}${threadNote}${why}`;
  document.body.dataset.device = device;
  if (typeof config.server === 'string') document.body.dataset.serverPage = config.server;
  studio = new LocalStudio({
    platform,
    device,
    basePath,
    ...(config.lpips !== undefined ? { lpipsUrl: config.lpips } : {}),
    putFile: (name, blob) => cache.put(`${location.origin}${basePath}api/files/${name}`, new Response(blob, { headers: { 'content-type': blob.type } })),
    filmList: {
      load: async () => ((await (await cache.match(filmsKey))?.json()) as unknown[] | undefined) ?? [],
      save: (films) => cache.put(filmsKey, new Response(JSON.stringify(films), { headers: { 'content-type': 'application/json' } })),
    },
  });
  installApi(studio, basePath);
  installDownloads(cache, basePath);
  status.textContent = `${where} · loading ${config.model}…`;
  try {
    await studio.start(config.model, (event) => {
      status.textContent = `${where} · loading ${config.model}: ${describeDownload(event)}`;
    });
  } catch (error) {
    showBootError(`Could not load ${config.model} in this browser: ${(error as Error).message}`);
    return;
  }
  status.textContent = `${where} · model ${config.model}`;
  await import('./app.ts');
  const help = document.getElementById('model-help');
  if (help !== null) {
    help.textContent =
      'A folder of this site (e.g. models/name, listed by its files.json) or a Hub id like owner/name[/subfolder][@revision] of a model in Optimum ONNX layout; it is downloaded into this browser once, and runs here.';
  }
}

void main();
