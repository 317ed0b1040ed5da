/** `latentblend generate`: one image from a prompt. */
import { Command, Option } from 'commander';
import { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { imageFormatFromPath, writeImage } from '../io/image-file.ts';
import { LatentBlendError } from '../errors.ts';
import { prepareOutput } from '../io/files.ts';
import { DEVICES } from '../runtime/onnx.ts';
import { PRESETS } from '../model/preset.ts';
import { createReporter } from './progress.ts';
import { integerIn, numberIn, seedValue } from './parse.ts';
import { DEFAULT_MODEL, resolveModelForCli } from './model-source.ts';
import { nodePlatform } from '../node/platform.ts';
import { checkPicture, readPicture, PICTURE_FITS, type PictureFit } from '../io/picture.ts';
import { addControlFlags, loadControlNetForCli, readControlPicturesFromFlags, type ControlFlags } from './control-flags.ts';
import { addIpAdapterFlags, loadIpAdapterForCli, readImagePromptsFromFlags, type IpAdapterFlags } from './ip-adapter-flags.ts';

interface GenerateFlags extends ControlFlags, IpAdapterFlags {
  model: string;
  prompt: string;
  negativePrompt?: string;
  seed: number;
  steps?: number;
  guidanceScale?: number;
  width?: number;
  height?: number;
  clipSkip?: number;
  device: string;
  preset?: 'turbo' | 'standard';
  scheduler?: string;
  out: string;
  maxArea?: number;
  force: boolean;
  json: boolean;
  quiet: boolean;
  image?: string;
  strength?: number;
  fit: PictureFit;
}

export function generateCommand(): Command {
  const command = new Command('generate')
    .description('Generate one image from a prompt and write it as a PNG, JPEG or WebP (by the extension of --out).')
    .option('-m, --model <path|repo>', 'model folder in Optimum ONNX layout, or a Hugging Face Hub repo id (downloaded once)', DEFAULT_MODEL)
    .requiredOption('-p, --prompt <text>', 'what to draw')
    .option('-n, --negative-prompt <text>', 'what to avoid (used with guidance scale > 1)')
    .option('-s, --seed <int>', 'seed of the start noise; the same seed gives the same image', seedValue, 0)
    .option('--steps <int>', 'denoising steps (default: 4 for Turbo models, 30 otherwise)', integerIn(1, 1000))
    .option('-g, --guidance-scale <number>', 'classifier-free guidance, used when > 1 (default: 0 for Turbo, 4 otherwise)', numberIn(0, 50))
    .option('--width <px>', "image width, rounded to a multiple of 8 (default: the model's size)", integerIn(8, 8192))
    .option('--height <px>', "image height, rounded to a multiple of 8 (default: the model's size)", integerIn(8, 8192))
    .option('--clip-skip <int>', 'skip the last N CLIP layers (as diffusers clip_skip)', integerIn(0, 10))
    .addOption(new Option('-d, --device <name>', 'execution provider').choices(DEVICES).default('cpu'))
    .addOption(new Option('--preset <name>', "defaults to use; by default read from the model's scheduler config").choices(PRESETS))
    .option('--scheduler <class>', "replace the model's scheduler, e.g. EulerDiscreteScheduler")
    .option('--max-area <factor>', "largest picture area, as a multiple of the model's native area (default 4)", numberIn(1, 1024))
    .requiredOption('-o, --out <file>', 'where to write the picture: .png, .jpg/.jpeg or .webp')
    .option('-f, --force', 'overwrite --out if it exists', false)
    .option('--json', 'print a JSON summary on stdout', false)
    .option('-q, --quiet', 'no progress output', false)
    .option('--image <file>', 'image-to-image: start from this picture (PNG, JPEG, WebP, TIFF, AVIF), resized to the image size')
    .option('--strength <number>', 'image-to-image: how much to change the picture, above 0 (keep) to 1 (ignore it); default 0.6', numberIn(0, 1))
    .addOption(new Option('--fit <mode>', 'image-to-image: cover (fill and crop the centre) or contain (fit whole, pad white)').choices(PICTURE_FITS).default('cover'));
  addIpAdapterFlags(command, false);
  return addControlFlags(command, false)
    .addHelpText(
      'after',
      `
Examples:
  latentblend generate --prompt "a lighthouse at dawn, oil painting" --seed 7 --out lighthouse.png
  latentblend generate --model fixtures/models/tiny-sdxl-turbo/onnx --prompt "a cat" --seed 1 --out cat.png
  latentblend generate --image photo.jpg --strength 0.6 --prompt "a watercolour painting" --out painted.png

  latentblend generate --model models/sd15 --controlnet models/controlnet-canny --control-image photo.jpg --canny --prompt "a watercolour" --out w.png`,
    )
    .action(async (flags: GenerateFlags) => {
      imageFormatFromPath(flags.out);
      prepareOutput(flags.out, flags.force);
      if (flags.image !== undefined) await checkPicture(flags.image);
      else if (flags.strength !== undefined) throw new LatentBlendError('--strength needs --image (image-to-image).');
      const pictures = await readControlPicturesFromFlags(flags, flags.force);
      const imagePrompts = await readImagePromptsFromFlags(flags);
      const reporter = createReporter({ quiet: flags.quiet || flags.json });
      const modelDir = await resolveModelForCli(flags.model, reporter);
      const pipeline = await DiffusionPipeline.load(nodePlatform, 
        {
          modelDir,
          device: flags.device as (typeof DEVICES)[number],
          ...(flags.preset !== undefined ? { preset: flags.preset } : {}),
          ...(flags.scheduler !== undefined ? { scheduler: flags.scheduler } : {}),
          ...(flags.maxArea !== undefined ? { maxAreaFactor: flags.maxArea } : {}),
        },
        reporter.listener,
      );
      // Sizes are checked before anything runs (the pipeline checks again, after rounding).
      pipeline.checkSize(pipeline.roundedSize(flags.width ?? pipeline.defaults.width), pipeline.roundedSize(flags.height ?? pipeline.defaults.height));
      const control = pictures === undefined ? undefined : await loadControlNetForCli(flags, pipeline, reporter);
      const ip = imagePrompts === undefined ? undefined : await loadIpAdapterForCli(flags, pipeline, reporter);
      const steps = flags.steps ?? pipeline.defaults.steps;
      const width = pipeline.roundSize(flags.width ?? pipeline.defaults.width, 'width');
      const height = pipeline.roundSize(flags.height ?? pipeline.defaults.height, 'height');
      const image = flags.image !== undefined ? await readPicture(flags.image, { width, height, fit: flags.fit }) : undefined;
      reporter.startBar('denoising', steps);
      // ControlNet / IP-Adapter runs use the UNet's other exports: count them all.
      const unetModels = () => [pipeline.unet.model, pipeline.unet.residualModel, pipeline.unet.ipAdapterModel].filter((model) => model !== undefined);
      const unetStats = () => unetModels().reduce((sum, model) => ({ calls: sum.calls + model.stats.calls, seconds: sum.seconds + model.stats.seconds }), { calls: 0, seconds: 0 });
      const unetBefore = unetStats();
      const result = await pipeline.generate({
        prompt: flags.prompt,
        ...(flags.negativePrompt !== undefined ? { negativePrompt: flags.negativePrompt } : {}),
        seed: flags.seed,
        steps,
        ...(flags.guidanceScale !== undefined ? { guidanceScale: flags.guidanceScale } : {}),
        width,
        height,
        ...(flags.clipSkip !== undefined ? { clipSkip: flags.clipSkip } : {}),
        ...(image !== undefined ? { image, ...(flags.strength !== undefined ? { strength: flags.strength } : {}) } : {}),
        ...(control !== undefined && pictures !== undefined
          ? {
              control: {
                controlNet: control.controlNet,
                picture: pictures.pictureA,
                ...(flags.controlnetScale !== undefined ? { scale: flags.controlnetScale } : {}),
                ...(flags.controlGuidanceStart !== undefined ? { guidanceStart: flags.controlGuidanceStart } : {}),
                ...(flags.controlGuidanceEnd !== undefined ? { guidanceEnd: flags.controlGuidanceEnd } : {}),
              },
            }
          : {}),
        ...(ip !== undefined && imagePrompts !== undefined
          ? { ipAdapter: { adapter: ip.adapter, picture: imagePrompts.pictureA, ...(flags.ipAdapterScale !== undefined ? { scale: flags.ipAdapterScale } : {}) } }
          : {}),
      });
      reporter.stopBar();
      await writeImage(flags.out, result.image, flags.force);
      const unetAfter = unetStats();
      const unetCalls = unetAfter.calls - unetBefore.calls;
      const unetSeconds = unetAfter.seconds - unetBefore.seconds;
      const decode = pipeline.vae.decoder.stats;
      const summary = {
        out: flags.out,
        width: result.width,
        height: result.height,
        steps: result.steps,
        seed: flags.seed,
        ...(flags.image !== undefined ? { image: flags.image, strength: flags.strength ?? 0.6 } : {}),
        guidanceScale: result.guidanceScale,
        preset: pipeline.defaults.preset,
        unetCalls,
        msPerUnetStep: unetCalls > 0 ? (unetSeconds / unetCalls) * 1000 : 0,
        msPerDecode: decode.calls > 0 ? (decode.seconds / decode.calls) * 1000 : 0,
        seconds: result.seconds,
      };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      } else if (!flags.quiet) {
        process.stderr.write(
          `wrote ${flags.out} (${result.width}x${result.height}, ${result.steps} steps, seed ${flags.seed}) in ${result.seconds.toFixed(2)} s — UNet ${summary.msPerUnetStep.toFixed(1)} ms/step, decode ${summary.msPerDecode.toFixed(1)} ms\n`,
        );
      }
    });
}
