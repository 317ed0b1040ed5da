/** Turns `--model` (a folder or a Hub repo id) into a local folder, with a download bar. */
import { resolveModelSource } from '../model/hub.ts';
import type { Reporter } from './progress.ts';

/**
 * The model used when `--model` is not given: SDXL Turbo, whose Hub repo holds an fp32 Optimum
 * ONNX export at its root. Only the ONNX pipeline files are downloaded (about 14 GB, once).
 */
export const DEFAULT_MODEL = 'stabilityai/sdxl-turbo';

const MB = 1024 * 1024;

/** Resolves `spec` to a local model folder, drawing a download bar (in MB) when files are fetched. */
export async function resolveModelForCli(spec: string, reporter: Reporter, signal?: AbortSignal): Promise<string> {
  let started = false;
  const resolved = await resolveModelSource(spec, {
    ...(signal !== undefined ? { signal } : {}),
    onProgress: (progress) => {
      if (!started) {
        started = true;
        reporter.info(`downloading ${spec} (${(progress.totalBytes / MB).toFixed(0)} MB) into the Hugging Face cache; an interrupted download resumes`);
        reporter.startBar('downloading', Math.max(1, Math.round(progress.totalBytes / MB)), { countSteps: false });
      }
      reporter.updateBar(Math.round(progress.bytesDone / MB), undefined, progress.file);
    },
  });
  if (started) reporter.stopBar();
  return resolved.dir;
}
