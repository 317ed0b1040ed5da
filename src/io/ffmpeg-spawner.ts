/**
 * A small helper process that starts the ffmpeg encoders for us.
 *
 * Why: starting a child process copies the parent's page tables, so a Node process that holds
 * gigabytes of model weights pays about 0.3 s per spawn (a small process: a few ms), and the
 * event loop stands still meanwhile. A render spawns its encoder after the models are loaded.
 * `FfmpegSpawner.start()`, called while the process is still small, starts a tiny Node process
 * (this module's HELPER_SOURCE, run with `node -e`: no TypeScript loader, nothing of the library
 * loaded, about 45 MB resident); later encoders are spawned by it, cheaply, whatever our size is then.
 *
 * The frames do not pass through the helper: it starts ffmpeg with its stdin on a new socket
 * pair, hands the writing end to us over the IPC channel (SCM_RIGHTS, Node's handle passing) and
 * closes its own copy, so we write into ffmpeg's stdin directly, as with our own child (the same
 * kind of socket, the same back-pressure; when ffmpeg quits early a write fails with EPIPE, or
 * ECONNRESET, as the handed-over socket is also read). It reports
 * ffmpeg's exit status and the tail of its stderr over the channel, and kills it when asked.
 *
 * Lifetime: the helper kills its ffmpeg children and exits when the IPC channel closes, which
 * the kernel does when our process ends in any way (also SIGKILL); it ignores Ctrl-C's SIGINT
 * (we decide when ffmpeg stops). If the helper dies, our side kills what it had started.
 *
 * When the helper is not usable (Windows, where starting a process copies no page tables; the
 * helper could not start; it died; a spawn through it
 * failed; no file descriptor left to receive the pipe), `spawn` answers undefined and the caller
 * spawns ffmpeg itself, so every error reads as before.
 *
 * Nothing happens at import time; each spawner is an object owned by whoever started it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/**
 * The helper's program (CommonJS, run with `node -e`). Kept as text so that it runs the same
 * from the TypeScript sources (tests, tsx) and from the built package, with no file to locate.
 */
const HELPER_SOURCE = String.raw`'use strict';
const { spawn } = require('node:child_process');
process.title = 'latentblend-ffmpeg-spawner';
const TAIL = 32768;
const children = new Map();
function killAll() {
  for (const child of children.values()) {
    try { child.kill('SIGKILL'); } catch (error) { /* already gone */ }
  }
}
function send(message, handle) {
  if (!process.connected) return;
  process.send(message, handle, undefined, (error) => {
    if (error && message.type === 'spawned') {
      const child = children.get(message.id);
      if (child) child.kill('SIGKILL');
    }
  });
}
function start(request) {
  let child;
  try {
    child = spawn(request.file, request.args, { stdio: ['pipe', 'ignore', 'pipe'], env: request.env, cwd: request.cwd, windowsHide: true });
  } catch (error) {
    send({ type: 'failed', id: request.id, message: String(error && error.message) });
    return;
  }
  if (child.pid === undefined) {
    child.once('error', (error) => send({ type: 'failed', id: request.id, message: String(error && error.message) }));
    return;
  }
  children.set(request.id, child);
  let tail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text) => {
    tail += text;
    if (tail.length > 2 * TAIL) tail = tail.slice(-TAIL);
  });
  child.stdin.on('error', () => {});
  child.on('error', () => {});
  child.once('close', (code, signal) => {
    children.delete(request.id);
    send({ type: 'exit', id: request.id, code, signal, stderr: tail.slice(-TAIL) });
  });
  send({ type: 'spawned', id: request.id, pid: child.pid }, child.stdin);
}
process.on('message', (message) => {
  if (message === null || typeof message !== 'object') return;
  if (message.type === 'spawn') start(message);
  else if (message.type === 'kill') {
    const child = children.get(message.id);
    if (child) child.kill('SIGKILL');
  }
});
process.on('disconnect', () => { killAll(); process.exit(0); });
process.on('SIGINT', () => {});
process.on('SIGTERM', () => { killAll(); process.exit(0); });
process.on('SIGHUP', () => { killAll(); process.exit(0); });
`;

/**
 * How long a spawn request may go unanswered (ms) before the helper counts as broken. A healthy
 * helper answers within milliseconds; this only guards against one that hangs.
 */
const REPLY_TIMEOUT_MS = 10_000;

/** How an ffmpeg started by the helper ended. */
export interface RemoteFfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last (up to 32 KiB of) text ffmpeg wrote to stderr. */
  stderr: string;
  /** Set when the helper died first: ffmpeg was killed and how it ended is unknown. */
  lost?: true;
}

/** An ffmpeg process started by the helper; we hold the writing end of its stdin. */
export interface RemoteFfmpeg {
  readonly pid: number;
  /** ffmpeg's stdin (a socket, as a spawned child's stdin is). */
  readonly stdin: Socket;
  /** Resolves once ffmpeg ended (never rejects). */
  readonly exited: Promise<RemoteFfmpegExit>;
  /** Kills ffmpeg (SIGKILL) if it still runs. */
  kill(): void;
}

type HelperMessage =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; stderr: string };

function isHelperMessage(value: unknown): value is HelperMessage {
  if (value === null || typeof value !== 'object') return false;
  const { type, id } = value as { type?: unknown; id?: unknown };
  return (type === 'spawned' || type === 'failed' || type === 'exit') && typeof id === 'number';
}

interface Live {
  pid: number;
  stdin: Socket;
  running: boolean;
  resolveExit: (exit: RemoteFfmpegExit) => void;
  /** Settles when ffmpeg's end is known (reported by the helper, or given up on). */
  exited: Promise<RemoteFfmpegExit>;
}

/** How long close() waits for running encoders to report their end after being killed. */
const CLOSE_WAIT_MS = 2000;

/**
 * Starts ffmpeg encoders from a small helper process (see the module comment). Create it with
 * `FfmpegSpawner.start()` before loading models, pass it to `encodeVideo` (option `spawner`),
 * and `close()` it when done; a spawner that was never closed does not keep the process alive.
 */
export class FfmpegSpawner {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: RemoteFfmpeg | undefined) => void; timer: NodeJS.Timeout }>();
  private readonly live = new Map<number, Live>();
  private usable: boolean;
  private readonly gone: Promise<void>;

  private constructor(private readonly helper: ChildProcess | undefined) {
    this.usable = helper !== undefined;
    if (helper === undefined) {
      this.gone = Promise.resolve();
      return;
    }
    this.gone = new Promise((resolve) => {
      helper.once('exit', () => resolve());
      helper.once('error', () => resolve());
    });
    helper.on('message', (message: unknown, handle: unknown) => this.receive(message, handle));
    helper.once('disconnect', () => this.broken());
    helper.once('exit', () => this.broken());
    // Spawn failures arrive here (e.g. no process slots left); the spawner then stays unusable.
    helper.on('error', () => this.broken());
    // Neither the helper nor its channel keeps the process alive unless a request is under way.
    helper.unref();
    helper.channel?.unref();
  }

  /**
   * Starts the helper process and returns at once (it boots in 0.05-0.2 s; requests made
   * meanwhile wait in the channel). Call it while the process is small, e.g. before loading
   * models. On Windows, or when the helper cannot be started, the spawner is inert: `spawn`
   * answers undefined and callers spawn ffmpeg themselves. Never throws.
   */
  static start(): FfmpegSpawner {
    if (process.platform === 'win32') return new FfmpegSpawner(undefined);
    try {
      const env = { ...process.env };
      // Our own loader flags (e.g. --import tsx) are not for the helper.
      delete env.NODE_OPTIONS;
      const helper = spawn(process.execPath, ['-e', HELPER_SOURCE], {
        stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
        env,
        windowsHide: true,
      });
      return new FfmpegSpawner(helper);
    } catch {
      // E.g. EMFILE or EAGAIN: encoders are then spawned directly.
      return new FfmpegSpawner(undefined);
    }
  }

  /** Whether requests go to the helper (false once it is closed or died, and on Windows). */
  get available(): boolean {
    return this.usable;
  }

  /** The helper's process id (undefined when there is none). */
  get helperPid(): number | undefined {
    return this.helper?.pid;
  }

  /**
   * Asks the helper to start `file` with `args` (stdin: a pipe we get, stdout: ignored, stderr:
   * kept by the helper), in our current working folder and environment. Resolves undefined when
   * the helper is not usable or the start failed there; the caller then spawns ffmpeg itself
   * (which reports a missing or broken executable in the usual words). Never rejects.
   */
  spawn(file: string, args: readonly string[]): Promise<RemoteFfmpeg | undefined> {
    const helper = this.helper;
    if (!this.usable || helper === undefined || !helper.connected) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // A helper that does not answer gets no new requests (this one falls back to a direct
        // spawn); encoders it already runs go on, and a late start is killed on arrival (receive).
        this.usable = false;
        this.answer(id, undefined);
      }, REPLY_TIMEOUT_MS);
      this.pending.set(id, { resolve, timer });
      this.busy();
      try {
        helper.send({ type: 'spawn', id, file, args: [...args], env: process.env, cwd: process.cwd() }, (error: Error | null) => {
          if (error !== null) this.answer(id, undefined);
        });
      } catch {
        this.answer(id, undefined);
      }
    });
  }

  /**
   * Kills every ffmpeg started through the helper that still runs, ends the helper and waits
   * until it has exited. Further `spawn` calls answer undefined. Safe to call twice.
   */
  async close(): Promise<void> {
    const helper = this.helper;
    if (helper === undefined) return;
    this.usable = false;
    if (helper.connected) {
      const running = [...this.live.entries()].filter(([, live]) => live.running);
      for (const [id] of running) this.sendKill(id);
      // Their ends come back over the channel before it closes: no kill by pid (which another
      // process may hold by then) and no "lost" report for an encoder that was simply stopped.
      if (running.length > 0) {
        helper.ref();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(running.map(([, live]) => live.exited)),
          new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
        ]);
        clearTimeout(timer);
      }
      if (helper.connected) helper.disconnect();
    } else if (helper.exitCode === null && helper.signalCode === null) {
      // Its channel is gone but it still runs (it should have exited): end it.
      helper.kill('SIGKILL');
    }
    this.broken();
    // Waiting for the helper's exit must keep the process alive until then.
    helper.ref();
    await this.gone;
    helper.unref();
  }

  private answer(id: number, value: RemoteFfmpeg | undefined): void {
    const request = this.pending.get(id);
    if (request === undefined) return;
    this.pending.delete(id);
    clearTimeout(request.timer);
    request.resolve(value);
    this.idle();
  }

  private receive(message: unknown, handle: unknown): void {
    if (!isHelperMessage(message)) return;
    const { id } = message;
    if (message.type === 'failed') {
      this.answer(id, undefined);
      return;
    }
    if (message.type === 'exit') {
      const live = this.live.get(id);
      if (live === undefined) return;
      this.live.delete(id);
      live.running = false;
      // As with our own child's stdin: gone with the process (it would otherwise stay open when
      // ffmpeg failed before we ended our input).
      live.stdin.destroy();
      live.resolveExit({ code: message.code, signal: message.signal, stderr: typeof message.stderr === 'string' ? message.stderr : '' });
      this.idle();
      return;
    }
    // 'spawned': ffmpeg runs; `handle` is its stdin (absent when we had no descriptor left for it).
    const stdin = handle as Socket | undefined;
    if (!this.pending.has(id) || stdin === undefined || typeof stdin.write !== 'function') {
      this.sendKill(id);
      stdin?.destroy?.();
      this.answer(id, undefined);
      return;
    }
    // The socket can also be read; ffmpeg closing its end must not end our writing side (a
    // write then fails with EPIPE, as it does on our own child's stdin).
    stdin.allowHalfOpen = true;
    let resolveExit!: (exit: RemoteFfmpegExit) => void;
    const exited = new Promise<RemoteFfmpegExit>((resolve) => (resolveExit = resolve));
    const live: Live = { pid: message.pid, stdin, running: true, resolveExit, exited };
    this.live.set(id, live);
    this.busy();
    this.answer(id, {
      pid: message.pid,
      stdin,
      exited,
      kill: () => {
        if (live.running) this.sendKill(id);
      },
    });
  }

  private sendKill(id: number): void {
    const helper = this.helper;
    if (helper === undefined || !helper.connected) return;
    try {
      helper.send({ type: 'kill', id }, (error: Error | null) => {
        if (error !== null) this.killLost(id);
      });
    } catch {
      this.killLost(id);
    }
  }

  /** ffmpeg of `id` cannot be reached through the helper: kill it by its pid. */
  private killLost(id: number): void {
    const live = this.live.get(id);
    if (live === undefined || !live.running) return;
    this.live.delete(id);
    live.running = false;
    try {
      process.kill(live.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    live.stdin.destroy();
    live.resolveExit({ code: null, signal: null, stderr: '', lost: true });
    this.idle();
  }

  /** The helper is closed or died: pending requests fall back, running encoders are killed. */
  private broken(): void {
    this.usable = false;
    for (const id of [...this.pending.keys()]) this.answer(id, undefined);
    for (const id of [...this.live.keys()]) this.killLost(id);
  }

  /** While a request or an encoder is under way, the channel keeps the process alive. */
  private busy(): void {
    if (this.pending.size + this.live.size >= 1) this.helper?.channel?.ref();
  }

  private idle(): void {
    if (this.pending.size + this.live.size === 0) this.helper?.channel?.unref();
  }
}
