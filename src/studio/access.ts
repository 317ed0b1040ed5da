/**
 * Who may talk to the studio: the Host rule (against DNS rebinding), the Origin rule (against
 * cross-site requests) and the access token (for binds that others can reach).
 *
 * - Bound to a loopback address, a request must name a loopback host (`127.0.0.1`, `localhost`,
 *   `[::1]`) on any port, so an SSH tunnel or an editor's port forward (`localhost:9000`) works,
 *   or one of the `allowedHosts` (a reverse proxy's public name). Bound to any other address,
 *   every Host is accepted: the token protects it.
 * - With a token (required for non-loopback binds, optional otherwise), every request needs it:
 *   `Authorization: Bearer <token>`, or the HttpOnly cookie `lb_access` that a first visit of
 *   `/?token=<token>` sets (the page is then redirected to the same URL without the token, as
 *   Jupyter does), or `?token=` on the request itself. The cookie holds an HMAC of the token,
 *   never the token, so a new token (a restart without `--token`) invalidates old cookies.
 *
 * Pure request checks with no I/O: the server calls `check` first on every request.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LatentBlendError } from '../errors.ts';
import { HttpError } from './http.ts';
import { parseCookies } from './sessions.ts';

export const ACCESS_COOKIE = 'lb_access';
/** Hostnames that are this machine (as the Host header writes them). */
export const LOOPBACK_HOSTNAMES: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Bind addresses that only this machine can reach. */
const LOOPBACK_BINDS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
/** Tokens given with --token: URL-safe characters, long enough not to be guessed. */
export const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/;
const COOKIE_MAX_AGE_SECONDS = 30 * 24 * 3600;

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackBind(host: string): boolean {
  return LOOPBACK_BINDS.has(host.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(host);
}

/** A new access token: 24 random bytes as 48 hex digits. */
export function newAccessToken(): string {
  return randomBytes(24).toString('hex');
}

/** Checks a token given by the user (`--token`); throws a one-line LatentBlendError when unusable. */
export function checkAccessToken(token: string): string {
  if (!TOKEN_PATTERN.test(token)) {
    throw new LatentBlendError(
      `Invalid --token: expected 16 to 256 characters from A-Z a-z 0-9 . _ ~ - (got ${token.length} characters${/[^A-Za-z0-9._~-]/.test(token) ? ' with others' : ''}); leave it out to have one generated.`,
      'invalid_input',
    );
  }
  return token;
}

/** Normalises an allowed host name: lower case, no scheme, no path; a port is kept when given. */
export function normaliseAllowedHost(name: string): string {
  const trimmed = name.trim().toLowerCase();
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.test(trimmed)) {
    throw new LatentBlendError(`Invalid --allowed-host ${JSON.stringify(name)}: expected a host name such as studio.example.com (optionally with :port), without scheme or path.`, 'invalid_input');
  }
  return trimmed;
}

/** Splits a Host header value into hostname (brackets kept for IPv6) and port ('' when none). */
export function splitHost(host: string): { hostname: string; port: string } {
  const value = host.trim().toLowerCase();
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(value);
  if (match === null) return { hostname: value, port: '' };
  return { hostname: match[1]!, port: match[2] ?? '' };
}

export interface AccessOptions {
  /** The address the server is bound to. */
  readonly bind: string;
  /** Extra Host names accepted (`--allowed-host`); a name without port matches any port. */
  readonly allowedHosts?: readonly string[];
  /** The access token; undefined: none needed (loopback binds only). */
  readonly token?: string;
  /** Key for the access cookie's HMAC (the studio's secret). */
  readonly secret: Buffer;
}

/** What the server does with a request once access is granted. */
export type AccessResult =
  /** Serve it. */
  | { readonly kind: 'ok' }
  /** A page visit with `?token=`: set the cookie and redirect to `location` (the URL without the token). */
  | { readonly kind: 'redirect'; readonly location: string; readonly setCookie: string };

export class AccessGuard {
  readonly loopback: boolean;
  private readonly allowed: readonly string[];
  private readonly cookieValue: Buffer | undefined;

  constructor(private readonly options: AccessOptions) {
    this.loopback = isLoopbackBind(options.bind);
    this.allowed = (options.allowedHosts ?? []).map(normaliseAllowedHost);
    if (options.token === undefined && !this.loopback) {
      throw new LatentBlendError(`Listening on ${options.bind} (not a loopback address) needs an access token.`, 'invalid_input');
    }
    this.cookieValue = options.token === undefined ? undefined : Buffer.from(createHmac('sha256', options.secret).update(`access\0${options.token}`).digest('base64url'));
  }

  /** Whether a token is needed. */
  get tokenRequired(): boolean {
    return this.options.token !== undefined;
  }

  /** Whether a Host header names this studio (see the module comment). */
  hostAllowed(host: string | undefined): boolean {
    if (host === undefined || host === '') return false;
    const { hostname, port } = splitHost(host);
    if (this.allowed.some((name) => name === hostname || name === `${hostname}:${port}`)) return true;
    if (!this.loopback) return true;
    return LOOPBACK_HOSTNAMES.has(hostname);
  }

  /**
   * Whether an Origin header (sent by browsers with state-changing requests) is this studio's
   * own page: its host is the request's Host (http or https, for a TLS proxy in front) or an
   * allowed host.
   */
  originAllowed(origin: string, host: string | undefined): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const originHost = url.host.toLowerCase();
    if (host !== undefined && originHost === host.trim().toLowerCase()) return true;
    const { hostname, port } = splitHost(originHost);
    return this.allowed.some((name) => name === hostname || name === `${hostname}:${port}`);
  }

  /**
   * Checks Host, token and Origin of a request, in that order. Throws HttpError 403 (bad_host,
   * bad_origin) or 401 (unauthorized); `isPage`: the request is for the front end (a visit with
   * `?token=` is then redirected without it).
   */
  check(request: IncomingMessage, query: URLSearchParams, isPage: boolean): AccessResult {
    const host = request.headers.host;
    if (!this.hostAllowed(host)) {
      throw new HttpError(
        403,
        'bad_host',
        this.loopback
          ? `This studio answers only requests addressed to a loopback name (127.0.0.1, localhost, [::1]); got Host ${JSON.stringify(host ?? '')}. Behind a reverse proxy, start it with --allowed-host <name>.`
          : `Host ${JSON.stringify(host ?? '')} is not allowed.`,
      );
    }
    let result: AccessResult = { kind: 'ok' };
    if (this.cookieValue !== undefined) {
      const fromQuery = query.get('token');
      if (this.bearerMatches(request.headers.authorization) || this.cookieMatches(request.headers.cookie)) {
        // granted
      } else if (fromQuery !== null && this.tokenMatches(fromQuery)) {
        if (isPage && (request.method === 'GET' || request.method === 'HEAD')) {
          const rest = new URLSearchParams(query);
          rest.delete('token');
          // One leading slash: '//host' or '/\\host' would send the browser to another site.
          const path = `/${(request.url ?? '/').split('?')[0]!.replace(/^[/\\]+/, '')}`;
          const search = rest.toString();
          result = { kind: 'redirect', location: `${path}${search === '' ? '' : `?${search}`}`, setCookie: this.setCookie(request) };
        }
      } else {
        throw new HttpError(
          401,
          'unauthorized',
          'This studio needs its access token: open the URL it printed at start (…/?token=…), or send "Authorization: Bearer <token>".',
          { 'WWW-Authenticate': 'Bearer realm="latentblend studio"' },
        );
      }
    }
    const method = request.method ?? 'GET';
    const origin = request.headers.origin;
    if (method !== 'GET' && method !== 'HEAD' && origin !== undefined && !this.originAllowed(origin, host)) {
      throw new HttpError(403, 'bad_origin', 'Requests from other sites are refused.');
    }
    return result;
  }

  /** The Set-Cookie value of the access cookie (Secure when a TLS proxy says the page is https). */
  private setCookie(request: IncomingMessage): string {
    const secure = String(request.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() === 'https' ? '; Secure' : '';
    return `${ACCESS_COOKIE}=${this.cookieValue!.toString()}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_MAX_AGE_SECONDS}${secure}`;
  }

  private tokenMatches(given: string): boolean {
    const expected = Buffer.from(this.options.token!);
    const actual = Buffer.from(given);
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  private bearerMatches(header: string | undefined): boolean {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match !== null && this.tokenMatches(match[1]!);
  }

  private cookieMatches(header: string | undefined): boolean {
    const value = parseCookies(header).get(ACCESS_COOKIE);
    if (value === undefined) return false;
    const given = Buffer.from(value);
    return given.length === this.cookieValue!.length && timingSafeEqual(given, this.cookieValue!);
  }
}

/** A small page for a visit without the token: a form that sends it as `?token=` (no script). */
export function tokenPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>latentblend studio: access token</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#111318;color:#e8e9ee;max-width:34rem;margin:10vh auto;padding:0 1rem}input,button{font:inherit;min-height:44px;padding:.4rem .7rem;border-radius:8px;border:1px solid #5b6070;background:#1b1e26;color:inherit}button{background:#7c5cf0;border-color:#7c5cf0;color:#fff}label{display:block;margin:.8rem 0 .3rem}</style></head>
<body><main><h1>latentblend studio</h1>
<p>This studio needs its access token. Open the URL it printed at start (it ends in <code>?token=…</code>), or paste the token here.</p>
<form method="get" action="/"><label for="token">Access token</label><input id="token" name="token" type="password" autocomplete="current-password" required> <button type="submit">Open the studio</button></form>
</main></body></html>
`;
}
