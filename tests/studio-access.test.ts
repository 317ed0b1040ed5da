/**
 * Who may use the studio (src/studio/access.ts): the Host rule on loopback binds (tunnels on any
 * port, --allowed-host for a reverse proxy), the Origin rule, and the access token on a
 * non-loopback bind (cookie after a first visit, Bearer, 401 on every request and event stream
 * without it). Unit tests of the guard, then two real servers on the tiny SD-Turbo fixture.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessGuard, checkAccessToken, isLoopbackBind, newAccessToken, normaliseAllowedHost, splitHost } from '../src/studio/access.ts';
import { startStudio, type Studio } from '../src/studio/server.ts';
import { HttpError } from '../src/studio/http.ts';
import { modelDir } from './helpers/golden.ts';
import { runCliProcess } from './helpers/cli.ts';
import { spawnStudio } from './helpers/studio-process.ts';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
}

/** One request to 127.0.0.1:port with exactly these headers (Host included when given). */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((done, fail) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { ...headers, ...(text !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } : {}) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const replyText = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(replyText);
          } catch {
            json = undefined;
          }
          done({ status: response.statusCode ?? 0, headers: response.headers, text: replyText, json });
        });
      },
    );
    req.on('error', fail);
    req.end(text);
  });
}

/** Reads an event stream to its end; returns the status and the event names. */
function events(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; names: string[] }> {
  return new Promise((done, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'GET', path, headers }, (response: IncomingMessage) => {
      let buffer = '';
      const timer = setTimeout(() => {
        req.destroy();
        fail(new Error('the event stream did not end'));
      }, 30_000);
      response.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
      });
      response.on('end', () => {
        clearTimeout(timer);
        done({ status: response.statusCode ?? 0, names: [...buffer.matchAll(/^event: (.*)$/gm)].map((match) => match[1]!) });
      });
    });
    req.on('error', fail);
    req.end();
  });
}

function fakeRequest(headers: Record<string, string>, method = 'GET', url = '/'): IncomingMessage {
  return { headers, method, url } as unknown as IncomingMessage;
}

const secret = Buffer.alloc(32, 7);

describe('access rules (no server)', () => {
  test('loopback binds: loopback names on any port, allowed hosts, nothing else', () => {
    const guard = new AccessGuard({ bind: '127.0.0.1', allowedHosts: ['Studio.Example.com', 'proxy.lan:8443'], secret });
    for (const host of ['127.0.0.1:7860', 'localhost:9000', 'LOCALHOST', '[::1]:9', 'studio.example.com', 'studio.example.com:443', 'proxy.lan:8443']) {
      assert.equal(guard.hostAllowed(host), true, host);
    }
    for (const host of ['evil.example', 'evil.example:7860', '127.0.0.1.evil.example', 'localhost.evil.example:80', 'proxy.lan:80', '10.0.0.5:7860', '', undefined]) {
      assert.equal(guard.hostAllowed(host), false, String(host));
    }
    assert.equal(guard.tokenRequired, false);
    assert.deepEqual(guard.check(fakeRequest({ host: 'localhost:9000' }), new URLSearchParams(), false), { kind: 'ok' });
    assert.throws(() => guard.check(fakeRequest({ host: 'evil.example:7860' }), new URLSearchParams(), false), (error: unknown) => error instanceof HttpError && error.status === 403);
  });

  test('origins: the page itself (http or https behind a proxy) and allowed hosts only', () => {
    const guard = new AccessGuard({ bind: '127.0.0.1', allowedHosts: ['studio.example.com'], secret });
    assert.equal(guard.originAllowed('http://localhost:9000', 'localhost:9000'), true);
    assert.equal(guard.originAllowed('https://studio.example.com', '127.0.0.1:7860'), true);
    assert.equal(guard.originAllowed('http://evil.example', 'localhost:9000'), false);
    assert.equal(guard.originAllowed('http://localhost:9001', 'localhost:9000'), false);
    assert.equal(guard.originAllowed('null', 'localhost:9000'), false);
    assert.throws(
      () => guard.check(fakeRequest({ host: 'localhost:9000', origin: 'http://evil.example' }, 'POST'), new URLSearchParams(), false),
      (error: unknown) => error instanceof HttpError && error.code === 'bad_origin',
    );
  });

  test('non-loopback binds need a token; any Host is accepted there', () => {
    assert.throws(() => new AccessGuard({ bind: '0.0.0.0', secret }), /needs an access token/);
    const token = newAccessToken();
    assert.match(token, /^[0-9a-f]{48}$/);
    assert.notEqual(newAccessToken(), token);
    const guard = new AccessGuard({ bind: '0.0.0.0', token, secret });
    assert.equal(guard.hostAllowed('gpu-box.lan:7860'), true);
    const unauthorised = (headers: Record<string, string>, query = '') => {
      try {
        guard.check(fakeRequest({ host: 'gpu-box.lan:7860', ...headers }), new URLSearchParams(query), false);
        return false;
      } catch (error) {
        return error instanceof HttpError && error.status === 401 && error.headers['WWW-Authenticate'] !== undefined;
      }
    };
    assert.equal(unauthorised({}), true);
    assert.equal(unauthorised({ authorization: `Bearer ${token}x` }), true);
    assert.equal(unauthorised({ authorization: `Basic ${token}` }), true);
    assert.equal(unauthorised({ cookie: `lb_access=${token}` }), true, 'the cookie is not the token itself');
    assert.equal(unauthorised({ authorization: `Bearer ${token}` }), false);
    assert.equal(unauthorised({}, `token=${token}`), false);
    // A page visit with the token: redirected without it, the cookie set.
    const visit = guard.check(fakeRequest({ host: 'gpu-box.lan:7860' }, 'GET', `/?a=1&token=${token}`), new URLSearchParams(`a=1&token=${token}`), true);
    assert.equal(visit.kind, 'redirect');
    if (visit.kind !== 'redirect') return;
    assert.equal(visit.location, '/?a=1');
    // Never a redirect to another site ('//evil.example' is protocol-relative).
    for (const url of [`//evil.example/?token=${token}`, `/\\evil.example/?token=${token}`]) {
      const away = guard.check(fakeRequest({ host: 'gpu-box.lan:7860' }, 'GET', url), new URLSearchParams(`token=${token}`), true);
      assert.equal(away.kind === 'redirect' ? away.location : '', '/evil.example/');
    }
    assert.match(visit.setCookie, /^lb_access=[\w-]+; Path=\/; HttpOnly; SameSite=Strict/);
    assert.ok(!visit.setCookie.includes(token), 'the cookie does not carry the token');
    const cookie = visit.setCookie.split(';')[0]!;
    assert.equal(unauthorised({ cookie }), false);
    // Another token (a restart without --token) does not accept the old cookie.
    const next = new AccessGuard({ bind: '0.0.0.0', token: newAccessToken(), secret });
    assert.throws(() => next.check(fakeRequest({ host: 'x', cookie }), new URLSearchParams(), false), (error: unknown) => error instanceof HttpError && error.status === 401);
  });

  test('inputs: tokens, allowed host names, loopback binds', () => {
    assert.throws(() => checkAccessToken('short'), /16 to 256 characters/);
    assert.throws(() => checkAccessToken('a'.repeat(20) + ' space'), /with others/);
    assert.equal(checkAccessToken('my-Long_token.1234~'), 'my-Long_token.1234~');
    assert.equal(normaliseAllowedHost(' Studio.Example.COM '), 'studio.example.com');
    assert.equal(normaliseAllowedHost('proxy:8443'), 'proxy:8443');
    for (const bad of ['https://studio.example.com', 'studio.example.com/path', 'a b', '']) assert.throws(() => normaliseAllowedHost(bad), /--allowed-host/);
    assert.deepEqual(splitHost('[::1]:9000'), { hostname: '[::1]', port: '9000' });
    assert.deepEqual(splitHost('Example.com'), { hostname: 'example.com', port: '' });
    for (const bind of ['127.0.0.1', '127.3.4.5', 'localhost', '::1']) assert.equal(isLoopbackBind(bind), true, bind);
    for (const bind of ['0.0.0.0', '::', '192.168.1.2', '10.0.0.1']) assert.equal(isLoopbackBind(bind), false, bind);
  });
});

describe('access on real servers', () => {
  const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-access-'));
  let local: Studio;
  let open: Studio;
  let localPort: number;
  let openPort: number;

  before(async () => {
    local = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(work, 'local'), port: 0, allowedHosts: ['studio.example.com'] });
    open = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(work, 'open'), host: '0.0.0.0', port: 0 });
    localPort = Number(new URL(local.url).port);
    openPort = Number(new URL(open.url).port);
  });

  after(async () => {
    await local?.close();
    await open?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('a loopback studio answers through a tunnel on another port and through its reverse proxy name', async () => {
    assert.equal(local.token, undefined);
    assert.match(local.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal((await send(localPort, 'GET', '/api/health', { host: 'localhost:9000' })).status, 200);
    assert.equal((await send(localPort, 'GET', '/api/health', { host: '[::1]:1' })).status, 200);
    assert.equal((await send(localPort, 'GET', '/api/health', { host: 'studio.example.com' })).status, 200);
    const refused = await send(localPort, 'GET', '/api/health', { host: 'evil.example:9000' });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.code, 'bad_host');
    assert.match(refused.json.error.message, /--allowed-host/);
    // The page behind a TLS proxy posts with an https Origin.
    const spec = await send(localPort, 'POST', '/api/spec/yaml', { host: 'studio.example.com', origin: 'https://studio.example.com' }, { spec: { keyframes: [{ prompt: 'a', seed: 1 }, { prompt: 'b', seed: 2 }] } });
    assert.equal(spec.status, 200, spec.text);
    assert.equal((await send(localPort, 'POST', '/api/spec/yaml', { host: 'localhost:9000', origin: 'http://evil.example' }, { spec: {} })).status, 403);
  });

  test('a non-loopback studio needs its token on every request; a first visit trades it for a cookie', async () => {
    const token = open.token!;
    assert.match(token, /^[0-9a-f]{48}$/);
    assert.equal(open.url, `http://0.0.0.0:${openPort}/?token=${token}`);
    const host = { host: `gpu-box.lan:${openPort}` };
    // Without the token: 401 everywhere (JSON for the API, a page asking for it for a browser).
    for (const path of ['/api/health', '/api/model', '/api/films', '/app.js', '/', '/api/jobs/0123/events']) {
      const reply = await send(openPort, 'GET', path, host);
      assert.equal(reply.status, 401, path);
      assert.equal(reply.json?.error?.code, 'unauthorized', path);
      assert.equal(reply.headers['set-cookie'], undefined, `${path}: no session without the token`);
    }
    const page = await send(openPort, 'GET', '/', { ...host, accept: 'text/html' });
    assert.equal(page.status, 401);
    assert.match(page.text, /<form method="get" action="\/">/);
    assert.equal((await send(openPort, 'GET', '/api/health', { ...host, authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    // The printed URL: redirected to the page without the token, with the access cookie.
    const visit = await send(openPort, 'GET', `/?token=${token}`, { ...host, accept: 'text/html' });
    assert.equal(visit.status, 303);
    assert.equal(visit.headers.location, '/');
    const accessCookie = visit.headers['set-cookie']![0]!.split(';')[0]!;
    assert.match(accessCookie, /^lb_access=/);
    const home = await send(openPort, 'GET', '/', { ...host, cookie: accessCookie });
    assert.equal(home.status, 200);
    const sessionCookie = home.headers['set-cookie']![0]!.split(';')[0]!;
    const cookie = `${accessCookie}; ${sessionCookie}`;
    // Bearer works for scripts; the cookie for the page and its event streams.
    assert.equal((await send(openPort, 'GET', '/api/health', { ...host, authorization: `Bearer ${token}` })).status, 200);
    const job = await send(openPort, 'POST', '/api/previews', { ...host, cookie, origin: `http://gpu-box.lan:${openPort}` }, { prompt: 'a red cube', seeds: [1], steps: 1 });
    assert.equal(job.status, 202, job.text);
    const denied = await events(openPort, `/api/jobs/${job.json.id}/events`, { ...host, cookie: sessionCookie });
    assert.equal(denied.status, 401, 'the event stream needs the token too');
    const stream = await events(openPort, `/api/jobs/${job.json.id}/events`, { ...host, cookie });
    assert.equal(stream.status, 200);
    assert.equal(stream.names.at(-1), 'job');
    const done = await send(openPort, 'GET', `/api/jobs/${job.json.id}`, { ...host, cookie });
    assert.equal(done.json.state, 'done');
    const image = await send(openPort, 'GET', done.json.result.images[0].url, { ...host, cookie: sessionCookie });
    assert.equal(image.status, 401, 'files need the token too');
  });
});

describe('access flags of `latentblend studio`', () => {
  test('--host 0.0.0.0 prints the token URL (LATENTBLEND_STUDIO_TOKEN), also for this machine; bad flags are one line', async () => {
    const work = mkdtempSync(join(tmpdir(), 'latentblend-studio-cli-'));
    const token = 'my-fixed-token-0123456789';
    const studio = await spawnStudio(['--model', modelDir('tiny-sd-turbo'), '--work-dir', work, '--host', '0.0.0.0', '--port', '0'], 60_000, { LATENTBLEND_STUDIO_TOKEN: token });
    try {
      const port = new URL(studio.url).port;
      assert.equal(studio.url, `http://0.0.0.0:${port}/?token=${token}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.match(studio.stdout(), new RegExp(`or http://127\\.0\\.0\\.1:${port}/\\?token=${token}`));
      assert.equal((await send(Number(port), 'GET', '/api/health', { host: 'gpu-box', authorization: `Bearer ${token}` })).status, 200);
      assert.equal((await send(Number(port), 'GET', '/api/health', { host: 'gpu-box' })).status, 401);
    } finally {
      await studio.kill();
      rmSync(work, { recursive: true, force: true });
    }
    for (const [flag, value, message] of [
      ['--token', 'short', /--token.*16 to 256 characters/],
      ['--allowed-host', 'https://studio.example.com/', /--allowed-host.*without scheme or path/],
    ] as const) {
      const run = runCliProcess(['studio', flag, value, '--model', modelDir('tiny-sd-turbo')]);
      assert.equal(run.code, 2, run.stderr); // a usage error, as for every command
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });
});
