/** A small HTTP client for the studio API with its own cookie jar (tests only). */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: any;
}

export class StudioClient {
  private readonly cookies = new Map<string, string>();

  constructor(public base: URL) {}

  /** Sets a cookie by hand (e.g. the session of a browser). */
  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  get cookie(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  /** Sends `json` (as application/json) or a raw `body`; the path is sent exactly as written. */
  request(method: string, path: string, options: { body?: string | Buffer; json?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
    const body = options.json !== undefined ? JSON.stringify(options.json) : options.body;
    const headers: Record<string, string> = {
      ...(options.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
      ...(this.cookies.size > 0 ? { cookie: this.cookie } : {}),
      ...options.headers,
    };
    return new Promise((done, fail) => {
      // A new connection per request (no kept-alive socket closed by the server as it is reused).
      const req = httpRequest({ host: this.base.hostname, port: this.base.port, method, path, headers, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          for (const line of response.headers['set-cookie'] ?? []) {
            const [pair] = line.split(';');
            const at = pair!.indexOf('=');
            this.cookies.set(pair!.slice(0, at), pair!.slice(at + 1));
          }
          const buffer = Buffer.concat(chunks);
          const text = buffer.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          done({ status: response.statusCode ?? 0, headers: response.headers, body: buffer, text, json });
        });
        response.on('error', fail);
      });
      req.on('error', fail);
      req.end(body);
    });
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
    return this.request('GET', path, { headers });
  }

  post(path: string, json: unknown = {}): Promise<Reply> {
    return this.request('POST', path, { json });
  }

  /** POST /api/pictures: uploads a PNG file's bytes with this client's session (via fetch, as a page does). */
  async uploadPng(bytes: Buffer): Promise<{ status: number; json: any }> {
    const response = await fetch(new URL('/api/pictures', this.base), { method: 'POST', headers: { 'content-type': 'image/png', cookie: this.cookie }, body: new Uint8Array(bytes) });
    return { status: response.status, json: await response.json() };
  }

  /**
   * Follows a job's event stream until `stop` says so for an event (or the stream ends);
   * returns the events seen. The connection is then closed.
   */
  async watch(jobId: string, stop: (event: string, data: any) => boolean, timeoutMs = 60_000): Promise<{ event: string; data: any }[]> {
    return (await this.readEvents(jobId, timeoutMs, stop)).events;
  }

  /** Reads a job's event stream to its end: the reply's status and [{ event, data }]. */
  events(jobId: string, timeoutMs = 30_000): Promise<{ status: number; events: { event: string; data: any }[] }> {
    return this.readEvents(jobId, timeoutMs);
  }

  private readEvents(jobId: string, timeoutMs: number, stop?: (event: string, data: any) => boolean): Promise<{ status: number; events: { event: string; data: any }[] }> {
    return new Promise((done, fail) => {
      const events: { event: string; data: any }[] = [];
      let status = 0;
      const headers = this.cookies.size > 0 ? { cookie: this.cookie } : {};
      const req = httpRequest({ host: this.base.hostname, port: this.base.port, method: 'GET', path: `/api/jobs/${jobId}/events`, headers }, (response) => {
        status = response.statusCode ?? 0;
        let buffer = '';
        const timer = setTimeout(() => {
          req.destroy();
          fail(new Error(`event stream of ${jobId}: ${stop !== undefined ? 'no stop event' : 'no end'} in ${timeoutMs} ms; got ${events.map((entry) => entry.event).join(', ')}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          req.destroy();
          done({ status, events });
        };
        response.on('data', (chunk: Buffer) => {
          buffer += chunk.toString('utf8');
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const entry = parseEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (entry === undefined) continue;
            events.push(entry);
            if (stop?.(entry.event, entry.data) === true) return finish();
          }
        });
        response.on('end', finish);
        response.on('error', finish);
      });
      req.on('error', (error) => (events.length > 0 ? done({ status, events }) : fail(error)));
      req.end();
    });
  }

  /** Polls a job until it ends. */
  async waitFor(jobId: string, timeoutMs = 60_000): Promise<any> {
    const started = Date.now();
    for (;;) {
      const job = (await this.get(`/api/jobs/${jobId}`)).json;
      if (job?.state === 'done' || job?.state === 'failed' || job?.state === 'cancelled') return job;
      if (Date.now() - started > timeoutMs) throw new Error(`job ${jobId} still ${job?.state} after ${timeoutMs} ms`);
      await new Promise((wait) => setTimeout(wait, 25));
    }
  }
}

/** One server-sent event block (`event:` and `data:` lines) as { event, data }; undefined when either is missing. */
function parseEvent(block: string): { event: string; data: any } | undefined {
  const event = /^event: (.*)$/m.exec(block)?.[1];
  const data = /^data: (.*)$/m.exec(block)?.[1];
  return event === undefined || data === undefined ? undefined : { event, data: JSON.parse(data) };
}
