/**
 * Small HTTP helpers of the studio on node:http: JSON errors, bounded JSON bodies, request paths
 * that cannot climb out of a folder, and files served from inside a root folder only (no
 * symlinks, Range requests for video seeking).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { checkNesting } from '../film/spec-guards.ts';

/** Deepest nesting of lists and objects accepted in a JSON request body. */
export const MAX_BODY_DEPTH = 32;

/** An error with its HTTP status; the JSON body is `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Headers sent with every response. */
export const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  response.end(text);
}

export function sendError(response: ServerResponse, status: number, code: string, message: string, headers: Readonly<Record<string, string>> = {}): void {
  sendJson(response, status, { error: { code, message } }, headers);
}

/**
 * A request body of at most `limit` bytes, whole. Beyond it `tooLarge` is thrown: at once when
 * Content-Length says more than `drainLimit`; otherwise a body up to `drainLimit` bytes is read
 * and dropped (so the client sees the answer), and a larger one closes the connection.
 */
export async function readLimitedBody(request: IncomingMessage, limit: number, drainLimit: number, tooLarge: HttpError): Promise<Buffer> {
  const declared = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']);
  if (declared !== undefined && declared > drainLimit) {
    request.resume();
    throw tooLarge;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((done, fail) => {
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > drainLimit) {
        request.destroy();
        fail(tooLarge);
      } else if (size <= limit) {
        chunks.push(chunk);
      }
    });
    request.on('end', () => done());
    request.on('error', fail);
  });
  if (size > limit) throw tooLarge;
  return Buffer.concat(chunks);
}

/**
 * Reads a JSON request body of at most `limit` bytes. Refuses other content types (415, which
 * also keeps cross-site HTML forms out), larger bodies (413; a body up to `drainLimit` is read
 * and dropped so the client sees the answer, a larger one closes the connection) and invalid
 * JSON (400). An empty body is `{}`.
 */
export async function readJsonBody(request: IncomingMessage, limit: number, drainLimit = 16 * limit): Promise<unknown> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const tooLarge = new HttpError(413, 'too_large', `The request body is larger than ${limit} bytes (1 MiB); send less.`, { Connection: 'close' });
  const body = await readLimitedBody(request, limit, drainLimit, tooLarge);
  if (type !== 'application/json') {
    throw new HttpError(415, 'unsupported_media_type', `Send the request body as JSON with "Content-Type: application/json"${type === '' ? '' : `, got "${type}"`}.`);
  }
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'bad_json', `The request body is not valid JSON: ${(error as Error).message}`);
  }
  // Checked without recursion, before anything recursive (zod, JSON.stringify) walks the value.
  try {
    checkNesting(value, 'The request body', MAX_BODY_DEPTH);
  } catch (error) {
    throw new HttpError(400, 'too_deep', (error as Error).message);
  }
  return value;
}

/**
 * The decoded segments of a request path. Refuses (400) what could point elsewhere than where it
 * seems: '.' or '..' segments (also percent-encoded), encoded slashes or backslashes, NUL bytes
 * and malformed escapes.
 */
export function pathSegments(rawPath: string): string[] {
  if (!rawPath.startsWith('/')) throw new HttpError(400, 'bad_path', 'The request path must start with "/".');
  const segments = rawPath.slice(1).split('/');
  return segments.map((segment) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new HttpError(400, 'bad_path', 'The request path has a malformed %-escape.');
    }
    if (decoded === '.' || decoded === '..' || /[/\\\0]/.test(decoded)) {
      throw new HttpError(400, 'bad_path', 'The request path may not contain ".", ".." or encoded slashes.');
    }
    return decoded;
  });
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..');
}

/**
 * Opens `path` for reading when it is a regular file inside `root` (both resolved through any
 * symlinks of the folders above), and is not itself a symlink. Undefined otherwise.
 */
export async function openInside(root: string, path: string) {
  const resolved = resolve(root, path);
  if (!inside(resolve(root), resolved)) return undefined;
  try {
    const realRoot = await realpath(root);
    const real = await realpath(resolved);
    if (!inside(realRoot, real)) return undefined;
    const link = await lstat(resolved);
    if (link.isSymbolicLink() || !link.isFile()) return undefined;
    const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    const stats = await handle.stat();
    if (!stats.isFile() || stats.ino !== link.ino || stats.dev !== link.dev) {
      await handle.close();
      return undefined;
    }
    return { handle, size: stats.size, modified: stats.mtime };
  } catch {
    return undefined;
  }
}

/**
 * Serves a file inside `root` (404 when it is not one), honouring a single `Range: bytes=a-b`
 * (206, or 416 when it cannot be satisfied). HEAD gets the headers only.
 */
export async function serveFile(
  request: IncomingMessage,
  response: ServerResponse,
  root: string,
  path: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<void> {
  const file = await openInside(root, path);
  if (file === undefined) throw new HttpError(404, 'not_found', 'No such file.');
  const { handle, size } = file;
  try {
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = request.headers.range;
    const match = range === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (match !== null && (match[1] !== '' || match[2] !== '')) {
      if (match[1] === '') {
        start = Math.max(0, size - Number(match[2]));
      } else {
        start = Number(match[1]);
        if (match[2] !== '') end = Math.min(end, Number(match[2]));
      }
      if (start > end || start >= size) {
        await handle.close();
        sendError(response, 416, 'bad_range', `The range ${range} is outside the file (${size} bytes).`, { 'Content-Range': `bytes */${size}` });
        return;
      }
      status = 206;
    }
    response.writeHead(status, {
      ...COMMON_HEADERS,
      'Content-Type': contentTypeOf(path),
      'Content-Length': size === 0 ? 0 : end - start + 1,
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'private, no-cache',
      'Last-Modified': file.modified.toUTCString(),
      ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
      ...headers,
    });
    if (request.method === 'HEAD' || size === 0) {
      await handle.close();
      response.end();
      return;
    }
    const stream = handle.createReadStream({ start, end, autoClose: true });
    await new Promise<void>((done) => {
      stream.on('error', () => {
        response.destroy();
        done();
      });
      response.on('close', () => {
        stream.destroy();
        done();
      });
      stream.pipe(response);
    });
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}
