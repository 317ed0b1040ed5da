/**
 * The smoothness report of a film (or of one transition, or of a sequence of frames): the figures
 * of ./smoothness.ts per transition and for the whole film, on the computed frames and on the
 * film frames after retiming (the frames the viewer sees), measured with one similarity metric.
 */
import type { RgbImage } from '../pipeline/vae.ts';
import { distancesOf, type SimilarityMetric } from '../engine/metric.ts';
import { filmFrames, planFilm, type FilmSegment } from '../film/render.ts';
import type { RetimeMode } from '../blend/retime.ts';
import { smoothnessFigures, type SmoothnessFigures } from './smoothness.ts';
import { LatentBlendError } from '../errors.ts';

/** Figures of one sequence, with its number of frames. */
export interface SequenceFigures extends SmoothnessFigures {
  readonly frames: number;
}

/** The figures of one transition of a film. */
export interface TransitionSmoothness {
  /** 0-based position in the film. */
  readonly index: number;
  /** On the computed frames (the transition's branches, A to B). */
  readonly computed: SequenceFigures;
  /**
   * On the film frames of this transition after retiming, up to the first film frame of the next
   * transition (so the seam counts once); null when no film frames were measured.
   */
  readonly film: SequenceFigures | null;
}

/** A smoothness report; `metric` names the distance every figure was measured with. */
export interface SmoothnessReport {
  readonly metric: string;
  readonly transitions: readonly TransitionSmoothness[];
  /** The whole film: computed frames of all transitions in a row, and the film's frames. */
  readonly whole: { readonly computed: SequenceFigures; readonly film: SequenceFigures | null };
}

/** How much of a report is done, for progress bars: pairs measured of the total. */
export type ReportProgress = (done: number, total: number) => void;

function figures(distances: readonly number[], endToEnd: number | undefined): SequenceFigures {
  return { frames: distances.length + 1, ...smoothnessFigures(distances, endToEnd) };
}

/** Distances between neighbouring images of `images`, in pairs of at most `batch` per metric call. */
async function neighbourDistances(
  images: Iterable<RgbImage>,
  metric: SimilarityMetric,
  onPairs: (count: number) => void,
  signal: AbortSignal | undefined,
  batch = 8,
): Promise<{ distances: number[]; first: RgbImage | undefined; last: RgbImage | undefined }> {
  const distances: number[] = [];
  let pending: [RgbImage, RgbImage][] = [];
  let first: RgbImage | undefined;
  let previous: RgbImage | undefined;
  const flush = async () => {
    if (pending.length === 0) return;
    signal?.throwIfAborted();
    distances.push(...(await distancesOf(metric, pending)));
    onPairs(pending.length);
    pending = [];
  };
  for (const image of images) {
    if (previous === undefined) first = image;
    else pending.push([previous, image]);
    previous = image;
    if (pending.length >= batch) await flush();
  }
  await flush();
  return { distances, first, last: previous };
}

/** The figures of a sequence of frames (e.g. a folder of PNGs), with d(first, last) for directness. */
export async function sequenceSmoothness(
  images: readonly RgbImage[],
  metric: SimilarityMetric,
  options: { onProgress?: ReportProgress; signal?: AbortSignal } = {},
): Promise<SequenceFigures> {
  if (images.length < 2) throw new LatentBlendError(`smoothness: need at least two frames, got ${images.length}.`);
  const total = images.length;
  let done = 0;
  const { distances } = await neighbourDistances(images, metric, (count) => options.onProgress?.((done += count), total), options.signal);
  const endToEnd = await metric.distance(images[0]!, images[images.length - 1]!);
  options.onProgress?.(total, total);
  return figures(distances, endToEnd);
}

/** Options of {@link filmSmoothness}. */
export interface FilmSmoothnessOptions {
  /** Frames per second of the film. */
  readonly fps: number;
  readonly retiming: RetimeMode;
  /** Measure the film frames after retiming too (default true). */
  readonly filmFrames?: boolean;
  /**
   * Use a transition's stored gap distances for its computed frames when they were measured with
   * a metric of the same name (as right after rendering), instead of measuring again. Default false.
   */
  readonly reuseStoredDistances?: boolean;
  readonly onProgress?: ReportProgress;
  readonly signal?: AbortSignal;
}

/**
 * The smoothness report of a film made of `segments` (transitions in film order, each with its
 * duration), measured with `metric`. Film frames are made exactly as the film renders them
 * (src/film/render.ts), one at a time.
 */
export async function filmSmoothness(
  segments: readonly FilmSegment[],
  metric: SimilarityMetric,
  options: FilmSmoothnessOptions,
): Promise<SmoothnessReport> {
  if (segments.length === 0) throw new LatentBlendError('smoothness: the film has no transitions.');
  const measureFilm = options.filmFrames ?? true;
  const plans = measureFilm ? planFilm(segments, options.fps, options.retiming) : [];
  const filmCount = plans.reduce((sum, frames) => sum + frames.length, 0);
  const reuse = (segment: FilmSegment) =>
    options.reuseStoredDistances === true && (segment.transition as { metric?: string }).metric === metric.name;
  const total =
    segments.reduce((sum, segment) => sum + (reuse(segment) ? 0 : segment.transition.images.length - 1) + 1, 0) +
    1 +
    Math.max(0, filmCount - 1);
  let done = 0;
  const progress = (count: number) => options.onProgress?.((done += count), total);

  const computed: { distances: number[]; endToEnd: number }[] = [];
  for (const segment of segments) {
    const images = segment.transition.images;
    const distances = reuse(segment)
      ? [...segment.transition.tree.gapDistances]
      : (await neighbourDistances(images, metric, progress, options.signal)).distances;
    const endToEnd = await metric.distance(images[0]!, images[images.length - 1]!);
    progress(1);
    computed.push({ distances, endToEnd });
  }
  const firstImage = segments[0]!.transition.images[0]!;
  const lastImages = segments[segments.length - 1]!.transition.images;
  const wholeEnd = segments.length === 1 ? computed[0]!.endToEnd : await metric.distance(firstImage, lastImages[lastImages.length - 1]!);
  progress(1);

  let filmDistances: number[] | undefined;
  if (measureFilm) {
    filmDistances = (await neighbourDistances(filmFrames(segments, options.fps, options.retiming), metric, progress, options.signal)).distances;
  }
  // Segment s owns the gaps from its first film frame to the next segment's first (its own last for the last segment).
  let offset = 0;
  const transitions = segments.map((_, index): TransitionSmoothness => {
    const own = computed[index]!;
    let film: SequenceFigures | null = null;
    if (filmDistances !== undefined) {
      const length = plans[index]!.length;
      const gaps = index === segments.length - 1 ? length - 1 : length;
      film = figures(filmDistances.slice(offset, offset + gaps), own.endToEnd);
      offset += length;
    }
    return { index, computed: figures(own.distances, own.endToEnd), film };
  });
  return {
    metric: metric.name,
    transitions,
    whole: {
      computed: figures(
        computed.flatMap((entry) => entry.distances),
        wholeEnd,
      ),
      film: filmDistances === undefined ? null : figures(filmDistances, wholeEnd),
    },
  };
}

const COLUMNS = ['frames', 'Σd', 'max', 'mean', 'max/mean', 'smoothness', 'directness'] as const;

function cell(value: number | null, digits = 4): string {
  if (value === null) return '–';
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1000 ? value.toExponential(3) : value.toFixed(digits);
}

function row(label: string, values: SequenceFigures): string[] {
  return [
    label,
    String(values.frames),
    cell(values.total),
    cell(values.max),
    cell(values.mean),
    cell(values.maxOverMean, 3),
    cell(values.smoothness, 3),
    cell(values.directness, 3),
  ];
}

/**
 * The report as a plain-text table (one row per transition and kind of frames, then the whole
 * film), headed by the metric's name. `labels` names transitions (default "transition N").
 */
export function formatReport(report: SmoothnessReport, labels: readonly string[] = []): string {
  const rows: string[][] = [['', ...COLUMNS]];
  for (const entry of report.transitions) {
    const name = labels[entry.index] ?? `transition ${entry.index + 1}`;
    rows.push(row(`${name}, computed`, entry.computed));
    if (entry.film !== null) rows.push(row(`${name}, film`, entry.film));
  }
  if (report.transitions.length !== 1) {
    rows.push(row(report.transitions.length === 0 ? 'frames' : 'whole film, computed', report.whole.computed));
    if (report.whole.film !== null) rows.push(row('whole film, film', report.whole.film));
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((cells) => cells[column]!.length)));
  const lines = rows.map((cells) => cells.map((text, column) => (column === 0 ? text.padEnd(widths[column]!) : text.padStart(widths[column]!))).join('  '));
  return [`distance between neighbouring frames: ${report.metric}`, ...lines].join('\n');
}

/** One line for a plot caption or a log: "lpips: Σd 1.23, max 0.21, mean 0.12, max/mean 1.7, smoothness 0.86". */
export function summaryLine(metric: string, values: SmoothnessFigures): string {
  const parts = [
    `Σd ${cell(values.total, 3)}`,
    `max ${cell(values.max, 3)}`,
    `mean ${cell(values.mean, 3)}`,
    `max/mean ${cell(values.maxOverMean, 2)}`,
    `smoothness ${cell(values.smoothness, 3)}`,
  ];
  if (values.directness !== null) parts.push(`directness ${cell(values.directness, 2)}`);
  return `${metric}: ${parts.join(', ')}`;
}
