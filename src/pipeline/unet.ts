/** The denoising UNet (ONNX): a batch of latents, one timestep, batched conditioning → prediction. */
import { floatTensor, intTensor, requireInput, requireOutput, runModel, toFloat32, type OnnxModel } from '../runtime/onnx.ts';
import type { Tensor32 } from './tensor.ts';
import type { FeedTensor, TensorType } from '../runtime/onnx.ts';
import { LatentBlendError } from '../errors.ts';

/** Whether a UNet input is a ControlNet residual (latentblend's `unet_controlnet` export, docs/controlnet-onnx.md). */
export function isResidualInput(name: string): boolean {
  return /^(down_block_\d+|mid_block)_additional_residual$/.test(name);
}

export class Unet {
  private readonly sampleType: TensorType;
  private readonly timestepType: TensorType;
  private readonly outputName: string;
  /** Conditioning inputs the model declares besides sample and timestep. */
  readonly conditioningInputs: readonly string[];

  constructor(readonly model: OnnxModel) {
    this.sampleType = requireInput(model, 'sample');
    this.timestepType = requireInput(model, 'timestep');
    requireInput(model, 'encoder_hidden_states');
    this.outputName = model.outputNames.includes('out_sample') ? 'out_sample' : (model.outputNames[0] ?? 'out_sample');
    requireOutput(model, this.outputName);
    this.conditioningInputs = [...model.inputTypes.keys()].filter((name) => name !== 'sample' && name !== 'timestep' && !isResidualInput(name));
  }

  /**
   * The same UNet exported with ControlNet residual inputs (`unet_controlnet/`), used by
   * `predict` when it is given residuals; calls and evaluations are counted here either way.
   */
  residualModel: OnnxModel | undefined;

  /** Attaches the residual-taking export of this UNet (see ControlNet loading). */
  useResidualModel(model: OnnxModel): void {
    requireInput(model, 'sample');
    requireInput(model, 'timestep');
    const missing = this.conditioningInputs.filter((name) => !model.inputTypes.has(name));
    if (missing.length > 0 || ![...model.inputTypes.keys()].some(isResidualInput)) {
      throw new LatentBlendError(
        `${model.path}: expected the UNet with ControlNet residual inputs (inputs ${this.conditioningInputs.join(', ')} and down_block_N_additional_residual…); it has ${[...model.inputTypes.keys()].join(', ')}.`,
        'model_folder',
      );
    }
    this.residualModel = model;
  }

  /**
   * The same UNet exported with an IP-Adapter's attention (its `unet/`, docs/ip-adapter-onnx.md),
   * used by `predict` when the conditioning holds `image_embeds`.
   */
  ipAdapterModel: OnnxModel | undefined;

  /** Attaches an IP-Adapter's UNet export (see IP-Adapter loading); replaces an earlier one. */
  useIpAdapterModel(model: OnnxModel): void {
    requireInput(model, 'sample');
    requireInput(model, 'timestep');
    requireInput(model, 'image_embeds');
    requireInput(model, 'ip_adapter_scale');
    const missing = this.conditioningInputs.filter((name) => !model.inputTypes.has(name));
    if (missing.length > 0) {
      throw new LatentBlendError(`${model.path}: the IP-Adapter's UNet lacks the model's inputs ${missing.join(', ')}: it was exported for another model family.`, 'model_folder');
    }
    this.ipAdapterModel = model;
  }

  /** Number of UNet calls made so far (one per batch), for tests and benchmarks. */
  calls = 0;
  /** Number of latent rows evaluated so far (a batch of B rows counts B). */
  evaluations = 0;

  /**
   * Predicts for a batch. `sample` is [B, C, H, W]; every conditioning tensor has batch B.
   * @param timestep the scheduler's timestep for this step (same for the whole batch)
   * @param signal an abort rejects at once (see runModel)
   */
  async predict(
    sample: Tensor32,
    timestep: number,
    conditioning: ReadonlyMap<string, Tensor32>,
    /** ControlNet residuals by input name (batch B); needs `useResidualModel` first. */
    residuals?: ReadonlyMap<string, Tensor32>,
    signal?: AbortSignal,
  ): Promise<Float32Array> {
    if (residuals !== undefined || conditioning.has('image_embeds')) return this.predictWithResiduals(sample, timestep, conditioning, residuals ?? new Map(), signal);
    const batch = sample.dims[0] ?? 1;
    const feeds: Record<string, FeedTensor> = {
      sample: floatTensor(this.sampleType, sample.data, sample.dims),
    };
    const rank = this.model.inputRanks.get('timestep') ?? 1;
    const timesteps = new Array<number>(batch).fill(timestep);
    // int64 timesteps are whole numbers in every scheduler that exports them so.
    feeds.timestep =
      rank === 0
        ? intTensor(this.timestepType, [timestep], [])
        : intTensor(this.timestepType, timesteps, [batch]);
    for (const name of this.conditioningInputs) {
      const tensor = conditioning.get(name);
      if (tensor === undefined) {
        throw new LatentBlendError(
          `${this.model.path}: the UNet needs input "${name}", which this model family's conditioning does not provide.`,
          'model_folder',
        );
      }
      const type = this.model.inputTypes.get(name)!;
      feeds[name] = floatTensor(type, tensor.data, tensor.dims);
    }
    const outputs = await runModel(this.model, feeds, signal);
    this.calls += 1;
    this.evaluations += batch;
    return toFloat32(outputs[this.outputName]!);
  }

  private async predictWithResiduals(
    sample: Tensor32,
    timestep: number,
    conditioning: ReadonlyMap<string, Tensor32>,
    residuals: ReadonlyMap<string, Tensor32>,
    signal?: AbortSignal,
  ): Promise<Float32Array> {
    const wantsResiduals = residuals.size > 0;
    const wantsImage = conditioning.has('image_embeds');
    if (wantsResiduals && wantsImage) {
      throw new LatentBlendError('A ControlNet and an IP-Adapter together are not supported (no UNet export takes both).', 'unsupported');
    }
    const model = wantsImage ? this.ipAdapterModel : this.residualModel;
    if (model === undefined) {
      throw new LatentBlendError(
        wantsImage ? 'This UNet has no IP-Adapter export attached.' : 'This UNet has no ControlNet residual export attached (unet_controlnet/).',
        'model_folder',
      );
    }
    const batch = sample.dims[0] ?? 1;
    const feeds: Record<string, FeedTensor> = {
      sample: floatTensor(model.inputTypes.get('sample')!, sample.data, sample.dims),
    };
    const timestepType = model.inputTypes.get('timestep')!;
    feeds.timestep =
      (model.inputRanks.get('timestep') ?? 1) === 0
        ? intTensor(timestepType, [timestep], [])
        : intTensor(timestepType, new Array<number>(batch).fill(timestep), [batch]);
    for (const [name, type] of model.inputTypes) {
      if (name === 'sample' || name === 'timestep') continue;
      const tensor = isResidualInput(name) ? residuals.get(name) : conditioning.get(name);
      if (tensor === undefined) {
        throw new LatentBlendError(`${model.path}: the UNet needs input "${name}", which was not provided.`, 'model_folder');
      }
      feeds[name] = floatTensor(type, tensor.data, tensor.dims);
    }
    const outputs = await runModel(model, feeds, signal);
    this.calls += 1;
    this.evaluations += batch;
    const output = outputs['out_sample'] ?? outputs[model.outputNames[0]!]!;
    return toFloat32(output);
  }
}
