/**
 * Browser tests' plumbing: a static HTTP server on 127.0.0.1 (a secure context, so WebGPU and the
 * Cache API exist) with folders, single files and generated `files.json` listings, and Debian's
 * headless Chromium through playwright-core.
 */
import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Locator } from 'playwright-core';
import { CHROMIUM } from './chromium.ts';

export { CHROMIUM };

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export interface SiteServer {
  readonly url: string;
  /** Request paths served so far, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

function walk(dir: string, prefix = ''): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const stats = statSync(full);
    if (stats.isDirectory()) out.push(...walk(full, `${prefix}${name}/`));
    else out.push({ path: `${prefix}${name}`, size: stats.size });
  }
  return out;
}

/**
 * Serves `folders` (URL prefix → folder on disk) and `files` (URL path → file on disk or bytes).
 * `GET <prefix>/files.json` of any served folder that has no such file lists the files under it
 * (the Hub tree API's format), which is what the browser engine's model store reads.
 */
export async function startSiteServer(options: { folders?: Record<string, string>; files?: Record<string, string | Uint8Array> }): Promise<SiteServer> {
  const folders = Object.entries(options.folders ?? {});
  const files = new Map(Object.entries(options.files ?? {}));
  const requests: string[] = [];
  const resolveFile = (path: string): string | Uint8Array | undefined => {
    const exact = files.get(path);
    if (exact !== undefined) return exact;
    for (const [prefix, dir] of folders) {
      if (path.startsWith(`${prefix}/`)) {
        const full = join(dir, decodeURIComponent(path.slice(prefix.length + 1)));
        if (!full.startsWith(dir)) return undefined;
        try {
          if (statSync(full).isFile()) return full;
        } catch {
          // not there
        }
      }
    }
    return undefined;
  };
  const listing = (folder: string): { type: string; path: string; size: number }[] | undefined => {
    const entries = new Map<string, number>();
    for (const [prefix, dir] of folders) {
      if (prefix === folder || prefix.startsWith(`${folder}/`)) {
        const sub = prefix === folder ? '' : `${prefix.slice(folder.length + 1)}/`;
        for (const entry of walk(dir)) entries.set(sub + entry.path, entry.size);
      } else if (folder.startsWith(`${prefix}/`)) {
        try {
          for (const entry of walk(join(dir, folder.slice(prefix.length + 1)))) entries.set(entry.path, entry.size);
        } catch {
          // not a folder there
        }
      }
    }
    for (const [path, source] of files) {
      if (path.startsWith(`${folder}/`)) entries.set(path.slice(folder.length + 1), typeof source === 'string' ? statSync(source).size : source.length);
    }
    if (entries.size === 0) return undefined;
    return [...entries].map(([path, size]) => ({ type: 'file', path, size }));
  };
  const server: Server = createServer((request, response) => {
    const asked = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    requests.push(asked);
    // A folder's address serves its index.html, as static hosts do.
    const path = asked.endsWith('/') ? `${asked}index.html` : asked;
    let body: string | Uint8Array | undefined;
    const found = resolveFile(path);
    if (found !== undefined) body = typeof found === 'string' ? readFileSync(found) : found;
    else if (path.endsWith('/files.json')) {
      const listed = listing(path.slice(0, -'/files.json'.length));
      if (listed !== undefined) body = JSON.stringify(listed);
    }
    if (body === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const type = TYPES[extname(path)] ?? 'application/octet-stream';
    response.writeHead(200, { 'content-type': type, 'content-length': String(body.length), 'cache-control': 'no-store' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Headless Chromium with WebGPU enabled (SwiftShader when there is no GPU). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--enable-unsafe-webgpu'],
  });
}

/** A minimal page that loads one ES module. */
export function modulePage(script: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>latentblend test</title></head><body><script type="module" src="${script}"></script></body></html>`;
}

/**
 * Plays a page's <video> muted and waits (up to 5 s) until it has a frame to show; what it then
 * says: its source, ready state, width in pixels and media error (null when none).
 */
export function playVideo(video: Locator): Promise<{ src: string; readyState: number; width: number; error: string | null }> {
  return video.evaluate(async (element) => {
    const media = element as HTMLVideoElement;
    media.muted = true;
    await media.play().catch(() => undefined);
    const started = Date.now();
    while (media.readyState < 2 && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 50));
    return { src: media.currentSrc, readyState: media.readyState, width: media.videoWidth, error: media.error?.message ?? null };
  });
}

/** A two-keyframe film spec of 4 computed frames (8 fps, 1 s) that the in-browser render tests load as text. */
export const SMALL_FILM_SPEC = `keyframes:
  - prompt: a red cube
    seed: 1
  - prompt: a blue sphere
    seed: 2
fps: 8
transitionDuration: 1
maxBranches: 4
`;
