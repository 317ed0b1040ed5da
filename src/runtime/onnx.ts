/**
 * ONNX Runtime at the edge: execution provider choice, session creation, and tensors in the
 * element type each model input declares (float32 or float16 weights, int32 or int64 ids…).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Float16Array } from '@petamoriken/float16';
import { LatentBlendError } from '../errors.ts';
import { sessionOptionsFor } from './session-options.ts';
import { WorkerSession, type SessionLike } from './worker-session.ts';
import { createThroughCache } from './optimized-cache.ts';

/** Execution providers a user can ask for with `device`. */
export const DEVICES = ['cpu', 'cuda', 'tensorrt', 'coreml', 'dml', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

/** Where onnxruntime-node keeps its native libraries on this platform. */
function nativeLibraryDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const entry = require.resolve('onnxruntime-node');
    const dir = join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The devices this installation can run on, in the order we recommend them. */
export function availableDevices(): Device[] {
  const listed = ort.listSupportedBackends();
  const libraries = nativeLibraryDir();
  const files = libraries === undefined ? [] : readdirSync(libraries);
  const result: Device[] = [];
  for (const device of DEVICES) {
    const backend = listed.find((entry) => entry.name === device);
    if (backend === undefined) continue;
    // CUDA and TensorRT providers are separate libraries that onnxruntime-node's optional
    // install step downloads; listed-but-not-bundled means "possible if installed".
    if (!backend.bundled && !files.some((file) => file.includes(`providers_${device}`))) continue;
    result.push(device);
  }
  return result;
}

/** Checks that `device` can be used here; otherwise a clear error naming what is available. */
export function checkDevice(device: string): Device {
  if (!(DEVICES as readonly string[]).includes(device)) {
    throw new LatentBlendError(`device: got ${JSON.stringify(device)}, expected one of ${DEVICES.join(', ')}.`);
  }
  const available = availableDevices();
  if (!available.includes(device as Device)) {
    const hint =
      device === 'cuda' || device === 'tensorrt'
        ? ` Fetch onnxruntime-node's GPU binaries once (needs network): ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`
        : '';
    throw new LatentBlendError(
      `device: ${device} is not available in this onnxruntime-node installation on ${process.platform}/${process.arch}; available: ${available.join(', ')}.${hint}`,
      'unavailable',
    );
  }
  return device as Device;
}

/**
 * Where a model's session is created and run: 'main' (onnxruntime-node on the calling thread,
 * which blocks it for the whole creation or call) or 'worker' (a worker thread per session; the
 * calling thread stays free and independent sessions run concurrently).
 */
export const INFERENCE_THREADS = ['main', 'worker'] as const;
export type InferenceThread = (typeof INFERENCE_THREADS)[number];

/** One loaded ONNX model with the input/output facts we need. */
export interface OnnxModel {
  readonly path: string;
  readonly role: string;
  /** The session: onnxruntime-node's own (main thread) or a WorkerSession (its own thread). */
  readonly session: SessionLike;
  /** Element type of each tensor input, by name ('float32', 'float16', 'int64', …). */
  readonly inputTypes: ReadonlyMap<string, ort.Tensor.Type>;
  /** Declared rank of each tensor input, by name (0 for a scalar). */
  readonly inputRanks: ReadonlyMap<string, number>;
  readonly outputNames: readonly string[];
  /** Calls and seconds spent inside ONNX Runtime for this model (for summaries and benchmarks). */
  readonly stats: { calls: number; seconds: number };
}

/**
 * Creates a session for `path` on `device` with the options chosen for its role
 * (see session-options.ts) unless `options.sessionOptions` replaces them (benchmarks); on the
 * main thread or in a worker thread (`options.thread`); through the optimised-model cache folder
 * `options.optimizedCache` if given (optimized-cache.ts). Failures name the file and the device.
 */
export async function loadOnnxModel(
  path: string,
  role: string,
  device: Device,
  options: { thread?: InferenceThread; sessionOptions?: ort.InferenceSession.SessionOptions; optimizedCache?: string } = {},
): Promise<OnnxModel> {
  let session: SessionLike;
  try {
    const sessionOptions = options.sessionOptions ?? sessionOptionsFor(role, device);
    const create = (file: string, fileOptions: ort.InferenceSession.SessionOptions): Promise<SessionLike> =>
      options.thread === 'worker' ? WorkerSession.create(file, fileOptions) : ort.InferenceSession.create(file, fileOptions);
    session =
      options.optimizedCache === undefined
        ? await create(path, sessionOptions)
        : (await createThroughCache(create, options.optimizedCache, path, sessionOptions, ort.env.versions.common ?? '')).session;
  } catch (error) {
    throw new LatentBlendError(
      `Could not load the ${role} ${path} on ${device}: ${(error as Error).message.split('\n')[0]}`,
      'model_folder',
    );
  }
  const inputTypes = new Map<string, ort.Tensor.Type>();
  const inputRanks = new Map<string, number>();
  for (const meta of session.inputMetadata) {
    if (meta.isTensor) {
      inputTypes.set(meta.name, meta.type);
      inputRanks.set(meta.name, meta.shape.length);
    }
  }
  return { path, role, session, inputTypes, inputRanks, outputNames: session.outputNames, stats: { calls: 0, seconds: 0 } };
}

/** Requires that `model` has an input `name`; the error names the file and what it has. */
export function requireInput(model: OnnxModel, name: string): ort.Tensor.Type {
  const type = model.inputTypes.get(name);
  if (type === undefined) {
    throw new LatentBlendError(
      `${model.path}: the ${model.role} has no input "${name}" (it has ${[...model.inputTypes.keys()].join(', ')}); expected an Optimum ONNX export.`,
      'model_folder',
    );
  }
  return type;
}

/** Requires that `model` has an output `name`. */
export function requireOutput(model: OnnxModel, name: string): void {
  if (!model.outputNames.includes(name)) {
    throw new LatentBlendError(
      `${model.path}: the ${model.role} has no output "${name}" (it has ${model.outputNames.join(', ')}); expected an Optimum ONNX export.`,
      'model_folder',
    );
  }
}

/** A float tensor for an input declared as float32 or float16 (converted here). */
export function floatTensor(type: ort.Tensor.Type, data: Float32Array, dims: readonly number[]): ort.Tensor {
  if (type === 'float32') return new ort.Tensor('float32', data, dims);
  if (type === 'float16') {
    const half = new Float16Array(data);
    return new ort.Tensor('float16', new Uint16Array(half.buffer, half.byteOffset, half.length), dims);
  }
  if (type === 'float64') return new ort.Tensor('float64', Float64Array.from(data), dims);
  throw new LatentBlendError(`Unsupported float input type ${type}.`, 'model_folder');
}

/** An integer tensor for an input declared as int32 or int64 (ids, timesteps). */
export function intTensor(type: ort.Tensor.Type, data: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(data, (value) => BigInt(Math.round(value)))), dims);
  if (type === 'int32') return new ort.Tensor('int32', Int32Array.from(data), dims);
  // Some exports declare ids or timesteps as float.
  return floatTensor(type, Float32Array.from(data), dims);
}

/** Reads any float output as float32 (copying when the model computes in float16). */
export function toFloat32(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const raw = tensor.data as Uint16Array;
    return Float32Array.from(new Float16Array(raw.buffer, raw.byteOffset, raw.length));
  }
  if (tensor.type === 'float64') return Float32Array.from(tensor.data as Float64Array);
  throw new LatentBlendError(`Expected a float output, got ${tensor.type}.`, 'model_folder');
}

/** A failed session run as an error: running out of memory is the user's to fix (a smaller size or batch), not a bug. */
function runFailure(model: OnnxModel, error: unknown): Error {
  const message = (error as Error)?.message ?? String(error);
  if (/bad_alloc|Failed to allocate|out of memory|OOM|allocation failed|cudaMalloc|Insufficient memory/i.test(message)) {
    return new LatentBlendError(
      `Not enough memory to run the ${model.role} (${model.path}): ${message.split('\n')[0]!.slice(0, 300)}. Use a smaller width and height, a smaller batch size, or a device with more memory.`,
      'out_of_memory',
    );
  }
  return new Error(`${model.role} (${model.path}) failed: ${message}`);
}

/**
 * Runs a session and returns its outputs; native errors are re-thrown with the model's role.
 * With `signal`, an abort rejects at once with its reason (a session in a worker thread finishes
 * the call there and its result is dropped; on the main thread the call cannot be interrupted).
 */
export async function runModel(model: OnnxModel, feeds: Record<string, ort.Tensor>, signal?: AbortSignal): Promise<Record<string, ort.Tensor>> {
  const started = performance.now();
  let onAbort: (() => void) | undefined;
  try {
    signal?.throwIfAborted();
    const running = model.session.run(feeds).catch((error: unknown) => {
      throw runFailure(model, error);
    });
    if (signal === undefined) return await running;
    running.catch(() => undefined); // an error after the abort won is not unhandled
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return await Promise.race([running, aborted]);
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    model.stats.calls += 1;
    model.stats.seconds += (performance.now() - started) / 1000;
  }
}
