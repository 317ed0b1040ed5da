/**
 * latentblend: smooth video transitions between text prompts with diffusion models, on ONNX
 * Runtime. This is the library's public surface; the CLI and the web studio use nothing else.
 */
export { LatentBlendError } from './errors.ts';
export { DiffusionPipeline, type LoadOptions, type GenerateOptions, type GenerateResult, type PipelineEvent, type EventListener } from './pipeline/pipeline.ts';
export { denoise, type DenoiseItem, type DenoiseRequest, type DenoiseResult } from './pipeline/denoise.ts';
export type { RgbImage } from './pipeline/vae.ts';
export type { Conditioning, ModelAdapter } from './adapters/adapter.ts';
export { inspectModelFolder, type ModelFolder, type ModelFamily } from './model/folder.ts';
export { modelDefaults, decidePreset, PRESETS, type Preset, type ModelDefaults } from './model/preset.ts';
export { resolveModelSource, isRepoId } from './model/hub.ts';
export { availableDevices, DEVICES, type Device } from './runtime/onnx.ts';
export { createScheduler, SUPPORTED_SCHEDULERS } from './schedulers/index.ts';
export type { Scheduler, StepInput, StepOutput } from './schedulers/scheduler.ts';
export { slerp, lerp } from './math/slerp.ts';
export { gaussianNoise, stepNoise, NoiseStream } from './math/noise.ts';
export { writePng, encodePng, readRgb } from './io/png.ts';
