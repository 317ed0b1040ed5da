/**
 * The server studio's "Run in this browser" mode (docs/studio-api.md, "Run in this browser"):
 * the same front end, with the studio's API answered inside the page by onnxruntime-web
 * (src/studio/web/local-app.ts, as in the static site of `studio --static`), and the model's files
 * fetched from this server.
 *
 * - `/browser/` (and its `app.js`, `sw.js`, `ort/…`, `latentblend-site.json`): the in-page
 *   studio. Its service worker's scope is `/browser/`, so it never sees the server mode's files.
 * - `GET /api/model/files/<id>/files.json` and `GET /api/model/files/<id>/<path>`: the loaded
 *   model folder's files, read-only. `<id>` changes when the server loads another model (a page's
 *   stored copy is never mistaken for the new model's).
 *
 * Both sit behind the studio's access rules like every other request.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { COMMON_HEADERS, contentTypeOf, HttpError, sendJson, serveFile } from './http.ts';
import { CONTENT_SECURITY_POLICY } from './static.ts';
import { bundleStaticStudio, ORT_FILES } from './static-site.ts';
import { studioWebDir } from './web-bundle.ts';

/** The page's CSP: the server's, plus compiling WebAssembly and onnxruntime-web's worker threads. */
const BROWSER_CSP = `${CONTENT_SECURITY_POLICY.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")}; worker-src 'self' blob:`;

/** The URL path of the in-page studio. */
export const BROWSER_PAGE = '/browser/';

/** The model the studio uses now: its folder, and what the user named (folder or Hub id). */
export interface LoadedModelFolder {
  readonly dir: string;
  readonly source: string;
}

/**
 * The id of a model in `/api/model/files/<id>/`: its name (the source's last part, for the page
 * to show) and 12 hex digits of the SHA-256 of its folder's path and file list with sizes (another
 * folder or changed files, another id: browsers keep model files by URL).
 */
export function modelFilesId(model: LoadedModelFolder, files = listFiles(model.dir)): string {
  const name = model.source.replace(/@[^/\\]*$/, '').split(/[\\/]/).filter((part) => part !== '' && part !== 'onnx').pop() ?? 'model';
  const slug = name.replace(/[^\w.-]+/g, '-').replace(/^[.-]+|-+$/g, '').slice(0, 60) || 'model';
  return `${slug}-${createHash('sha256').update(`${model.dir}\0${JSON.stringify(files)}`).digest('hex').slice(0, 12)}`;
}

/**
 * The model folder's files (the Hub tree API's format), symbolic links followed (a Hub cache's
 * snapshot links to its blobs), hidden names left out, at most 4 folders deep.
 */
function listFiles(dir: string, prefix = '', depth = 0): { type: 'file'; path: string; size: number }[] {
  const out: { type: 'file'; path: string; size: number }[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    let stats;
    try {
      stats = statSync(join(dir, name));
    } catch {
      continue; // a broken link
    }
    if (stats.isDirectory()) {
      if (depth < 4) out.push(...listFiles(join(dir, name), `${prefix}${name}/`, depth + 1));
    }
    else if (stats.isFile()) out.push({ type: 'file', path: `${prefix}${name}`, size: stats.size });
  }
  return out;
}

function ortDir(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-web');
  const dist = join(dirname(entry), '..', 'dist');
  return existsSync(join(dist, ORT_FILES[0]!)) ? dist : dirname(entry);
}

function sendText(request: IncomingMessage, response: ServerResponse, type: string, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(200, {
    ...COMMON_HEADERS,
    'Content-Security-Policy': BROWSER_CSP,
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-cache',
    ...headers,
  });
  response.end(request.method === 'HEAD' ? undefined : text);
}

/** Serves the in-page studio and the loaded model's files; made once per studio. */
export class BrowserMode {
  private bundles: Promise<{ app: string; worker: string; html: string }> | undefined;

  /** @param model the model loaded now (it changes with POST /api/model). */
  constructor(private readonly model: () => LoadedModelFolder) {}

  private assets(): Promise<{ app: string; worker: string; html: string }> {
    this.bundles ??= (async () => {
      const [bundles, html] = await Promise.all([bundleStaticStudio(), readFile(join(studioWebDir(), 'index.html'), 'utf8')]);
      return { ...bundles, html: html.replaceAll('"/app.js"', '"/browser/app.js"') };
    })();
    this.bundles.catch(() => {
      this.bundles = undefined;
    });
    return this.bundles;
  }

  /** GET `/browser/…` (segments after "browser"). */
  async servePage(request: IncomingMessage, response: ServerResponse, segments: readonly string[]): Promise<void> {
    const path = segments.join('/');
    if (path === '' || path === 'index.html') sendText(request, response, 'text/html; charset=utf-8', (await this.assets()).html);
    else if (path === 'app.js') sendText(request, response, 'text/javascript; charset=utf-8', (await this.assets()).app);
    else if (path === 'sw.js') sendText(request, response, 'text/javascript; charset=utf-8', (await this.assets()).worker);
    else if (path === 'latentblend-site.json') {
      const config = { model: `/api/model/files/${modelFilesId(this.model())}`, server: '/' };
      sendText(request, response, 'application/json', JSON.stringify(config), { 'Cache-Control': 'no-store' });
    } else if (segments.length === 2 && segments[0] === 'ort' && ORT_FILES.includes(segments[1]!)) {
      await serveFile(request, response, ortDir(), segments[1]!, { 'Cache-Control': 'max-age=3600' });
    } else throw new HttpError(404, 'not_found', 'No such page.');
  }

  /** GET `/api/model/files/<id>/…` (segments after "files"). */
  async serveModelFile(request: IncomingMessage, response: ServerResponse, segments: readonly string[]): Promise<void> {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      throw new HttpError(405, 'method_not_allowed', `${request.method ?? ''} is not allowed on the model's files; use GET.`, { Allow: 'GET, HEAD' });
    }
    const model = this.model();
    const dir = model.dir;
    const files = listFiles(dir);
    if (segments.length < 2 || segments[0] !== modelFilesId(model, files)) throw new HttpError(404, 'not_found', 'No such model file (the studio may have loaded another model, or its files changed).');
    const path = segments.slice(1).join('/');
    if (path === 'files.json') {
      sendJson(response, 200, files, { 'Cache-Control': 'no-store' });
      return;
    }
    // Only the listed files; links are followed to the file they name (served like any file).
    if (!files.some((file) => file.path === path)) throw new HttpError(404, 'not_found', 'No such model file.');
    const real = realpathSync(join(dir, ...segments.slice(1)));
    await serveFile(request, response, dirname(real), basename(real), { 'Content-Type': contentTypeOf(path) });
  }
}
