/**
 * Studio sessions: a browser is told apart by the HttpOnly cookie `lb_session`, whose value is a
 * random 128-bit id and an HMAC of it under a secret kept in the work folder. The server keeps
 * no session table: a cookie is valid when its HMAC checks, so sessions survive a restart of the
 * studio (the secret is reused) and a client cannot pick someone else's id or invent one.
 * Each session owns the folder `<work>/sessions/<id>/`.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SESSION_COOKIE = 'lb_session';
/** Session ids: 32 lowercase hex digits. */
export const SESSION_ID_PATTERN = /^[0-9a-f]{32}$/;
const COOKIE_MAX_AGE_SECONDS = 30 * 24 * 3600;

/** Parses a Cookie header into name → value (first occurrence wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (header === undefined) return cookies;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index <= 0) continue;
    const name = part.slice(0, index).trim();
    const value = part.slice(index + 1).trim();
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

export class SessionStore {
  private readonly secret: Buffer;

  /**
   * `root` is the studio's work folder; the secret is read from `<root>/studio-secret` or
   * created there (mode 0600).
   */
  constructor(readonly root: string) {
    const secretPath = join(root, 'studio-secret');
    if (existsSync(secretPath)) {
      this.secret = Buffer.from(readFileSync(secretPath, 'utf8').trim(), 'hex');
    } else {
      this.secret = randomBytes(32);
      writeFileSync(secretPath, `${this.secret.toString('hex')}\n`, { mode: 0o600 });
    }
    if (this.secret.length < 16) {
      this.secret = randomBytes(32);
      writeFileSync(secretPath, `${this.secret.toString('hex')}\n`, { mode: 0o600 });
    }
  }

  private sign(id: string): string {
    return createHmac('sha256', this.secret).update(id).digest('base64url');
  }

  /** A key for another purpose (e.g. the access cookie), derived from the secret. */
  deriveKey(purpose: string): Buffer {
    return createHmac('sha256', this.secret).update(`key\0${purpose}`).digest();
  }

  /** The session id of a Cookie header, or undefined when it has none or a forged one. */
  sessionOf(cookieHeader: string | undefined): string | undefined {
    const value = parseCookies(cookieHeader).get(SESSION_COOKIE);
    if (value === undefined) return undefined;
    const [id, signature, ...rest] = value.split('.');
    if (id === undefined || signature === undefined || rest.length > 0 || !SESSION_ID_PATTERN.test(id)) return undefined;
    const expected = Buffer.from(this.sign(id));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given) ? id : undefined;
  }

  /** A new session: its id and the Set-Cookie header value that hands it to the browser. */
  create(): { id: string; setCookie: string } {
    const id = randomBytes(16).toString('hex');
    return {
      id,
      setCookie: `${SESSION_COOKIE}=${id}.${this.sign(id)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_MAX_AGE_SECONDS}`,
    };
  }

  /** The session's folder (not created). */
  dir(id: string): string {
    if (!SESSION_ID_PATTERN.test(id)) throw new Error(`not a session id: ${id}`);
    return join(this.root, 'sessions', id);
  }

  /** The session's folder, created when missing. */
  ensureDir(id: string): string {
    const dir = this.dir(id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
}
