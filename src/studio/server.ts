/**
 * `latentblend studio`: one Node process that serves the front end at `/` and the HTTP API of
 * docs/studio-api.md under `/api`, on 127.0.0.1 by default.
 *
 * - One model is loaded at start; GPU work (previews, renders, loading another model) runs one
 *   job at a time through a FIFO queue (./jobs.ts); progress and live frames stream as
 *   server-sent events. A 'model' job (./model-switch.ts) swaps the model shared by all
 *   sessions between two jobs; films record the model they were made with.
 * - Sessions are signed cookies (./sessions.ts); every job, film and file belongs to one session
 *   and is invisible (404) to the others.
 * - Files are read and written only inside the work folder, under names the server made
 *   (./storage.ts); request paths with dot segments or encoded slashes are refused, symlinks are
 *   not followed, request bodies are JSON of at most 1 MiB.
 * - Renders write the CLI's work-folder format, so `latentblend movie` and `latentblend refine`
 *   continue what the studio started and the other way round.
 * - The front end is src/studio/web bundled in memory at start-up (./web-bundle.ts), served at
 *   `/`, `/app.js` and `/app.css`.
 * - Access (./access.ts): bound to a loopback address, requests must name a loopback host (any
 *   port) or an allowed host (against DNS rebinding); bound to any other address, an access
 *   token is required on every request; state-changing requests from another origin are refused.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdirSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DiffusionPipeline } from '../pipeline/pipeline.ts';
import { BlendingEngine } from '../engine/engine.ts';
import type { SimilarityMetric } from '../engine/metric.ts';
import { chooseMetricWithReason } from '../node/metric.ts';
import type { Device } from '../runtime/onnx.ts';
import { EXAMPLE_FILM_SPEC, filmSpecToYaml } from '../film/spec.ts';
import { LatentBlendError, fileSystemError } from '../errors.ts';
import { prefetchFfmpegCapabilities } from '../io/ffmpeg.ts';
import { FfmpegSpawner } from '../io/ffmpeg-spawner.ts';
import { JobQueue, type JobView } from './jobs.ts';
import { poolPreviewsJob, poolRenderJob } from './pool-runners.ts';
import { watchPoolWorkers } from './pool-workers.ts';
import type { QueueConnection } from '../queue/connection.ts';
import { SessionStore } from './sessions.ts';
import { HttpError, pathSegments, readJsonBody, sendError, sendJson, serveFile, COMMON_HEADERS } from './http.ts';
import { BundledFrontEnd, StaticFolder, type FrontEnd } from './static.ts';
import { bundleStudioWeb } from './web-bundle.ts';
import { AccessGuard, checkAccessToken, isLoopbackBind, newAccessToken, tokenPage } from './access.ts';
import { fileNamePath, filmDir, FILM_ID, writeStudioFilmRecord } from './storage.ts';
import { PreviewVae, previewVaeFile, type LatentDecoder } from '../node/preview-vae.ts';
import { deletePreviewBatch, listPreviewBatches } from './preview-library.ts';
import { listModels } from './model-catalog.ts';
import { PICTURE_ID, readPictureBody, resolveRenderPictures, storePicture, withPictureIds } from './pictures.ts';
import { cannyPicture, resolveRenderControl } from './control.ts';
import { attachmentHeader, deleteFilm, filmEntry, filmName, filmRecordOf, listSessionFilms, renameFilm, resumableFilm } from './film-library.ts';
import { parseModelRequest, parsePreviewsRequest, parseRenderRequest, parseSpecText, parseSpecYamlRequest } from './requests.ts';
import { locateModelSource, modelJob, type ModelSwitchOptions, type StudioHubOptions } from './model-switch.ts';
import {
  checkRenderRequest,
  modelInfo,
  newFilmId,
  pipelineListener,
  previewSeeds,
  previewsJob,
  renderJob,
  renderUnits,
  type PipelineHooks,
  type StudioModel,
} from './runners.ts';
import { nodePlatform } from '../node/platform.ts';
import { BrowserMode } from './browser-mode.ts';

export interface StudioOptions {
  /** A local model folder (Optimum ONNX layout), already resolved from a Hub id. */
  readonly modelDir: string;
  /** What the user named (folder or Hub repo id), recorded in work folders; default: modelDir, absolute. */
  readonly modelSource?: string;
  readonly device?: Device;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /**
   * Host names accepted besides the loopback names when bound to loopback (a reverse proxy's
   * public name, e.g. `studio.example.com`; with `:port` only that port). Default none.
   */
  readonly allowedHosts?: readonly string[];
  /**
   * Access token required on every request (docs/studio-api.md, "Access"). Default: none on a
   * loopback bind; a new random one on any other bind (then in `Studio.url` and `Studio.token`).
   */
  readonly token?: string;
  /** Default 7860; 0 = any free port. */
  readonly port?: number;
  /** The studio's work folder: sessions, previews, films. Created when missing. */
  readonly workDir: string;
  /** Serve the front end from this folder instead of bundling src/studio/web at start-up. */
  readonly staticDir?: string;
  /** LPIPS ONNX model for perceptual distances (else LATENTBLEND_LPIPS, the default location or rms-pixel). */
  readonly lpips?: string;
  /** ffmpeg to use instead of the bundled one. */
  readonly ffmpegPath?: string;
  /**
   * When set, POST /api/model accepts only local folders inside this one (relative sources are
   * taken relative to it); Hub ids are still accepted. Default: any local folder, relative
   * sources relative to the current folder.
   */
  readonly modelsDir?: string;
  /** Hub settings for POST /api/model (default: the HF_* environment variables). */
  readonly hub?: StudioHubOptions;
  /** Receives log lines (warnings, unexpected errors); the library never prints. */
  readonly onLog?: (line: string) => void;
  /** Previews and renders go to this worker pool (`--queue`) instead of the studio's model. */
  readonly pool?: QueueConnection;
  /** With `pool`: jobs run at once (default: as many as the pool has live workers). */
  readonly poolJobs?: number;
  /**
   * A tiny autoencoder folder (TAESD/TAESDXL as ONNX, ../pipeline/preview-vae.ts) that decodes
   * previews; films and their frames always use the model's own VAE. Not with `pool`. A loaded
   * decoder may be given instead (the caller then owns it).
   */
  readonly previewVae?: string | LatentDecoder;
}

export interface Studio {
  /** `http://host:port/`, with `?token=…` when a token is needed. */
  readonly url: string;
  /** The access token, when one is needed. */
  readonly token?: string;
  /** Cancels the jobs, closes every connection and frees the model in use. */
  close(): Promise<void>;
}

/** Largest accepted request body. */
export const MAX_BODY_BYTES = 1024 * 1024;
const HEARTBEAT_MS = 15_000;

type Handler = (context: RequestContext) => Promise<void> | void;

interface RequestContext {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly session: string;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
}

interface Route {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path segments after /api; ':' matches one segment (passed in params). */
  readonly pattern: readonly string[];
  readonly handler: Handler;
}

function isFinished(job: JobView): boolean {
  return job.state === 'done' || job.state === 'failed' || job.state === 'cancelled';
}

function notFound(what: string): HttpError {
  return new HttpError(404, 'not_found', `No such ${what}.`);
}

/** Refuses (400) a picture size above the model's limit before a job is queued. */
function checkStudioSize(pipeline: DiffusionPipeline, width: number | undefined, height: number | undefined): void {
  pipeline.checkSize(pipeline.roundedSize(width ?? pipeline.defaults.width), pipeline.roundedSize(height ?? pipeline.defaults.height));
}

/** Starts the studio; resolves once the model is loaded and the server listens. */
export async function startStudio(options: StudioOptions): Promise<Studio> {
  const log = options.onLog ?? (() => {});
  const host = options.host ?? '127.0.0.1';
  const device = options.device ?? 'cpu';
  if (options.previewVae !== undefined && options.pool !== undefined) {
    throw new LatentBlendError('--preview-vae cannot be used with --queue: the workers decode the previews with the model\'s own VAE.');
  }
  // A wrong folder fails now, not after the slow model load.
  if (typeof options.previewVae === 'string') previewVaeFile(options.previewVae);
  mkdirSync(options.workDir, { recursive: true, mode: 0o700 });
  const workDir = realpathSync(options.workDir);
  let modelsDir: string | undefined;
  if (options.modelsDir !== undefined) {
    try {
      modelsDir = realpathSync(resolve(options.modelsDir));
    } catch {
      throw new LatentBlendError(`The models folder ${resolve(options.modelsDir)} (--models-dir) does not exist.`, 'model_not_found');
    }
  }
  const sessions = new SessionStore(workDir);
  const token = options.token !== undefined ? checkAccessToken(options.token) : isLoopbackBind(host) ? undefined : newAccessToken();
  const access = new AccessGuard({
    bind: host,
    ...(options.allowedHosts !== undefined ? { allowedHosts: options.allowedHosts } : {}),
    ...(token !== undefined ? { token } : {}),
    secret: sessions.deriveKey('access'),
  });
  // The front end is bundled while the model loads; without it the API still works.
  const frontEndReady: Promise<FrontEnd> =
    options.staticDir !== undefined
      ? Promise.resolve(new StaticFolder(resolve(options.staticDir)))
      : bundleStudioWeb().then(
          (bundle) => new BundledFrontEnd(bundle),
          (error: unknown) => {
            const message = error instanceof Error ? error.message : String(error);
            log(`warning: the studio's front end is not available: ${message}`);
            return new BundledFrontEnd({ error: message });
          },
        );

  const hooks: PipelineHooks = {};
  // ffmpeg's capability probes spawn now, from a small process (issue #12); film encoders are
  // later spawned by a helper process started now, while we are small (see FfmpegSpawner).
  prefetchFfmpegCapabilities(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {});
  const ffmpegSpawner = FfmpegSpawner.start();
  let pipeline: DiffusionPipeline;
  let ownPreviewVae: PreviewVae | undefined;
  let metric: SimilarityMetric;
  let metricFallback: string | undefined;
  try {
    // Sessions in worker threads: the server keeps answering while a model computes (issue #12).
    pipeline = await DiffusionPipeline.load(nodePlatform, { modelDir: options.modelDir, device, inferenceThread: 'worker' }, pipelineListener(hooks, (message) => log(`warning: ${message}`)));
    ownPreviewVae = typeof options.previewVae === 'string' ? await PreviewVae.load(options.previewVae, device, 'worker') : undefined;
    // Without an LPIPS model the studio measures frames in rms-pixels; the reason is recorded in
    // every film.json (as the CLI does) and shown once on the page (GET /api/model metricFallback).
    ({ metric, fallback: metricFallback } = await chooseMetricWithReason({
      device,
      ...(options.lpips !== undefined ? { lpipsModel: options.lpips } : {}),
      onWarning: (message) => log(`warning: ${message}`),
    }));
  } catch (error) {
    // A studio that does not start leaves no helper process behind.
    await ffmpegSpawner.close();
    throw error;
  }
  const previewVae = ownPreviewVae ?? (typeof options.previewVae === 'object' ? options.previewVae : undefined);
  /** The model in use: replaced by a 'model' job, read by every job when it starts. */
  let model: StudioModel = {
    source: options.modelSource ?? resolve(options.modelDir),
    pipeline,
    metric,
    ...(metricFallback !== undefined ? { metricFallback } : {}),
    engine: new BlendingEngine(pipeline, metric),
    device,
    hooks,
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
    ffmpegSpawner,
  };
  const frontEnd = await frontEndReady;
  const queue = new JobQueue({
    onUnexpectedError: (job, error) => log(`job ${job.id} (${job.kind}) failed unexpectedly: ${(error as Error)?.stack ?? String(error)}`),
    ...(options.pool !== undefined && options.poolJobs !== undefined ? { concurrency: options.poolJobs } : {}),
  });
  const streams = new Set<ServerResponse>();
  const currentModel = () => model;
  const switchOptions: ModelSwitchOptions = {
    device,
    metric,
    ...(metricFallback !== undefined ? { metricFallback } : {}),
    hooks,
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
    ffmpegSpawner,
    ...(modelsDir !== undefined ? { modelsDir } : {}),
    ...(options.hub !== undefined ? { hub: options.hub } : {}),
    current: currentModel,
    install: async (next) => {
      const previous = model;
      model = next;
      if (previous.pipeline === next.pipeline) return;
      for (const onnx of previous.pipeline.models) {
        await onnx.session.release().catch((error: unknown) => log(`warning: freeing the previous model failed: ${(error as Error)?.message ?? String(error)}`));
      }
    },
    describe: (loaded) => modelInfo(loaded, modelsDir !== undefined ? { modelsDir } : {}),
    log,
  };

  // "Run in this browser": the in-page studio at /browser/ and the model's files (./browser-mode.ts).
  const browserMode = new BrowserMode(() => ({ dir: model.pipeline.folder.dir, source: model.source }));
  const sessionDir = (session: string) => sessions.ensureDir(session);
  // Decoding a picture can take a few hundred MB (up to 100 megapixels): one at a time.
  let pictureWork: Promise<unknown> = Promise.resolve();
  const onePictureAtATime = <T>(work: () => Promise<T>): Promise<T> => {
    const next = pictureWork.then(work, work);
    pictureWork = next.catch(() => undefined);
    return next;
  };
  const jobOf = (session: string, id: string): JobView => {
    const job = queue.get(session, id);
    if (job === undefined) throw notFound('job');
    return job;
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: ['health'],
      handler: ({ response }) => sendJson(response, 200, { ok: true, queue: queue.counts() }),
    },
    { method: 'GET', pattern: ['model'], handler: ({ response }) => sendJson(response, 200, switchOptions.describe(model)) },
    {
      method: 'POST',
      pattern: ['model'],
      handler: async ({ request, response, session }) => {
        const { source, scheduler } = parseModelRequest(await readJsonBody(request, MAX_BODY_BYTES));
        const location = locateModelSource(source, modelsDir !== undefined ? { modelsDir } : {});
        // Runs alone: the jobs that start after it use the new model.
        const job = queue.submit(session, 'model', modelJob(switchOptions, location, scheduler), { done: 0, total: 0, label: 'waiting' }, { exclusive: true });
        sendJson(response, 202, job, { Location: `/api/jobs/${job.id}` });
      },
    },
    {
      method: 'GET',
      pattern: ['models'],
      handler: ({ response }) =>
        sendJson(response, 200, listModels({ ...(modelsDir !== undefined ? { modelsDir } : {}), ...(options.hub?.cacheDir !== undefined ? { hubCache: options.hub.cacheDir } : {}), ...(options.hub?.env !== undefined ? { env: options.hub.env } : {}) })),
    },
    { method: 'GET', pattern: ['jobs'], handler: ({ response, session }) => sendJson(response, 200, { jobs: queue.list(session) }) },
    { method: 'GET', pattern: ['jobs', ':'], handler: ({ response, session, params }) => sendJson(response, 200, jobOf(session, params[0]!)) },
    {
      method: 'POST',
      pattern: ['jobs', ':', 'cancel'],
      handler: ({ response, session, params }) => {
        const result = queue.cancel(session, params[0]!);
        if (result === undefined) throw notFound('job');
        if (result === 'finished') throw new HttpError(409, 'finished', `The job has already ended (${jobOf(session, params[0]!).state}).`);
        sendJson(response, 200, result);
      },
    },
    { method: 'GET', pattern: ['jobs', ':', 'events'], handler: (context) => streamEvents(context) },
    {
      method: 'POST',
      pattern: ['previews'],
      handler: async ({ request, response, session }) => {
        const body = parsePreviewsRequest(await readJsonBody(request, MAX_BODY_BYTES));
        checkStudioSize(model.pipeline, body.width, body.height);
        const seeds = previewSeeds(body);
        const runner = options.pool !== undefined ? poolPreviewsJob(options.pool, currentModel, sessionDir(session), body, seeds) : previewsJob(currentModel, sessionDir(session), body, seeds, previewVae);
        const job = queue.submit(session, 'previews', runner, {
          done: 0,
          total: seeds.length * (body.steps ?? model.pipeline.defaults.steps),
          label: 'waiting',
        });
        sendJson(response, 202, job, { Location: `/api/jobs/${job.id}` });
      },
    },
    { method: 'GET', pattern: ['previews'], handler: ({ response, session }) => sendJson(response, 200, { batches: listPreviewBatches(sessions.dir(session)) }) },
    {
      method: 'DELETE',
      pattern: ['previews', ':'],
      handler: async ({ response, session, params, query }) => {
        await deletePreviewBatch(sessions.dir(session), params[0]!, { images: query.get('images') === '1' });
        sendJson(response, 200, { deleted: params[0]! });
      },
    },
    {
      method: 'POST',
      pattern: ['renders'],
      handler: async ({ request, response, session }) => {
        const body = resolveRenderControl(resolveRenderPictures(sessionDir(session), parseRenderRequest(await readJsonBody(request, MAX_BODY_BYTES))), modelsDir);
        checkRenderRequest(model, body, sessionDir(session));
        checkStudioSize(model.pipeline, body.spec.width, body.spec.height);
        const units = renderUnits(body.transitionIndex !== undefined ? 1 : body.spec.keyframes.length - 1);
        const runner = options.pool !== undefined ? poolRenderJob(options.pool, currentModel, sessionDir(session), body, newFilmId()) : renderJob(currentModel, sessionDir(session), body, newFilmId());
        const job = queue.submit(session, 'render', runner, { done: 0, total: units, label: 'waiting' });
        sendJson(response, 202, job, { Location: `/api/jobs/${job.id}` });
      },
    },
    {
      method: 'POST',
      pattern: ['pictures'],
      handler: async ({ request, response, session }) => {
        const bytes = await readPictureBody(request);
        sendJson(response, 201, await onePictureAtATime(() => storePicture(sessionDir(session), bytes)));
      },
    },
    {
      method: 'POST',
      pattern: ['pictures', ':', 'canny'],
      handler: async ({ response, session, params }) => {
        if (!PICTURE_ID.test(params[0]!)) throw notFound('picture');
        sendJson(response, 201, await onePictureAtATime(() => cannyPicture(sessionDir(session), params[0]!)));
      },
    },
    { method: 'GET', pattern: ['films'], handler: ({ response, session }) => sendJson(response, 200, { films: listSessionFilms(sessions.dir(session), renderActive(session)) }) },
    {
      method: 'PATCH',
      pattern: ['films', ':'],
      handler: async ({ request, response, session, params }) => {
        const record = await renameFilm(sessions.dir(session), params[0]!, await readJsonBody(request, MAX_BODY_BYTES));
        sendJson(response, 200, filmEntry(sessions.dir(session), record.id, record, renderActive(session)));
      },
    },
    {
      method: 'DELETE',
      pattern: ['films', ':'],
      handler: async ({ response, session, params }) => {
        await deleteFilm(sessions.dir(session), params[0]!, renderActive(session));
        sendJson(response, 200, { deleted: params[0]! });
      },
    },
    {
      method: 'POST',
      pattern: ['films', ':', 'resume'],
      handler: async ({ response, session, params }) => {
        const dir = sessions.dir(session);
        const record = resumableFilm(dir, params[0]!, renderActive(session), model.source);
        const body = resolveRenderControl(
          resolveRenderPictures(
            sessionDir(session),
            parseRenderRequest({ spec: record.spec, format: record.format, ...(record.transitionIndex !== undefined ? { transitionIndex: record.transitionIndex } : {}) }),
          ),
          modelsDir,
        );
        checkRenderRequest(model, body, sessionDir(session));
        const units = renderUnits(body.transitionIndex !== undefined ? 1 : body.spec.keyframes.length - 1);
        const runner =
          options.pool !== undefined ? poolRenderJob(options.pool, currentModel, sessionDir(session), body, record.id, record) : renderJob(currentModel, sessionDir(session), body, record.id, record);
        const job = queue.submit(session, 'render', runner, { done: 0, total: units, label: 'waiting' });
        // The film is 'rendering' from now on, also while the job waits (so it is not deleted or resumed twice).
        await writeStudioFilmRecord(filmDir(dir, record.id), {
          ...record,
          state: 'rendering',
          jobId: job.id,
          earlierJobIds: [...(record.earlierJobIds ?? []), record.jobId].slice(-50),
        });
        sendJson(response, 202, { ...job, filmId: record.id }, { Location: `/api/jobs/${job.id}` });
      },
    },
    { method: 'GET', pattern: ['spec', 'example'], handler: ({ response }) => sendJson(response, 200, { yaml: EXAMPLE_FILM_SPEC }) },
    {
      method: 'POST',
      pattern: ['spec', 'parse'],
      handler: async ({ request, response }) => sendJson(response, 200, { spec: parseSpecText(await readJsonBody(request, MAX_BODY_BYTES)) }),
    },
    {
      method: 'POST',
      pattern: ['spec', 'yaml'],
      handler: async ({ request, response }) => {
        const body = await readJsonBody(request, MAX_BODY_BYTES);
        const spec = parseSpecYamlRequest(body);
        // Pictures keep the ids the page gave them (the parser made paths of them).
        const raw = (body as { spec?: unknown }).spec as Record<string, unknown>;
        sendJson(response, 200, { yaml: filmSpecToYaml(withPictureIds(spec, raw)) });
      },
    },
    {
      method: 'GET',
      pattern: ['files', ':'],
      handler: async ({ request, response, session, params, query }) => {
        const name = params[0]!;
        const relativePath = fileNamePath(name);
        if (relativePath === undefined) throw new HttpError(404, 'not_found', 'No such file (file names are those the studio hands out).');
        const download: Record<string, string> = query.get('download') === '1' ? { 'Content-Disposition': downloadHeader(session, name) } : {};
        await serveFile(request, response, sessions.dir(session), relativePath, download);
      },
    },
  ];

  /** Whether a render job of the session runs or waits now (its film is then 'rendering'). */
  function renderActive(session: string): (jobId: string) => boolean {
    return (jobId) => {
      const job = queue.get(session, jobId);
      return job !== undefined && !isFinished(job);
    };
  }

  /** A film's files download under its title (or first prompt); other files under their name. */
  function downloadHeader(session: string, name: string): string {
    const film = /^([0-9a-f]{24})(-contact-sheet|-smoothness)?\.([a-z0-9]+)$/.exec(name);
    if (film !== null && FILM_ID.test(film[1]!)) {
      try {
        const record = filmRecordOf(sessions.dir(session), film[1]!);
        return attachmentHeader(`${filmName(record)}${film[2] ?? ''}`, film[3]!);
      } catch {
        // not a film of this session: the file is then 404 anyway
      }
    }
    return `attachment; filename="${name}"`;
  }

  /** GET /api/jobs/:id/events: the job's events as text/event-stream, until the job ends. */
  function streamEvents({ response, session, params }: RequestContext): void {
    jobOf(session, params[0]!);
    response.writeHead(200, {
      ...COMMON_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    response.write('retry: 2000\n\n');
    streams.add(response);
    let ended = false;
    let unsubscribe: (() => void) | undefined;
    const heartbeat = setInterval(() => response.write(': ping\n\n'), HEARTBEAT_MS);
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe?.();
      streams.delete(response);
      response.end();
    };
    unsubscribe = queue.subscribe(session, params[0]!, (event) => {
      if (ended) return;
      if (event.type === 'job' && 'job' in event) {
        response.write(`event: job\ndata: ${JSON.stringify(event.job)}\n\n`);
        if (isFinished(event.job)) end();
      } else if ('data' in event) {
        response.write(`event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
      }
    });
    if (ended) unsubscribe?.();
    // The client went away (or the studio closes the stream).
    response.on('close', end);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawUrl = request.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const rawPath = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = new URLSearchParams(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1));
    const method = request.method ?? 'GET';
    const isPage = !rawPath.startsWith('/api/') && rawPath !== '/api';
    let granted;
    try {
      granted = access.check(request, query, isPage);
    } catch (error) {
      // A browser visiting without the token gets a page that asks for it.
      if (error instanceof HttpError && error.status === 401 && isPage && method === 'GET' && (request.headers.accept ?? '').includes('text/html')) {
        const page = tokenPage();
        response.writeHead(401, {
          ...COMMON_HEADERS,
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Length': Buffer.byteLength(page),
          'Cache-Control': 'no-store',
          'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
          ...error.headers,
        });
        response.end(page);
        return;
      }
      throw error;
    }
    if (granted.kind === 'redirect') {
      response.writeHead(303, { ...COMMON_HEADERS, Location: granted.location, 'Set-Cookie': granted.setCookie, 'Cache-Control': 'no-store', 'Content-Length': 0 });
      response.end();
      return;
    }
    const segments = pathSegments(rawPath);

    let session = sessions.sessionOf(request.headers.cookie);
    if (session === undefined) {
      const created = sessions.create();
      session = created.id;
      response.setHeader('Set-Cookie', created.setCookie);
    }

    if (segments[0] !== 'api') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here.`, { Allow: 'GET, HEAD' });
      if (segments[0] === 'browser' && segments.length > 1) await browserMode.servePage(request, response, segments.slice(1));
      else await frontEnd.serve(request, response, segments);
      return;
    }
    const rest = segments.slice(1);
    if (rest[0] === 'model' && rest[1] === 'files' && rest.length > 2) {
      await browserMode.serveModelFile(request, response, rest.slice(2));
      return;
    }
    const matching = routes.filter((route) => route.pattern.length === rest.length && route.pattern.every((part, index) => part === ':' || part === rest[index]));
    if (matching.length === 0) throw new HttpError(404, 'not_found', `No API endpoint ${rawPath}.`);
    const effective = method === 'HEAD' ? 'GET' : method;
    const route = matching.find((candidate) => candidate.method === effective);
    if (route === undefined) {
      const allowed = [...new Set(matching.map((candidate) => candidate.method))].join(', ');
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${rawPath}; use ${allowed}.`, { Allow: allowed });
    }
    const params = route.pattern.flatMap((part, index) => (part === ':' ? [rest[index]!] : []));
    await route.handler({ request, response, session, params, query });
  }

  const server = createServer({ headersTimeout: 30_000 }, (request, response) => {
    handle(request, response).catch((caught: unknown) => {
      const error = fileSystemError(caught);
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof HttpError) {
        sendError(response, error.status, error.code, error.message, error.headers);
      } else if (error instanceof LatentBlendError) {
        // User mistakes are 400; a full queue 429; a studio shutting down 503.
        const status = error.code === 'queue_full' ? 429 : error.code === 'unavailable' ? 503 : 400;
        sendError(response, status, error.code, error.message);
      } else {
        log(`unexpected error on ${request.method} ${request.url}: ${(error as Error)?.stack ?? String(error)}`);
        sendError(response, 500, 'internal', 'Unexpected server error; the studio log has the details.');
      }
    });
  });

  await new Promise<void>((listening, fail) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      fail(error.code === 'EADDRINUSE' ? new LatentBlendError(`Port ${options.port ?? 7860} on ${host} is in use; choose another with --port (0 = any free port).`, 'unavailable') : error);
    });
    server.listen(options.port ?? 7860, host, () => listening());
  });
  // On a pool, as many jobs at once as there are workers (unless fixed with poolJobs).
  const poolWatch =
    options.pool !== undefined && options.poolJobs === undefined
      ? watchPoolWorkers(options.pool, (workers) => queue.setConcurrency(workers), { onError: (message) => log(`warning: ${message}`) })
      : undefined;
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}/${token === undefined ? '' : `?token=${token}`}`,
    ...(token !== undefined ? { token } : {}),
    close() {
      closing ??= (async () => {
        await poolWatch?.close();
        await queue.close();
        for (const stream of streams) stream.end();
        await new Promise<void>((closed) => {
          server.close(() => closed());
          server.closeAllConnections();
        });
        await metric.release?.();
        for (const onnx of model.pipeline.models) await onnx.session.release().catch(() => {});
        await ownPreviewVae?.release().catch(() => {});
        await ffmpegSpawner.close();
      })();
      return closing;
    },
  };
}
