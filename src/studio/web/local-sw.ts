/**
 * The static studio's service worker: serves the files the page made in this browser (images,
 * films, figures, kept in the Cache API under `<site>/api/files/…`) at those URLs, with
 * `?download=1` as an attachment and byte ranges for video seeking, like the studio server.
 * It also makes the site's pages cross-origin isolated (COOP/COEP headers added to its own
 * responses), which static hosts cannot be told to do and which onnxruntime-web needs for
 * multi-threaded WebAssembly.
 */
import { FILES_CACHE } from './local-files.ts';

interface FetchEventLike extends Event {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface WorkerScope {
  readonly registration: { readonly scope: string };
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: string, listener: (event: Event & { waitUntil(promise: Promise<unknown>): void }) => void): void;
}


const scope = self as unknown as WorkerScope;

scope.addEventListener('install', (event) => event.waitUntil(scope.skipWaiting()));
scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()));
scope.addEventListener('fetch', (event) => {
  const fetchEvent = event as unknown as FetchEventLike;
  const url = new URL(fetchEvent.request.url);
  const base = new URL(scope.registration.scope);
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) return;
  if (url.pathname.startsWith(`${base.pathname}api/files/`)) fetchEvent.respondWith(serve(url, fetchEvent.request));
  else if (fetchEvent.request.method === 'GET' && fetchEvent.request.cache !== 'only-if-cached') fetchEvent.respondWith(isolated(fetchEvent.request));
});

/** The site's own file with the headers of a cross-origin isolated page. */
async function isolated(request: Request): Promise<Response> {
  const response = await fetch(request);
  if (response.status === 0 || response.type === 'opaqueredirect') return response;
  const headers = new Headers(response.headers);
  headers.set('cross-origin-opener-policy', 'same-origin');
  headers.set('cross-origin-embedder-policy', 'require-corp');
  headers.set('cross-origin-resource-policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

async function serve(url: URL, request: Request): Promise<Response> {
  const cache = await caches.open(FILES_CACHE);
  const hit = await cache.match(`${url.origin}${url.pathname}`);
  if (hit === undefined) return new Response('not found', { status: 404, headers: { 'content-type': 'text/plain' } });
  const blob = await hit.blob();
  const headers = new Headers({ 'content-type': hit.headers.get('content-type') ?? 'application/octet-stream', 'accept-ranges': 'bytes', 'cache-control': 'no-cache' });
  if (url.searchParams.get('download') === '1') {
    const name = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
    headers.set('content-disposition', `attachment; filename="latentblend-${name}"`);
  }
  const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.get('range') ?? '');
  if (range !== null && (range[1] !== '' || range[2] !== '')) {
    const size = blob.size;
    const start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
    const end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(size - 1, Number(range[2]));
    if (start > end || start >= size) return new Response(null, { status: 416, headers: { 'content-range': `bytes */${size}` } });
    headers.set('content-range', `bytes ${start}-${end}/${size}`);
    headers.set('content-length', String(end - start + 1));
    return new Response(blob.slice(start, end + 1), { status: 206, headers });
  }
  headers.set('content-length', String(blob.size));
  return new Response(blob, { status: 200, headers });
}
