/**
 * The library in a browser: the same engine as in Node on onnxruntime-web, with model files
 * fetched over HTTP. This module is the browser bundle's entry; it must not pull in anything that
 * needs Node (tests/browser-bundle.test.ts checks).
 */
export { LatentBlendError } from '../errors.ts';
export { DiffusionPipeline, type LoadOptions, type PipelineEvent, type EventListener } from '../pipeline/pipeline.ts';
export type { RgbImage } from '../pipeline/vae.ts';
export { BlendingEngine, framesOf, type Transition, type TransitionFrame, type EngineEvent, type RunControl } from '../engine/engine.ts';
export { resolveTransitionOptions, type TransitionOptions } from '../engine/options.ts';
export { PixelMetric, LpipsMetric, loadLpipsMetric, distancesOf, type SimilarityMetric } from '../engine/metric.ts';
export { DEVICES, type Device, type OnnxRuntime } from '../runtime/onnx.ts';
export type { Platform, FileAccess, PictureLoader } from '../runtime/platform.ts';
export { webRuntime, probeWebGpu, type ModelBytes, type ModelBytesLoader, type WebRuntimeOptions } from './runtime.ts';
export { createBrowserPlatform, deviceLabel, type BrowserPlatform, type BrowserPlatformOptions } from './platform.ts';
export { browserPictures } from './pictures.ts';
export { fitPicture, type PictureFit } from '../image/fit.ts';
export { RemoteFileStore, listHubRepo, listSiteFolder, type RemoteEntry, type RemoteFolder, type DownloadProgress, type RemoteFileStoreOptions } from './model-store.ts';
