/**
 * From computed frames to a film (SPEC.md "From frames to a film"): which computed frames each film
 * frame shows, and with what cross-fade weight.
 *
 * Every computed frame j gets a position p_j in [0, 1]; film frame m (of F) sits at u = m / (F - 1)
 * and shows the cross-fade of the two computed frames around u.
 * - 'perceptual' mode (default; formerly called 'distance', now refused with its new name): p_j = (sum of the gap distances before j) / (total distance), so
 *   the perceptual change per second of film is constant; a gap with distance 0 takes no time.
 * - 'equal' mode (the Python project's way): p_j = j / (n - 1), an equal share of film per gap
 *   (film frames per gap differ by at most one).
 * A total distance of 0 falls back to 'equal'. F = round(durationSeconds * fps), round half to
 * even, and must be at least 2. Film frame 0 is exactly computed frame 0 and film frame F - 1
 * exactly the last computed frame.
 */
import { LatentBlendError } from '../errors.ts';
import { roundHalfEven } from './crossfeed.ts';

/**
 * 'perceptual': constant perceptual change per second (the CLI's --retiming perceptual);
 * 'equal': the same time for every gap.
 */
export type RetimeMode = 'perceptual' | 'equal';

/** One film frame: (1 - weight)·frames[left] + weight·frames[right]. */
export interface FilmFrame {
  readonly left: number;
  /** left + 1, or left itself when the film frame is exactly a computed frame (weight 0). */
  readonly right: number;
  /** In [0, 1). */
  readonly weight: number;
}

export interface Retiming {
  /** One entry per film frame, in order. */
  readonly filmFrames: readonly FilmFrame[];
  /** Position of every computed frame in [0, 1]: 0 for the first, 1 for the last, non-decreasing. */
  readonly positions: readonly number[];
  /** Time of every computed frame in seconds from the first film frame: positions * (F - 1) / fps. */
  readonly times: readonly number[];
  /** The mode actually used ('equal' when all distances are 0). */
  readonly mode: RetimeMode;
}

export interface RetimeOptions {
  /** Number of computed frames, integer >= 2. */
  readonly frameCount: number;
  /** frameCount - 1 distances between neighbouring computed frames, each finite and >= 0; not needed in 'equal' mode. */
  readonly distances?: readonly number[];
  /** Film length in seconds, > 0. */
  readonly durationSeconds: number;
  /** Film frames per second, > 0 (need not be an integer). */
  readonly fps: number;
  /** Default 'perceptual'. */
  readonly mode?: RetimeMode;
}

function fail(message: string): never {
  throw new LatentBlendError(message);
}

/** Number of film frames: round(durationSeconds * fps), round half to even. */
export function filmFrameCount(durationSeconds: number, fps: number): number {
  if (typeof durationSeconds !== 'number' || !Number.isFinite(durationSeconds) || durationSeconds <= 0) {
    fail(`duration: got ${String(durationSeconds)} s, expected a finite number of seconds > 0.`);
  }
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0) {
    fail(`fps: got ${String(fps)}, expected a finite number > 0.`);
  }
  return roundHalfEven(durationSeconds * fps);
}

/** Positions of the computed frames (see the module comment), and the mode used. */
function framePositions(frameCount: number, distances: readonly number[] | undefined, mode: RetimeMode): [number[], RetimeMode] {
  const equal = (): [number[], RetimeMode] => [
    Array.from({ length: frameCount }, (_, j) => (j === frameCount - 1 ? 1 : j / (frameCount - 1))),
    'equal',
  ];
  if (mode === 'equal' && distances === undefined) return equal();
  if (distances === undefined) fail(`distances: missing; 'perceptual' mode needs ${frameCount - 1} distances.`);
  if (distances.length !== frameCount - 1) {
    fail(`distances: got ${distances.length} values for ${frameCount} frames, expected ${frameCount - 1}.`);
  }
  let total = 0;
  distances.forEach((d, j) => {
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) {
      fail(`distances[${j}]: got ${String(d)}, expected a finite distance >= 0.`);
    }
    total += d;
  });
  if (mode === 'equal' || total === 0) return equal();
  const positions = [0];
  let cumulative = 0;
  for (let j = 1; j < frameCount; j++) {
    cumulative += distances[j - 1] as number;
    positions.push(j === frameCount - 1 ? 1 : Math.min(1, cumulative / total));
  }
  return [positions, 'perceptual'];
}

/**
 * Maps film frames to computed frames (see the module comment).
 *
 * @returns per film frame the two computed frames and the weight of the right one; the computed
 *   frames' positions and times
 */
export function retime(options: RetimeOptions): Retiming {
  const { frameCount, distances, durationSeconds, fps } = options;
  const given = options.mode ?? 'perceptual';
  // The old name is refused with the new one rather than taken silently: one vocabulary (SPEC.md).
  if ((given as string) === 'distance') fail(`mode: 'distance' was renamed 'perceptual'; expected 'perceptual' or 'equal'.`);
  if (given !== 'perceptual' && given !== 'equal') fail(`mode: got ${JSON.stringify(given)}, expected 'perceptual' or 'equal'.`);
  const mode: RetimeMode = given;
  if (!Number.isSafeInteger(frameCount) || frameCount < 2) {
    fail(`frameCount: got ${String(frameCount)}, expected an integer >= 2.`);
  }
  const filmCount = filmFrameCount(durationSeconds, fps);
  if (filmCount < 2) {
    fail(
      `duration × fps: got ${durationSeconds} s × ${fps} fps = ${filmCount} film frame(s), expected at least 2 (a first and a last frame).`,
    );
  }
  const [positions, usedMode] = framePositions(frameCount, distances, mode);

  const filmFrames: FilmFrame[] = [];
  let j = 0; // the last computed frame with positions[j] <= u; u only grows
  for (let m = 0; m < filmCount; m++) {
    if (m === 0) {
      filmFrames.push({ left: 0, right: 0, weight: 0 });
      continue;
    }
    if (m === filmCount - 1) {
      filmFrames.push({ left: frameCount - 1, right: frameCount - 1, weight: 0 });
      continue;
    }
    const u = m / (filmCount - 1);
    // Frames at equal positions (zero-distance gaps): take the later one, the gap takes no time.
    while (j + 1 < frameCount && (positions[j + 1] as number) <= u) j += 1;
    const start = positions[j] as number;
    if (start === u || j === frameCount - 1) {
      filmFrames.push({ left: j, right: j, weight: 0 });
    } else {
      const end = positions[j + 1] as number;
      filmFrames.push({ left: j, right: j + 1, weight: (u - start) / (end - start) });
    }
  }
  const lastTime = (filmCount - 1) / fps;
  return { filmFrames, positions, times: positions.map((p) => p * lastTime), mode: usedMode };
}

/**
 * Cross-fade of two 8-bit images (RGB8 or any interleaved 8-bit layout): per channel
 * round((1 - w)·a + w·b), rounding to nearest with halves up. w = 0 gives a copy of a, w = 1 a
 * copy of b.
 *
 * @param w weight of imgB, in [0, 1]
 */
export function crossFade(imgA: Uint8Array, imgB: Uint8Array, w: number): Uint8Array {
  if (imgA.length !== imgB.length) {
    fail(`crossFade: image sizes differ (${imgA.length} and ${imgB.length} bytes); both must have the same size.`);
  }
  if (typeof w !== 'number' || !Number.isFinite(w) || w < 0 || w > 1) {
    fail(`crossFade weight: got ${String(w)}, expected a number in [0, 1].`);
  }
  if (w === 0) return imgA.slice();
  if (w === 1) return imgB.slice();
  const out = new Uint8Array(imgA.length);
  const v = 1 - w;
  for (let i = 0; i < imgA.length; i++) {
    // Both weights are in (0, 1), so the value is in [0, 255]; floor(x + 0.5) rounds halves up.
    out[i] = Math.floor(v * (imgA[i] as number) + w * (imgB[i] as number) + 0.5);
  }
  return out;
}
