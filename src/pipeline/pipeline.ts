/**
 * A loaded text-to-image model: folder checks, sessions on the chosen device, the family's
 * adapter, the scheduler, UNet and VAE, and `generate` for a single image. The blending engine
 * uses the same parts (encode, denoise, decode) to grow its tree.
 */
import { z } from 'zod';
import { inspectModelFolder, type ModelFolder } from '../model/folder.ts';
import { modelDefaults, PRESETS, type ModelDefaults, type Preset } from '../model/preset.ts';
import { loadClipTokenizer } from '../model/tokenizer.ts';
import { loadOnnxModel, DEVICES, INFERENCE_THREADS, type Device, type OnnxModel } from '../runtime/onnx.ts';
import type { Platform } from '../runtime/platform.ts';
import { ClipTextEncoder } from '../adapters/text-encoder.ts';
import { SdAdapter } from '../adapters/sd.ts';
import { SdxlAdapter } from '../adapters/sdxl.ts';
import type { Conditioning, ModelAdapter } from '../adapters/adapter.ts';
import { createScheduler, SUPPORTED_SCHEDULERS } from '../schedulers/index.ts';
import type { Scheduler } from '../schedulers/scheduler.ts';
import { Unet } from './unet.ts';
import { Vae, type RgbImage } from './vae.ts';
import type { LatentDecoder } from './vae.ts';
import { denoise, type StepEvent } from './denoise.ts';
import { loadControlNet, type ControlNet, type LoadedControlNet } from './controlnet.ts';
import { controlFractionSchema, controlScaleSchema, DEFAULT_CONTROL_GUIDANCE, guidanceWindowProblem } from './control-options.ts';
import { controlTensor } from '../image/control-tensor.ts';
import { loadIpAdapter, withImagePrompt, type IpAdapter, type LoadedIpAdapter } from './ip-adapter.ts';
import { KeyframeNoise } from './keyframe-noise.ts';
import { img2imgStart } from './picture-latents.ts';
import { parseOptions, seedSchema } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';
import { checkPictureSize, DEFAULT_MAX_AREA_FACTOR } from './size-limit.ts';

/** Events the library emits; front ends render them (the library never prints). */
export type PipelineEvent =
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'load'; readonly part: string; readonly seconds: number }
  | ({ readonly type: 'step' } & StepEvent)
  | { readonly type: 'decode'; readonly seconds: number };

export type EventListener = (event: PipelineEvent) => void;

export const loadOptionsSchema = z.strictObject({
  /** A local model folder (already resolved from a Hub id by the caller if needed). */
  modelDir: z.string({ error: 'expected the path of a model folder' }).min(1, { error: 'expected the path of a model folder' }),
  device: z.enum(DEVICES, { error: `expected one of ${DEVICES.join(', ')}` }).default('cpu'),
  preset: z.enum(PRESETS as [Preset, ...Preset[]], { error: `expected one of ${PRESETS.join(', ')}` }).optional(),
  /** Replace the model's scheduler class (its config is kept, as diffusers' from_config does). */
  scheduler: z.string().optional(),
  /** Scheduler config fields to change (e.g. { prediction_type: 'v_prediction' }). */
  schedulerConfig: z.record(z.string(), z.unknown()).optional(),
  /** Largest picture area as a multiple of the model's native area (default 4); see size-limit.ts. */
  maxAreaFactor: z.number({ error: 'expected a number >= 1' }).min(1, { error: 'expected a number >= 1' }).optional(),
  /**
   * 'worker': each ONNX session is created and run in its own worker thread, so this thread stays
   * responsive (and independent sessions, e.g. SDXL's two text encoders, run at the same time);
   * 'main' (default): on this thread, which each creation and call blocks.
   */
  inferenceThread: z.enum(INFERENCE_THREADS, { error: `expected one of ${INFERENCE_THREADS.join(', ')}` }).default('main'),
  /**
   * A folder where ONNX Runtime's optimised graphs are kept (opt-in): later loads skip the graph
   * optimisation, the first one writes a copy of each model (see runtime/optimized-cache.ts).
   */
  optimizedModelCache: z.string({ error: 'expected the path of a folder' }).min(1, { error: 'expected the path of a folder' }).optional(),
});
export type LoadOptions = z.input<typeof loadOptionsSchema>;

/** The model's parts, loaded and ready. */
export class DiffusionPipeline {
  private constructor(
    /** The ONNX Runtime and file access it was loaded with (ControlNets and IP-Adapters load with them too). */
    readonly platform: Platform,
    readonly folder: ModelFolder,
    readonly defaults: ModelDefaults,
    readonly device: Device,
    readonly adapter: ModelAdapter,
    readonly unet: Unet,
    readonly vae: Vae,
    readonly schedulerClass: string,
    readonly schedulerConfig: Readonly<Record<string, unknown>>,
    private readonly eagerModels: readonly OnnxModel[],
    private readonly listener: EventListener | undefined,
    /** Largest picture area as a multiple of the native area (see checkSize). */
    readonly maxAreaFactor: number = DEFAULT_MAX_AREA_FACTOR,
  ) {}

  /** The ONNX models loaded so far (the VAE encoder only once a picture was encoded). */
  get models(): readonly OnnxModel[] {
    const encoder = this.vae.loadedEncoder;
    return encoder === undefined ? this.eagerModels : [...this.eagerModels, encoder];
  }

  /**
   * The VAE encoder, loaded on first use (emits a 'load' event then). Throws a LatentBlendError
   * (code 'model_folder') when the model folder has no vae_encoder.
   */
  vaeEncoder(): Promise<OnnxModel> {
    return this.vae.encoderModel();
  }

  /**
   * Loads the model folder on the given device, with the platform's ONNX Runtime and files
   * (Node: `nodePlatform` from src/node/platform.ts; a browser: src/browser/).
   */
  static async load(platform: Platform, options: LoadOptions, listener?: EventListener): Promise<DiffusionPipeline> {
    const parsed = parseOptions(loadOptionsSchema, options, 'model options');
    const device = platform.runtime.checkDevice(parsed.device);
    const folder = inspectModelFolder(platform.files, parsed.modelDir);
    const defaults = modelDefaults(folder, parsed.preset);
    const schedulerClass = parsed.scheduler ?? folder.schedulerClass;
    if (!SUPPORTED_SCHEDULERS.includes(schedulerClass)) {
      throw new LatentBlendError(
        `Scheduler ${schedulerClass}${parsed.scheduler === undefined ? ` (from ${folder.dir}/scheduler/scheduler_config.json)` : ''} is not supported; supported: ${SUPPORTED_SCHEDULERS.join(', ')}. Choose one with the scheduler option.`,
        'unsupported',
      );
    }
    const schedulerConfig = { ...folder.schedulerConfig, ...parsed.schedulerConfig };
    // Fails early on a bad config, before the slow session loads.
    createScheduler(schedulerClass, schedulerConfig, defaults.steps);

    const thread = parsed.inferenceThread;
    const timed = async (part: string, path: string): Promise<OnnxModel> => {
      const started = performance.now();
      const model = await loadOnnxModel(platform.runtime, path, part, device, {
        thread,
        ...(parsed.optimizedModelCache !== undefined ? { optimizedCache: parsed.optimizedModelCache } : {}),
      });
      listener?.({ type: 'load', part, seconds: (performance.now() - started) / 1000 });
      return model;
    };
    // One after the other, in worker threads too: creating them concurrently was slower on the
    // 2-core machine (issue #12: 25-39 s against 18-21 s for the full-size SD-Turbo).
    const encoderModels: OnnxModel[] = [];
    for (const [index, path] of folder.textEncoders.entries()) {
      encoderModels.push(await timed(index === 0 ? 'text encoder' : 'text encoder 2', path));
    }
    const encoders = encoderModels.map((model, index) => new ClipTextEncoder(model, loadClipTokenizer(platform.files, folder.tokenizers[index]!)));
    const adapter: ModelAdapter =
      folder.family === 'sdxl'
        ? new SdxlAdapter(encoders[0]!, encoders[1]!, folder.modelIndex.force_zeros_for_empty_prompt !== false)
        : new SdAdapter(encoders[0]!);
    const unetModel = await timed('UNet', folder.unet);
    const decoderModel = await timed('VAE decoder', folder.vaeDecoder);
    const vaeEncoderPath = folder.vaeEncoder;
    // Loaded when a picture is first encoded: generate and transition never need it.
    const loadEncoder = vaeEncoderPath === undefined ? undefined : () => timed('VAE encoder', vaeEncoderPath);
    const vae = new Vae(decoderModel, loadEncoder, defaults.vaeScalingFactor, defaults.vaeScaleFactor);
    // diffusers' default VAE config says force_upcast for every model, but only SDXL's VAE is
    // known to overflow in float16 (decodeRaw also reports NaN output).
    if (folder.family === 'sdxl' && defaults.vaeForceUpcast && decoderModel.inputTypes.get('latent_sample') === 'float16') {
      listener?.({
        type: 'warning',
        message: 'The VAE decoder is float16 but the model asks for float32 decoding (force_upcast); images may come out black. Prefer a float32 VAE decoder.',
      });
    }
    const models = [...encoderModels, unetModel, decoderModel];
    return new DiffusionPipeline(platform, folder, defaults, device, adapter, new Unet(unetModel), vae, schedulerClass, schedulerConfig, models, listener, parsed.maxAreaFactor);
  }

  /**
   * Loads a ControlNet folder for this model (docs/controlnet-onnx.md): checks its family and
   * conditioning width against the model and the model's `unet_controlnet/` export first.
   */
  async loadControlNet(dir: string): Promise<LoadedControlNet> {
    const started = performance.now();
    const loaded = await loadControlNet(this.platform, dir, this.folder, this.unet, this.device);
    this.listener?.({ type: 'load', part: 'ControlNet', seconds: (performance.now() - started) / 1000 });
    return loaded;
  }

  /**
   * Loads an IP-Adapter folder for this model (docs/ip-adapter-onnx.md): checks its family and
   * UNet against the model first, then attaches its UNet to this pipeline's UNet.
   */
  async loadIpAdapter(dir: string): Promise<LoadedIpAdapter> {
    const started = performance.now();
    const loaded = await loadIpAdapter(this.platform, dir, this.folder, this.unet, this.device);
    this.listener?.({ type: 'load', part: 'IP-Adapter', seconds: (performance.now() - started) / 1000 });
    return loaded;
  }

  /** Emits an event to the listener given at load time. */
  emit(event: PipelineEvent): void {
    this.listener?.(event);
  }

  /** A scheduler for `steps` denoising steps, from the model's config. */
  scheduler(steps: number, options: { eta?: number } = {}): Scheduler {
    return createScheduler(this.schedulerClass, this.schedulerConfig, steps, options);
  }

  /** Latent shape [channels, height/scale, width/scale] for an image size in pixels. */
  latentShape(width: number, height: number): [number, number, number] {
    const scale = this.defaults.vaeScaleFactor;
    return [this.defaults.latentChannels, height / scale, width / scale];
  }

  /**
   * Refuses a picture size that cannot fit in memory (above maxAreaFactor times the model's
   * native area) with the estimated memory in the message; called before any model runs.
   */
  checkSize(width: number, height: number): void {
    checkPictureSize(width, height, this.defaults, this.maxAreaFactor);
  }

  /** `value` rounded to the nearest multiple of the VAE scale factor (at least one), silently. */
  roundedSize(value: number): number {
    const scale = this.defaults.vaeScaleFactor;
    return Math.max(scale, Math.round(value / scale) * scale);
  }

  /**
   * Rounds a size in pixels to the nearest multiple of the VAE scale factor (at least one
   * multiple), warning when it changes.
   */
  roundSize(value: number, name: string): number {
    const scale = this.defaults.vaeScaleFactor;
    const rounded = this.roundedSize(value);
    if (rounded !== value) {
      this.emit({ type: 'warning', message: `${name} ${value} rounded to ${rounded} (must be a multiple of ${scale} for this model).` });
    }
    return rounded;
  }

  /** Encodes a prompt (and, for guidance, the negative prompt), warning when tokens are cut. */
  async encode(
    prompt: string,
    negativePrompt: string | undefined,
    options: { width: number; height: number; clipSkip?: number; guided: boolean },
  ): Promise<{ positive: Conditioning; negative?: Conditioning }> {
    const encodeOptions = { width: options.width, height: options.height, ...(options.clipSkip !== undefined ? { clipSkip: options.clipSkip } : {}) };
    const positive = await this.adapter.encodePrompt(prompt, encodeOptions);
    if (positive.droppedTokens > 0) {
      this.emit({
        type: 'warning',
        message: `The prompt is too long: ${positive.droppedTokens} token${positive.droppedTokens === 1 ? '' : 's'} beyond the text encoder's limit were dropped ("${prompt.slice(0, 40)}${prompt.length > 40 ? '…' : ''}").`,
      });
    }
    if (!options.guided) return { positive: positive.conditioning };
    const negative = await this.adapter.encodeNegative(negativePrompt, encodeOptions, positive.conditioning);
    if (negative.droppedTokens > 0) {
      this.emit({ type: 'warning', message: `The negative prompt is too long: ${negative.droppedTokens} tokens were dropped.` });
    }
    return { positive: positive.conditioning, negative: negative.conditioning };
  }

  /**
   * Generates one image; see GenerateOptions. `decoder` decodes the final latents instead of the
   * model's VAE (the studio's preview decoder, ./preview-vae.ts); films never pass one.
   */
  async generate(options: GenerateOptions, decoder: LatentDecoder = this.vae): Promise<GenerateResult> {
    const parsed = parseOptions(generateOptionsSchema, options, 'generate options');
    const width = this.roundSize(parsed.width ?? this.defaults.width, 'width');
    const height = this.roundSize(parsed.height ?? this.defaults.height, 'height');
    this.checkSize(width, height);
    const steps = parsed.steps ?? this.defaults.steps;
    const guidanceScale = parsed.guidanceScale ?? this.defaults.guidanceScale;
    const scheduler = this.scheduler(steps, parsed.eta !== undefined ? { eta: parsed.eta } : {});
    const guided = guidanceScale > 1;
    const started = performance.now();
    const encoded = await this.encode(parsed.prompt, parsed.negativePrompt, {
      width,
      height,
      guided,
      ...(parsed.clipSkip !== undefined ? { clipSkip: parsed.clipSkip } : {}),
    });
    let { positive, negative } = encoded;
    const ip = parsed.ipAdapter;
    if (ip !== undefined) {
      // As diffusers: the picture's embedding on the positive side; on the negative one zeros (plain)
      // or the encoding of zero pixels (plus).
      const embeds = await ip.adapter.encode(ip.picture);
      const scale = ip.scale ?? 1;
      positive = withImagePrompt(positive, embeds, scale);
      if (negative !== undefined) negative = withImagePrompt(negative, await ip.adapter.negativeEmbeds(embeds), scale);
    }
    const shape = this.latentShape(width, height);
    const control = parsed.control;
    if (control !== undefined && parsed.ipAdapter !== undefined) {
      throw new LatentBlendError('generate options: a ControlNet and an IP-Adapter together are not supported yet.', 'unsupported');
    }
    if (control !== undefined) {
      const problem = guidanceWindowProblem(control.guidanceStart ?? DEFAULT_CONTROL_GUIDANCE.start, control.guidanceEnd ?? DEFAULT_CONTROL_GUIDANCE.end);
      if (problem !== undefined) throw new LatentBlendError(`generate options: ${problem}.`);
    }
    const noise = new KeyframeNoise(parsed.seed);
    const length = shape[0] * shape[1] * shape[2];
    let fromStep = 0;
    let latents: Float32Array;
    let schedulerState: unknown;
    if (parsed.image !== undefined) {
      // Image-to-image (diffusers' StableDiffusion(XL)Img2ImgPipeline): see img2imgStart.
      if (parsed.image.width !== width || parsed.image.height !== height) {
        throw new LatentBlendError(`The picture is ${parsed.image.width}×${parsed.image.height} but the image size is ${width}×${height}; read it at that size.`);
      }
      const start = await img2imgStart(this, scheduler, {
        image: parsed.image,
        steps,
        strength: parsed.strength,
        seed: parsed.seed,
        mode: parsed.imageLatents,
        ...(parsed.posteriorNoise !== undefined ? { posteriorNoise: parsed.posteriorNoise } : {}),
        ...(parsed.startLatents !== undefined ? { noise: parsed.startLatents } : {}),
      });
      fromStep = start.fromStep;
      latents = start.latents;
      schedulerState = scheduler.img2imgState?.(fromStep);
    } else {
      const start = parsed.startLatents ?? noise.start(length);
      latents = Float32Array.from(start, (value) => value * scheduler.initNoiseSigma);
    }
    const result = await denoise({
      unet: this.unet,
      scheduler,
      latentShape: shape,
      items: [
        {
          latents,
          conditioning: positive,
          ...(negative !== undefined ? { negative } : {}),
          guidanceScale,
          stepNoise: parsed.stepNoise ?? ((stepIndex) => noise.step(stepIndex, length)),
          ...(schedulerState !== undefined ? { schedulerState } : {}),
          ...(control !== undefined ? { control: [{ image: controlTensor(control.picture, width, height), weight: control.scale ?? 1 }] } : {}),
        },
      ],
      ...(control !== undefined
        ? {
            control: {
              controlNet: control.controlNet,
              guidanceStart: control.guidanceStart ?? DEFAULT_CONTROL_GUIDANCE.start,
              guidanceEnd: control.guidanceEnd ?? DEFAULT_CONTROL_GUIDANCE.end,
            },
          }
        : {}),
      fromStep,
      toStep: scheduler.timesteps.length,
      onStep: (event) => this.emit({ type: 'step', ...event }),
      ...(parsed.signal !== undefined ? { signal: parsed.signal } : {}),
    });
    const trajectory = result.trajectories[0]!;
    const decodeStarted = performance.now();
    const image = await decoder.decode(trajectory[trajectory.length - 1]!, shape);
    const decodeSeconds = (performance.now() - decodeStarted) / 1000;
    this.emit({ type: 'decode', seconds: decodeSeconds });
    return { image, trajectory, width, height, steps, guidanceScale, seconds: (performance.now() - started) / 1000 };
  }
}

const positiveInteger = (name: string) => z.number({ error: `expected a positive integer ${name}` }).int({ error: `expected a positive integer ${name}` }).min(1, { error: `expected a positive integer ${name}` });

export const generateOptionsSchema = z.strictObject({
  prompt: z.string({ error: 'expected a prompt string' }),
  negativePrompt: z.string({ error: 'expected a string' }).optional(),
  seed: seedSchema.default(0),
  steps: positiveInteger('number of steps').max(1000, { error: 'expected at most 1000 steps' }).optional(),
  guidanceScale: z.number({ error: 'expected a number from 0 to 50' }).min(0, { error: 'expected a number from 0 to 50' }).max(50, { error: 'expected a number from 0 to 50' }).optional(),
  width: positiveInteger('width in pixels').max(8192, { error: 'expected at most 8192 pixels' }).optional(),
  height: positiveInteger('height in pixels').max(8192, { error: 'expected at most 8192 pixels' }).optional(),
  clipSkip: z.number().int({ error: 'expected an integer from 0 to 10' }).min(0, { error: 'expected an integer from 0 to 10' }).max(10, { error: 'expected an integer from 0 to 10' }).optional(),
  /** DDIM's eta (0 = deterministic, 1 = DDPM-like noise); other schedulers ignore it. */
  eta: z.number({ error: 'expected a number from 0 to 1' }).min(0, { error: 'expected a number from 0 to 1' }).max(1, { error: 'expected a number from 0 to 1' }).optional(),
  /** Unit-Gaussian start latents instead of the seed's (tests, image-to-image). */
  startLatents: z.custom<Float32Array>((value) => value instanceof Float32Array, { error: 'expected a Float32Array' }).optional(),
  /** Step noise for stochastic schedulers instead of the seed's stream. */
  stepNoise: z.custom<(stepIndex: number) => Float32Array>((value) => typeof value === 'function', { error: 'expected a function' }).optional(),
  signal: z.instanceof(AbortSignal).optional(),
  /** Image-to-image: the input picture, RGB8 at the output size (see src/io/picture.ts). */
  image: z.custom<RgbImage>((value) => typeof value === 'object' && value !== null && (value as RgbImage).data instanceof Uint8Array, { error: 'expected an RGB8 image' }).optional(),
  /** Image-to-image: how much of the schedule runs, 0 (keep the picture) to 1 (ignore it); default 0.6. */
  strength: z.number({ error: 'expected a strength from 0 to 1' }).gt(0, { error: 'expected a strength above 0 and at most 1' }).max(1, { error: 'expected a strength above 0 and at most 1' }).default(0.6),
  /** Image-to-image: the picture's latents from the VAE posterior's seeded `sample` (diffusers' default) or its `mean`. */
  imageLatents: z.enum(['sample', 'mean'], { error: 'expected sample or mean' }).default('sample'),
  /** Image-to-image: unit-Gaussian posterior noise instead of the seed's (tests). */
  posteriorNoise: z.custom<Float32Array>((value) => value instanceof Float32Array, { error: 'expected a Float32Array' }).optional(),
  /** ControlNet: a loaded ControlNet (loadControlNet), the control picture (any size; stretched to the output size), scale and guidance window. */
  control: z
    .strictObject({
      controlNet: z.custom<ControlNet>((value) => typeof value === 'object' && value !== null && 'residualNames' in value, { error: 'expected a loaded ControlNet' }),
      picture: z.custom<RgbImage>((value) => typeof value === 'object' && value !== null && (value as RgbImage).data instanceof Uint8Array, { error: 'expected an RGB picture' }),
      scale: controlScaleSchema.optional(),
      guidanceStart: controlFractionSchema.optional(),
      guidanceEnd: controlFractionSchema.optional(),
    })
    .optional(),
  /** IP-Adapter: a loaded IP-Adapter (loadIpAdapter), the image prompt (any size) and the adapter scale (default 1). */
  ipAdapter: z
    .strictObject({
      adapter: z.custom<IpAdapter>((value) => typeof value === 'object' && value !== null && 'encoder' in value, { error: 'expected a loaded IP-Adapter' }),
      picture: z.custom<RgbImage>((value) => typeof value === 'object' && value !== null && (value as RgbImage).data instanceof Uint8Array, { error: 'expected an RGB picture' }),
      scale: z.number({ error: 'expected an IP-Adapter scale from 0 to 5' }).min(0, { error: 'expected an IP-Adapter scale from 0 to 5' }).max(5, { error: 'expected an IP-Adapter scale from 0 to 5' }).optional(),
    })
    .optional(),
});
/** Options of `generate`: prompt, seed, steps (default: model's), guidance scale, size in pixels, clip skip. */
export type GenerateOptions = z.input<typeof generateOptionsSchema>;

export interface GenerateResult {
  readonly image: RgbImage;
  /** Latents after every step run (image-to-image: only the steps it runs). */
  readonly trajectory: readonly Float32Array[];
  readonly width: number;
  readonly height: number;
  readonly steps: number;
  readonly guidanceScale: number;
  /** Wall seconds from encoding to decoded image. */
  readonly seconds: number;
}
