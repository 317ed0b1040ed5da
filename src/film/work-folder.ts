/** Shared by `transition`, `movie` and `refine`: the work folder, cached transitions and the film files. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Transition } from '../engine/engine.ts';
import { loadTransition, saveTransition, checkSameModel, type ModelStamp } from '../io/store.ts';
import { encodeVideo, videoFormatFromPath } from '../io/video.ts';
import { contactSheet } from '../io/contact-sheet.ts';
import { smoothnessPlot } from '../io/plot.ts';
import { encodePng } from '../io/png.ts';
import { writeFileAtomically, prepareOutput } from '../io/files.ts';
import { filmFrames, filmLength, type FilmSegment } from './render.ts';
import type { RetimeMode } from '../blend/retime.ts';
import type { Reporter } from './progress.ts';

/** The work folder of a film: `<out without extension>.latentblend` beside the output. */
export function defaultWorkDir(out: string): string {
  return join(dirname(out), `${basename(out, extname(out))}.latentblend`);
}

/** Stable hash of what determines a transition's computed frames. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * Returns the transition saved under `<work>/transitions/<index>-<key>` when it is there (a
 * resumed render recomputes nothing that finished), else computes it and saves it there first.
 */
export async function cachedTransition(
  workDir: string,
  index: number,
  key: string,
  stamp: ModelStamp,
  compute: () => Promise<Transition>,
): Promise<{ transition: Transition; dir: string; reused: boolean }> {
  const folder = join(workDir, 'transitions');
  const name = `${String(index).padStart(2, '0')}-${key.slice(0, 16)}`;
  const dir = join(folder, name);
  if (existsSync(join(dir, 'transition.json'))) {
    const stored = await loadTransition(dir);
    checkSameModel(stored.model, stamp);
    return { transition: stored.transition, dir, reused: true };
  }
  const transition = await compute();
  await saveTransition(dir, transition, stamp, { force: true });
  return { transition, dir, reused: false };
}

export interface FilmOutputOptions {
  readonly out: string;
  readonly fps: number;
  readonly quality?: number;
  readonly retiming: RetimeMode;
  readonly force: boolean;
  readonly framesDir?: string;
  readonly signal?: AbortSignal;
  readonly ffmpegPath?: string;
}

/** Side files written beside the film. */
export function sideFiles(out: string): { contactSheet: string; smoothness: string } {
  const base = join(dirname(out), basename(out, extname(out)));
  return { contactSheet: `${base}.contact-sheet.png`, smoothness: `${base}.smoothness.png` };
}

/** Refuses early (before any computing) when an output exists and --force is not set. */
export function checkOutputs(options: { out: string; force: boolean }): void {
  videoFormatFromPath(options.out);
  prepareOutput(options.out, options.force);
  const side = sideFiles(options.out);
  prepareOutput(side.contactSheet, options.force);
  prepareOutput(side.smoothness, options.force);
}

/** Writes the film, its contact sheet, its smoothness plot and (optionally) the computed frames. */
export async function writeFilm(segments: readonly FilmSegment[], options: FilmOutputOptions, reporter: Reporter): Promise<{ filmFrames: number }> {
  const total = filmLength(segments, options.fps, options.retiming);
  reporter.startBar('encoding', total);
  await encodeVideo(options.out, filmFrames(segments, options.fps, options.retiming), {
    fps: options.fps,
    force: options.force,
    ...(options.quality !== undefined ? { quality: options.quality } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
    onFrame: (written) => reporter.updateBar(written),
  });
  reporter.stopBar();

  const labelled = segments.flatMap((segment, index) =>
    segment.transition.tree.branches
      .map((branch, position) => ({
        image: segment.transition.images[position]!,
        label:
          branch.fract === 0
            ? `keyframe ${index + 1}`
            : branch.fract === 1
              ? `keyframe ${index + 2}`
              : `${branch.fract.toFixed(3)} k=${branch.injectionStep}`,
      }))
      .filter((_, position) => index === 0 || position > 0),
  );
  const side = sideFiles(options.out);
  await writeFileAtomically(side.contactSheet, await contactSheet(labelled), options.force);
  const points = segments.flatMap((segment, index) =>
    segment.transition.tree.gapDistances.map((distance, gap) => {
      const branches = segment.transition.tree.branches;
      return { fract: index + (branches[gap]!.fract + branches[gap + 1]!.fract) / 2, distance };
    }),
  );
  const span = segments.length;
  await writeFileAtomically(
    side.smoothness,
    await smoothnessPlot(points.map((point) => ({ fract: point.fract / span, distance: point.distance })), {
      title: 'distance between neighbouring computed frames',
    }),
    options.force,
  );

  if (options.framesDir !== undefined) {
    mkdirSync(options.framesDir, { recursive: true });
    let number = 0;
    for (const frame of labelled) {
      writeFileSync(join(options.framesDir, `${String(number++).padStart(4, '0')}.png`), await encodePng(frame.image));
    }
  }
  return { filmFrames: total };
}
