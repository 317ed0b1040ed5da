/**
 * The Node platform: onnxruntime-node and model files on disk. Front ends in Node (CLI, studio
 * server, workers) pass {@link nodePlatform} to the engine.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { LatentBlendError } from '../errors.ts';
import { DEVICES, checkDeviceName, type Device, type FeedTensor, type OnnxRuntime, type SessionCreateOptions } from '../runtime/onnx.ts';
import { sessionOptionsFor } from '../runtime/session-options.ts';
import { WorkerSession, type SessionLike } from './worker-session.ts';
import { createThroughCache } from './optimized-cache.ts';
import { loadPicture } from '../io/picture.ts';
import { explainWebGpuFailure } from './webgpu.ts';
import type { FileAccess, Platform } from '../runtime/platform.ts';

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

/** The devices this onnxruntime-node installation can run on, in the order we recommend them. */
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
  checkDeviceName(device);
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

/** onnxruntime-node as an {@link OnnxRuntime}; sessions open model files by path. */
export const nodeRuntime: OnnxRuntime = {
  name: 'onnxruntime-node',
  availableDevices,
  checkDevice,
  // The tuned options of the role (session-options.ts) unless replaced; on the main thread or in
  // a worker thread of its own.
  createSession: async (path: string, role: string, device: Device, options: SessionCreateOptions = {}) => {
    const sessionOptions = options.sessionOptions ?? sessionOptionsFor(role, device);
    const create = (file: string, fileOptions: ort.InferenceSession.SessionOptions): Promise<SessionLike> =>
      options.thread === 'worker' ? WorkerSession.create(file, fileOptions) : ort.InferenceSession.create(file, fileOptions);
    try {
      return options.optimizedCache === undefined
        ? await create(path, sessionOptions)
        : (await createThroughCache(create, options.optimizedCache, path, sessionOptions, ort.env.versions.common ?? '')).session;
    } catch (error) {
      const explained = device === 'webgpu' ? explainWebGpuFailure(String((error as Error)?.message ?? error), `the ${role} (${path})`) : undefined;
      throw explained ?? error;
    }
  },
  tensor: (feed: FeedTensor) => new ort.Tensor(feed.type, feed.data as Float32Array, feed.dims),
};

/** Model files on the local disk. */
export const nodeFiles: FileAccess = {
  join: (...parts) => join(...parts),
  resolve: (path) => resolve(path),
  isFolder: (path) => existsSync(path) && statSync(path).isDirectory(),
  isFile: (path) => existsSync(path) && statSync(path).isFile(),
  readText: (path) => readFileSync(path, 'utf8'),
  readHead(path, length) {
    const head = Buffer.alloc(length);
    const fd = openSync(path, 'r');
    try {
      const read = readSync(fd, head, 0, length, 0);
      return new Uint8Array(head.buffer, head.byteOffset, read);
    } finally {
      closeSync(fd);
    }
  },
};

/** The Node platform: onnxruntime-node, the local disk, pictures read with sharp. */
export const nodePlatform: Platform = { runtime: nodeRuntime, files: nodeFiles, pictures: (path, options) => loadPicture(path, options) };
