/** Turns `--model` (a folder or a Hub repo id) into a local folder, with download progress. */
import { resolveModelSource } from '../model/hub.ts';
import type { Reporter } from './progress.ts';

/**
 * The model used when `--model` is not given: an ONNX export (Optimum layout) of SDXL Turbo on
 * the Hugging Face Hub. Downloaded once into the Hugging Face cache (several GB).
 */
export const DEFAULT_MODEL = 'stabilityai/sdxl-turbo';

/** Resolves `spec` to a local model folder, drawing a download bar when files are fetched. */
export async function resolveModelForCli(spec: string, reporter: Reporter, signal?: AbortSignal): Promise<string> {
  let current = '';
  const resolved = await resolveModelSource(spec, {
    ...(signal !== undefined ? { signal } : {}),
    onProgress: (progress) => {
      if (progress.file !== current) {
        current = progress.file;
        reporter.info(`downloading ${spec}: ${progress.file}`);
      }
    },
  });
  return resolved.dir;
}
