/**
 * IP-Adapter flags shared by `generate`, `transition` and `refine`: the IP-Adapter folder (or Hub
 * repo), the image prompt(s) and the adapter scale(s). Pictures are read before any model loads.
 */
import { Command } from 'commander';
import { numberIn } from './parse.ts';
import { resolveModelForCli } from './model-source.ts';
import type { Reporter } from './progress.ts';
import type { DiffusionPipeline } from '../pipeline/pipeline.ts';
import type { LoadedIpAdapter } from '../pipeline/ip-adapter.ts';
import type { TransitionImagePrompt } from '../engine/image-prompt.ts';
import { picturePairPaths, picturePairSettings, readPicturePair, usage, type PicturePair, type PicturePairNames } from './picture-pair-flags.ts';

export interface IpAdapterFlags {
  ipAdapter?: string;
  ipImage?: string;
  ipImage1?: string;
  ipImage2?: string;
  ipAdapterScale?: number;
  ipAdapterScale2?: number;
}

/** Adds the IP-Adapter flags; `perKeyframe` adds --ip-image1/2 and --ip-adapter-scale2 (transitions). */
export function addIpAdapterFlags(command: Command, perKeyframe: boolean): Command {
  command
    .option('--ip-adapter <path|repo>', "IP-Adapter folder in latentblend's ONNX layout (docs/ip-adapter-onnx.md) or a Hub repo id")
    .option('--ip-image <file>', perKeyframe ? 'image prompt for both keyframes' : 'image prompt: a picture as part of the prompt');
  if (perKeyframe) {
    command
      .option('--ip-image1 <file>', 'image prompt of keyframe A (blended into --ip-image2 along the transition)')
      .option('--ip-image2 <file>', 'image prompt of keyframe B');
  }
  command.option('--ip-adapter-scale <number>', perKeyframe ? 'IP-Adapter scale (at keyframe A with --ip-adapter-scale2) (default 1)' : 'IP-Adapter scale (default 1)', numberIn(0, 5));
  if (perKeyframe) command.option('--ip-adapter-scale2 <number>', 'IP-Adapter scale at keyframe B, interpolated along the transition (default: --ip-adapter-scale)', numberIn(0, 5));
  return command;
}

export type ImagePrompts = PicturePair;

const IMAGE_PROMPT_NAMES: PicturePairNames = { modelFlag: '--ip-adapter', modelName: 'IP-Adapter', pictureFlag: '--ip-image', picture: 'an image prompt' };

/** Checks the flag combination and reads the image prompts (undefined without --ip-adapter). */
export async function readImagePromptsFromFlags(flags: IpAdapterFlags): Promise<ImagePrompts | undefined> {
  const paths = picturePairPaths({ single: flags.ipImage, first: flags.ipImage1, second: flags.ipImage2 }, flags.ipAdapter !== undefined, IMAGE_PROMPT_NAMES);
  if (paths === undefined) {
    if (flags.ipAdapterScale !== undefined || flags.ipAdapterScale2 !== undefined) throw usage('--ip-adapter-scale needs --ip-adapter.');
    return undefined;
  }
  return readPicturePair(paths, IMAGE_PROMPT_NAMES);
}

/** Resolves --ip-adapter (folder or Hub repo) and loads it for `pipeline` (family checked first). */
export async function loadIpAdapterForCli(flags: IpAdapterFlags, pipeline: DiffusionPipeline, reporter: Reporter, signal?: AbortSignal): Promise<LoadedIpAdapter> {
  const dir = await resolveModelForCli(flags.ipAdapter!, reporter, signal);
  return pipeline.loadIpAdapter(dir);
}

/** The engine's IP-Adapter settings from the flags. */
export function transitionImagePromptFromFlags(flags: IpAdapterFlags, prompts: ImagePrompts, loaded: LoadedIpAdapter): TransitionImagePrompt {
  return {
    adapter: loaded.adapter,
    ...picturePairSettings(prompts, flags.ipAdapterScale, flags.ipAdapterScale2),
  };
}
