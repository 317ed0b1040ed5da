/**
 * The Node front ends' choice of similarity metric: an LPIPS file (either form) given
 * explicitly, named by an environment variable, in the user's cache folder, or the pinned LPIPS
 * of the Hub; else the weight-free fallback.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LatentBlendError } from '../errors.ts';
import type { Device } from '../runtime/onnx.ts';
import { loadLpipsMetric, type LpipsOptions } from '../engine/lpips.ts';
import { PixelMetric } from '../engine/pixel-metric.ts';
import { loadTwoFileLpipsMetric, twoFileLpipsPaths } from './lpips-two-file.ts';
import { fetchHubLpips, IMGUTILS_LPIPS_PIN } from './lpips-hub.ts';
import type { DownloadProgress, PinnedFiles, ResolveModelOptions } from '../model/hub.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { nodePlatform } from './platform.ts';

export { TwoFileLpipsMetric, loadTwoFileLpipsMetric, twoFileLpipsPaths } from './lpips-two-file.ts';

/**
 * Loads LPIPS from `path` in either form: a folder holding lpips_feature.onnx and
 * lpips_diff.onnx (or one of those two files) is the two-file form of deepghs/imgutils-models;
 * any other file is the one-file form of tools/export_lpips.py.
 */
export async function loadAnyLpipsMetric(path: string, device: Device, options: LpipsOptions = {}): Promise<SimilarityMetric> {
  const twoFile = twoFileLpipsPaths(path);
  return twoFile !== undefined ? loadTwoFileLpipsMetric(twoFile, device, options) : loadLpipsMetric(nodePlatform, path, device, options);
}

/** Environment variable naming an LPIPS ONNX file to use when none is given explicitly. */
export const LPIPS_ENV_VAR = 'LATENTBLEND_LPIPS';

/** Where {@link chooseMetric} looks for an LPIPS model last: `<home>/.cache/latentblend/lpips-alex.onnx`. */
export function defaultLpipsPath(home: string = homedir()): string {
  return join(home, '.cache', 'latentblend', 'lpips-alex.onnx');
}


/** The metrics a user can ask for by name (`--metric`). */
export const METRIC_NAMES = ['lpips', 'rms-pixel'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Options of {@link chooseMetric}. */
export interface ChooseMetricOptions {
  /**
   * Which metric: 'lpips' (an error when no LPIPS model can be found), 'rms-pixel' (chosen
   * deliberately, no warning), or undefined for LPIPS when available, else the rms-pixel
   * fallback with a warning.
   */
  readonly kind?: MetricName;
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
  /**
   * The Hub LPIPS to fetch when no local model is found; default {@link IMGUTILS_LPIPS_PIN}
   * (nothing is fetched while that is undefined); null never fetches.
   */
  readonly hubPin?: PinnedFiles | null;
  /** Hub options for that fetch (cache folder, endpoint, offline, fetch); the env is `env`'s. */
  readonly hub?: Omit<ResolveModelOptions, 'onProgress' | 'env'>;
  /** Download progress of the Hub LPIPS, for a progress bar. */
  readonly onDownload?: (progress: DownloadProgress) => void;
}

/** The metric {@link chooseMetricWithReason} picked, and why it is the fallback when it is. */
export interface ChosenMetric {
  readonly metric: SimilarityMetric;
  /** Set when the rms-pixel metric is used only because no LPIPS model was found: the warning given. */
  readonly fallback?: string;
}

/**
 * Picks the metric for step 4a of the algorithm (which neighbouring frames are furthest apart)
 * and for smoothness reports. With `kind` 'rms-pixel': the weight-free {@link PixelMetric}.
 * Otherwise LPIPS from `lpipsModel` when given; else from the file named by LATENTBLEND_LPIPS
 * when set; else from ~/.cache/latentblend/lpips-alex.onnx when it exists; else the pinned
 * two-file LPIPS of deepghs/imgutils-models from the Hub cache, downloaded there first when
 * needed and allowed (HF_HUB_OFFLINE honoured). Paths may name either LPIPS form. A model that is named
 * but missing or malformed is an error (LatentBlendError), not a silent fallback. With no model
 * at all: an error when `kind` is 'lpips'; else the rms-pixel metric, with the warning sent to
 * `onWarning` and returned as `fallback` (so that it can be recorded).
 */
export async function chooseMetricWithReason(options: ChooseMetricOptions): Promise<ChosenMetric> {
  if (options.kind === 'rms-pixel') {
    if (options.lpipsModel !== undefined && options.lpipsModel !== '') {
      throw new LatentBlendError(`--metric rms-pixel does not use an LPIPS model, but one was given (${options.lpipsModel}); drop one of the two.`);
    }
    return { metric: new PixelMetric() };
  }
  const env = options.env ?? process.env;
  if (options.lpipsModel !== undefined && options.lpipsModel !== '') {
    return { metric: await loadAnyLpipsMetric(options.lpipsModel, options.device, options.lpips) };
  }
  const fromEnv = env[LPIPS_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== '') {
    try {
      return { metric: await loadAnyLpipsMetric(fromEnv, options.device, options.lpips) };
    } catch (error) {
      if (error instanceof LatentBlendError) throw new LatentBlendError(`${LPIPS_ENV_VAR}: ${error.message}`, error.code);
      throw error;
    }
  }
  const fallbackPath = defaultLpipsPath(options.home);
  if (existsSync(fallbackPath)) return { metric: await loadLpipsMetric(nodePlatform, fallbackPath, options.device, options.lpips) };
  // The real LPIPS from the Hub: from the cache, or downloaded once.
  const pin = options.hubPin === undefined ? IMGUTILS_LPIPS_PIN : options.hubPin;
  let hubProblem = pin === undefined ? 'the Hub download of LPIPS is not pinned in this build' : pin === null ? undefined : '';
  if (pin !== undefined && pin !== null) {
    try {
      const { dir } = await fetchHubLpips(pin, { ...options.hub, env, ...(options.onDownload !== undefined ? { onProgress: options.onDownload } : {}) });
      return { metric: await loadAnyLpipsMetric(dir, options.device, options.lpips) };
    } catch (error) {
      // Offline or unreachable: say so, and fall back (or fail for --metric lpips) below.
      if (!(error instanceof LatentBlendError) || !['hub_offline', 'hub_network'].includes(error.code)) throw error;
      hubProblem = error.message;
    }
  }
  const why = `none given, ${LPIPS_ENV_VAR} unset, ${fallbackPath} absent${hubProblem ? `; ${hubProblem}` : ''}`;
  const how =
    `For LPIPS, export it once with \`pip install lpips torch onnx && python tools/export_lpips.py ~/.cache/latentblend/lpips-alex.onnx\` ` +
    `(downloads torchvision's AlexNet weights), or point ${LPIPS_ENV_VAR} at an LPIPS .onnx file.`;
  if (options.kind === 'lpips') {
    throw new LatentBlendError(`--metric lpips: no LPIPS model (${why}). ${how}`, 'unavailable');
  }
  const warning =
    `No LPIPS model (${why}): using the "rms-pixel" metric ` +
    `(root-mean-square RGB difference, not perceptual) to measure frames. ${how} Pass --metric rms-pixel to choose it without this warning.`;
  options.onWarning?.(warning);
  return { metric: new PixelMetric(), fallback: warning };
}

/** {@link chooseMetricWithReason} without the reason: just the metric. */
export async function chooseMetric(options: ChooseMetricOptions): Promise<SimilarityMetric> {
  return (await chooseMetricWithReason(options)).metric;
}
