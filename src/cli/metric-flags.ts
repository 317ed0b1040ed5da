/** `--metric`, `--lpips` and the metric's loading, shared by the film commands and `eval`. */
import { Option, type Command } from 'commander';
import { chooseMetricWithReason, METRIC_NAMES, type ChosenMetric, type MetricName } from '../node/metric.ts';
import type { Device } from '../runtime/onnx.ts';
import type { Reporter } from '../film/progress.ts';

/** The `--metric` option: which distance measures frames. */
export function metricOption(): Option {
  return new Option(
    '--metric <name>',
    'distance between frames: lpips (perceptual; an error when no LPIPS model is found) or rms-pixel (pixels, no model); default: lpips when a model is found, else rms-pixel with a warning',
  ).choices(METRIC_NAMES);
}

/** Loads the metric the flags ask for; a fallback warning goes to the reporter and is returned. */
export async function metricFromFlags(
  flags: { metric?: string; lpips?: string; device: string },
  reporter: Pick<Reporter, 'warn' | 'startBar' | 'updateBar' | 'stopBar'>,
): Promise<ChosenMetric> {
  let downloading = false;
  try {
    return await chooseMetricWithReason({
      device: flags.device as Device,
      ...(flags.metric !== undefined ? { kind: flags.metric as MetricName } : {}),
      ...(flags.lpips !== undefined ? { lpipsModel: flags.lpips } : {}),
      onWarning: (message) => reporter.warn(message),
      // The first use of the Hub LPIPS downloads it (a few MB), with a bar.
      onDownload: (progress) => {
        if (!downloading) reporter.startBar('LPIPS', Math.max(1, progress.totalBytes), { countSteps: false });
        downloading = true;
        reporter.updateBar(progress.bytesDone, Math.max(1, progress.totalBytes), progress.file);
      },
    });
  } finally {
    if (downloading) reporter.stopBar();
  }
}
