/**
 * Which defaults a model gets (Turbo or standard) and the numbers that follow from its configs.
 * Decided from the model's own metadata or an explicit preset, never from its name or path.
 */
import { LatentBlendError } from '../errors.ts';
import type { ModelFolder, ModelFamily } from './folder.ts';

/** 'turbo': distilled few-step models (SDXL Turbo, SD-Turbo); 'standard': everything else. */
export type Preset = 'turbo' | 'standard';
export const PRESETS: readonly Preset[] = ['turbo', 'standard'];

export interface PresetDecision {
  readonly preset: Preset;
  /** Why, in words, for logs and `--verbose`. */
  readonly reason: string;
}

/**
 * Detects the preset from the scheduler config. Distilled Turbo models ship a scheduler with
 * `timestep_spacing: "trailing"`, so that their 1–4 steps start at the last training timestep
 * (pure noise); standard SD/SDXL checkpoints ship "leading" (or "linspace"). An explicit preset
 * always wins.
 */
export function decidePreset(schedulerConfig: Readonly<Record<string, unknown>>, explicit?: Preset): PresetDecision {
  if (explicit !== undefined) {
    if (!PRESETS.includes(explicit)) {
      throw new LatentBlendError(`preset: got ${JSON.stringify(explicit)}, expected one of ${PRESETS.join(', ')}.`);
    }
    return { preset: explicit, reason: 'given explicitly' };
  }
  const spacing = schedulerConfig.timestep_spacing;
  if (spacing === 'trailing') {
    return { preset: 'turbo', reason: 'scheduler config has timestep_spacing "trailing" (few-step distilled model)' };
  }
  return { preset: 'standard', reason: `scheduler config has timestep_spacing ${JSON.stringify(spacing ?? 'leading')}` };
}

/** Defaults that depend on the model: numbers a user may override. */
export interface ModelDefaults {
  readonly family: ModelFamily;
  readonly preset: Preset;
  readonly presetReason: string;
  /** Denoising steps: Turbo 4, others 30. */
  readonly steps: number;
  /** Classifier-free guidance scale: Turbo 0 (off), others 4.0. */
  readonly guidanceScale: number;
  /** Pixels; the UNet's native sample size times the VAE scale factor (SDXL 1024, SD 1.5 512…). */
  readonly width: number;
  readonly height: number;
  /** Pixels per latent cell: 2^(number of VAE blocks - 1), 8 for SD and SDXL. */
  readonly vaeScaleFactor: number;
  /** Latent channels the UNet expects (4 for SD and SDXL). */
  readonly latentChannels: number;
  /** VAE latent scaling factor (SD 0.18215, SDXL 0.13025). */
  readonly vaeScalingFactor: number;
  /** SDXL's VAE overflows in float16; diffusers then decodes in float32. */
  readonly vaeForceUpcast: boolean;
}

function positiveNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Derives the model's defaults from its configs (see ModelDefaults for each value's meaning). */
export function modelDefaults(folder: ModelFolder, explicitPreset?: Preset): ModelDefaults {
  const decision = decidePreset(folder.schedulerConfig, explicitPreset);
  const blocks = folder.vaeConfig.block_out_channels;
  const vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : 8;
  const sampleSize = folder.unetConfig.sample_size;
  const side = (typeof sampleSize === 'number' ? sampleSize : Array.isArray(sampleSize) ? Number(sampleSize[0]) : 64) * vaeScaleFactor;
  const turbo = decision.preset === 'turbo';
  return {
    family: folder.family,
    preset: decision.preset,
    presetReason: decision.reason,
    steps: turbo ? 4 : 30,
    guidanceScale: turbo ? 0 : 4.0,
    width: turbo ? Math.min(side, 512) : side,
    height: turbo ? Math.min(side, 512) : side,
    vaeScaleFactor,
    latentChannels: positiveNumber(folder.unetConfig.in_channels) ?? 4,
    vaeScalingFactor: positiveNumber(folder.vaeConfig.scaling_factor) ?? 0.18215,
    vaeForceUpcast: folder.vaeConfig.force_upcast === true,
  };
}
