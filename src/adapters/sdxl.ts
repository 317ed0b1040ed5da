/**
 * SDXL (and SDXL Turbo): two CLIP text encoders. As diffusers: the penultimate hidden states of
 * both are concatenated channel-wise, the pooled projection (`text_embeds`) of the second is the
 * pooled conditioning, and `time_ids` carry (original size, crop top-left, target size).
 */
import type { ModelAdapter, EncodeOptions, EncodedPrompt, Conditioning } from './adapter.ts';
import { ClipTextEncoder } from './text-encoder.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';

/** Concatenates [1, T, A] and [1, T, B] into [1, T, A + B]. */
function concatChannels(a: Tensor32, b: Tensor32): Tensor32 {
  const [, tokens = 0, ca = 0] = a.dims;
  const cb = b.dims[2] ?? 0;
  const data = new Float32Array(tokens * (ca + cb));
  for (let t = 0; t < tokens; t++) {
    data.set(a.data.subarray(t * ca, (t + 1) * ca), t * (ca + cb));
    data.set(b.data.subarray(t * cb, (t + 1) * cb), t * (ca + cb) + ca);
  }
  return { data, dims: [1, tokens, ca + cb] };
}

/** diffusers' add_time_ids: original (h, w), crop (top, left) = (0, 0), target (h, w). */
export function sdxlTimeIds(width: number, height: number): Tensor32 {
  return { data: Float32Array.from([height, width, 0, 0, height, width]), dims: [1, 6] };
}

export class SdxlAdapter implements ModelAdapter {
  readonly family = 'sdxl' as const;

  constructor(
    private readonly encoder1: ClipTextEncoder,
    private readonly encoder2: ClipTextEncoder,
    /** model_index.json `force_zeros_for_empty_prompt` (true for SDXL and SDXL Turbo). */
    private readonly forceZerosForEmptyPrompt: boolean,
  ) {}

  async encodePrompt(prompt: string, options: EncodeOptions): Promise<EncodedPrompt> {
    const [first, second] = await Promise.all([this.encoder1.encode(prompt), this.encoder2.encode(prompt)]);
    // diffusers: hidden_states[-2] without clip_skip, hidden_states[-(clip_skip + 2)] with it.
    const fromEnd = 2 + (options.clipSkip ?? 0);
    const hidden1 = ClipTextEncoder.hiddenState(first, fromEnd, this.encoder1.model.path);
    const hidden2 = ClipTextEncoder.hiddenState(second, fromEnd, this.encoder2.model.path);
    const pooled = ClipTextEncoder.output(second, ['text_embeds'], this.encoder2.model.path);
    const conditioning: Conditioning = new Map([
      ['encoder_hidden_states', concatChannels(hidden1, hidden2)],
      ['text_embeds', pooled],
      ['time_ids', sdxlTimeIds(options.width, options.height)],
    ]);
    return { conditioning, droppedTokens: Math.max(first.droppedTokens, second.droppedTokens) };
  }

  async encodeNegative(negativePrompt: string | undefined, options: EncodeOptions, positive: Conditioning): Promise<EncodedPrompt> {
    // diffusers applies clip_skip to the positive prompt only.
    const plain = { width: options.width, height: options.height };
    if (negativePrompt === undefined && this.forceZerosForEmptyPrompt) {
      const zeros = new Map<string, Tensor32>();
      for (const [name, tensor] of positive) {
        zeros.set(name, name === 'time_ids' ? tensor : { data: new Float32Array(tensor.data.length), dims: tensor.dims });
      }
      return { conditioning: zeros, droppedTokens: 0 };
    }
    return this.encodePrompt(negativePrompt ?? '', plain);
  }
}
