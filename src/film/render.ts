/**
 * From computed frames to film frames: each transition is retimed over its duration (by default
 * so that the perceptual change per second is constant) and the frames in between are
 * cross-faded from their two neighbours. Segments of a multi-keyframe film are joined without a
 * seam: a segment's last film frame is the next segment's first computed frame, shown once.
 */
import { retime, crossFade, type RetimeMode } from '../blend/retime.ts';
import { capEndJumps } from '../blend/end-jump.ts';
import type { Transition } from '../engine/engine.ts';
import type { RgbImage } from '../pipeline/vae.ts';

export interface FilmSegment {
  /** With `options`, a picture keyframe's end gap is capped for retiming (src/blend/end-jump.ts). */
  readonly transition: Pick<Transition, 'images' | 'tree'> & Partial<Pick<Transition, 'options'>>;
  /** Seconds this transition takes in the film, > 0. */
  readonly durationSeconds: number;
}

/** Which computed frames make each film frame, per segment (pure; no pixels). */
export function planFilm(segments: readonly FilmSegment[], fps: number, mode: RetimeMode) {
  return segments.map((segment, index) => {
    const options = segment.transition.options;
    const ends = { start: options?.keyframeA.image !== undefined, end: options?.keyframeB.image !== undefined };
    const timing = retime({
      frameCount: segment.transition.images.length,
      distances: ends.start || ends.end ? capEndJumps(segment.transition.tree.gapDistances, ends) : segment.transition.tree.gapDistances,
      durationSeconds: segment.durationSeconds,
      fps,
      mode,
    });
    const last = index === segments.length - 1;
    return last ? timing.filmFrames : timing.filmFrames.slice(0, -1);
  });
}

/** Number of frames the film will have. */
export function filmLength(segments: readonly FilmSegment[], fps: number, mode: RetimeMode): number {
  return planFilm(segments, fps, mode).reduce((sum, frames) => sum + frames.length, 0);
}

/** The film's frames, one at a time (lazy, so a long film never sits in memory). */
export function* filmFrames(segments: readonly FilmSegment[], fps: number, mode: RetimeMode): Generator<RgbImage> {
  const plans = planFilm(segments, fps, mode);
  for (const [index, frames] of plans.entries()) {
    const images = segments[index]!.transition.images;
    for (const frame of frames) {
      const left = images[frame.left]!;
      if (frame.weight === 0 || frame.left === frame.right) {
        yield left;
        continue;
      }
      const right = images[frame.right]!;
      yield { width: left.width, height: left.height, data: crossFade(left.data, right.data, frame.weight) };
    }
  }
}
