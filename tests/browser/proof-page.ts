/**
 * Browser side of tests/browser-engine.test.ts: the library's browser entry on a page, exposing
 * `latentblendTest.transition(...)`, which loads a model folder served by the test and returns
 * the transition's frames (base64 RGB8) and the download events.
 */
import {
  BlendingEngine,
  DiffusionPipeline,
  PixelMetric,
  createBrowserPlatform,
  listSiteFolder,
  loadLpipsMetric,
  type DownloadProgress,
  type TransitionOptions,
} from '../../src/browser/index.ts';
import { loadOnnxModel, runModel, toFloat32 } from '../../src/runtime/onnx.ts';

export interface ProofRequest {
  readonly modelUrl: string;
  readonly device: 'cpu' | 'webgpu';
  readonly transition: TransitionOptions;
  /** URL of an LPIPS .onnx (its folder must have files.json); else the rms-pixel metric. */
  readonly lpipsUrl?: string;
  readonly cacheName?: string | null;
}

function base64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function transition(request: ProofRequest) {
  const downloads: DownloadProgress[] = [];
  const platform = await createBrowserPlatform({
    wasmPaths: '/ort/',
    cacheName: request.cacheName === undefined ? 'latentblend-test' : request.cacheName,
    onProgress: (event) => {
      if (event.done) downloads.push(event);
    },
  });
  await platform.files.addFolder(await listSiteFolder(request.modelUrl));
  let metric;
  if (request.lpipsUrl !== undefined) {
    const folder = request.lpipsUrl.slice(0, request.lpipsUrl.lastIndexOf('/'));
    await platform.files.addFolder(await listSiteFolder(folder));
    metric = await loadLpipsMetric(platform, request.lpipsUrl, request.device);
  } else {
    metric = new PixelMetric();
  }
  const pipeline = await DiffusionPipeline.load(platform, { modelDir: request.modelUrl, device: request.device });
  const engine = new BlendingEngine(pipeline, metric);
  const result = await engine.runTransition(request.transition);
  return {
    devices: platform.devices,
    metric: metric.name,
    frames: result.frames.map((frame) => ({
      fract: frame.fract,
      width: frame.image.width,
      height: frame.image.height,
      data: base64(frame.image.data),
      distanceToNext: frame.distanceToNext,
    })),
    downloads: downloads.map((event) => ({ url: event.url, role: event.role, cached: event.cached, total: event.total })),
  };
}

(globalThis as { latentblendTest?: unknown }).latentblendTest = { transition };

/** One UNet call and one VAE decode on fixed inputs, for measuring backend differences. */
async function parts(request: { modelUrl: string; device: 'cpu' | 'webgpu'; level?: 'disabled' | 'basic' | 'extended' | 'all' }) {
  const platform = await createBrowserPlatform({ wasmPaths: '/ort/', cacheName: null, ...(request.level ? { graphOptimizationLevel: request.level } : {}) });
  await platform.files.addFolder(await listSiteFolder(request.modelUrl));
  const pipeline = await DiffusionPipeline.load(platform, { modelDir: request.modelUrl, device: request.device });
  const shape = pipeline.latentShape(32, 32);
  const length = shape[0] * shape[1] * shape[2];
  const latents = Float32Array.from({ length }, (_, k) => Math.sin(k * 0.37) * 1.5);
  const { positive } = await pipeline.encode('a red house by the sea', undefined, { width: 32, height: 32, guided: false });
  const prediction = await pipeline.unet.predict({ data: latents, dims: [1, ...shape] }, 999, positive);
  const image = await pipeline.vae.decode(latents, shape);
  const hidden = [...positive.values()][0]!.data;
  return { hidden: Array.from(hidden), prediction: Array.from(prediction), image: base64(image.data) };
}

(globalThis as { latentblendParts?: unknown }).latentblendParts = parts;

/** Runs a single ONNX file on input `x` and returns output `y` (for backend checks). */
async function runOne(request: { url: string; device: 'cpu' | 'webgpu'; x: number[]; dims: number[] }) {
  const platform = await createBrowserPlatform({ wasmPaths: '/ort/', cacheName: null });
  const folder = request.url.slice(0, request.url.lastIndexOf('/'));
  await platform.files.addFolder(await listSiteFolder(folder));
  const model = await loadOnnxModel(platform.runtime, request.url, 'op', request.device);
  const out = await runModel(model, { x: { type: 'float32', data: Float32Array.from(request.x), dims: request.dims } });
  return Array.from(toFloat32(out.y!));
}
(globalThis as { latentblendRunOne?: unknown }).latentblendRunOne = runOne;
