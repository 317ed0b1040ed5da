/**
 * onnxruntime's optimised model kept on disk (opt-in): the first session of a model saves the
 * graph as ONNX Runtime optimised it (`optimizedModelFilePath`), later sessions load that file
 * with graph optimisation `disabled`. On the full-size SD-Turbo UNet (2-core CPU) this took the
 * creation from 3.7–6.2 s to 2.7–3.1 s, but the first start pays about 95 s to write the 3.4 GB
 * copy, hence opt-in.
 *
 * The key covers what makes a saved graph valid: the model file (path, size, modification time),
 * the execution provider, the optimisation level, the onnxruntime version and the processor (level
 * `all` writes layouts for this CPU).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import type { SessionLike } from './worker-session.ts';

/** The folder in `cacheDir` for this model and these options (pure apart from reading the file's size and time). */
export function optimizedCacheEntry(cacheDir: string, modelPath: string, options: InferenceSession.SessionOptions, ortVersion: string): string {
  const stat = statSync(modelPath);
  const key = JSON.stringify({
    model: resolve(modelPath),
    size: stat.size,
    mtime: stat.mtimeMs,
    providers: options.executionProviders,
    level: options.graphOptimizationLevel,
    ort: ortVersion,
    cpu: `${os.arch()} ${os.cpus()[0]?.model ?? ''}`,
  });
  return join(cacheDir, createHash('sha256').update(key).digest('hex').slice(0, 32));
}

/**
 * Creates a session through the cache: from the saved optimised graph when there is one, else
 * from `modelPath` while saving the optimised graph (into a temporary folder renamed into place,
 * so a crash never leaves a half-written entry).
 */
export async function createThroughCache(
  create: (path: string, options: InferenceSession.SessionOptions) => Promise<SessionLike>,
  cacheDir: string,
  modelPath: string,
  options: InferenceSession.SessionOptions,
  ortVersion: string,
): Promise<{ session: SessionLike; cached: boolean }> {
  const entry = optimizedCacheEntry(cacheDir, modelPath, options, ortVersion);
  const saved = join(entry, 'model.onnx');
  if (existsSync(saved)) {
    return { session: await create(saved, { ...options, graphOptimizationLevel: 'disabled' }), cached: true };
  }
  const partial = `${entry}.partial-${process.pid}-${Date.now()}`;
  mkdirSync(partial, { recursive: true });
  try {
    const session = await create(modelPath, {
      ...options,
      optimizedModelFilePath: join(partial, 'model.onnx'),
      // Large models must keep their weights outside the 2 GB protobuf.
      extra: {
        ...options.extra,
        session: {
          ...((options.extra?.session as Record<string, unknown> | undefined) ?? {}),
          optimized_model_external_initializers_file_name: 'model.onnx_data',
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    });
    if (existsSync(join(partial, 'model.onnx')) && !existsSync(entry)) renameSync(partial, entry);
    return { session, cached: false };
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
}
