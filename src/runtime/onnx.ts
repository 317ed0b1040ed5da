/**
 * ONNX Runtime behind a small interface, so that one engine runs on onnxruntime-node and on
 * onnxruntime-web: the runtime (chosen at the edge: src/node/platform.ts, src/browser/) creates
 * sessions; this file holds what both share — the model record, input checks, and tensors in the
 * element type each model input declares (float32 or float16 weights, int32 or int64 ids…).
 */
import type * as ort from 'onnxruntime-common';
import { Float16Array } from '@petamoriken/float16';
import { LatentBlendError } from '../errors.ts';

/** Execution providers a user can ask for with `device` ('cpu' is WebAssembly in a browser). */
export const DEVICES = ['cpu', 'cuda', 'tensorrt', 'coreml', 'dml', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

/** Element type of a tensor (ONNX Runtime's names: 'float32', 'float16', 'int64', …). */
export type TensorType = ort.Tensor.Type;

/** A tensor as plain data; the runtime turns it into its own tensor class when a model runs. */
export interface FeedTensor {
  readonly type: TensorType;
  readonly data: Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array;
  readonly dims: readonly number[];
}

/** What ONNX Runtime returns: type, data and dims (onnxruntime-node and -web tensors both fit). */
export interface OutputTensor {
  readonly type: TensorType;
  readonly data: unknown;
  readonly dims: readonly number[];
}

/**
 * One ONNX Runtime (onnxruntime-node, onnxruntime-web): sessions and tensors. `source` is what
 * the runtime opens: a file path in Node, a URL or a cache key in a browser.
 */
export interface OnnxRuntime {
  /** 'onnxruntime-node' or 'onnxruntime-web', for messages. */
  readonly name: string;
  /** The devices this installation can run on, in the order we recommend them. */
  availableDevices(): Device[];
  /** Checks that `device` can be used here; otherwise a LatentBlendError naming what is available. */
  checkDevice(device: string): Device;
  /**
   * Creates a session; may throw anything (loadOnnxModel words the error). `options`: the
   * thread (Node: 'worker' runs it in a worker thread) and session options replacing the tuned
   * ones of src/runtime/session-options.ts (benchmarks).
   */
  createSession(source: string, role: string, device: Device, options?: SessionCreateOptions): Promise<SessionLike>;
  /** The runtime's tensor for plain data. */
  tensor(feed: FeedTensor): ort.Tensor;
}

/** Throws the standard "not one of DEVICES" error unless `device` is a known device name. */
export function checkDeviceName(device: string): Device {
  if (!(DEVICES as readonly string[]).includes(device)) {
    throw new LatentBlendError(`device: got ${JSON.stringify(device)}, expected one of ${DEVICES.join(', ')}.`);
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

/** Options of a session's creation (see {@link OnnxRuntime.createSession}). */
export interface SessionCreateOptions {
  readonly thread?: InferenceThread;
  readonly sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Node: a folder where optimised models are kept between runs (src/node/optimized-cache.ts). */
  readonly optimizedCache?: string;
}

/** What the engine uses of a session: onnxruntime's own, or a stand-in running it elsewhere (a worker thread). */
export interface SessionLike {
  readonly inputMetadata: ort.InferenceSession['inputMetadata'];
  readonly outputMetadata: ort.InferenceSession['outputMetadata'];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

/** One loaded ONNX model with the input/output facts we need. */
export interface OnnxModel {
  readonly path: string;
  readonly role: string;
  readonly runtime: OnnxRuntime;
  /** The session: onnxruntime-node's own (main thread) or a WorkerSession (its own thread). */
  readonly session: SessionLike;
  /** Element type of each tensor input, by name ('float32', 'float16', 'int64', …). */
  readonly inputTypes: ReadonlyMap<string, TensorType>;
  /** Declared rank of each tensor input, by name (0 for a scalar). */
  readonly inputRanks: ReadonlyMap<string, number>;
  readonly outputNames: readonly string[];
  /** Calls and seconds spent inside ONNX Runtime for this model (for summaries and benchmarks). */
  readonly stats: { calls: number; seconds: number };
}

/**
 * Creates a session for `path` on `device` with `runtime` and the options chosen for its role
 * (see session-options.ts) unless `options.sessionOptions` replaces them (benchmarks); in Node
 * on the main thread or in a worker thread (`options.thread`), through the optimised-model cache
 * folder `options.optimizedCache` if given (src/node/optimized-cache.ts). Failures name the file
 * and the device.
 */
export async function loadOnnxModel(
  runtime: OnnxRuntime,
  path: string,
  role: string,
  device: Device,
  options: SessionCreateOptions = {},
): Promise<OnnxModel> {
  let session: SessionLike;
  try {
    session = await runtime.createSession(path, role, device, options);
  } catch (error) {
    if (error instanceof LatentBlendError) throw error;
    throw new LatentBlendError(
      `Could not load the ${role} ${path} on ${device}: ${String((error as Error)?.message ?? error).split('\n')[0]}`,
      'model_folder',
    );
  }
  const inputTypes = new Map<string, TensorType>();
  const inputRanks = new Map<string, number>();
  for (const meta of session.inputMetadata) {
    if (meta.isTensor) {
      inputTypes.set(meta.name, meta.type);
      inputRanks.set(meta.name, meta.shape.length);
    }
  }
  return { path, role, runtime, session, inputTypes, inputRanks, outputNames: session.outputNames, stats: { calls: 0, seconds: 0 } };
}

/** Requires that `model` has an input `name`; the error names the file and what it has. */
export function requireInput(model: OnnxModel, name: string): TensorType {
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
export function floatTensor(type: TensorType, data: Float32Array, dims: readonly number[]): FeedTensor {
  if (type === 'float32') return { type: 'float32', data, dims };
  if (type === 'float16') {
    const half = new Float16Array(data);
    return { type: 'float16', data: new Uint16Array(half.buffer, half.byteOffset, half.length), dims };
  }
  if (type === 'float64') return { type: 'float64', data: Float64Array.from(data), dims };
  throw new LatentBlendError(`Unsupported float input type ${type}.`, 'model_folder');
}

/** An integer tensor for an input declared as int32 or int64 (ids, timesteps). */
export function intTensor(type: TensorType, data: ArrayLike<number>, dims: readonly number[]): FeedTensor {
  if (type === 'int64') return { type: 'int64', data: BigInt64Array.from(Array.from(data, (value) => BigInt(Math.round(value)))), dims };
  if (type === 'int32') return { type: 'int32', data: Int32Array.from(data), dims };
  // Some exports declare ids or timesteps as float.
  return floatTensor(type, Float32Array.from(data), dims);
}

/** Reads any float output as float32 (copying when the model computes in float16). */
export function toFloat32(tensor: OutputTensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const raw = tensor.data as Uint16Array;
    return Float32Array.from(new Float16Array(raw.buffer, raw.byteOffset, raw.length));
  }
  if (tensor.type === 'float64') return Float32Array.from(tensor.data as Float64Array);
  throw new LatentBlendError(`Expected a float output, got ${tensor.type}.`, 'model_folder');
}

/** How ONNX Runtime's WebGPU provider says that the adapter lacks the shader-f16 feature. */
export const NO_FLOAT16_SHADERS = /requires f16 but the device does not support it/i;

/** The error for a float16 model (`what`, e.g. 'the UNet (path)') on a WebGPU adapter without float16 shaders. */
export function noFloat16Shaders(what: string): LatentBlendError {
  return new LatentBlendError(
    `device webgpu: ${what} computes in float16, but this GPU adapter has no float16 shaders (WebGPU feature shader-f16). Use a float32 export of the model on this adapter, or another device.`,
    'unavailable',
  );
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
  // WebGPU compiles some shaders on the first run: a float16 model on an adapter without float16
  // shaders may fail only there (src/node/webgpu.ts words the same failure at session creation).
  if (NO_FLOAT16_SHADERS.test(message)) return noFloat16Shaders(`the ${model.role} (${model.path})`);
  return new Error(`${model.role} (${model.path}) failed: ${message}`);
}

/**
 * Runs a session and returns its outputs; native errors are re-thrown with the model's role.
 * With `signal`, an abort rejects at once with its reason (a session in a worker thread finishes
 * the call there and its result is dropped; on the main thread the call cannot be interrupted).
 */
export async function runModel(model: OnnxModel, feeds: Record<string, FeedTensor>, signal?: AbortSignal): Promise<Record<string, ort.Tensor>> {
  const started = performance.now();
  let onAbort: (() => void) | undefined;
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, feed] of Object.entries(feeds)) tensors[name] = model.runtime.tensor(feed);
  try {
    signal?.throwIfAborted();
    const running = model.session.run(tensors).catch((error: unknown) => {
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
