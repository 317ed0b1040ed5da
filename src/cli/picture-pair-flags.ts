/**
 * The picture flags ControlNet and IP-Adapter share: one picture for the whole run
 * (`--x-image`) or one per keyframe (`--x-image1` with `--x-image2`), only with the model flag.
 */
import type { RgbImage } from '../pipeline/vae.ts';
import { readControlPicture } from '../image/control-picture.ts';
import { LatentBlendError } from '../errors.ts';

/** How one family's flags and picture are named in messages. */
export interface PicturePairNames {
  /** The model flag, e.g. `--controlnet`. */
  readonly modelFlag: string;
  /** The model family as people name it, e.g. `ControlNet`. */
  readonly modelName: string;
  /** The single-picture flag; the per-keyframe ones add `1` and `2`. */
  readonly pictureFlag: string;
  /** The picture with its article, e.g. `a control picture`. */
  readonly picture: string;
}

/** Which files to read: keyframe A's (or the only) picture, with the flag that named it, and keyframe B's. */
export interface PicturePairPaths {
  readonly pathA: string;
  readonly flagA: string;
  readonly pathB?: string;
}

/** The picture flags as parsed. */
export interface PicturePairFlags {
  readonly single?: string;
  readonly first?: string;
  readonly second?: string;
}

/** A usage error of the picture flags (ControlNet's and IP-Adapter's modules raise theirs the same way). */
export function usage(message: string): LatentBlendError {
  return new LatentBlendError(message, 'invalid_input');
}

/**
 * Checks the picture flags against the model flag and returns the files to read (undefined
 * without the model flag). Throws one usage error naming the flags at fault.
 */
export function picturePairPaths(pictures: PicturePairFlags, modelGiven: boolean, names: PicturePairNames): PicturePairPaths | undefined {
  const { single, first, second } = pictures;
  const flag = names.pictureFlag;
  const pair = first !== undefined || second !== undefined;
  const any = single !== undefined || pair;
  if (!modelGiven) {
    if (any) throw usage(`${names.picture} needs ${names.modelFlag} (the ${names.modelName} folder or Hub repo).`);
    return undefined;
  }
  if (!any) throw usage(`${names.modelFlag} needs ${names.picture}: ${flag} FILE (or ${flag}1 and ${flag}2 for a transition).`);
  if (single !== undefined && pair) throw usage(`give either ${flag} or ${flag}1/${flag}2, not both.`);
  if (pair && (first === undefined || second === undefined)) {
    throw usage(`${flag}${first === undefined ? '2' : '1'} needs ${flag}${first === undefined ? '1' : '2'} as well (or use ${flag} for both keyframes).`);
  }
  if (single !== undefined) return { pathA: single, flagA: flag };
  return { pathA: first!, flagA: `${flag}1`, pathB: second! };
}

/** The pictures the flags name: keyframe A's (or the only one) and keyframe B's. */
export interface PicturePair {
  readonly pictureA: RgbImage;
  readonly pictureB?: RgbImage;
}

/** Reads the pictures `paths` names, A then B, each passed through `prepare` (e.g. Canny). */
export async function readPicturePair(paths: PicturePairPaths, names: PicturePairNames, prepare: (picture: RgbImage) => RgbImage = (picture) => picture): Promise<PicturePair> {
  const pictureA = prepare(await readControlPicture(paths.pathA, paths.flagA));
  const pictureB = paths.pathB !== undefined ? prepare(await readControlPicture(paths.pathB, `${names.pictureFlag}2`)) : undefined;
  return { pictureA, ...(pictureB !== undefined ? { pictureB } : {}) };
}

/** The engine's per-keyframe pictures and scales (0..5), with only the scales the flags gave. */
export function picturePairSettings(pictures: PicturePair, scaleA: number | undefined, scaleB: number | undefined) {
  return {
    pictureA: pictures.pictureA,
    ...(pictures.pictureB !== undefined ? { pictureB: pictures.pictureB } : {}),
    ...(scaleA !== undefined ? { scaleA } : {}),
    ...(scaleB !== undefined ? { scaleB } : {}),
  };
}
