/** A CLIP text encoder (ONNX) with its tokenizer: prompt in, named hidden states out. */
import type { ClipTokenizer } from '../model/tokenizer.ts';
import { intTensor, requireInput, runModel, toFloat32, type OnnxModel } from '../runtime/onnx.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';
import { LatentBlendError } from '../errors.ts';

export interface TextEncoding {
  /** Every output of the encoder, by ONNX output name, as float32. */
  readonly outputs: ReadonlyMap<string, Tensor32>;
  readonly droppedTokens: number;
  readonly inputIds: Int32Array;
}

export class ClipTextEncoder {
  readonly idsType;

  constructor(
    readonly model: OnnxModel,
    readonly tokenizer: ClipTokenizer,
  ) {
    this.idsType = requireInput(model, 'input_ids');
  }

  /** Tokenizes and encodes one prompt (batch 1). */
  async encode(prompt: string): Promise<TextEncoding> {
    const { ids, droppedTokens } = this.tokenizer.tokenize(prompt);
    const results = await runModel(this.model, { input_ids: intTensor(this.idsType, ids, [1, ids.length]) });
    const outputs = new Map<string, Tensor32>();
    for (const [name, tensor] of Object.entries(results)) {
      outputs.set(name, { data: toFloat32(tensor), dims: tensor.dims });
    }
    return { outputs, droppedTokens, inputIds: ids };
  }

  /**
   * Hidden state `fromEnd` layers before the end of the `hidden_states.N` outputs (1 = the last
   * one, i.e. diffusers' `hidden_states[-1]`). Optimum exports them when asked to; a model without
   * them cannot honour SDXL's penultimate-layer conditioning or clip_skip.
   */
  static hiddenState(encoding: TextEncoding, fromEnd: number, modelPath: string): Tensor32 {
    const indices = [...encoding.outputs.keys()]
      .map((name) => /^hidden_states\.(\d+)$/.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    const index = indices[indices.length - fromEnd];
    if (index === undefined) {
      throw new LatentBlendError(
        `${modelPath}: the text encoder exports ${indices.length} hidden_states.N outputs, but hidden state -${fromEnd} is needed; re-export the model with Optimum (it writes all hidden states).`,
        'model_folder',
      );
    }
    return encoding.outputs.get(`hidden_states.${index}`)!;
  }

  /** A named output, or a clear error naming the file and the outputs it has. */
  static output(encoding: TextEncoding, names: readonly string[], modelPath: string): Tensor32 {
    for (const name of names) {
      const found = encoding.outputs.get(name);
      if (found !== undefined) return found;
    }
    throw new LatentBlendError(
      `${modelPath}: the text encoder has none of the outputs ${names.join(', ')} (it has ${[...encoding.outputs.keys()].join(', ')}).`,
      'model_folder',
    );
  }
}
