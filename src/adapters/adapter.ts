/**
 * One adapter per model family (SD, SDXL) behind this small interface: it turns prompts into the
 * UNet's conditioning inputs. Everything else (denoising, decoding, blending) is family-neutral,
 * because conditioning is just a set of named tensors fed to the UNet by name.
 */
import type { ModelFamily } from '../model/folder.ts';
import type { Tensor32 } from '../pipeline/tensor.ts';

/**
 * UNet conditioning for one prompt: tensors keyed by UNet input name, each with batch size 1
 * (SD: encoder_hidden_states; SDXL: also text_embeds and time_ids). Blending interpolates every
 * tensor of two conditionings by the same weight.
 */
export type Conditioning = ReadonlyMap<string, Tensor32>;

export interface EncodeOptions {
  /** Output image size in pixels (SDXL puts it into time_ids). */
  readonly width: number;
  readonly height: number;
  /** Number of final CLIP layers to skip (diffusers `clip_skip`); undefined = none. */
  readonly clipSkip?: number;
}

export interface EncodedPrompt {
  readonly conditioning: Conditioning;
  /** Prompt tokens cut off by the 77-token limit, per text encoder (max over encoders). */
  readonly droppedTokens: number;
}

export interface ModelAdapter {
  readonly family: ModelFamily;
  /** Encodes a positive prompt. */
  encodePrompt(prompt: string, options: EncodeOptions): Promise<EncodedPrompt>;
  /**
   * Encodes the negative prompt for classifier-free guidance. `undefined` means "none given":
   * SD then encodes the empty string, SDXL uses zeros when the model asks for it
   * (`force_zeros_for_empty_prompt`), as diffusers does, shaped like `positive`.
   */
  encodeNegative(negativePrompt: string | undefined, options: EncodeOptions, positive: Conditioning): Promise<EncodedPrompt>;
}
