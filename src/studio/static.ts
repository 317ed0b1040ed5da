/**
 * The front end's files. By default the studio serves the in-memory bundle of
 * src/studio/web (`bundleStudioWeb()`, made once at start-up) at `/` (and `/index.html`),
 * `/app.js` and `/app.css`; with a static folder (`staticDir`) it serves that folder's files
 * instead, `/` being its index.html. Nothing else is served outside `/api`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { COMMON_HEADERS, HttpError, serveFile } from './http.ts';
import type { StudioWebBundle } from './web-bundle.ts';

/** Content-Security-Policy of the front end: everything from this server only, no inline scripts. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

export interface FrontEnd {
  /** Serves the page or asset named by the (already checked) path segments, or throws HttpError 404. */
  serve(request: IncomingMessage, response: ServerResponse, segments: readonly string[]): Promise<void>;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function sendText(request: IncomingMessage, response: ServerResponse, status: number, type: string, text: string): void {
  response.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache',
  });
  response.end(request.method === 'HEAD' ? undefined : text);
}

/** The bundled front end, or a page saying why there is none (the API works either way). */
export class BundledFrontEnd implements FrontEnd {
  constructor(private readonly bundle: StudioWebBundle | { readonly error: string }) {}

  async serve(request: IncomingMessage, response: ServerResponse, segments: readonly string[]): Promise<void> {
    const path = segments.join('/');
    if ('error' in this.bundle) {
      if (path !== '' && path !== 'index.html') throw new HttpError(404, 'not_found', 'No such page.');
      const page = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>latentblend studio</title></head>\n<body><h1>latentblend studio</h1><p>The server runs (its API is under <code>/api</code>), but the front end is not available:</p><pre>${escapeHtml(this.bundle.error)}</pre></body></html>\n`;
      sendText(request, response, 500, 'text/html; charset=utf-8', page);
      return;
    }
    if (path === '' || path === 'index.html') sendText(request, response, 200, 'text/html; charset=utf-8', this.bundle.html);
    else if (path === 'app.js') sendText(request, response, 200, 'text/javascript; charset=utf-8', this.bundle.js);
    else if (path === 'app.css') sendText(request, response, 200, 'text/css; charset=utf-8', this.bundle.css);
    else throw new HttpError(404, 'not_found', 'No such page.');
  }
}

/** The files of a folder (a front end built elsewhere); `/` is its index.html. */
export class StaticFolder implements FrontEnd {
  constructor(readonly root: string) {}

  async serve(request: IncomingMessage, response: ServerResponse, segments: readonly string[]): Promise<void> {
    const parts = [...segments];
    if (parts.length === 0 || parts[parts.length - 1] === '') parts.splice(-1, 1, 'index.html');
    await serveFile(request, response, this.root, parts.join('/'), { 'Content-Security-Policy': CONTENT_SECURITY_POLICY });
  }
}
