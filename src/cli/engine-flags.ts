/** The engine's options as kebab-case flags, shared by `transition` and `movie`. */
import { Command, Option, InvalidArgumentError } from 'commander';
import { DEVICES } from '../runtime/onnx.ts';
import { PRESETS } from '../model/preset.ts';
import { decimalNumber, integerIn, numberIn } from './parse.ts';
import type { CrossfeedParams } from '../blend/crossfeed.ts';
import { metricOption } from './metric-flags.ts';

/** Parses "P,R,D" (power, range, decay), each in [0, 1]. */
export function crossfeedValue(value: string): CrossfeedParams {
  const parts = value.split(',').map((part) => part.trim());
  const numbers = parts.map(decimalNumber);
  if (parts.length !== 3 || parts.some((part) => part === '') || numbers.some((number) => !Number.isFinite(number) || number < 0 || number > 1)) {
    throw new InvalidArgumentError(`expected three numbers in [0, 1] as power,range,decay (e.g. 0.3,0.6,0.9), got ${JSON.stringify(value)}.`);
  }
  return { power: numbers[0]!, range: numbers[1]!, decay: numbers[2]! };
}

export interface EngineFlags {
  negativePrompt?: string;
  steps?: number;
  guidanceScale?: number;
  midDamper?: number;
  width?: number;
  height?: number;
  depthStrength?: number;
  maxBranches?: number;
  timeBudget?: number;
  batchSize?: number;
  branch1Crossfeed?: CrossfeedParams;
  parentalCrossfeed?: CrossfeedParams;
  device: string;
  preset?: 'turbo' | 'standard';
  scheduler?: string;
  lpips?: string;
  maxArea?: number;
  metric?: string;
}

/** Adds the engine flags to `command`. */
export function addEngineFlags(command: Command): Command {
  return command
    .option('-n, --negative-prompt <text>', 'what to avoid (used with guidance scale > 1)')
    .option('--steps <int>', 'denoising steps (default: 4 for Turbo models, 30 otherwise)', integerIn(2, 1000))
    .option('-g, --guidance-scale <number>', 'classifier-free guidance, used when > 1 (default: 0 Turbo, 4 others)', numberIn(0, 50))
    .option('--mid-damper <number>', 'guidance falls to 1 + (scale - 1) * damper in the middle of the transition; 1 = constant (default 0.5)', numberIn(Number.MIN_VALUE, 1))
    .option('--width <px>', "frame width, rounded to a multiple of 8 (default: the model's size)", integerIn(8, 8192))
    .option('--height <px>', "frame height, rounded to a multiple of 8 (default: the model's size)", integerIn(8, 8192))
    .option('--depth-strength <number>', 'where branches start, in (0,1): low = more new structure, high = closer to a cross-fade (default 0.5)', numberIn(Number.MIN_VALUE, 1 - Number.EPSILON))
    .option('--max-branches <int>', 'computed frames per transition, A and B included (default: 10 Turbo, 16 others)', integerIn(2, 4096))
    .option('--time-budget <seconds>', 'compute budget per transition instead of --max-branches', numberIn(Number.MIN_VALUE, 1e9))
    .option('--batch-size <int>', 'branches computed together in one UNet call per step (GPU throughput)', integerIn(1, 64))
    .option('--branch1-crossfeed <P,R,D>', "share of A's latents copied into B: power,range,decay in [0,1] (default 0,0,0)", crossfeedValue)
    .option('--parental-crossfeed <P,R,D>', "share of the parents' mix copied into a branch: power,range,decay (default Turbo 1,1,1; others 0.3,0.6,0.9)", crossfeedValue)
    .addOption(new Option('-d, --device <name>', 'execution provider').choices(DEVICES).default('cpu'))
    .addOption(new Option('--preset <name>', "defaults to use; by default read from the model's scheduler config").choices(PRESETS))
    .option('--scheduler <class>', "replace the model's scheduler, e.g. EulerDiscreteScheduler")
    .option('--lpips <file.onnx>', 'LPIPS model for perceptual distances (default: $LATENTBLEND_LPIPS or ~/.cache/latentblend/lpips-alex.onnx; else a pixel distance)')
    .option('--max-area <factor>', "largest frame area, as a multiple of the model's native area (default 4)", numberIn(1, 1024))
    .addOption(metricOption());
}

/** The transition options the flags set (keyframes excluded); unset flags stay unset. */
export function engineOptionsFromFlags(flags: EngineFlags): Record<string, unknown> {
  const keys = ['negativePrompt', 'steps', 'guidanceScale', 'midDamper', 'width', 'height', 'depthStrength', 'maxBranches', 'timeBudget', 'batchSize', 'branch1Crossfeed', 'parentalCrossfeed'] as const;
  const options: Record<string, unknown> = {};
  for (const key of keys) if (flags[key] !== undefined) options[key] = flags[key];
  return options;
}

/** Values of the flags added by addFilmOutputFlags. */
export interface FilmOutputFlags {
  workDir?: string;
  ffmpeg?: string;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

/** Flags every film command shares: where the work folder and ffmpeg are, and how it reports. */
export function addFilmOutputFlags(command: Command, workDirHelp: string): Command {
  return command
    .option('--work-dir <dir>', `${workDirHelp} (default: <out>.latentblend beside the film)`)
    .option('--ffmpeg <path>', 'use this ffmpeg instead of the bundled one')
    .option('-f, --force', 'overwrite existing output files', false)
    .option('--json', 'print a JSON summary on stdout', false)
    .option('-q, --quiet', 'no progress output', false);
}
