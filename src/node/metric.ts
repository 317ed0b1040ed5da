/**
 * The Node front ends' choice of similarity metric: an LPIPS file given explicitly, named by an
 * environment variable, or in the user's cache folder; else the weight-free fallback.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LatentBlendError } from '../errors.ts';
import type { Device } from '../runtime/onnx.ts';
import { loadLpipsMetric, type LpipsOptions } from '../engine/lpips.ts';
import { PixelMetric } from '../engine/pixel-metric.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { nodePlatform } from './platform.ts';

/** Environment variable naming an LPIPS ONNX file to use when none is given explicitly. */
export const LPIPS_ENV_VAR = 'LATENTBLEND_LPIPS';

/** Where {@link chooseMetric} looks for an LPIPS model last: `<home>/.cache/latentblend/lpips-alex.onnx`. */
export function defaultLpipsPath(home: string = homedir()): string {
  return join(home, '.cache', 'latentblend', 'lpips-alex.onnx');
}

/** Options of {@link chooseMetric}. */
export interface ChooseMetricOptions {
  /** LPIPS ONNX file to use; an error when it is missing or not LPIPS-shaped. */
  readonly lpipsModel?: string;
  /** Where ONNX Runtime runs LPIPS. */
  readonly device: Device;
  /** Receives the one-line notice when the weight-free fallback metric is used. */
  readonly onWarning?: (message: string) => void;
  /** LPIPS options (longest compared side, batch size). */
  readonly lpips?: LpipsOptions;
  /** Environment to read LATENTBLEND_LPIPS from (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Home folder for the default model location (default: os.homedir()). */
  readonly home?: string;
}

/**
 * Picks the metric for step 4a of the algorithm (which neighbouring frames are furthest apart):
 * LPIPS from `lpipsModel` when given; else from the file named by LATENTBLEND_LPIPS when set;
 * else from ~/.cache/latentblend/lpips-alex.onnx when it exists. A model that is named but
 * missing or malformed is an error (LatentBlendError), not a silent fallback. With no model at
 * all, returns the weight-free "rms-pixel" {@link PixelMetric} and reports through `onWarning`
 * which metric is used and how to get LPIPS.
 */
export async function chooseMetric(options: ChooseMetricOptions): Promise<SimilarityMetric> {
  const env = options.env ?? process.env;
  if (options.lpipsModel !== undefined && options.lpipsModel !== '') {
    return loadLpipsMetric(nodePlatform, options.lpipsModel, options.device, options.lpips);
  }
  const fromEnv = env[LPIPS_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== '') {
    try {
      return await loadLpipsMetric(nodePlatform, fromEnv, options.device, options.lpips);
    } catch (error) {
      if (error instanceof LatentBlendError) throw new LatentBlendError(`${LPIPS_ENV_VAR}: ${error.message}`, error.code);
      throw error;
    }
  }
  const fallbackPath = defaultLpipsPath(options.home);
  if (existsSync(fallbackPath)) return loadLpipsMetric(nodePlatform, fallbackPath, options.device, options.lpips);
  options.onWarning?.(
    `No LPIPS model (none given, ${LPIPS_ENV_VAR} unset, ${fallbackPath} absent): using the "rms-pixel" metric ` +
      `(root-mean-square RGB difference, not perceptual) to choose where new branches go. For LPIPS, export it once ` +
      `with \`pip install lpips torch onnx && python tools/export_lpips.py ~/.cache/latentblend/lpips-alex.onnx\` ` +
      `(downloads torchvision's AlexNet weights), or point ${LPIPS_ENV_VAR} at an LPIPS .onnx file.`,
  );
  return new PixelMetric();
}
