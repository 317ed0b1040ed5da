/**
 * How many jobs the studio runs at once on a worker pool: as many as there are live workers on
 * the queue (BullMQ's getWorkers, from Redis' client list), read again every few seconds so that
 * workers joining or leaving change it; never fewer than one, so jobs still wait for a worker.
 */
import { Queue } from 'bullmq';
import { QUEUE_NAME, type QueueConnection } from '../queue/connection.ts';

export interface PoolWorkersWatch {
  /** Resolves after the first count was read (or failed). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export interface PoolWorkersOptions {
  /** Milliseconds between two reads (default 5000). */
  readonly intervalMs?: number;
  /** A read failed (Redis away): one line; the last count stays. */
  readonly onError?: (message: string) => void;
}

/**
 * Calls `onCount(n)` with the number of workers connected to the pool's queue (at least 1) now and
 * whenever it changes. Connection errors are retried by ioredis; they are reported once per outage.
 */
export function watchPoolWorkers(connection: QueueConnection, onCount: (workers: number) => void, options: PoolWorkersOptions = {}): PoolWorkersWatch {
  const queue = new Queue(QUEUE_NAME, { connection: { ...connection } });
  let failing = false;
  queue.on('error', (error: Error) => {
    if (!failing) options.onError?.(`worker pool: ${error.message}`);
    failing = true;
  });
  let last: number | undefined;
  let closed = false;
  const read = async () => {
    try {
      // Redis lists the clients of every database; pools on other databases are not ours.
      const workers = (await queue.getWorkers()).filter((client) => client.db === undefined || client.db === String(connection.db));
      const count = Math.max(1, workers.length);
      failing = false;
      if (!closed && count !== last) {
        last = count;
        onCount(count);
      }
    } catch (error) {
      if (!failing) options.onError?.(`worker pool: could not count the workers (${(error as Error).message})`);
      failing = true;
    }
  };
  const ready = read();
  let pending: Promise<void> = ready;
  let busy = true;
  void ready.finally(() => (busy = false));
  const timer = setInterval(() => {
    // While Redis is away a read waits for the reconnect; no second one piles up behind it.
    if (busy) return;
    busy = true;
    pending = read().finally(() => (busy = false));
  }, options.intervalMs ?? 5000);
  timer.unref();
  return {
    ready,
    async close() {
      closed = true;
      clearInterval(timer);
      // A read stuck on a lost connection does not hold the studio's shutdown.
      const settled = (promise: Promise<unknown>) =>
        Promise.race([promise.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1000).unref())]);
      await settled(pending);
      if (!(await settled(queue.close()))) void queue.disconnect().catch(() => {});
    },
  };
}
