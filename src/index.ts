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
export { DEVICES, type Device, type OnnxRuntime } from './runtime/onnx.ts';
export type { Platform, FileAccess } from './runtime/platform.ts';
export { availableDevices, nodePlatform, nodeRuntime, nodeFiles } from './node/platform.ts';
export { createScheduler, SUPPORTED_SCHEDULERS } from './schedulers/index.ts';
export type { Scheduler, StepInput, StepOutput } from './schedulers/scheduler.ts';
export { slerp, lerp } from './math/slerp.ts';
export { gaussianNoise, stepNoise, NoiseStream } from './math/noise.ts';
export { writePng, encodePng, readRgb } from './io/png.ts';
export { readPicture, checkPicture, pictureHash, loadPicture, MAX_PICTURE_PIXELS, PICTURE_BACKGROUND, type PictureFit } from './io/picture.ts';
export { pictureLatents, encodePosterior, img2imgStart, type PosteriorMode } from './pipeline/picture-latents.ts';
export { invertLatents } from './pipeline/inversion.ts';
export { withPngText, readPngText } from './io/png-text.ts';
export { BlendingEngine, framesOf, type Transition, type TransitionFrame, type TransitionStats, type EngineEvent, type RunControl } from './engine/engine.ts';
export { resolveTransitionOptions, transitionOptionsSchema, CROSSFEED_DEFAULTS, type TransitionOptions, type ResolvedTransitionOptions, type Keyframe } from './engine/options.ts';
export { loadLpipsMetric, PixelMetric, LpipsMetric, type SimilarityMetric } from './engine/metric.ts';
export { chooseMetric, chooseMetricWithReason, loadAnyLpipsMetric, METRIC_NAMES, type MetricName } from './node/metric.ts';
export { TwoFileLpipsMetric } from './node/lpips-two-file.ts';
export { saveTransition, loadTransition, modelStamp, type ModelStamp } from './io/store.ts';
export { smoothnessFigures, gini, perceptualPathLength, type SmoothnessFigures, type PathLength } from './eval/smoothness.ts';
export { filmSmoothness, sequenceSmoothness, formatReport, type SmoothnessReport } from './eval/report.ts';
export { transitionPathLength } from './eval/ppl.ts';
export { makePlan, planCost, type Plan, type PlanCosts } from './blend/plan.ts';
export { retime, crossFade, type RetimeMode } from './blend/retime.ts';
export { filmFrames, filmLength, type FilmSegment } from './film/render.ts';
export { parseFilmSpec, loadFilmSpec, filmSpecToYaml, transitionsOf, transitionKey, EXAMPLE_FILM_SPEC, type FilmSpec } from './film/spec.ts';
export { encodeVideo, probeVideo } from './io/video.ts';
export { FfmpegSpawner } from './io/ffmpeg-spawner.ts';
export { writeFilm, type WriteFilmOptions } from './film/write-film.ts';
// ControlNet and IP-Adapter (docs/controlnet-onnx.md, docs/ip-adapter-onnx.md)
export { ControlNet, inspectControlNetFolder, controlKeep, type ControlNetFolder, type LoadedControlNet, type ControlTerm } from './pipeline/controlnet.ts';
export { IpAdapter, inspectIpAdapterFolder, type IpAdapterFolder, type LoadedIpAdapter } from './pipeline/ip-adapter.ts';
export { type TransitionControl, type ControlSummary } from './engine/control.ts';
export { type TransitionImagePrompt, type ImagePromptSummary } from './engine/image-prompt.ts';
export { readControlPicture, controlTensor } from './image/control-picture.ts';
export { canny, CANNY_DEFAULTS, type CannyOptions } from './image/canny.ts';
export { clipPixelValues, clipImageConfig, type ClipImageConfig } from './image/clip-preprocess.ts';
export { parseQueueUrl, QUEUE_NAME, type QueueConnection } from './queue/connection.ts';
export { planFilmJobs, plannedScaling, type FilmJobPlan, type PlannedScaling } from './queue/plan.ts';
export { startPoolWorker, type PoolWorker, type PoolWorkerOptions } from './queue/worker.ts';
export { submitFilm, submitImages, cancelRun, type SubmittedFilm } from './queue/submit.ts';
export { renderFilmOnPool, type RenderOnPoolResult } from './queue/render-on-pool.ts';
