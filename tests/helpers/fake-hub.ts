/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, for tests with no real network. It serves
 * the revision API (`/api/models/{repo}/revision/{rev}`), `resolve/{rev}/{path}` for HEAD and GET
 * with the Hub's headers (X-Repo-Commit, ETag, and for LFS files a 302 to a separate "CDN"
 * server with X-Linked-Etag and X-Linked-Size), Range requests, and the Hub's error answers
 * (X-Error-Code RepoNotFound, RevisionNotFound, GatedRepo). It counts the body bytes it sends
 * and can cut a transfer after N bytes or corrupt a file, to test resuming and checksums.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  readonly commit: string;
  /** Branch and tag names; default `{ main: commit }`. */
  readonly refs?: Readonly<Record<string, string>>;
  readonly files: Readonly<Record<string, Uint8Array | string>>;
  /** Paths stored with Git LFS: served through the CDN redirect, listed with lfs.sha256. */
  readonly lfs?: readonly string[];
  /** When set, the repo is gated and only this bearer token gets in. */
  readonly gatedToken?: string;
}

export interface ServedRequest {
  readonly server: 'hub' | 'cdn';
  readonly method: string;
  readonly path: string;
  readonly range: string | undefined;
  readonly authorization: string | undefined;
  readonly status: number;
}

interface StoredFile {
  readonly repo: string;
  readonly path: string;
  readonly content: Buffer;
  readonly gitSha1: string;
  readonly sha256: string;
  readonly lfs: boolean;
}

function gitBlobSha1(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function listen(server: Server): Promise<string> {
  return new Promise((resolvePromise) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolvePromise(`http://127.0.0.1:${port}`);
    });
  });
}

/** A running fake Hub; `endpoint` goes into resolveModelSource's `endpoint` option. */
export class FakeHub {
  readonly requests: ServedRequest[] = [];
  private readonly files = new Map<string, StoredFile>();
  private readonly bySha = new Map<string, StoredFile>();
  private readonly served = new Map<string, number>();
  private readonly drops = new Map<string, { bytes: number; times: number }>();
  private readonly corrupted = new Set<string>();
  private hubServer: Server | undefined;
  private cdnServer: Server | undefined;
  endpoint = '';
  cdn = '';

  constructor(private readonly repos: Readonly<Record<string, FakeRepo>>) {
    for (const [repo, spec] of Object.entries(repos)) {
      for (const [path, data] of Object.entries(spec.files)) {
        const content = Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
        const stored: StoredFile = {
          repo,
          path,
          content,
          gitSha1: gitBlobSha1(content),
          sha256: createHash('sha256').update(content).digest('hex'),
          lfs: spec.lfs?.includes(path) ?? false,
        };
        this.files.set(`${repo}/${path}`, stored);
        if (stored.lfs) this.bySha.set(stored.sha256, stored);
      }
    }
  }

  /** Starts the Hub and the CDN on two ports of 127.0.0.1 (two origins, like the real ones). */
  static async start(repos: Readonly<Record<string, FakeRepo>>): Promise<FakeHub> {
    const hub = new FakeHub(repos);
    hub.hubServer = createServer((req, res) => hub.handleHub(req, res));
    hub.cdnServer = createServer((req, res) => hub.handleCdn(req, res));
    hub.endpoint = await listen(hub.hubServer);
    hub.cdn = await listen(hub.cdnServer);
    return hub;
  }

  /** Stops both servers, dropping kept-alive connections. */
  async stop(): Promise<void> {
    for (const server of [this.hubServer, this.cdnServer]) {
      if (server === undefined || !server.listening) continue;
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
    }
  }

  /** Body bytes sent so far for one file (`repo/path`), over every request. */
  bytesServed(repo: string, path: string): number {
    return this.served.get(`${repo}/${path}`) ?? 0;
  }

  /** The next `times` transfers of the file send `bytes` body bytes, then the socket is cut. */
  dropAfter(repo: string, path: string, bytes: number, times = 1): void {
    this.drops.set(`${repo}/${path}`, { bytes, times });
  }

  /** From now on the file is served with its first byte flipped (same size, wrong hash). */
  corrupt(repo: string, path: string): void {
    this.corrupted.add(`${repo}/${path}`);
  }

  /** The sha256 and git sha1 the Hub would report for a file. */
  hashes(repo: string, path: string): { sha256: string; gitSha1: string } {
    const file = this.files.get(`${repo}/${path}`);
    if (file === undefined) throw new Error(`no file ${repo}/${path}`);
    return { sha256: file.sha256, gitSha1: file.gitSha1 };
  }

  private record(server: 'hub' | 'cdn', req: IncomingMessage, status: number): void {
    this.requests.push({
      server,
      method: req.method ?? 'GET',
      path: decodeURIComponent((req.url ?? '').split('?')[0] ?? ''),
      range: req.headers.range,
      authorization: req.headers.authorization,
      status,
    });
  }

  private fail(server: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse, status: number, code?: string): void {
    this.record(server, req, status);
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (code !== undefined) {
      headers['X-Error-Code'] = code;
      headers['X-Error-Message'] = code === 'GatedRepo' ? 'Access to this model is restricted.' : code;
    }
    res.writeHead(status, headers);
    res.end(JSON.stringify({ error: code ?? `HTTP ${status}` }));
  }

  /** Checks repo, access and revision; answers the error itself and returns undefined on failure. */
  private access(req: IncomingMessage, res: ServerResponse, repo: string, rev: string): { spec: FakeRepo; commit: string } | undefined {
    const spec = this.repos[repo];
    if (spec === undefined) {
      this.fail('hub', req, res, 404, 'RepoNotFound');
      return undefined;
    }
    if (spec.gatedToken !== undefined) {
      const auth = req.headers.authorization;
      if (auth === undefined) {
        this.fail('hub', req, res, 401, 'GatedRepo');
        return undefined;
      }
      if (auth !== `Bearer ${spec.gatedToken}`) {
        this.fail('hub', req, res, 403, 'GatedRepo');
        return undefined;
      }
    }
    const refs = spec.refs ?? { main: spec.commit };
    const commit = rev === spec.commit ? rev : refs[rev];
    if (commit === undefined) {
      this.fail('hub', req, res, 404, 'RevisionNotFound');
      return undefined;
    }
    return { spec, commit };
  }

  private handleHub(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.endpoint);
    const path = decodeURIComponent(url.pathname);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (api !== null) {
      const [, repo = '', rev = ''] = api;
      const found = this.access(req, res, repo, rev);
      if (found === undefined) return;
      const withBlobs = url.searchParams.get('blobs') === 'true';
      const siblings = Object.keys(found.spec.files).map((name) => {
        const file = this.files.get(`${repo}/${name}`);
        if (file === undefined || !withBlobs) return { rfilename: name };
        return {
          rfilename: name,
          size: file.content.length,
          blobId: file.gitSha1,
          ...(file.lfs ? { lfs: { sha256: file.sha256, size: file.content.length, pointerSize: 134 } } : {}),
        };
      });
      this.record('hub', req, 200);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ id: repo, modelId: repo, sha: found.commit, siblings }));
      return;
    }
    const resolveMatch = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolveMatch !== null) {
      const [, repo = '', rev = '', filePath = ''] = resolveMatch;
      const found = this.access(req, res, repo, rev);
      if (found === undefined) return;
      const file = this.files.get(`${repo}/${filePath}`);
      if (file === undefined) {
        this.fail('hub', req, res, 404, 'EntryNotFound');
        return;
      }
      if (file.lfs) {
        this.record('hub', req, 302);
        res.writeHead(302, {
          Location: `${this.cdn}/blobs/${file.sha256}`,
          'X-Repo-Commit': found.commit,
          'X-Linked-Etag': `"${file.sha256}"`,
          'X-Linked-Size': String(file.content.length),
          ETag: `"${gitBlobSha1(Buffer.from(`pointer ${file.sha256}`))}"`,
          'Content-Length': '0',
        });
        res.end();
        return;
      }
      this.sendFile('hub', req, res, file, { 'X-Repo-Commit': found.commit, ETag: `"${file.gitSha1}"` });
      return;
    }
    this.fail('hub', req, res, 404);
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/blobs\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', this.cdn).pathname);
    const file = match === null ? undefined : this.bySha.get(match[1] ?? '');
    if (file === undefined) {
      this.fail('cdn', req, res, 404);
      return;
    }
    this.sendFile('cdn', req, res, file, { ETag: `"${file.sha256}"` });
  }

  /** Sends a file's bytes with Range support, applying any planned drop or corruption. */
  private sendFile(
    server: 'hub' | 'cdn',
    req: IncomingMessage,
    res: ServerResponse,
    file: StoredFile,
    headers: Record<string, string>,
  ): void {
    const key = `${file.repo}/${file.path}`;
    let content = file.content;
    if (this.corrupted.has(key) && content.length > 0) {
      content = Buffer.from(content);
      content[0] = (content[0] ?? 0) ^ 0xff;
    }
    const total = content.length;
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range !== null) {
      start = Number(range[1]);
      if (start >= total) {
        this.record(server, req, 416);
        res.writeHead(416, { 'Content-Range': `bytes */${total}` });
        res.end();
        return;
      }
      status = 206;
    }
    const end = range !== null && range[2] !== '' ? Math.min(Number(range[2]), total - 1) : total - 1;
    const body = content.subarray(start, end + 1);
    const out: Record<string, string> = { ...headers, 'Content-Length': String(body.length), 'Accept-Ranges': 'bytes' };
    if (status === 206) out['Content-Range'] = `bytes ${start}-${end}/${total}`;
    this.record(server, req, status);
    res.writeHead(status, out);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = this.drops.get(key);
    if (drop !== undefined && drop.times > 0 && drop.bytes < body.length) {
      drop.times--;
      const part = body.subarray(0, drop.bytes);
      this.served.set(key, (this.served.get(key) ?? 0) + part.length);
      // Let the bytes reach the socket, then cut it as a failing network would.
      res.write(part, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    this.served.set(key, (this.served.get(key) ?? 0) + body.length);
    res.end(body);
  }
}
