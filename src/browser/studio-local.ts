/// <reference lib="dom" />
/**
 * The studio's HTTP API (docs/studio-api.md) answered inside the page, for the "run in this
 * browser" mode: the same front end talks to this instead of a server. Models run on
 * onnxruntime-web (WebGPU, else WebAssembly); images are PNGs made with a canvas; films are
 * encoded with WebCodecs (src/browser/video.ts). Files (images, films, figures) get URLs under
 * `<site>/api/files/`, kept in the Cache API where the site's service worker serves them (so
 * `?download=1` and video seeking work as with the server). One job runs at a time, in order.
 */
import { z } from 'zod';
import { DiffusionPipeline, type PipelineEvent } from '../pipeline/pipeline.ts';
import { BlendingEngine, continuationProblems, type EngineEvent, type Transition } from '../engine/engine.ts';
import { modelTransitionDefaults, resolveTransitionOptions, type TransitionOptions } from '../engine/options.ts';
import { PixelMetric } from '../engine/pixel-metric.ts';
import { loadLpipsMetric } from '../engine/lpips.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import type { RgbImage } from '../pipeline/vae.ts';
import { filmFrames, filmLength } from '../film/render.ts';
import { checkRenderFormat } from '../film/spec-guards.ts';
import { MAX_PICTURE_PIXELS } from '../image/fit.ts';
import { EXAMPLE_FILM_SPEC, filmSpecToYaml, parseFilmSpec, transitionsOf, type FilmSpec } from '../film/spec.ts';
import { transitionOptionsOf } from '../film/transition-options.ts';
import { smoothnessPlotSvg, type SmoothnessPoint } from '../io/plot.ts';
import { parseOptions, seedSchema } from '../options/validate.ts';
import { LatentBlendError } from '../errors.ts';
import { MAX_PICTURE_BYTES, MAX_PICTURE_SIDE, MAX_SESSION_PICTURES, PICTURE_ID } from '../studio/picture-limits.ts';
// Types only (erased when bundled): the API's job view is the server's, so the two cannot drift.
import type { JobProgress, JobState, JobView } from '../studio/jobs.ts';
import type { BrowserPlatform } from './platform.ts';
import { listHubRepo, listSiteFolder, type DownloadProgress } from './model-store.ts';
import { encodableFormats, encodeFilm, type BrowserVideoFormat } from './video.ts';

/** A job as GET /api/jobs/:id shows it: the server's job view (one API), with this mode's kinds. */
export interface LocalJobView extends JobView {
  readonly kind: 'previews' | 'render' | 'model';
}

interface Job {
  id: string;
  kind: LocalJobView['kind'];
  state: JobState;
  progress: JobProgress;
  result?: unknown;
  error?: { code: string; message: string };
  warnings: string[];
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  controller: AbortController;
  run: (job: Job) => Promise<unknown>;
  frames: unknown[];
}

/** A loaded model and what jobs need with it. */
interface LocalModel {
  readonly source: string;
  readonly pipeline: DiffusionPipeline;
  readonly metric: SimilarityMetric;
  readonly engine: BlendingEngine;
}

/** Listens to one job: `job` on every change, other types for its events (e.g. 'frame'). */
export type LocalJobListener = (type: string, data: unknown) => void;

/** Options of {@link LocalStudio}. */
export interface LocalStudioOptions {
  readonly platform: BrowserPlatform;
  /** The device to run on ('webgpu' or 'cpu'). */
  readonly device: 'webgpu' | 'cpu';
  /** Site path under which file URLs are made, ending in '/' (e.g. '/' or '/my-space/'). */
  readonly basePath: string;
  /** Stores a made file; returns nothing (its URL is `${basePath}api/files/${name}`). */
  readonly putFile: (name: string, blob: Blob) => Promise<void>;
  /** An LPIPS .onnx URL (its folder listed by files.json); else the rms-pixel metric. */
  readonly lpipsUrl?: string;
  /** Keeps the film list across visits (its files stay in the browser's storage). */
  readonly filmList?: { load(): Promise<unknown[]>; save(films: readonly unknown[]): Promise<void> };
}

/** Error answers like the server's `{ error: { code, message } }`. */
export class LocalApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_PREVIEWS = 8;

const previewsSchema = z.strictObject({
  prompt: z.string().min(1).max(2000),
  negativePrompt: z.string().max(2000).optional(),
  seeds: z.array(seedSchema).min(1).max(MAX_PREVIEWS).optional(),
  count: z.number().int().min(1).max(MAX_PREVIEWS).optional(),
  width: z.number().int().min(8).max(4096).optional(),
  height: z.number().int().min(8).max(4096).optional(),
  steps: z.number().int().min(1).max(200).optional(),
  guidanceScale: z.number().min(0).max(50).optional(),
});

const renderSchema = z.strictObject({
  spec: z.record(z.string(), z.unknown(), { error: 'expected a film spec object' }),
  format: z.enum(['mp4', 'webm', 'gif']).optional(),
  transitionIndex: z.number().int().min(0).optional(),
});

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** RGB8 → PNG with a canvas. */
export async function pngBlob(image: RgbImage): Promise<Blob> {
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext('2d');
  if (context === null) throw new Error('No 2D canvas in this browser.');
  const pixels = context.createImageData(image.width, image.height);
  for (let source = 0, target = 0; source < image.data.length; source += 3, target += 4) {
    pixels.data[target] = image.data[source]!;
    pixels.data[target + 1] = image.data[source + 1]!;
    pixels.data[target + 2] = image.data[source + 2]!;
    pixels.data[target + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

/** Every computed frame in order, in a grid of at most 5 columns, 192 px wide thumbnails. */
async function contactSheet(images: readonly RgbImage[]): Promise<Blob> {
  const columns = Math.min(5, images.length);
  const first = images[0]!;
  const thumbWidth = 192;
  const thumbHeight = Math.round((first.height / first.width) * thumbWidth);
  const rows = Math.ceil(images.length / columns);
  const gap = 4;
  const canvas = new OffscreenCanvas(columns * (thumbWidth + gap) + gap, rows * (thumbHeight + gap) + gap);
  const context = canvas.getContext('2d')!;
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  for (const [index, image] of images.entries()) {
    const bitmap = await createImageBitmap(await pngBlob(image));
    context.drawImage(bitmap, gap + (index % columns) * (thumbWidth + gap), gap + Math.floor(index / columns) * (thumbHeight + gap), thumbWidth, thumbHeight);
    bitmap.close();
  }
  return canvas.convertToBlob({ type: 'image/png' });
}

/**
 * The studio's API in the page. {@link handle} answers a request like the server would;
 * {@link listen} follows a job (for the EventSource stand-in).
 */
export class LocalStudio {
  private model: LocalModel | undefined;
  private modelLoading: Promise<LocalModel> | undefined;
  private readonly jobs = new Map<string, Job>();
  private readonly order: Job[] = [];
  private readonly listeners = new Map<string, Set<LocalJobListener>>();
  private readonly films: Record<string, unknown>[] = [];
  private running = false;
  private formats: BrowserVideoFormat[] = [];
  /** Receives step events of the pipeline for the job that runs now. */
  private onStep: (() => void) | undefined;
  private onWarning: ((message: string) => void) | undefined;
  private onDownload: ((event: DownloadProgress) => void) | undefined;

  /** Pictures uploaded in this visit (POST /api/pictures): id → size in pixels. */
  private readonly pictures = new Map<string, { width: number; height: number }>();

  constructor(private readonly options: LocalStudioOptions) {}

  /** Routes the platform's download events (pass to createBrowserPlatform's onProgress). */
  readonly downloadProgress = (event: DownloadProgress): void => this.onDownload?.(event);

  /** Loads the first model (the page waits for it before the front end starts). */
  async start(source: string, onDownload?: (event: DownloadProgress) => void): Promise<void> {
    const kept = await this.options.filmList?.load().catch(() => []);
    if (Array.isArray(kept)) this.films.push(...(kept as Record<string, unknown>[]));
    this.onDownload = onDownload;
    try {
      this.model = await this.loadModel(source);
    } finally {
      this.onDownload = undefined;
    }
  }

  private async loadModel(source: string): Promise<LocalModel> {
    const { platform } = this.options;
    const hub = /^([\w.-]+\/[\w.-]+)(\/[^@]+)?(?:@(.+))?$/.exec(source);
    const isSitePath = source.startsWith('.') || source.startsWith('/') || /^https?:/.test(source) || source.startsWith('models/');
    const folder =
      hub !== null && !isSitePath
        ? await listHubRepo(hub[1]!, { ...(hub[2] ? { subfolder: hub[2].slice(1) } : {}), ...(hub[3] ? { revision: hub[3] } : {}) })
        : await listSiteFolder(new URL(source, location.href).href);
    await platform.files.addFolder(folder);
    const pipeline = await DiffusionPipeline.load(platform, { modelDir: folder.base, device: this.options.device }, (event: PipelineEvent) => {
      if (event.type === 'step') this.onStep?.();
      else if (event.type === 'warning') this.onWarning?.(event.message);
    });
    let metric: SimilarityMetric = new PixelMetric();
    if (this.options.lpipsUrl !== undefined) {
      const url = new URL(this.options.lpipsUrl, location.href).href;
      await platform.files.addFolder(await listSiteFolder(url.slice(0, url.lastIndexOf('/'))));
      // On WebAssembly even beside a WebGPU pipeline: with both on WebGPU (onnxruntime-web 1.30,
      // SwiftShader) the VAE decoder's next output after an LPIPS run came back NaN; LPIPS at
      // 256 px is cheap on the CPU.
      metric = await loadLpipsMetric(platform, url, 'cpu');
    }
    this.formats = await encodableFormats(pipeline.defaults.width, pipeline.defaults.height);
    return { source, pipeline, metric, engine: new BlendingEngine(pipeline, metric) };
  }

  private current(): LocalModel {
    if (this.model === undefined) throw new LocalApiError(503, 'unavailable', 'The model is still loading.');
    return this.model;
  }

  /** GET /api/model's answer. */
  modelInfo(): Record<string, unknown> {
    const model = this.current();
    const { defaults } = model.pipeline;
    return {
      source: model.source,
      family: defaults.family,
      preset: defaults.preset,
      defaults: modelTransitionDefaults(defaults),
      schedulerClass: model.pipeline.schedulerClass,
      device: model.pipeline.device,
      metric: model.metric.name,
      formats: [...this.formats],
      limits: { previews: MAX_PREVIEWS, bodyBytes: 1024 * 1024 },
    };
  }

  /** Answers one API request (`path` without the site prefix, e.g. '/api/model'). */
  async handle(method: string, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
    try {
      return await this.route(method, path, body);
    } catch (error) {
      if (error instanceof LocalApiError) return { status: error.status, body: { error: { code: error.code, message: error.message } } };
      if (error instanceof LatentBlendError) return { status: 400, body: { error: { code: error.code, message: error.message } } };
      return { status: 500, body: { error: { code: 'internal', message: (error as Error).message ?? String(error) } } };
    }
  }

  private async route(method: string, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const parts = path.replace(/^\/api\/?/, '').split('/').filter((part) => part !== '').map(decodeURIComponent);
    const key = `${method} ${parts.map((part, index) => (index > 0 && parts[0] === 'jobs' ? ':' : part)).join('/')}`;
    switch (key) {
      case 'GET health':
        return { status: 200, body: { ok: true, queue: { running: this.running ? 1 : 0, queued: this.order.filter((job) => job.state === 'queued').length } } };
      case 'GET model':
        if (this.model === undefined && this.modelLoading !== undefined) await this.modelLoading;
        return { status: 200, body: this.modelInfo() };
      case 'POST model': {
        const source = typeof (body as { source?: unknown })?.source === 'string' ? ((body as { source: string }).source.trim()) : '';
        if (source === '') throw new LocalApiError(400, 'invalid_input', 'source: expected a Hugging Face repo id (owner/name[/subfolder][@revision]) or a folder of this site');
        return { status: 202, body: this.enqueue('model', (job) => this.modelJob(job, source)) };
      }
      case 'GET jobs':
        return { status: 200, body: { jobs: this.order.map((job) => this.view(job)) } };
      case 'GET jobs/:':
        return { status: 200, body: this.view(this.find(parts[1]!)) };
      case 'POST jobs/:/:':
        if (parts[2] === 'cancel') return { status: 200, body: this.cancel(parts[1]!) };
        break;
      case 'POST previews': {
        const request = parseOptions(previewsSchema, body, 'previews request');
        if (request.seeds !== undefined && request.count !== undefined && request.count !== request.seeds.length) {
          throw new LocalApiError(400, 'invalid_input', `count: with seeds, expected ${request.seeds.length} (the number of seeds), got ${request.count}`);
        }
        const seeds = request.seeds ?? Array.from({ length: request.count ?? 4 }, () => Math.floor(Math.random() * 2 ** 31));
        return { status: 202, body: this.enqueue('previews', (job) => this.previewsJob(job, request, seeds)) };
      }
      case 'POST renders': {
        const request = parseOptions(renderSchema, body, 'render request');
        const spec = this.withPictureUrls(parseFilmSpec(JSON.stringify(request.spec), { path: 'spec', format: 'json' }));
        const model = this.current();
        if (spec.preset !== undefined && spec.preset !== model.pipeline.defaults.preset) {
          throw new LocalApiError(400, 'invalid_input', `preset: this model runs with the ${model.pipeline.defaults.preset} preset, got ${JSON.stringify(spec.preset)}`);
        }
        const transitions = spec.keyframes.length - 1;
        if (request.transitionIndex !== undefined && request.transitionIndex >= transitions) {
          throw new LocalApiError(400, 'invalid_input', `transitionIndex: expected an integer from 0 to ${transitions - 1}, got ${request.transitionIndex}`);
        }
        for (const transition of transitionsOf(spec)) resolveTransitionOptions(transitionOptionsOf(spec, transition.index), model.pipeline.defaults, (value) => value);
        const format = request.format ?? this.formats[0] ?? 'webm';
        checkRenderFormat(format, spec.fps);
        return { status: 202, body: this.enqueue('render', (job) => this.renderJob(job, spec, request.spec, format, request.transitionIndex)) };
      }
      case 'POST pictures':
        return { status: 201, body: await this.storePicture(body) };
      case 'GET films':
        return { status: 200, body: { films: [...this.films].reverse() } };
      case 'GET spec/example':
        return { status: 200, body: { yaml: EXAMPLE_FILM_SPEC } };
      case 'POST spec/parse': {
        const { text, format } = parseOptions(z.strictObject({ text: z.string(), format: z.enum(['yaml', 'json']) }), body, 'spec parse request');
        return { status: 200, body: { spec: parseFilmSpec(text, { path: format === 'yaml' ? 'spec.yaml' : 'spec.json', format }) } };
      }
      case 'POST spec/yaml': {
        const { spec } = parseOptions(z.strictObject({ spec: z.record(z.string(), z.unknown()) }), body, 'spec request');
        return { status: 200, body: { yaml: filmSpecToYaml(parseFilmSpec(JSON.stringify(spec), { path: 'spec', format: 'json' })) } };
      }
    }
    throw new LocalApiError(404, 'not_found', `${method} ${path}: no such endpoint in this browser studio`);
  }

  /**
   * Keeps a picture of the user's (the bytes the page posted) as the server studio does: decoded
   * by the browser (EXIF orientation, alpha onto white), scaled down to at most
   * MAX_PICTURE_SIDE pixels on its longer side, stored as PNG under a content-hashed id.
   */
  private async storePicture(body: unknown): Promise<{ id: string; url: string; width: number; height: number }> {
    if (!(body instanceof Blob)) throw new LocalApiError(400, 'empty', "Send the picture file's bytes.");
    if (body.size === 0) throw new LocalApiError(400, 'empty', 'The request body is empty; send the picture file.');
    if (body.size > MAX_PICTURE_BYTES) throw new LocalApiError(413, 'too_large', `The picture is larger than ${MAX_PICTURE_BYTES / 1024 / 1024} MiB; send a smaller file.`);
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(body, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
    } catch (error) {
      throw new LocalApiError(400, 'invalid_input', `The uploaded picture cannot be read (${(error as Error).message ?? String(error)}).`);
    }
    if (bitmap.width * bitmap.height > MAX_PICTURE_PIXELS) {
      const size = `${bitmap.width}×${bitmap.height}`;
      bitmap.close();
      throw new LocalApiError(413, 'too_large', `The picture has ${size} pixels; at most ${MAX_PICTURE_PIXELS / 1e6} megapixels are read. Scale it down first.`);
    }
    const scale = Math.min(1, MAX_PICTURE_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d');
    if (context === null) throw new LocalApiError(500, 'internal', 'This browser cannot draw pictures (no 2D canvas).');
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    const png = await canvas.convertToBlob({ type: 'image/png' });
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await png.arrayBuffer()));
    const id = `picture-${Array.from(digest.subarray(0, 12), (byte) => byte.toString(16).padStart(2, '0')).join('')}.png`;
    if (!this.pictures.has(id)) {
      if (this.pictures.size >= MAX_SESSION_PICTURES) throw new LocalApiError(429, 'too_many_pictures', `This visit already holds ${MAX_SESSION_PICTURES} pictures; reload the page to upload more.`);
      await this.options.putFile(id, png);
      this.pictures.set(id, { width, height });
    }
    return { id, url: this.fileUrl(id), width, height };
  }

  /** The spec with each keyframe picture id replaced by its file's URL; other picture keys are refused. */
  private withPictureUrls(spec: FilmSpec): FilmSpec {
    for (const key of ['controlnet', 'controlImage', 'ipAdapter', 'ipImage'] as const) {
      if ((spec as unknown as Record<string, unknown>)[key] !== undefined) {
        throw new LocalApiError(400, 'unsupported', `${key}: ControlNet and IP-Adapter run on the server studio only, not in the browser`);
      }
    }
    const keyframes = spec.keyframes.map((keyframe, index) => {
      for (const key of ['controlImage', 'ipImage'] as const) {
        if (keyframe[key] !== undefined) throw new LocalApiError(400, 'unsupported', `keyframes[${index}].${key}: ControlNet and IP-Adapter run on the server studio only, not in the browser`);
      }
      if (keyframe.image === undefined) return keyframe;
      // The spec parser made the id a path relative to the spec ('./picture-….png').
      const id = keyframe.image.replace(/^\.\//, '');
      if (!PICTURE_ID.test(id) || !this.pictures.has(id)) {
        throw new LocalApiError(400, 'invalid_input', `keyframes[${index}].image: expected the id of a picture uploaded in this visit (POST /api/pictures), got ${JSON.stringify(id)}; upload it again`);
      }
      return { ...keyframe, image: this.fileUrl(id) };
    });
    return { ...spec, keyframes };
  }

  /** Follows a job: first its frames so far and the job, then changes. Returns an unsubscribe. */
  listen(id: string, listener: LocalJobListener): () => void {
    const job = this.find(id);
    for (const frame of job.frames) listener('frame', frame);
    listener('job', this.view(job));
    if (this.isFinal(job)) return () => undefined;
    const set = this.listeners.get(id) ?? new Set();
    set.add(listener);
    this.listeners.set(id, set);
    return () => set.delete(listener);
  }

  private find(id: string): Job {
    const job = this.jobs.get(id);
    if (job === undefined) throw new LocalApiError(404, 'not_found', `No job ${id}.`);
    return job;
  }

  private isFinal(job: Job): boolean {
    return job.state === 'done' || job.state === 'failed' || job.state === 'cancelled';
  }

  private view(job: Job): LocalJobView {
    const queued = this.order.filter((entry) => entry.state === 'queued');
    return {
      id: job.id,
      kind: job.kind,
      state: job.state,
      position: job.state === 'queued' ? queued.indexOf(job) + 1 : 0,
      progress: { ...job.progress },
      ...(job.result !== undefined ? { result: job.result } : {}),
      ...(job.error !== undefined ? { error: job.error } : {}),
      warnings: [...job.warnings],
      createdAt: job.createdAt,
      ...(job.startedAt !== undefined ? { startedAt: job.startedAt } : {}),
      ...(job.finishedAt !== undefined ? { finishedAt: job.finishedAt } : {}),
    };
  }

  private emit(job: Job, type: string, data?: unknown): void {
    if (type === 'frame') job.frames.push(data);
    const payload = type === 'job' ? this.view(job) : data;
    for (const listener of this.listeners.get(job.id) ?? []) listener(type, payload);
    if (type === 'job' && this.isFinal(job)) this.listeners.delete(job.id);
  }

  private progress(job: Job, progress: Partial<JobProgress>): void {
    job.progress = { ...job.progress, ...progress };
    this.emit(job, 'job');
  }

  private enqueue(kind: Job['kind'], run: (job: Job) => Promise<unknown>): LocalJobView {
    const job: Job = {
      id: newId(),
      kind,
      state: 'queued',
      progress: { done: 0, total: 0, label: 'waiting' },
      warnings: [],
      createdAt: new Date().toISOString(),
      controller: new AbortController(),
      run,
      frames: [],
    };
    this.jobs.set(job.id, job);
    this.order.push(job);
    queueMicrotask(() => void this.pump());
    return this.view(job);
  }

  private cancel(id: string): LocalJobView {
    const job = this.find(id);
    if (this.isFinal(job)) throw new LocalApiError(409, 'finished', `Job ${id} has already ended.`);
    if (job.state === 'queued') {
      job.state = 'cancelled';
      job.finishedAt = new Date().toISOString();
      this.emit(job, 'job');
    } else {
      job.controller.abort();
    }
    return this.view(job);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    const job = this.order.find((entry) => entry.state === 'queued');
    if (job === undefined) return;
    this.running = true;
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    this.emit(job, 'job');
    this.onWarning = (message) => {
      job.warnings.push(message);
      this.emit(job, 'job');
    };
    try {
      job.result = await job.run(job);
      job.state = 'done';
    } catch (error) {
      if (job.controller.signal.aborted) job.state = 'cancelled';
      else {
        job.state = 'failed';
        job.error = { code: error instanceof LatentBlendError ? error.code : 'internal', message: (error as Error).message ?? String(error) };
      }
    } finally {
      this.onStep = undefined;
      this.onWarning = undefined;
      job.finishedAt = new Date().toISOString();
      this.running = false;
      this.emit(job, 'job');
      void this.pump();
    }
  }

  private fileUrl(name: string): string {
    return `${this.options.basePath}api/files/${name}`;
  }

  private async file(name: string, blob: Blob): Promise<string> {
    await this.options.putFile(name, blob);
    return this.fileUrl(name);
  }

  private async modelJob(job: Job, source: string): Promise<unknown> {
    this.progress(job, { label: `Loading ${source}`, done: 0, total: 0 });
    this.onDownload = (event) => {
      if (!event.done || event.cached) this.progress(job, { done: event.loaded, total: event.total, label: `Downloading ${source}: ${event.role}` });
    };
    try {
      const loading = this.loadModel(source);
      this.modelLoading = loading;
      const model = await loading;
      if (job.controller.signal.aborted) throw new DOMException('Aborted', 'AbortError');
      this.model = model;
    } finally {
      this.onDownload = undefined;
      this.modelLoading = undefined;
    }
    return this.modelInfo();
  }

  private async previewsJob(job: Job, request: z.output<typeof previewsSchema>, seeds: readonly number[]): Promise<unknown> {
    const { pipeline } = this.current();
    const steps = request.steps ?? pipeline.defaults.steps;
    const total = seeds.length * steps;
    let done = 0;
    this.onStep = () => {
      done = Math.min(total, done + 1);
      this.progress(job, { done, total });
    };
    const images: { seed: number; url: string }[] = [];
    for (const [index, seed] of seeds.entries()) {
      this.progress(job, { done, total, label: `image ${index + 1} of ${seeds.length}` });
      const { image } = await pipeline.generate({
        prompt: request.prompt,
        seed,
        signal: job.controller.signal,
        ...(request.negativePrompt !== undefined ? { negativePrompt: request.negativePrompt } : {}),
        ...(request.steps !== undefined ? { steps: request.steps } : {}),
        ...(request.guidanceScale !== undefined ? { guidanceScale: request.guidanceScale } : {}),
        ...(request.width !== undefined ? { width: request.width } : {}),
        ...(request.height !== undefined ? { height: request.height } : {}),
      });
      images.push({ seed, url: await this.file(`${newId()}.png`, await pngBlob(image)) });
      job.result = { prompt: request.prompt, images: [...images] };
    }
    this.progress(job, { done: total, total, label: `${seeds.length} image${seeds.length === 1 ? '' : 's'}`, etaSeconds: 0 });
    return { prompt: request.prompt, images };
  }

  private async renderJob(job: Job, spec: FilmSpec, specJson: unknown, asked: 'mp4' | 'webm' | 'gif', transitionIndex: number | undefined): Promise<unknown> {
    const model = this.current();
    let format: BrowserVideoFormat = asked;
    if (!this.formats.includes(format)) {
      // GIF is always there; a missing WebCodecs format falls back to the other one, else GIF.
      const other = this.formats.find((entry) => entry !== 'gif') ?? 'gif';
      job.warnings.push(`This browser cannot encode ${asked.toUpperCase()}; the film is ${other.toUpperCase()}.`);
      format = other;
    }
    const all = transitionsOf(spec);
    const chosen = transitionIndex === undefined ? all : [all[transitionIndex]!];
    const units = 1000;
    const total = chosen.length * units + 100;
    const segments: { transition: Transition; durationSeconds: number }[] = [];
    const filmId = newId();
    let frameIndex = 0;
    let framesWritten: Promise<void> = Promise.resolve();
    let previous: { index: number; transition: Transition } | undefined;
    for (const [position, transition] of chosen.entries()) {
      const input = transitionOptionsOf(spec, transition.index);
      const resolved = resolveTransitionOptions(input, model.pipeline.defaults, (value) => model.pipeline.roundedSize(value));
      const startFrom =
        previous !== undefined && previous.index === transition.index - 1 && continuationProblems(previous.transition, resolved).length === 0 ? previous.transition : undefined;
      this.progress(job, { done: position * units, total, label: `transition ${transition.index + 1} of ${all.length}` });
      const result = await model.engine.runTransition(input as unknown as TransitionOptions, {
        signal: job.controller.signal,
        ...(startFrom !== undefined ? { startFrom } : {}),
        onEvent: (event: EngineEvent) => {
          if (event.type === 'progress') {
            const share = event.unetEvaluationsTotal > 0 ? event.unetEvaluationsDone / event.unetEvaluationsTotal : 0;
            this.progress(job, { done: Math.round((position + share) * units), total, ...(event.etaSeconds !== undefined ? { etaSeconds: event.etaSeconds } : {}) });
          } else if (event.type === 'warning') {
            job.warnings.push(event.message);
          } else if (event.type === 'frame') {
            // A keyframe shared with the previous transition is sent once.
            if (position > 0 && event.fract === 0) return;
            const image = event.image;
            const index = frameIndex++;
            const fract = event.fract;
            const injectionStep = event.injectionStep;
            // In order, without holding up the engine.
            framesWritten = framesWritten.then(async () => {
              const url = await this.file(`${filmId}-frame-${index}.png`, await pngBlob(image));
              this.emit(job, 'frame', { index, transition: transition.index, fract, filmFract: (position + fract) / chosen.length, injectionStep, url });
            });
          }
        },
      });
      segments.push({ transition: result, durationSeconds: transition.duration });
      previous = { index: transition.index, transition: result };
    }
    await framesWritten;
    const retiming = spec.retiming === 'equal' ? 'equal' : 'perceptual';
    const first = segments[0]!.transition.images[0]!;
    const count = filmLength(segments, spec.fps, retiming);
    this.progress(job, { done: chosen.length * units, total, label: `encoding ${format.toUpperCase()}` });
    const film = await encodeFilm(filmFrames(segments, spec.fps, retiming), {
      format,
      fps: spec.fps,
      width: first.width,
      height: first.height,
      signal: job.controller.signal,
      onFrame: (index) => {
        if (index % 10 === 0) this.progress(job, { done: chosen.length * units + Math.round((100 * index) / count), total });
      },
    });
    const images = segments.flatMap((segment, position) => segment.transition.images.slice(position > 0 ? 1 : 0));
    const points: SmoothnessPoint[] = [];
    segments.forEach((segment, position) => {
      const frames = segment.transition.frames;
      for (let index = 0; index + 1 < frames.length; index++) {
        const distance = frames[index]!.distanceToNext;
        if (distance === undefined) continue;
        points.push({ fract: (position + (frames[index]!.fract + frames[index + 1]!.fract) / 2) / segments.length, distance });
      }
    });
    const filmUrl = await this.file(`${filmId}.${format}`, new Blob([film.bytes as Uint8Array<ArrayBuffer>], { type: film.mimeType }));
    const contactSheetUrl = await this.file(`${filmId}-contact-sheet.png`, await contactSheet(images));
    const smoothnessUrl = await this.file(`${filmId}-smoothness.svg`, new Blob([smoothnessPlotSvg(points)], { type: 'image/svg+xml' }));
    this.progress(job, { done: total, total, label: 'done', etaSeconds: 0 });
    const result = {
      filmId,
      filmUrl,
      contactSheetUrl,
      smoothnessUrl,
      format,
      codec: film.codec,
      frames: images.length,
      filmFrames: film.frames,
      transitions: segments.length,
      transitionsReused: 0,
      unetCalls: segments.reduce((sum, segment) => sum + segment.transition.stats.unetCalls, 0),
      ...(transitionIndex !== undefined ? { transitionIndex } : {}),
    };
    this.films.push({
      id: filmId,
      createdAt: job.createdAt,
      finishedAt: new Date().toISOString(),
      format,
      filmUrl,
      contactSheetUrl,
      smoothnessUrl,
      spec: specJson,
      model: model.source,
      frames: result.frames,
      filmFrames: result.filmFrames,
      ...(transitionIndex !== undefined ? { transitionIndex } : {}),
    });
    await this.options.filmList?.save(this.films).catch(() => undefined);
    return result;
  }
}
