/**
 * Where the worker pool's queue lives: a `redis://` (or `rediss://`, TLS) URL turned into the
 * connection options BullMQ hands to ioredis. Pure: nothing connects here.
 */
import { existsSync, realpathSync } from 'node:fs';
import { LatentBlendError } from '../errors.ts';

/** The BullMQ queue every latentblend command and worker uses on a Redis database. */
export const QUEUE_NAME = 'latentblend';

/** Connection options for BullMQ (ioredis). */
export interface QueueConnection {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls?: Record<string, never>;
  /** BullMQ's workers block on Redis: commands wait for a reconnect instead of failing. */
  readonly maxRetriesPerRequest: null;
  /** Reconnect forever, at most every 2 s (a restarted Redis is found again). */
  readonly retryStrategy: (times: number) => number;
}

/** What a `--queue` value names, for messages (no password). */
export function describeQueue(connection: QueueConnection): string {
  return `redis://${connection.host}:${connection.port}/${connection.db}`;
}

/**
 * Parses `redis://[user:password@]HOST[:PORT][/DB]` (PORT default 6379, DB default 0;
 * `rediss://` for TLS). Throws a LatentBlendError naming the bad value otherwise.
 */
export function parseQueueUrl(value: string): QueueConnection {
  const expected = 'expected redis://HOST:PORT (optionally redis://user:password@HOST:PORT/DB, or rediss:// for TLS)';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new LatentBlendError(`--queue: ${expected}, got ${JSON.stringify(value)}`);
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '' || url.search !== '' || url.hash !== '') {
    throw new LatentBlendError(`--queue: ${expected}, got ${JSON.stringify(value)}`);
  }
  const port = url.port === '' ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\d*$/.test(path)) {
    throw new LatentBlendError(`--queue: the database after the port must be an integer from 0 to 15, got ${JSON.stringify(path)} in ${JSON.stringify(value)}`);
  }
  // IPv6 literals come bracketed from URL; ioredis wants them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port,
    db,
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * times, 2000),
  };
}

/**
 * How a model is compared between a job and a worker: a folder that exists here by its real path
 * (the same on every machine when it lives on the shared file system), anything else (a Hub id)
 * as written.
 */
export function modelIdentity(model: string): string {
  return existsSync(model) ? realpathSync(model) : model;
}

