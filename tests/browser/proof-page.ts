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

/** The browser platform with the request's model folder added, and the finished downloads it records. */
async function modelPlatform(request: Pick<ProofRequest, 'modelUrl' | 'cacheName'>) {
  const downloads: DownloadProgress[] = [];
  const platform = await createBrowserPlatform({
    wasmPaths: '/ort/',
    cacheName: request.cacheName === undefined ? 'latentblend-test' : request.cacheName,
    onProgress: (event) => {
      if (event.done) downloads.push(event);
    },
  });
  await platform.files.addFolder(await listSiteFolder(request.modelUrl));
  return { platform, downloads };
}

/** The downloads as the test reads them back (URL, role, from the cache or not, bytes). */
function downloadsSeen(downloads: readonly DownloadProgress[]) {
  return downloads.map((event) => ({ url: event.url, role: event.role, cached: event.cached, total: event.total }));
}

async function transition(request: ProofRequest) {
  const { platform, downloads } = await modelPlatform(request);
  let metric;
  if (request.lpipsUrl !== undefined) {
    const folder = request.lpipsUrl.slice(0, request.lpipsUrl.lastIndexOf('/'));
    await platform.files.addFolder(await listSiteFolder(folder));
    // LPIPS runs on WebAssembly beside a WebGPU pipeline, as the static studio does it.
    metric = await loadLpipsMetric(platform, request.lpipsUrl, 'cpu');
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
    downloads: downloadsSeen(downloads),
  };
}

/** Only loads the model (downloads or cache), for the cache check. */
async function load(request: Pick<ProofRequest, 'modelUrl' | 'device' | 'cacheName'>) {
  const { platform, downloads } = await modelPlatform(request);
  await DiffusionPipeline.load(platform, { modelDir: request.modelUrl, device: request.device });
  return { downloads: downloadsSeen(downloads) };
}

(globalThis as { latentblendTest?: unknown }).latentblendTest = { transition, load };
