/// <reference lib="dom" />
/**
 * onnxruntime-web as the engine's {@link OnnxRuntime}: WebGPU when the browser has an adapter,
 * WebAssembly ('cpu') always. Sessions are created from bytes that a {@link ModelBytesLoader}
 * fetches (with progress and the browser's cache), external-data files included, since a page
 * cannot open files by path.
 */
import * as ort from 'onnxruntime-web';
import { LatentBlendError } from '../errors.ts';
import { checkDeviceName, type Device, type FeedTensor, type OnnxRuntime, type SessionCreateOptions } from '../runtime/onnx.ts';
import { optimizationLevel } from '../runtime/session-options.ts';

/** An ONNX model's bytes and its external-data files (the names the model refers to, and bytes). */
export interface ModelBytes {
  readonly model: Uint8Array;
  readonly externalData: readonly { readonly path: string; readonly data: Uint8Array }[];
}

/** Fetches the ONNX file at `url` (and its external data); `role` names it in progress events. */
export type ModelBytesLoader = (url: string, role: string) => Promise<ModelBytes>;

/** Options of {@link webRuntime}. */
export interface WebRuntimeOptions {
  /** Fetches model files (see src/browser/model-store.ts). */
  readonly load: ModelBytesLoader;
  /** Whether a WebGPU adapter was found ({@link probeWebGpu}); WebAssembly is always there. */
  readonly webgpu: boolean;
  /**
   * Where onnxruntime-web finds its .wasm files (a URL prefix ending in '/'); default: next to
   * the bundle.
   */
  readonly wasmPaths?: string;
  /** ONNX Runtime graph optimisation level (default 'all'). */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** WebAssembly threads (more than 1 only works in a cross-origin isolated page); default: onnxruntime-web's choice. */
  readonly numThreads?: number;
}

/**
 * True when this browser gives a WebGPU adapter (navigator.gpu exists only in secure contexts:
 * https or http://127.0.0.1 / localhost).
 */
export async function probeWebGpu(): Promise<boolean> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<unknown> } } | undefined)?.gpu;
  if (gpu === undefined) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

/**
 * onnxruntime-web with the given loader. Devices: 'webgpu' (when `webgpu`) and 'cpu' (run by the
 * WebAssembly backend). Set-up of onnxruntime-web's global `env` happens here, once per page.
 */
export function webRuntime(options: WebRuntimeOptions): OnnxRuntime {
  if (options.wasmPaths !== undefined) ort.env.wasm.wasmPaths = options.wasmPaths;
  if (options.numThreads !== undefined) ort.env.wasm.numThreads = options.numThreads;
  // ONNX Runtime's notices (e.g. shape ops kept on the CPU) would flood the page's console.
  ort.env.logLevel = 'error';
  const available: Device[] = options.webgpu ? ['webgpu', 'cpu'] : ['cpu'];
  return {
    name: 'onnxruntime-web',
    availableDevices: () => [...available],
    checkDevice(device: string): Device {
      checkDeviceName(device);
      if (!available.includes(device as Device)) {
        throw new LatentBlendError(
          `device: ${device} is not available in this browser; available: ${available.join(', ')}${options.webgpu ? '' : ' (no WebGPU adapter)'}.`,
          'unavailable',
        );
      }
      return device as Device;
    },
    async createSession(url: string, role: string, device: Device, create: SessionCreateOptions = {}) {
      const bytes = await options.load(url, role);
      return ort.InferenceSession.create(bytes.model, {
        executionProviders: [device === 'cpu' ? 'wasm' : device],
        graphOptimizationLevel: options.graphOptimizationLevel ?? create.sessionOptions?.graphOptimizationLevel ?? optimizationLevel(role, device),
        ...(bytes.externalData.length > 0 ? { externalData: bytes.externalData.map((file) => ({ path: file.path, data: file.data })) } : {}),
      });
    },
    tensor: (feed: FeedTensor) => new ort.Tensor(feed.type, feed.data as Float32Array, feed.dims),
  };
}
