/**
 * ControlNet flags shared by `generate`, `transition` and `refine`: the ControlNet folder (or Hub
 * repo), the control picture(s), the built-in Canny preprocessor, scale and guidance window.
 * Pictures are read (and refused) before any model is loaded.
 */
import { Command } from 'commander';
import { numberIn } from './parse.ts';
import { resolveModelForCli } from './model-source.ts';
import type { Reporter } from './progress.ts';
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import type { LoadedControlNet } from '../pipeline/controlnet.ts';
import type { TransitionControl } from '../engine/control.ts';
import { canny, CANNY_DEFAULTS } from '../image/canny.ts';
import { writePng } from '../io/png.ts';
import { picturePairPaths, picturePairSettings, readPicturePair, usage, type PicturePair, type PicturePairNames } from './picture-pair-flags.ts';

export interface ControlFlags {
  controlnet?: string;
  controlImage?: string;
  controlImage1?: string;
  controlImage2?: string;
  controlnetScale?: number;
  controlnetScale2?: number;
  controlGuidanceStart?: number;
  controlGuidanceEnd?: number;
  canny?: boolean;
  cannyLow?: number;
  cannyHigh?: number;
  cannyOut?: string;
}

/** Adds the ControlNet flags; `perKeyframe` adds --control-image1/2 and --controlnet-scale2 (transitions). */
export function addControlFlags(command: Command, perKeyframe: boolean): Command {
  command
    .option('--controlnet <path|repo>', "ControlNet folder in latentblend's ONNX layout (docs/controlnet-onnx.md) or a Hub repo id; the model needs its unet_controlnet/ export")
    .option('--control-image <file>', perKeyframe ? 'control picture for the whole transition (edges, depth, pose…); any size, stretched to the frame size' : 'control picture (edges, depth, pose…); any size, stretched to the image size');
  if (perKeyframe) {
    command
      .option('--control-image1 <file>', "control picture of keyframe A (with --control-image2: residuals mixed by fract, two ControlNet calls per step between the keyframes)")
      .option('--control-image2 <file>', 'control picture of keyframe B');
  }
  command.option('--controlnet-scale <number>', perKeyframe ? 'ControlNet conditioning scale (at keyframe A with --controlnet-scale2) (default 1)' : 'ControlNet conditioning scale (default 1)', numberIn(0, 5));
  if (perKeyframe) command.option('--controlnet-scale2 <number>', 'conditioning scale at keyframe B, interpolated along the transition (default: --controlnet-scale)', numberIn(0, 5));
  return command
    .option('--control-guidance-start <fraction>', 'ControlNet acts from this fraction of the steps (default 0)', numberIn(0, 1))
    .option('--control-guidance-end <fraction>', 'ControlNet acts until this fraction of the steps (default 1)', numberIn(0, 1))
    .option('--canny', 'turn the control picture(s) into edge maps with the built-in Canny detector first', false)
    .option('--canny-low <number>', `Canny weak-edge threshold (default ${CANNY_DEFAULTS.low})`, numberIn(0, 10000))
    .option('--canny-high <number>', `Canny strong-edge threshold (default ${CANNY_DEFAULTS.high})`, numberIn(0, 10000))
    .option('--canny-out <file.png>', 'also write the (first) Canny edge map there');
}

/** The control pictures the flags name, read and (with --canny) preprocessed. */
export type ControlPictures = PicturePair;

const CONTROL_PICTURE_NAMES: PicturePairNames = { modelFlag: '--controlnet', modelName: 'ControlNet', pictureFlag: '--control-image', picture: 'a control picture' };

/**
 * Checks the flag combination and reads the pictures (undefined without --controlnet). Run it
 * before loading any model: a bad picture or combination fails here.
 */
export async function readControlPicturesFromFlags(flags: ControlFlags, force: boolean): Promise<ControlPictures | undefined> {
  const paths = picturePairPaths({ single: flags.controlImage, first: flags.controlImage1, second: flags.controlImage2 }, flags.controlnet !== undefined, CONTROL_PICTURE_NAMES);
  if (paths === undefined) {
    const controlOnly = [
      ['--controlnet-scale', flags.controlnetScale],
      ['--controlnet-scale2', flags.controlnetScale2],
      ['--control-guidance-start', flags.controlGuidanceStart],
      ['--control-guidance-end', flags.controlGuidanceEnd],
      ['--canny-out', flags.cannyOut],
    ] as const;
    const given = controlOnly.find(([, value]) => value !== undefined);
    if (given !== undefined || flags.canny === true) throw usage(`${given?.[0] ?? '--canny'} needs --controlnet.`);
    return undefined;
  }
  const start = flags.controlGuidanceStart ?? 0;
  const end = flags.controlGuidanceEnd ?? 1;
  if (start >= end) throw usage(`--control-guidance-start (${start}) must be below --control-guidance-end (${end}).`);
  const low = flags.cannyLow ?? CANNY_DEFAULTS.low;
  const high = flags.cannyHigh ?? CANNY_DEFAULTS.high;
  if (low > high) throw usage(`--canny-low (${low}) must not exceed --canny-high (${high}).`);
  if (flags.canny !== true && (flags.cannyLow !== undefined || flags.cannyHigh !== undefined || flags.cannyOut !== undefined)) {
    throw usage('--canny-low, --canny-high and --canny-out need --canny.');
  }
  const pictures = await readPicturePair(paths, CONTROL_PICTURE_NAMES, flags.canny === true ? (picture) => canny(picture, { low, high }) : undefined);
  if (flags.cannyOut !== undefined) await writePng(flags.cannyOut, pictures.pictureA, force);
  return pictures;
}

/** Resolves --controlnet (folder or Hub repo) and loads it for `pipeline` (family and residual UNet checked first). */
export async function loadControlNetForCli(flags: ControlFlags, pipeline: DiffusionPipeline, reporter: Reporter, signal?: AbortSignal): Promise<LoadedControlNet> {
  const dir = await resolveModelForCli(flags.controlnet!, reporter, signal);
  return pipeline.loadControlNet(dir);
}

/** The engine's ControlNet settings from the flags and the loaded ControlNet. */
export function transitionControlFromFlags(flags: ControlFlags, pictures: ControlPictures, loaded: LoadedControlNet): TransitionControl {
  return {
    controlNet: loaded.controlNet,
    ...picturePairSettings(pictures, flags.controlnetScale, flags.controlnetScale2),
    ...(flags.controlGuidanceStart !== undefined ? { guidanceStart: flags.controlGuidanceStart } : {}),
    ...(flags.controlGuidanceEnd !== undefined ? { guidanceEnd: flags.controlGuidanceEnd } : {}),
  };
}
