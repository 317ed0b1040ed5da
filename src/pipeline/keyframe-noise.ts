/**
 * The noise of one keyframe: its start latents and, for stochastic schedulers, one noise tensor
 * per step, all derived from the keyframe's seed so that the same seed gives the same frames.
 */
import { gaussianNoise, NoiseStream } from '../math/noise.ts';

export class KeyframeNoise {
  private readonly steps: NoiseStream;

  constructor(readonly seed: number) {
    this.steps = new NoiseStream(seed, 0);
  }

  /** Unit-Gaussian start latents (before the scheduler's init_noise_sigma). */
  start(length: number): Float32Array {
    return gaussianNoise(this.seed, length);
  }

  /** Unit-Gaussian noise for step `stepIndex`. */
  step(stepIndex: number, length: number): Float32Array {
    return this.steps.at(stepIndex, length);
  }
}
