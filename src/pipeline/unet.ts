/** The denoising UNet (ONNX): a batch of latents, one timestep, batched conditioning → prediction. */
import { floatTensor, intTensor, requireInput, requireOutput, runModel, toFloat32, type OnnxModel } from '../runtime/onnx.ts';
import type { Tensor32 } from './tensor.ts';
import type { FeedTensor, TensorType } from '../runtime/onnx.ts';
import { LatentBlendError } from '../errors.ts';

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
    this.conditioningInputs = [...model.inputTypes.keys()].filter((name) => name !== 'sample' && name !== 'timestep');
  }

  /** Number of UNet calls made so far (one per batch), for tests and benchmarks. */
  calls = 0;
  /** Number of latent rows evaluated so far (a batch of B rows counts B). */
  evaluations = 0;

  /**
   * Predicts for a batch. `sample` is [B, C, H, W]; every conditioning tensor has batch B.
   * @param timestep the scheduler's timestep for this step (same for the whole batch)
   */
  async predict(sample: Tensor32, timestep: number, conditioning: ReadonlyMap<string, Tensor32>): Promise<Float32Array> {
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
    const outputs = await runModel(this.model, feeds);
    this.calls += 1;
    this.evaluations += batch;
    return toFloat32(outputs[this.outputName]!);
  }
}
