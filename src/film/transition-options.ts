/**
 * A film spec's transition as the engine's transition options: the one mapping the CLI's
 * renderFilm, the worker pool, the studio and the in-browser studio all use. No I/O.
 */
import { transitionsOf, type FilmKeyframe, type FilmSpec } from './spec.ts';

/** A film keyframe as the engine's keyframe (a picture keyframe with its content hash when known). */
function engineKeyframe(keyframe: FilmKeyframe, pictureHashes?: ReadonlyMap<string, string>): Record<string, unknown> {
  if (keyframe.image === undefined) return { prompt: keyframe.prompt, seed: keyframe.seed };
  const hash = pictureHashes?.get(keyframe.image);
  return {
    prompt: keyframe.prompt,
    seed: keyframe.seed,
    image: {
      path: keyframe.image,
      fit: keyframe.fit ?? 'cover',
      ...(keyframe.imageMethod !== undefined ? { method: keyframe.imageMethod } : {}),
      ...(hash !== undefined ? { hash } : {}),
    },
  };
}

/** The engine options of transition `index` of a film spec (with picture hashes when given). */
export function transitionOptionsOf(spec: FilmSpec, index: number, pictureHashes?: ReadonlyMap<string, string>): Record<string, unknown> {
  const transition = transitionsOf(spec)[index]!;
  const optional = {
    negativePrompt: transition.negativePrompt,
    width: spec.width,
    height: spec.height,
    steps: spec.steps,
    guidanceScale: spec.guidanceScale,
    midDamper: spec.midDamper,
    depthStrength: spec.depthStrength,
    maxBranches: spec.maxBranches ?? spec.branchesPerTransition,
    timeBudget: spec.timeBudget ?? spec.timeBudgetPerTransition,
    branch1Crossfeed: spec.branch1Crossfeed,
    parentalCrossfeed: spec.parentalCrossfeed,
  };
  return {
    keyframeA: engineKeyframe(transition.from, pictureHashes),
    keyframeB: engineKeyframe(transition.to, pictureHashes),
    batchSize: spec.batchSize,
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
  };
}
