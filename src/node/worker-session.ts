/**
 * An ONNX Runtime session that lives in its own worker thread.
 *
 * onnxruntime-node 1.30 creates sessions and runs them synchronously on the JavaScript thread
 * that calls it (its promises only defer the call with setImmediate), so a 0.7 s UNet call or a
 * 2 s session creation blocks everything else: studio requests, progress output, an abort. A
 * WorkerSession moves both into a worker thread: the main thread only copies the inputs over
 * (the outputs are transferred back), stays responsive, and two sessions (SDXL's text encoders)
 * really run at the same time.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { WireTensor, WorkerReply, WorkerRequest } from './worker-protocol.ts';

/** What the pipeline needs of a session; onnxruntime-node's InferenceSession has it too. */
export interface SessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

/**
 * Starts the worker on its entry file beside this module: onnx-worker.js when built. When run
 * from source (.ts, e.g. tests under tsx), the worker's types are stripped with esbuild and it
 * runs from a data: URL (Node 20 does not pass tsx's loader on to worker threads, and registering
 * it in each worker costs about a second).
 */
function startWorker(): Worker {
  if (extname(fileURLToPath(import.meta.url)) !== '.ts') return new Worker(new URL('./onnx-worker.js', import.meta.url));
  sourceWorkerUrl ??= strippedWorkerUrl();
  return new Worker(sourceWorkerUrl);
}

/** Made once per process: esbuild's synchronous transform runs its binary in a child process. */
let sourceWorkerUrl: URL | undefined;

function strippedWorkerUrl(): URL {
  const require = createRequire(import.meta.url);
  const { transformSync } = require('esbuild') as typeof import('esbuild');
  const source = readFileSync(new URL('./onnx-worker.ts', import.meta.url), 'utf8');
  const ortUrl = JSON.stringify(pathToFileURL(require.resolve('onnxruntime-node')).href);
  const code = transformSync(source, { loader: 'ts', format: 'esm' }).code.replace(/from\s*["']onnxruntime-node["']/, `from ${ortUrl}`);
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

type Pending = { resolve: (reply: WorkerReply & { ok: true }) => void; reject: (error: Error) => void };

export class WorkerSession implements SessionLike {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited: Error | undefined;
  inputNames: readonly string[] = [];
  outputNames: readonly string[] = [];
  inputMetadata: readonly ort.InferenceSession.ValueMetadata[] = [];
  outputMetadata: readonly ort.InferenceSession.ValueMetadata[] = [];

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => {
      const waiting = this.pending.get(reply.id);
      if (waiting === undefined) return;
      this.pending.delete(reply.id);
      // An idle worker does not keep the process alive (a caller that never releases still exits).
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) waiting.resolve(reply);
      else waiting.reject(new Error(reply.message));
    });
    const fail = (error: Error): void => {
      this.exited = error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the ONNX Runtime worker thread exited (code ${code})`)));
  }

  /** Starts a worker thread and creates the session for `path` there with `options`. */
  static async create(path: string, options: ort.InferenceSession.SessionOptions): Promise<WorkerSession> {
    const session = new WorkerSession(startWorker());
    try {
      const reply = await session.request({ id: 0, op: 'create', path, options });
      if ('inputNames' in reply) {
        session.inputNames = reply.inputNames;
        session.outputNames = reply.outputNames;
        session.inputMetadata = reply.inputMetadata;
        session.outputMetadata = reply.outputMetadata;
      }
    } catch (error) {
      await session.worker.terminate();
      throw error;
    }
    return session;
  }

  private request(message: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerReply & { ok: true }> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Runs the session on the worker; inputs are copied (the caller keeps them), outputs transferred. */
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const wires: Record<string, WireTensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      wires[name] = { type: tensor.type, data: tensor.data as WireTensor['data'], dims: [...tensor.dims] };
    }
    const reply = await this.request({ id: 0, op: 'run', feeds: wires });
    const outputs: Record<string, ort.Tensor> = {};
    if ('outputs' in reply) {
      for (const [name, wire] of Object.entries(reply.outputs)) {
        outputs[name] = new ort.Tensor(wire.type as 'float32', wire.data as Float32Array, wire.dims);
      }
    }
    return outputs;
  }

  /** Frees the session and ends the worker thread. */
  async release(): Promise<void> {
    if (this.exited === undefined) {
      await this.request({ id: 0, op: 'release' }).catch(() => undefined);
      await this.worker.terminate();
    }
  }
}
