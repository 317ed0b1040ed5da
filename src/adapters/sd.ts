/** SD 1.x / 2.x (and SD-Turbo): one CLIP text encoder, conditioning = its last hidden state. */
import type { ModelAdapter, EncodeOptions, EncodedPrompt } from './adapter.ts';
import { ClipTextEncoder } from './text-encoder.ts';
import { applyRecoveredLayerNorm } from './layer-norm.ts';

export class SdAdapter implements ModelAdapter {
  readonly family = 'sd' as const;

  constructor(private readonly encoder: ClipTextEncoder) {}

  async encodePrompt(prompt: string, options: EncodeOptions): Promise<EncodedPrompt> {
    const encoding = await this.encoder.encode(prompt);
    const path = this.encoder.model.path;
    const last = ClipTextEncoder.output(encoding, ['last_hidden_state'], path);
    let embeds = last;
    if (options.clipSkip !== undefined && options.clipSkip > 0) {
      // diffusers: hidden_states[-(clip_skip + 1)] through the final LayerNorm.
      const skipped = ClipTextEncoder.hiddenState(encoding, options.clipSkip + 1, path);
      const beforeNorm = ClipTextEncoder.hiddenState(encoding, 1, path);
      const [, tokens = 0, channels = 0] = last.dims;
      embeds = {
        data: applyRecoveredLayerNorm(beforeNorm.data, last.data, skipped.data, tokens, channels),
        dims: last.dims,
      };
    }
    return { conditioning: new Map([['encoder_hidden_states', embeds]]), droppedTokens: encoding.droppedTokens };
  }

  async encodeNegative(negativePrompt: string | undefined, options: EncodeOptions): Promise<EncodedPrompt> {
    // diffusers applies clip_skip to the positive prompt only.
    return this.encodePrompt(negativePrompt ?? '', { width: options.width, height: options.height });
  }
}
