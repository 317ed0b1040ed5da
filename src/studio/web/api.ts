/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The studio's HTTP API as the page sees it (docs/studio-api.md): typed fetch helpers, one
 * error type carrying the server's `{ error: { code, message } }`, and a job watcher on the
 * job's event stream.
 */

/** Crossfeed triple of a film spec, each in [0, 1]. */
export interface Crossfeed {
  power: number;
  range: number;
  decay: number;
}

/** `GET /api/model`. */
export interface ModelInfo {
  source: string;
  family: 'sd' | 'sdxl';
  preset: 'turbo' | 'standard';
  defaults: {
    width: number;
    height: number;
    steps: number;
    guidanceScale: number;
    depthStrength: number;
    midDamper: number;
    maxBranches: number;
    branch1Crossfeed: Crossfeed;
    parentalCrossfeed: Crossfeed;
  };
  schedulerClass: string;
  device: string;
  metric: string;
  /** Whether the model has the UNet export that takes ControlNet residuals (absent from older servers). */
  controlnet?: boolean;
  /** Whether the model can take an IP-Adapter exported for it (absent from older servers). */
  ipAdapter?: boolean;
  /** Why the metric is the rms-pixel fallback (no LPIPS model found), when it is. */
  metricFallback?: string;
  /** Video formats this server can write (when it says; else all three). */
  formats?: string[];
  /** When the studio was started with --models-dir: the folder that models loaded here must be in. */
  modelsDir?: string;
  /** The scheduler the model ships, and the project's schedulers that suit it (newer servers). */
  shippedScheduler?: string;
  schedulers?: string[];
}

/** A model the server can load (GET /api/models). */
export interface CatalogModel {
  source: string;
  origin: 'models-dir' | 'hub-cache';
  name: string;
  family: 'sd' | 'sdxl';
  preset: 'turbo' | 'standard';
  width: number;
  height: number;
  sizeBytes: number;
  precision: 'float32' | 'float16' | 'unknown';
  scheduler: string;
  schedulers: string[];
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobProgress {
  done: number;
  total: number;
  label: string;
  etaSeconds?: number;
}

export interface PreviewResult {
  images: { seed: number; url: string }[];
}

export interface RenderResult {
  filmUrl: string;
  contactSheetUrl?: string;
  smoothnessUrl?: string;
  frames: number;
  filmFrames: number;
  workDir?: string;
}

export interface Job {
  id: string;
  kind: 'previews' | 'render' | 'model';
  state: JobState;
  position: number;
  /** While queued: what runs before it (newer servers). */
  ahead?: { kind: string; state: 'running' | 'queued'; etaSeconds?: number }[];
  /** While queued: about how many seconds until it starts. */
  waitSeconds?: number;
  progress: JobProgress;
  result?: unknown;
  error?: { code?: string; message: string } | string;
  /** Notes such as a size rounded to the model's grid or a time budget reached. */
  warnings?: string[];
}

/** A computed frame of a render, as the `frame` event reports it. */
export interface FrameEvent {
  index: number;
  fract: number;
  url: string;
  /** Which transition of the film (asked for in docs/studio-api.md; may be absent). */
  transition?: number;
}

/** A film spec as JSON: the keys of the CLI's film spec (src/film/spec.ts), defaults optional. */
export interface FilmSpecJson {
  model?: string;
  device?: string;
  preset?: 'turbo' | 'standard';
  width?: number;
  height?: number;
  steps?: number;
  guidanceScale?: number;
  midDamper?: number;
  depthStrength?: number;
  negativePrompt?: string;
  /** Frames computed per transition (the CLI's --max-branches). */
  maxBranches?: number;
  /** Seconds of compute per transition (the CLI's --time-budget). */
  timeBudget?: number;
  /** @deprecated Former name of maxBranches: only read, in specs recorded by older studios. */
  branchesPerTransition?: number;
  /** @deprecated Former name of timeBudget: only read, in specs recorded by older studios. */
  timeBudgetPerTransition?: number;
  batchSize?: number;
  branch1Crossfeed?: Crossfeed;
  parentalCrossfeed?: Crossfeed;
  fps?: number;
  transitionDuration?: number;
  retiming?: 'perceptual' | 'equal';
  quality?: number;
  /** ControlNet folder or Hub id, with an uploaded control picture (issue #13); with controlImage, the film uses it. */
  controlnet?: string;
  /** The uploaded control picture's id, for every keyframe. */
  controlImage?: string;
  controlnetScale?: number;
  /** Turn the control picture into a Canny edge map first. */
  canny?: boolean;
  /** IP-Adapter folder or Hub id (issue #13); the film uses it when every keyframe has an image prompt. */
  ipAdapter?: string;
  /** Image prompt of every keyframe without its own (an uploaded picture's id). */
  ipImage?: string;
  /** IP-Adapter scale, 0 to 5; undefined: 1. */
  ipAdapterScale?: number;
  keyframes: {
    /** Absent (or '') on a picture keyframe without a prompt. */
    prompt?: string;
    seed: number;
    /** An uploaded picture's id (api.uploadPicture). */
    image?: string;
    fit?: 'cover' | 'contain';
    imageMethod?: 'noise' | 'inversion';
    /** This keyframe's control picture (an uploaded picture's id). */
    controlImage?: string;
    /** This keyframe's image prompt (an uploaded picture's id). */
    ipImage?: string;
    ipAdapterScale?: number;
    negativePrompt?: string;
    duration?: number;
  }[];
}

export type FilmState = 'done' | 'rendering' | 'interrupted' | 'cancelled' | 'failed';

export interface FilmEntry {
  id: string;
  /** Absent from older servers: then every listed film is done. */
  state?: FilmState;
  /** The title given, else the first prompt. */
  title?: string;
  createdAt: string;
  /** Only for done films. */
  filmUrl?: string;
  downloadName?: string;
  resumable?: boolean;
  transitionsFinished?: number;
  transitionsTotal?: number;
  spec: FilmSpecJson;
  /** The model the film was rendered with. */
  model?: string;
  contactSheetUrl?: string;
  smoothnessUrl?: string;
  transitionIndex?: number;
}

export type VideoFormat = 'mp4' | 'webm' | 'gif';

/** An error answered by the server (or the network), with the server's code when it gave one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The human message of a job's `error` field, whatever shape the server chose. */
export function jobErrorMessage(job: Job): string {
  const error = job.error;
  if (typeof error === 'string') return error;
  if (isRecord(error) && typeof error.message === 'string') return error.message;
  return 'the job failed without a message';
}

async function request<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json', accept: 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (cause) {
    throw new ApiError(`Cannot reach the studio server (${(cause as Error).message}). Is \`latentblend studio\` still running?`, 0, 'network');
  }
  const text = await response.text();
  let data: unknown;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const error = isRecord(data) && isRecord(data.error) ? data.error : undefined;
    const message = typeof error?.message === 'string' ? error.message : `${method} ${path} answered ${response.status} ${response.statusText}`;
    const code = typeof error?.code === 'string' ? error.code : `http_${response.status}`;
    throw new ApiError(message, response.status, code);
  }
  return data as T;
}

/** An uploaded picture (POST /api/pictures): its id names it in keyframes, its url shows it. */
export interface UploadedPicture {
  id: string;
  url: string;
  width: number;
  height: number;
}

/** POST /api/pictures with the picture's bytes. */
async function uploadPicture(blob: Blob): Promise<UploadedPicture> {
  let response: Response;
  try {
    response = await fetch('/api/pictures', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': blob.type.startsWith('image/') ? blob.type : 'application/octet-stream', accept: 'application/json' },
      body: blob,
    });
  } catch (cause) {
    throw new ApiError(`Cannot reach the studio server (${(cause as Error).message}). Is \`latentblend studio\` still running?`, 0, 'network');
  }
  const data: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = isRecord(data) && isRecord(data.error) ? data.error : undefined;
    throw new ApiError(typeof error?.message === 'string' ? error.message : `POST /api/pictures answered ${response.status}`, response.status, typeof error?.code === 'string' ? error.code : `http_${response.status}`);
  }
  return data as UploadedPicture;
}

export const api = {
  /** Stores a picture in the session (checked by the server); keyframes then name it by id. */
  uploadPicture,
  /** The Canny edge map of an uploaded picture, stored as a picture of its own. */
  cannyPicture: (id: string) => request<UploadedPicture>('POST', `/api/pictures/${encodeURIComponent(id)}/canny`),
  model: () => request<ModelInfo>('GET', '/api/model'),
  /** Queues loading another model (a folder or a Hub id); the job's result is the new ModelInfo. */
  loadModel: (source: string, scheduler?: string) => request<Job>('POST', '/api/model', { source, ...(scheduler !== undefined ? { scheduler } : {}) }),
  /** Models found in --models-dir and the Hugging Face cache. */
  models: () => request<{ models: CatalogModel[]; modelsDir?: string; hubCache: string }>('GET', '/api/models'),
  jobs: () => request<{ jobs: Job[] }>('GET', '/api/jobs'),
  job: (id: string) => request<Job>('GET', `/api/jobs/${encodeURIComponent(id)}`),
  cancel: (id: string) => request<Job>('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`),
  previews: (body: { prompt: string; negativePrompt?: string; seeds?: number[]; count?: number; width?: number; height?: number; steps?: number; guidanceScale?: number }) =>
    request<Job>('POST', '/api/previews', body),
  render: (body: { spec: FilmSpecJson; format?: VideoFormat; transitionIndex?: number }) => request<Job>('POST', '/api/renders', body),
  films: () => request<{ films: FilmEntry[] }>('GET', '/api/films'),
  /** Renders an unfinished film again in its folder, reusing its finished transitions. */
  resumeFilm: (id: string) => request<Job & { filmId: string }>('POST', `/api/films/${encodeURIComponent(id)}/resume`),
  renameFilm: (id: string, title: string) => request<FilmEntry>('PATCH', `/api/films/${encodeURIComponent(id)}`, { title }),
  deleteFilm: (id: string) => request<{ deleted: string }>('DELETE', `/api/films/${encodeURIComponent(id)}`),
  /** This session's preview batches kept on the server, newest first (absent from older servers). */
  previewBatches: () => request<{ batches: { id: string; prompt: string; images: { seed: number; url: string }[] }[] }>('GET', '/api/previews'),
  /** Removes a batch from the server's list; `images`: its PNG files too. */
  deletePreviews: (id: string, images: boolean) => request<{ deleted: string }>('DELETE', `/api/previews/${encodeURIComponent(id)}${images ? '?images=1' : ''}`),
  exampleSpec: () => request<{ yaml: string }>('GET', '/api/spec/example'),
  parseSpec: (text: string, format: 'yaml' | 'json') => request<{ spec: FilmSpecJson }>('POST', '/api/spec/parse', { text, format }),
  specYaml: (spec: FilmSpecJson) => request<{ yaml: string }>('POST', '/api/spec/yaml', { spec }),
};

export interface JobWatch {
  /** Resolves with the job in its final state (done, failed or cancelled). */
  readonly finished: Promise<Job>;
  /** Stops listening (the job itself goes on; use api.cancel for that). */
  stop(): void;
}

const FINAL_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

export function isFinal(job: Job): boolean {
  return FINAL_STATES.includes(job.state);
}

/**
 * Follows a job through its event stream: `onJob` on every change, `onFrame` for every computed
 * frame. When the stream breaks before the job ends (a proxy, a sleeping laptop), it falls back
 * to polling `GET /api/jobs/:id` so the page never hangs on a finished job.
 */
export function watchJob(job: Job, handlers: { onJob?: (job: Job) => void; onFrame?: (frame: FrameEvent) => void }): JobWatch {
  let stopped = false;
  let source: EventSource | undefined;
  let poll: ReturnType<typeof setTimeout> | undefined;
  let settle: (job: Job) => void = () => undefined;
  let fail: (error: unknown) => void = () => undefined;
  const finished = new Promise<Job>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  let last = job;
  const seenFrames = new Set<string>();

  const update = (next: Job) => {
    last = next;
    handlers.onJob?.(next);
    if (isFinal(next)) {
      cleanUp();
      settle(next);
    }
  };
  const cleanUp = () => {
    stopped = true;
    source?.close();
    if (poll !== undefined) clearTimeout(poll);
  };
  const startPolling = () => {
    if (stopped) return;
    source?.close();
    const tick = async () => {
      if (stopped) return;
      try {
        update(await api.job(job.id));
      } catch (error) {
        cleanUp();
        fail(error);
        return;
      }
      if (!stopped) poll = setTimeout(() => void tick(), 500);
    };
    void tick();
  };

  handlers.onJob?.(job);
  if (isFinal(job)) {
    stopped = true;
    settle(job);
  } else if (typeof EventSource === 'undefined') {
    startPolling();
  } else {
    source = new EventSource(`/api/jobs/${encodeURIComponent(job.id)}/events`);
    source.addEventListener('job', (event) => {
      try {
        update(JSON.parse((event as MessageEvent<string>).data) as Job);
      } catch {
        // A malformed event is skipped; the next one or the poll fallback carries the state.
      }
    });
    source.addEventListener('frame', (event) => {
      try {
        const frame = JSON.parse((event as MessageEvent<string>).data) as FrameEvent;
        const key = `${frame.transition ?? ''}:${frame.index}:${frame.url}`;
        if (seenFrames.has(key)) return;
        seenFrames.add(key);
        handlers.onFrame?.(frame);
      } catch {
        // ignored, as above
      }
    });
    source.addEventListener('error', () => {
      // The server closes the stream after the job ends; if we have not seen the end, poll.
      if (!stopped && !isFinal(last)) startPolling();
    });
  }
  return {
    finished,
    stop: () => {
      cleanUp();
    },
  };
}
