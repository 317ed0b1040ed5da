/// <reference lib="dom" />
/**
 * The browser platform: onnxruntime-web (WebGPU first, WebAssembly as the fallback) over model
 * files fetched from a web server or the Hugging Face Hub.
 */
import type { Platform } from '../runtime/platform.ts';
import type { Device } from '../runtime/onnx.ts';
import { RemoteFileStore, type RemoteFileStoreOptions } from './model-store.ts';
import { probeWebGpu, webRuntime } from './runtime.ts';
import { browserPictures } from './pictures.ts';

/** A browser platform and what was found: the file store (add model folders to it) and devices. */
export interface BrowserPlatform extends Platform {
  readonly files: RemoteFileStore;
  /** Devices in the order we recommend them: 'webgpu' when there is an adapter, then 'cpu' (WebAssembly). */
  readonly devices: readonly Device[];
}

/** Options of {@link createBrowserPlatform}. */
export interface BrowserPlatformOptions extends RemoteFileStoreOptions {
  /** URL prefix (ending in '/') of onnxruntime-web's .wasm/.mjs files; default: beside the bundle. */
  readonly wasmPaths?: string;
  /** Skip the WebGPU probe and use WebAssembly only. */
  readonly noWebGpu?: boolean;
  /** ONNX Runtime graph optimisation level (default 'all'). */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** WebAssembly threads (see {@link webRuntime}). */
  readonly numThreads?: number;
}

/** Probes WebGPU and returns the platform to pass to DiffusionPipeline.load and loadLpipsMetric. */
export async function createBrowserPlatform(options: BrowserPlatformOptions = {}): Promise<BrowserPlatform> {
  const files = new RemoteFileStore(options);
  const webgpu = options.noWebGpu === true ? false : await probeWebGpu();
  const runtime = webRuntime({ load: files.loadModel, webgpu, ...(options.wasmPaths !== undefined ? { wasmPaths: options.wasmPaths } : {}),
    ...(options.graphOptimizationLevel !== undefined ? { graphOptimizationLevel: options.graphOptimizationLevel } : {}),
    ...(options.numThreads !== undefined ? { numThreads: options.numThreads } : {}),
  });
  return { runtime, files, devices: runtime.availableDevices(), pictures: browserPictures() };
}

/**
 * Human name of a device as the page shows it: "WebGPU" or "WebAssembly (CPU)".
 */
export function deviceLabel(device: Device): string {
  return device === 'webgpu' ? 'WebGPU' : device === 'cpu' ? 'WebAssembly (CPU)' : device;
}
