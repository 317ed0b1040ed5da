/// <reference lib="dom" />
/**
 * Model files over HTTP for the browser engine: the file list of an Optimum-layout model folder
 * (from the Hugging Face Hub's tree API, or a `files.json` beside the files on the page's own
 * site), its small text files fetched up front (configs, tokenizers) so that the engine's
 * synchronous folder checks work unchanged, and ONNX files fetched on demand with progress and
 * kept in the browser's Cache API. External-data files (`model.onnx_data`, sharded
 * `model.onnx_data_1`…, or `weights.pb`) are fetched as separate buffers and handed to ONNX
 * Runtime as its `externalData`, so no single buffer has to hold a whole multi-GB model; an
 * fp16 export (`model_fp16.onnx`, or diffusers' variant name `model.fp16.onnx`) is preferred over
 * `model.onnx` where both exist.
 */
import { LatentBlendError } from '../errors.ts';
import type { FileAccess } from '../runtime/platform.ts';
import { checkOnnxHead } from '../model/folder.ts';
import type { ModelBytes } from './runtime.ts';

/** One file of a listing: path relative to the folder, size in bytes. */
export interface RemoteEntry {
  readonly path: string;
  readonly size: number;
}

/** A model folder on a web server: its base URL (no trailing '/') and its files. */
export interface RemoteFolder {
  readonly base: string;
  readonly entries: readonly RemoteEntry[];
}

/** A download event: bytes so far of one file (`cached`: served from the browser's storage). */
export interface DownloadProgress {
  readonly url: string;
  /** What the file is, e.g. "UNet" or "unet/config.json". */
  readonly role: string;
  readonly loaded: number;
  readonly total: number;
  readonly cached: boolean;
  readonly done: boolean;
}

export interface RemoteFileStoreOptions {
  /** The fetch to use (default: the page's). */
  readonly fetch?: typeof fetch;
  /** Cache API cache name; null: no caching (default 'latentblend-models-v1'). */
  readonly cacheName?: string | null;
  readonly onProgress?: (event: DownloadProgress) => void;
  /** Prefer `model_fp16.onnx` / `model.fp16.onnx` over `model.onnx` where listed (default true). */
  readonly preferFp16?: boolean;
}

/** Folders whose .json/.txt files are fetched up front (the engine reads them synchronously). */
const TEXT_FOLDERS = ['scheduler', 'tokenizer', 'tokenizer_2', 'text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder'];

/** Chromium's largest ArrayBuffer is about 2 GB on many systems; larger files must be sharded. */
const LARGEST_BUFFER = 2 ** 31 - 1;

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function parseEntries(value: unknown, where: string): RemoteEntry[] {
  if (!Array.isArray(value)) throw new LatentBlendError(`${where}: expected a JSON array of {path, size} file entries.`, 'model_folder');
  const entries: RemoteEntry[] = [];
  for (const item of value as { type?: unknown; path?: unknown; size?: unknown }[]) {
    if (item === null || typeof item !== 'object' || typeof item.path !== 'string') {
      throw new LatentBlendError(`${where}: every entry needs a "path" string.`, 'model_folder');
    }
    if (item.type !== undefined && item.type !== 'file') continue;
    entries.push({ path: item.path, size: typeof item.size === 'number' ? item.size : 0 });
  }
  return entries;
}

async function fetchJson(fetcher: typeof fetch, url: string, what: string): Promise<{ value: unknown; next: string | undefined }> {
  let response: Response;
  try {
    response = await fetcher(url);
  } catch (error) {
    throw new LatentBlendError(`Could not fetch ${url} (${what}): ${(error as Error).message}`, 'unavailable');
  }
  if (!response.ok) throw new LatentBlendError(`${url} (${what}): HTTP ${response.status}.`, 'model_folder');
  const link = response.headers.get('link') ?? '';
  const next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1];
  return { value: await response.json(), next };
}

/**
 * Lists a folder on a plain web server from its `files.json` (the format of the Hub's tree API:
 * `[{ "type": "file", "path": "unet/model.onnx", "size": 1234 }, …]`), as `studio --static`
 * writes it.
 */
export async function listSiteFolder(base: string, fetcher: typeof fetch = fetch): Promise<RemoteFolder> {
  const root = trimSlash(base);
  const { value } = await fetchJson(fetcher, `${root}/files.json`, 'the model folder file list');
  return { base: root, entries: parseEntries(value, `${root}/files.json`) };
}

/**
 * Lists a Hugging Face Hub model repository (or one `subfolder` of it) with the Hub's tree API;
 * files then resolve from `{hub}/{repo}/resolve/{revision}/…`.
 */
export async function listHubRepo(
  repo: string,
  options: { revision?: string; subfolder?: string; hubUrl?: string; fetch?: typeof fetch } = {},
): Promise<RemoteFolder> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) {
    throw new LatentBlendError(`model: got ${JSON.stringify(repo)}, expected a Hub repository id like "owner/name".`);
  }
  const hub = trimSlash(options.hubUrl ?? 'https://huggingface.co');
  const revision = options.revision ?? 'main';
  const fetcher = options.fetch ?? fetch;
  const entries: RemoteEntry[] = [];
  let url: string | undefined = `${hub}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
  while (url !== undefined) {
    const page = await fetchJson(fetcher, url, `the file list of ${repo}`);
    entries.push(...parseEntries(page.value, url));
    url = page.next;
  }
  const sub = (options.subfolder ?? '').replace(/^\/+|\/+$/g, '');
  const base = `${hub}/${repo}/resolve/${encodeURIComponent(revision)}${sub === '' ? '' : `/${sub}`}`;
  const inside = sub === '' ? entries : entries.filter((entry) => entry.path.startsWith(`${sub}/`)).map((entry) => ({ ...entry, path: entry.path.slice(sub.length + 1) }));
  return { base, entries: inside };
}

/**
 * Model files from web servers as the engine's {@link FileAccess}, plus the ONNX loader for
 * onnxruntime-web ({@link loadModel}). Add folders with {@link addFolder} before loading a
 * pipeline from their base URL.
 */
export class RemoteFileStore implements FileAccess {
  private readonly fetcher: typeof fetch;
  private readonly cacheName: string | null;
  private readonly preferFp16: boolean;
  /** Size of every listed file, by absolute URL. */
  private readonly sizes = new Map<string, number>();
  /** Every folder URL that holds a listed file. */
  private readonly folders = new Set<string>();
  /** Prefetched text files, by URL. */
  private readonly texts = new Map<string, string>();

  constructor(private readonly options: RemoteFileStoreOptions = {}) {
    this.fetcher = options.fetch ?? ((input, init) => fetch(input, init));
    this.cacheName = options.cacheName === undefined ? 'latentblend-models-v1' : options.cacheName;
    this.preferFp16 = options.preferFp16 ?? true;
  }

  /** Registers a folder's files and fetches its small text files (configs, tokenizers). */
  async addFolder(folder: RemoteFolder): Promise<void> {
    const base = trimSlash(folder.base);
    for (const entry of folder.entries) {
      const url = `${base}/${entry.path}`;
      this.sizes.set(url, entry.size);
      let at = url.lastIndexOf('/');
      while (at > base.length - 1) {
        this.folders.add(url.slice(0, at));
        at = url.lastIndexOf('/', at - 1);
      }
    }
    this.folders.add(base);
    const wanted = folder.entries.filter((entry) => {
      const parts = entry.path.split('/');
      const isText = /\.(json|txt)$/.test(entry.path);
      return isText && (parts.length === 1 ? entry.path === 'model_index.json' : parts.length === 2 && TEXT_FOLDERS.includes(parts[0]!));
    });
    await Promise.all(
      wanted.map(async (entry) => {
        const url = `${base}/${entry.path}`;
        const bytes = await this.fetchBytes(url, entry.path);
        this.texts.set(url, new TextDecoder().decode(bytes));
      }),
    );
  }

  join(...parts: string[]): string {
    return parts.map((part, index) => (index === 0 ? trimSlash(part) : part.replace(/^\/+|\/+$/g, ''))).filter((part) => part !== '').join('/');
  }

  resolve(path: string): string {
    return new URL(path, globalThis.location?.href ?? 'http://localhost/').href.replace(/\/+$/, '');
  }

  isFolder(path: string): boolean {
    return this.folders.has(trimSlash(path));
  }

  isFile(path: string): boolean {
    return this.sizes.has(path) || (this.preferFp16 && fp16Names(path).some((name) => this.sizes.has(name)));
  }

  readText(path: string): string {
    const text = this.texts.get(path);
    if (text === undefined) {
      throw new LatentBlendError(`${path} was not fetched: only model_index.json and the .json/.txt files of the component folders are.`, 'model_folder');
    }
    return text;
  }

  readHead(): Uint8Array | undefined {
    // Checked after download instead (see loadModel).
    return undefined;
  }

  /** The file that will be loaded for `url`: its fp16 twin when preferred and listed. */
  resolveOnnx(url: string): string {
    const twin = this.preferFp16 ? fp16Names(url).find((name) => this.sizes.has(name)) : undefined;
    return twin ?? url;
  }

  /** External-data files listed beside the ONNX file at `url` (names as the model refers to them). */
  externalDataOf(url: string): string[] {
    const slash = url.lastIndexOf('/');
    const folder = url.slice(0, slash + 1);
    const name = url.slice(slash + 1);
    const result: string[] = [];
    for (const listed of this.sizes.keys()) {
      if (!listed.startsWith(folder) || listed.slice(folder.length).includes('/')) continue;
      const file = listed.slice(folder.length);
      if (file.startsWith(`${name}_data`) || file.startsWith(`${name}.data`) || file === 'weights.pb') result.push(file);
    }
    return result.sort();
  }

  /**
   * Fetches the ONNX file at `url` (its fp16 twin when preferred) and its external-data files,
   * with progress, through the browser's cache. For onnxruntime-web's sessions.
   */
  readonly loadModel = async (url: string, role: string): Promise<ModelBytes> => {
    const file = this.resolveOnnx(url);
    if (!this.sizes.has(file)) throw new LatentBlendError(`Missing ${url}: expected the ${role} as an ONNX model.`, 'model_folder');
    const model = await this.fetchBytes(file, role);
    checkOnnxHead(model.subarray(0, 64), file, role);
    const folder = file.slice(0, file.lastIndexOf('/') + 1);
    const externalData = [];
    for (const name of this.externalDataOf(file)) {
      externalData.push({ path: name, data: await this.fetchBytes(folder + name, `${role} weights (${name})`) });
    }
    return { model, externalData };
  };

  /** One file's bytes: from the Cache API when there, else downloaded (with progress) and cached. */
  async fetchBytes(url: string, role: string): Promise<Uint8Array> {
    const report = this.options.onProgress;
    const cache = this.cacheName !== null && typeof caches !== 'undefined' ? await caches.open(this.cacheName) : undefined;
    const hit = await cache?.match(url);
    if (hit !== undefined) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      report?.({ url, role, loaded: bytes.length, total: bytes.length, cached: true, done: true });
      return bytes;
    }
    let response: Response;
    try {
      response = await this.fetcher(url);
    } catch (error) {
      throw new LatentBlendError(`Could not fetch ${url}: ${(error as Error).message}`, 'unavailable');
    }
    if (!response.ok) throw new LatentBlendError(`Could not fetch ${url}: HTTP ${response.status}.`, 'model_folder');
    const declared = Number(response.headers.get('content-length') ?? NaN);
    const total = Number.isFinite(declared) && declared > 0 ? declared : (this.sizes.get(url) ?? 0);
    if (total > LARGEST_BUFFER) {
      throw new LatentBlendError(
        `${url} is ${(total / 2 ** 30).toFixed(1)} GiB: browsers cannot hold one file over 2 GiB; use an export with external data in shards (model.onnx_data…).`,
        'unsupported',
      );
    }
    const bytes = await readBody(response, total, (loaded) => report?.({ url, role, loaded, total, cached: false, done: false }));
    report?.({ url, role, loaded: bytes.length, total: bytes.length, cached: false, done: true });
    if (cache !== undefined) {
      try {
        await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }));
      } catch {
        // Storage full or refused: the model still runs, it is just fetched again next time.
      }
    }
    return bytes;
  }
}

/** `x/model.onnx` → its fp16 twins `x/model_fp16.onnx` and `x/model.fp16.onnx` (diffusers' variant name). */
function fp16Names(url: string): string[] {
  if (!url.endsWith('/model.onnx')) return [];
  const folder = url.slice(0, -'model.onnx'.length);
  return [`${folder}model_fp16.onnx`, `${folder}model.fp16.onnx`];
}

async function readBody(response: Response, total: number, onChunk: (loaded: number) => void): Promise<Uint8Array> {
  if (response.body === null) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  let buffer = new Uint8Array(total > 0 ? total : 1 << 20);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > buffer.length) {
      const grown = new Uint8Array(Math.max(buffer.length * 2, loaded + value.length));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.length;
    onChunk(loaded);
  }
  return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
}
