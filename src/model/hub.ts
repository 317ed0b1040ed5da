/**
 * Getting a diffusion pipeline exported to ONNX (Optimum's layout) from the Hugging Face Hub into
 * the Hub's shared local cache, and finding it there again with no network.
 *
 * The cache is huggingface_hub's (https://huggingface.co/docs/hub/local-cache):
 *   <cache>/models--owner--name/blobs/<etag>                 file contents, named by ETag
 *   <cache>/models--owner--name/snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag>
 *   <cache>/models--owner--name/refs/<revision>              the commit a branch or tag pointed at
 * so a cache filled by Python is reused here and the other way round.
 *
 * Network use follows huggingface_hub: the revision API lists the files and the commit, a HEAD on
 * `resolve/<commit>/<path>` (relative redirects followed, the CDN redirect not) gives the ETag
 * (`X-Linked-Etag`, else `ETag`) and size (`X-Linked-Size`, else `Content-Length`), and the GET
 * writes `blobs/<etag>.incomplete`, continued with an HTTP Range request after an interruption.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import type { ReadableStreamReadResult } from 'node:stream/web';
import { setTimeout as delay } from 'node:timers/promises';
import { LatentBlendError } from '../errors.ts';

/** A parsed Hub model reference: `owner/name[/subfolder…][@revision]`. */
export interface RepoSpec {
  readonly repo: string;
  readonly revision?: string;
  readonly subfolder?: string;
}

/** One progress report; `bytesDone` never decreases and ends at `totalBytes`. */
export interface DownloadProgress {
  /** Path of the file being fetched, relative to the repo root. */
  readonly file: string;
  readonly fileBytes: number;
  /** Undefined when neither the Hub nor the API said how big the file is. */
  readonly fileTotal: number | undefined;
  /** Bytes on disk over every file this call has to fetch (resumed bytes included). */
  readonly bytesDone: number;
  readonly totalBytes: number;
}

export interface ResolveModelOptions {
  /** Cache root; default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  readonly cacheDir?: string;
  /** Branch, tag or commit; default the spec's `@revision`, else `main`. */
  readonly revision?: string;
  /** Folder inside the repo holding the ONNX pipeline; default the spec's, else the root. */
  readonly subfolder?: string;
  /** Access token for private and gated repos; default `$HF_TOKEN`. */
  readonly token?: string;
  /** Never touch the network; default from `$HF_HUB_OFFLINE`. */
  readonly offline?: boolean;
  /** Hub address; default `$HF_ENDPOINT`, else https://huggingface.co. */
  readonly endpoint?: string;
  /** Weight variant to prefer, e.g. 'fp16' picks `unet/model.fp16.onnx` where the repo has one. */
  readonly variant?: string;
  /** Retries of a file transfer cut by the network, each resuming where it stopped; default 2. */
  readonly retries?: number;
  readonly onProgress?: (progress: DownloadProgress) => void;
  readonly signal?: AbortSignal;
  /** Replaces the global fetch (proxies, tests). */
  readonly fetch?: typeof fetch;
  /** Environment to read the HF_* variables from; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface ResolvedModel {
  /** Folder in Optimum's layout: the local folder (made absolute), or the snapshot (plus subfolder). */
  readonly dir: string;
  readonly repo?: string;
  readonly revision?: string;
  readonly commit?: string;
  /** True when no file content was transferred by this call. */
  readonly fromCache: boolean;
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';
const COMMIT_HASH = /^[0-9a-f]{40}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// Hub rules for owner and repo names: letters, digits, '-', '_', '.', at most 96 characters,
// no leading or trailing '-' or '.', no '--' or '..' (see huggingface_hub's validate_repo_id).
const NAME_PART = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$/;
const PATH_PART = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
// controlnet/ (a ControlNet repo) and unet_controlnet/ (a model's UNet taking ControlNet residuals): docs/controlnet-onnx.md
const COMPONENT = /^(?:text_encoder(?:_\d+)?|unet|unet_controlnet|vae_decoder|vae_encoder)$/;
/** The root file of a ControlNet folder in latentblend's layout. */
const CONTROLNET_DESCRIPTION = 'latentblend-controlnet.json';
/** The root file of an IP-Adapter folder in latentblend's layout (docs/ip-adapter-onnx.md). */
const IP_ADAPTER_DESCRIPTION = 'latentblend-ip-adapter.json';
const TEXT_COMPONENT = /^text_encoder(?:_\d+)?$/;
const SMALL_FILE_FOLDER = /^(?:scheduler|tokenizer(?:_\d+)?)$/;
const WEIGHT_FILE = /\.(?:safetensors|bin|ckpt|pt|pth|msgpack|h5|onnx|onnx_data|data|pb|gguf)$/i;
const SAFE_ETAG = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const MAX_REDIRECTS = 10;

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

function isValidName(part: string | undefined): part is string {
  return part !== undefined && NAME_PART.test(part) && !part.includes('--') && !part.includes('..');
}

function isValidRevision(revision: string): boolean {
  if (revision.length === 0 || revision.length > 255 || /[\s\\:~^?*[\]\x00-\x1f]/.test(revision)) return false;
  return revision.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function isValidSubfolder(subfolder: string): boolean {
  return subfolder.split('/').every((part) => PATH_PART.test(part) && part !== '..');
}

/**
 * Parses `owner/name`, `owner/name@revision`, `owner/name/sub/folder` or
 * `owner/name/sub/folder@revision` (everything after the first '@' is the revision, so
 * `owner/name@refs/pr/3` works). Returns undefined for anything else, local paths included.
 */
export function parseRepoSpec(spec: string): RepoSpec | undefined {
  const at = spec.indexOf('@');
  const head = at === -1 ? spec : spec.slice(0, at);
  const revision = at === -1 ? undefined : spec.slice(at + 1);
  if (revision !== undefined && !isValidRevision(revision)) return undefined;
  const [owner, name, ...rest] = head.split('/');
  if (!isValidName(owner) || !isValidName(name)) return undefined;
  const subfolder = rest.length > 0 ? rest.join('/') : undefined;
  if (subfolder !== undefined && !isValidSubfolder(subfolder)) return undefined;
  return {
    repo: `${owner}/${name}`,
    ...(revision !== undefined ? { revision } : {}),
    ...(subfolder !== undefined ? { subfolder } : {}),
  };
}

/** True when `spec` has the shape of a Hub model id (see {@link parseRepoSpec}). */
export function isRepoId(spec: string): boolean {
  return parseRepoSpec(spec) !== undefined;
}

function envValue(env: Readonly<Record<string, string | undefined>>, key: string): string | undefined {
  const value = env[key];
  return value === undefined || value.trim() === '' ? undefined : value;
}

function expandHome(path: string, home: string): string {
  return path === '~' || path.startsWith('~/') ? join(home, path.slice(1)) : path;
}

/**
 * The cache root huggingface_hub would use for these variables: `HF_HUB_CACHE` (or the older
 * `HUGGINGFACE_HUB_CACHE`), else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
 * `~/.cache/huggingface/hub`.
 */
export function hubCacheDir(
  env: Readonly<Record<string, string | undefined>> = process.env,
  home: string = homedir(),
): string {
  const direct = envValue(env, 'HF_HUB_CACHE') ?? envValue(env, 'HUGGINGFACE_HUB_CACHE');
  if (direct !== undefined) return expandHome(direct, home);
  const hfHome = envValue(env, 'HF_HOME');
  if (hfHome !== undefined) return join(expandHome(hfHome, home), 'hub');
  const xdg = envValue(env, 'XDG_CACHE_HOME');
  return join(xdg !== undefined ? expandHome(xdg, home) : join(home, '.cache'), 'huggingface', 'hub');
}

/** `owner/name` → `models--owner--name`, the repo's folder in the cache. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** huggingface_hub's reading of boolean variables such as HF_HUB_OFFLINE. */
export function isTruthyEnv(value: string | undefined): boolean {
  return value !== undefined && ['1', 'on', 'yes', 'true'].includes(value.trim().toLowerCase());
}

/** Names of the model file and its external-data files for one weight variant. */
function onnxNames(variant: string | undefined): { main: string[]; data: string[] } {
  if (variant === undefined) {
    // weights.pb is where diffusers' older ONNX converter put external data.
    return { main: ['model.onnx'], data: ['model.onnx_data', 'model.onnx.data', 'weights.pb'] };
  }
  const main = [`model.${variant}.onnx`, `model_${variant}.onnx`];
  return { main, data: main.flatMap((name) => [`${name}_data`, `${name}.data`]) };
}

function onnxRole(file: string, variant: string | undefined): 'main' | 'data' | undefined {
  for (const candidate of variant === undefined ? [undefined] : [undefined, variant]) {
    const names = onnxNames(candidate);
    if (names.main.includes(file)) return 'main';
    if (names.data.includes(file)) return 'data';
  }
  return undefined;
}

/**
 * Whether the ONNX pipeline needs the file at `path` (relative to the pipeline folder):
 * model_index.json, every `<folder>/config.json`, the scheduler and tokenizer files, and the
 * ONNX model plus external data of text_encoder*, unet, vae_decoder and vae_encoder. Other
 * weights (safetensors, .bin, OpenVINO, other folders) are skipped, and so are variant files
 * such as `model.fp16.onnx` unless that `variant` is asked for.
 */
export function isPipelineFile(path: string, options: { readonly variant?: string } = {}): boolean {
  const parts = path.split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..')) return false;
  if (parts.length === 1) return parts[0] === 'model_index.json';
  if (parts.length !== 2) return false;
  const [folder, file] = parts as [string, string];
  if (file === 'config.json') return true;
  if (SMALL_FILE_FOLDER.test(folder)) return !WEIGHT_FILE.test(file);
  if (COMPONENT.test(folder)) return onnxRole(file, options.variant) !== undefined;
  return false;
}

/**
 * Filters a repo listing down to the files to download (see {@link isPipelineFile}); with a
 * `variant`, each component takes the variant's model where the repo has one and the plain
 * model otherwise, never both. Keeps the input order.
 */
export function selectPipelineFiles(paths: readonly string[], options: { readonly variant?: string } = {}): string[] {
  const { variant } = options;
  const kept = paths.filter((path) => isPipelineFile(path, options));
  if (variant === undefined) return kept;
  const variantNames = onnxNames(variant);
  const hasVariant = new Set(
    kept.filter((path) => variantNames.main.includes(path.split('/')[1] ?? '')).map((path) => path.split('/')[0]),
  );
  return kept.filter((path) => {
    const [folder, file] = path.split('/');
    if (folder === undefined || file === undefined || !COMPONENT.test(folder) || file === 'config.json') return true;
    const isVariantFile = variantNames.main.includes(file) || variantNames.data.includes(file);
    return hasVariant.has(folder) ? isVariantFile : !isVariantFile;
  });
}

/**
 * The files of a ControlNet folder in latentblend's layout (docs/controlnet-onnx.md):
 * latentblend-controlnet.json and controlnet/ (config.json, the ONNX model and its external data).
 */
export function selectControlNetFiles(paths: readonly string[], variant?: string): string[] {
  return paths.filter((path) => {
    const parts = path.split('/');
    if (parts.length === 1) return parts[0] === CONTROLNET_DESCRIPTION;
    return parts.length === 2 && parts[0] === 'controlnet' && (parts[1] === 'config.json' || onnxRole(parts[1]!, variant) !== undefined);
  });
}

/**
 * The files of an IP-Adapter folder in latentblend's layout (docs/ip-adapter-onnx.md):
 * latentblend-ip-adapter.json, image_encoder/ (configs, ONNX) and unet/ (config, ONNX).
 */
export function selectIpAdapterFiles(paths: readonly string[], variant?: string): string[] {
  return paths.filter((path) => {
    const parts = path.split('/');
    if (parts.length === 1) return parts[0] === IP_ADAPTER_DESCRIPTION;
    if (parts.length !== 2 || (parts[0] !== 'image_encoder' && parts[0] !== 'unet')) return false;
    const file = parts[1]!;
    return file === 'config.json' || file === 'preprocessor_config.json' || onnxRole(file, variant) !== undefined;
  });
}

/** Strips the weak-validator prefix and quotes from an ETag header, as huggingface_hub does. */
function normalizeEtag(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  const value = etag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return value === '' ? undefined : value;
}

function encodeRepoPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function parseSize(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** The Hub could not be reached (no connection, DNS, reset, 5xx): the cache may stand in. */
class HubUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HubUnreachable';
  }
}

/** A transfer that may work when retried (cut connection, early end, 5xx). */
class TransientTransferError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientTransferError';
  }
}

function causeText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const inner = cause instanceof Error ? (cause as Error & { code?: string }).code ?? cause.message : undefined;
  return inner !== undefined && inner !== error.message ? `${error.message}: ${inner}` : error.message;
}

interface ErrorContext {
  readonly repo: string;
  readonly revision: string;
  readonly endpoint: string;
  readonly tokenSent: boolean;
  readonly spec: string;
  readonly file?: string;
}

function hubHttpError(res: Response, url: string, ctx: ErrorContext): Error {
  const code = res.headers.get('x-error-code') ?? '';
  const message = res.headers.get('x-error-message') ?? '';
  const page = `${ctx.endpoint}/${ctx.repo}`;
  const tokenHint = ctx.tokenSent
    ? 'A token was sent (HF_TOKEN or the token option), but it has no access to this repo.'
    : 'No token was sent: set HF_TOKEN to a Hugging Face access token (or pass one).';
  if (code === 'GatedRepo' || res.status === 403) {
    return new LatentBlendError(
      `${ctx.repo} is a gated or restricted model (HTTP ${res.status}). Accept its terms at ${page} while ` +
        `logged in, then run with HF_TOKEN set to an access token of that account. ${tokenHint}`,
      'hub_gated',
    );
  }
  if (res.status === 401) {
    if (/invalid credentials/i.test(message)) {
      return new LatentBlendError(
        `The Hugging Face Hub (${ctx.endpoint}) rejected the access token: check HF_TOKEN.`,
        'hub_auth',
      );
    }
    return new LatentBlendError(
      `Repository ${ctx.repo} was not found on ${ctx.endpoint}, or it is private or gated and needs ` +
        `authentication (HTTP 401). Check the id "${ctx.repo}". ${tokenHint}`,
      'hub_auth',
    );
  }
  if (res.status === 404) {
    if (code === 'RevisionNotFound') {
      return new LatentBlendError(
        `Revision "${ctx.revision}" was not found in ${ctx.repo} on ${ctx.endpoint}: use a branch, tag or ` +
          'commit that exists (see the Files tab of the model page).',
        'hub_not_found',
      );
    }
    if (code === 'EntryNotFound' && ctx.file !== undefined) {
      return new LatentBlendError(
        `File ${ctx.file} is listed for ${ctx.repo} at revision ${ctx.revision}, but the Hub says it does not exist.`,
        'hub_not_found',
      );
    }
    return new LatentBlendError(
      `Repository ${ctx.repo} (revision ${ctx.revision}) was not found on ${ctx.endpoint}, and there is no ` +
        `local folder "${ctx.spec}" either. Check the id (owner/name); a private repo also needs HF_TOKEN.`,
      'hub_not_found',
    );
  }
  if (res.status >= 500) {
    return new HubUnreachable(`the Hub answered HTTP ${res.status} for ${url}`);
  }
  if (res.status === 429) {
    return new LatentBlendError(`The Hugging Face Hub is rate-limiting requests (HTTP 429); try again later.`, 'hub_http');
  }
  return new LatentBlendError(
    `The Hugging Face Hub answered HTTP ${res.status}${message ? ` (${message})` : ''} for ${url}.`,
    'hub_http',
  );
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

interface Http {
  readonly fetchFn: typeof fetch;
  readonly endpoint: string;
  readonly token: string | undefined;
  readonly signal: AbortSignal | undefined;
}

function sameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

/**
 * One request with redirects handled here rather than by fetch, so that the token only goes to
 * the Hub's own origin (never to the CDN) and HEAD can stop at the CDN redirect whose headers
 * carry the file's metadata. 'relative' follows same-origin redirects only (renamed repos).
 */
async function hubRequest(
  http: Http,
  startUrl: string,
  method: 'GET' | 'HEAD',
  headers: Record<string, string>,
  follow: 'all' | 'relative',
): Promise<{ res: Response; url: string }> {
  let url = startUrl;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const sent: Record<string, string> = { 'User-Agent': 'latentblend', ...headers };
    if (http.token !== undefined && sameOrigin(url, http.endpoint)) sent.Authorization = `Bearer ${http.token}`;
    let res: Response;
    try {
      res = await http.fetchFn(url, { method, headers: sent, redirect: 'manual', signal: http.signal });
    } catch (error) {
      http.signal?.throwIfAborted();
      throw new HubUnreachable(`could not reach ${new URL(url).origin} (${causeText(error)})`, { cause: error });
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || location === null) return { res, url };
    const next = new URL(location, url).toString();
    if (follow === 'relative' && !sameOrigin(next, url)) return { res, url };
    await res.body?.cancel().catch(() => undefined);
    url = next;
  }
  throw new LatentBlendError(`Too many redirects while fetching ${startUrl}.`, 'hub_http');
}

interface RemoteFile {
  /** Path relative to the repo root. */
  readonly path: string;
  readonly size?: number;
  readonly blobId?: string;
  readonly lfsSha256?: string;
}

interface RepoListing {
  readonly commit: string;
  readonly files: RemoteFile[];
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function readSibling(value: unknown): RemoteFile | undefined {
  const record = asRecord(value);
  const path = record?.rfilename;
  if (record === undefined || typeof path !== 'string') return undefined;
  const lfs = asRecord(record.lfs);
  // The revision API names the LFS hash `sha256`; the tree API calls it `oid`.
  const lfsHash = lfs?.sha256 ?? lfs?.oid;
  const size = typeof lfs?.size === 'number' ? lfs.size : record.size;
  return {
    path,
    ...(typeof size === 'number' ? { size } : {}),
    ...(typeof record.blobId === 'string' ? { blobId: record.blobId } : {}),
    ...(typeof lfsHash === 'string' && SHA256_HEX.test(lfsHash) ? { lfsSha256: lfsHash } : {}),
  };
}

/** `GET /api/models/{repo}/revision/{rev}?blobs=true`: the commit and every file with its size. */
async function listRepo(http: Http, ctx: ErrorContext): Promise<RepoListing> {
  const url = `${http.endpoint}/api/models/${ctx.repo}/revision/${encodeURIComponent(ctx.revision)}?blobs=true`;
  const { res } = await hubRequest(http, url, 'GET', { Accept: 'application/json' }, 'relative');
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw hubHttpError(res, url, ctx);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (error) {
    http.signal?.throwIfAborted();
    throw new HubUnreachable(`the Hub sent an unreadable answer for ${url} (${causeText(error)})`, { cause: error });
  }
  const record = asRecord(body);
  const commit = record?.sha;
  const siblings = record?.siblings;
  if (typeof commit !== 'string' || !COMMIT_HASH.test(commit) || !Array.isArray(siblings)) {
    throw new LatentBlendError(`Unexpected answer from ${url}: no commit hash ("sha") or file list ("siblings").`, 'hub_http');
  }
  const files = siblings.map(readSibling).filter((file): file is RemoteFile => file !== undefined);
  return { commit, files };
}

interface FileMeta {
  readonly etag: string | undefined;
  /** True when the ETag came from X-Linked-Etag, i.e. names the LFS content (its sha256). */
  readonly linked: boolean;
  readonly size: number | undefined;
  readonly downloadUrl: string;
}

/** HEAD on the resolve URL, read the way huggingface_hub's get_hf_file_metadata reads it. */
async function fileMetadata(http: Http, ctx: ErrorContext, commit: string, path: string): Promise<FileMeta> {
  const url = `${http.endpoint}/${ctx.repo}/resolve/${commit}/${encodeRepoPath(path)}`;
  const { res, url: finalUrl } = await hubRequest(http, url, 'HEAD', { 'Accept-Encoding': 'identity' }, 'relative');
  if (res.status >= 400) throw hubHttpError(res, url, { ...ctx, file: path });
  const redirected = res.status >= 300 && res.status < 400;
  const linkedEtag = normalizeEtag(res.headers.get('x-linked-etag'));
  const linkedSize = parseSize(res.headers.get('x-linked-size'));
  const location = res.headers.get('location');
  return {
    etag: linkedEtag ?? normalizeEtag(res.headers.get('etag')),
    linked: linkedEtag !== undefined,
    // A redirect's Content-Length is that of the redirect page, not of the file.
    size: linkedSize ?? (redirected ? undefined : parseSize(res.headers.get('content-length'))),
    downloadUrl: redirected && location !== null ? new URL(location, finalUrl).toString() : finalUrl,
  };
}

// ---------------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------------

async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path); // follows symlinks: a link to a missing blob does not count
    return true;
  } catch {
    return false;
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** Points `pointer` at `blob` with a relative symlink, or copies it where symlinks are refused. */
async function linkIntoSnapshot(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  try {
    await symlink(relative(dirname(pointer), blob), pointer);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Windows without developer mode: huggingface_hub's degraded mode also keeps plain copies.
    if (code !== 'EPERM' && code !== 'EACCES' && code !== 'ENOTSUP' && code !== 'EINVAL') throw error;
    await copyFile(blob, pointer);
  }
}

/** The file within a component folder that holds its ONNX model, if any. */
async function componentModel(dir: string, variant: string | undefined): Promise<string | undefined> {
  const names = [...(variant !== undefined ? onnxNames(variant).main : []), ...onnxNames(undefined).main];
  for (const name of names) if (await pathExists(join(dir, name))) return name;
  return undefined;
}

/** Files a cached pipeline folder lacks (empty when it can run); checks links resolve too. */
async function missingPipelineFiles(dir: string, variant: string | undefined): Promise<string[]> {
  let modelIndex: Record<string, unknown> | undefined;
  try {
    modelIndex = asRecord(JSON.parse(await readFile(join(dir, 'model_index.json'), 'utf8')));
  } catch {
    modelIndex = undefined;
  }
  const controlNet = modelIndex === undefined && (await pathExists(join(dir, CONTROLNET_DESCRIPTION)));
  const ipAdapter = modelIndex === undefined && !controlNet && (await pathExists(join(dir, IP_ADAPTER_DESCRIPTION)));
  if (modelIndex === undefined && !controlNet && !ipAdapter) return ['model_index.json'];
  const components = controlNet ? ['controlnet'] : ipAdapter ? ['image_encoder', 'unet'] : ['unet', 'vae_decoder'];
  for (const [key, value] of Object.entries(modelIndex ?? {})) {
    if (TEXT_COMPONENT.test(key) && Array.isArray(value) && value[0] !== null && value[0] !== undefined) {
      components.push(key);
    }
  }
  const missing: string[] = [];
  for (const component of components) {
    const folder = join(dir, component);
    if ((await componentModel(folder, variant)) === undefined) {
      missing.push(`${component}/model.onnx`);
      continue;
    }
    // A link whose blob was deleted (for example external weights) makes the folder unusable.
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      if (entry.isSymbolicLink() && !(await pathExists(join(folder, entry.name)))) {
        missing.push(`${component}/${entry.name}`);
      }
    }
  }
  return missing;
}

interface Site {
  readonly spec: string;
  readonly repo: string;
  readonly revision: string;
  readonly subfolder: string | undefined;
  readonly repoDir: string;
  readonly variant: string | undefined;
}

function snapshotFolder(site: Site, commit: string): string {
  const snapshot = join(site.repoDir, 'snapshots', commit);
  return site.subfolder === undefined ? snapshot : join(snapshot, ...site.subfolder.split('/'));
}

type CacheLookup = { readonly found: ResolvedModel } | { readonly reason: string };

/** The cached snapshot for the revision (refs/<rev> → snapshots/<commit>) if it is complete. */
async function lookInCache(site: Site): Promise<CacheLookup> {
  let commit: string | undefined;
  if (COMMIT_HASH.test(site.revision)) {
    commit = site.revision;
  } else {
    try {
      const ref = (await readFile(join(site.repoDir, 'refs', ...site.revision.split('/')), 'utf8')).trim();
      commit = COMMIT_HASH.test(ref) ? ref : undefined;
    } catch {
      commit = undefined;
    }
  }
  if (commit === undefined) return { reason: `is not in the local cache (${site.repoDir})` };
  const dir = snapshotFolder(site, commit);
  const missing = await missingPipelineFiles(dir, site.variant);
  if (missing.length > 0) {
    const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? ', …' : '');
    return { reason: `is only partly in the local cache (${dir} lacks ${shown})` };
  }
  return { found: { dir, repo: site.repo, revision: site.revision, commit, fromCache: true } };
}

function notCachedError(site: Site, reason: string, why: string): LatentBlendError {
  const where = site.subfolder === undefined ? '' : ` (subfolder ${site.subfolder})`;
  return new LatentBlendError(
    `Model ${site.repo} at revision ${site.revision}${where} ${reason}, and ${why}. Run once with network ` +
      'access (and without HF_HUB_OFFLINE or --offline) to download it; later runs use the cache with no network.',
    'hub_offline',
  );
}

// ---------------------------------------------------------------------------------------------
// Download
// ---------------------------------------------------------------------------------------------

interface Job {
  readonly file: RemoteFile;
  readonly pointer: string;
  readonly blob: string;
  readonly url: string;
  readonly size: number | undefined;
  readonly sha256: string | undefined;
}

/** Keeps the overall byte count monotone even when a file must restart from zero. */
class ProgressTracker {
  done = 0;
  total = 0;
  constructor(private readonly listener: ((progress: DownloadProgress) => void) | undefined) {}

  /** Reports `fileBytes` of `job`; `counted` is how much of that file is already in `done`. */
  report(job: Job, fileBytes: number, counted: { value: number }): void {
    if (fileBytes > counted.value) {
      this.done += fileBytes - counted.value;
      counted.value = fileBytes;
    }
    this.listener?.({
      file: job.file.path,
      fileBytes,
      fileTotal: job.size,
      bytesDone: this.done,
      totalBytes: this.total,
    });
  }
}

/**
 * A tracker over `jobs` and each job's bytes already counted: what earlier runs left in
 * `<blob>.incomplete` (and will be resumed) counts as done from the start.
 */
async function startProgress(jobs: readonly Job[], listener: ((progress: DownloadProgress) => void) | undefined): Promise<{ tracker: ProgressTracker; counters: Map<Job, { value: number }> }> {
  const tracker = new ProgressTracker(listener);
  const counters = new Map<Job, { value: number }>();
  for (const job of jobs) {
    const partial = (await fileSize(`${job.blob}.incomplete`)) ?? 0;
    const resumable = job.size === undefined || partial <= job.size ? partial : 0;
    counters.set(job, { value: resumable });
    tracker.done += resumable;
    tracker.total += job.size ?? 0;
  }
  return { tracker, counters };
}

async function hashFilePrefix(hash: Hash, path: string, length: number): Promise<void> {
  if (length === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
}

/**
 * One GET of a blob into `<blob>.incomplete`, continuing from the bytes already there, then the
 * size and checksum checks and the move into blobs/. Throws TransientTransferError when a retry
 * may help; the partial file is then kept for the next attempt (or the next run).
 */
async function transferOnce(
  http: Http,
  job: Job,
  ctx: ErrorContext,
  tracker: ProgressTracker,
  counted: { value: number },
  stats: { received: number },
): Promise<void> {
  const partial = `${job.blob}.incomplete`;
  let start = (await fileSize(partial)) ?? 0;
  if (job.size !== undefined && start > job.size) start = 0;
  if (job.size === undefined || start < job.size) {
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (start > 0) headers.Range = `bytes=${start}-`;
    const { res, url } = await hubRequest(http, job.url, 'GET', headers, 'all');
    if (res.status === 416 && start > 0) {
      // The partial data no longer fits the file: start over.
      await res.body?.cancel().catch(() => undefined);
      await rm(partial, { force: true });
      throw new TransientTransferError(`the server refused to resume ${job.file.path}`);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const error = hubHttpError(res, url, { ...ctx, file: job.file.path });
      throw error instanceof HubUnreachable ? new TransientTransferError(error.message) : error;
    }
    if (res.status === 206) {
      const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      if (range === null || Number(range[1]) !== start) {
        await res.body?.cancel().catch(() => undefined);
        await rm(partial, { force: true });
        throw new TransientTransferError(`the server resumed ${job.file.path} at the wrong offset`);
      }
    } else {
      start = 0; // a plain 200: the server ignored the Range header
    }
    await mkdir(dirname(partial), { recursive: true });
    const handle = await open(partial, start > 0 ? 'a' : 'w');
    const reader = res.body?.getReader();
    let fileBytes = start;
    let finished = reader === undefined;
    try {
      tracker.report(job, fileBytes, counted);
      while (!finished) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await reader!.read();
        } catch (error) {
          // Only network reads count as transient; disk and callback errors propagate as they are.
          http.signal?.throwIfAborted();
          throw new TransientTransferError(`the transfer of ${job.file.path} was cut (${causeText(error)})`, {
            cause: error,
          });
        }
        if (step.done) {
          finished = true;
          break;
        }
        await handle.write(step.value);
        fileBytes += step.value.byteLength;
        stats.received += step.value.byteLength;
        tracker.report(job, fileBytes, counted);
      }
    } finally {
      if (!finished) await reader?.cancel().catch(() => undefined);
      await handle.close();
    }
    if (job.size !== undefined && fileBytes < job.size) {
      throw new TransientTransferError(`the transfer of ${job.file.path} ended at ${fileBytes} of ${job.size} bytes`);
    }
  }
  const size = (await fileSize(partial)) ?? 0;
  if (job.size !== undefined && size !== job.size) {
    await rm(partial, { force: true });
    throw new LatentBlendError(
      `Downloaded ${job.file.path} from ${ctx.repo} has ${size} bytes instead of ${job.size}; it was discarded. ` +
        'Run again to download it afresh.',
      'size_mismatch',
    );
  }
  if (job.sha256 !== undefined) {
    const hash = createHash('sha256');
    await hashFilePrefix(hash, partial, size);
    const digest = hash.digest('hex');
    if (digest !== job.sha256) {
      await rm(partial, { force: true });
      throw new LatentBlendError(
        `Downloaded ${job.file.path} from ${ctx.repo} fails its checksum (sha256 ${digest}, expected ` +
          `${job.sha256}); it was discarded and nothing was added to the cache. Run again to retry.`,
        'checksum_mismatch',
      );
    }
  }
  await rename(partial, job.blob);
}

async function transfer(
  http: Http,
  job: Job,
  ctx: ErrorContext,
  tracker: ProgressTracker,
  counted: { value: number },
  stats: { received: number },
  retries: number,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await transferOnce(http, job, ctx, tracker, counted, stats);
      return;
    } catch (error) {
      http.signal?.throwIfAborted();
      if (!(error instanceof TransientTransferError || error instanceof HubUnreachable)) throw error;
      if (attempt >= retries) {
        throw new LatentBlendError(
          `Downloading ${job.file.path} from ${ctx.repo} failed: ${error.message}. The part already downloaded ` +
            `is kept in ${dirname(job.blob)}; run the same command again to resume.`,
          'hub_network',
        );
      }
      await delay(250 * 2 ** attempt, undefined, { signal: http.signal });
    }
  }
}

async function downloadSnapshot(
  http: Http,
  site: Site,
  ctx: ErrorContext,
  listing: RepoListing,
  options: ResolveModelOptions,
): Promise<ResolvedModel> {
  const { commit } = listing;
  const prefix = site.subfolder === undefined ? '' : `${site.subfolder}/`;
  const byRelative = new Map<string, RemoteFile>();
  for (const file of listing.files) {
    if (file.path.startsWith(prefix)) byRelative.set(file.path.slice(prefix.length), file);
  }
  const chosen = byRelative.has(CONTROLNET_DESCRIPTION)
    ? selectControlNetFiles([...byRelative.keys()], site.variant)
    : byRelative.has(IP_ADAPTER_DESCRIPTION)
      ? selectIpAdapterFiles([...byRelative.keys()], site.variant)
      : selectPipelineFiles([...byRelative.keys()], { variant: site.variant });
  const isControlNet =
    (chosen.includes(CONTROLNET_DESCRIPTION) && chosen.some((path) => path.startsWith('controlnet/'))) ||
    (chosen.includes(IP_ADAPTER_DESCRIPTION) && chosen.some((path) => path.startsWith('unet/')));
  if (!isControlNet && (!chosen.includes('model_index.json') || !chosen.some((path) => path.startsWith('unet/')))) {
    const where = site.subfolder === undefined ? 'at the repo root' : `in subfolder ${site.subfolder}`;
    throw new LatentBlendError(
      `${site.repo} (revision ${site.revision}) has no ONNX pipeline in Optimum's layout ${where}: expected ` +
        'model_index.json and unet/model.onnx. If the export is in a subfolder, name it as owner/name/subfolder.',
      'hub_not_onnx',
    );
  }

  const snapshot = join(site.repoDir, 'snapshots', commit);
  const blobs = join(site.repoDir, 'blobs');
  const jobs: Job[] = [];
  for (const rel of chosen) {
    http.signal?.throwIfAborted();
    const file = byRelative.get(rel);
    if (file === undefined) continue;
    const parts = file.path.split('/');
    if (parts.some((part) => part === '' || part === '.' || part === '..')) continue;
    const pointer = join(snapshot, ...parts);
    if (await pathExists(pointer)) continue;
    const meta = await fileMetadata(http, ctx, commit, file.path);
    const etag = [meta.etag, file.lfsSha256, file.blobId].find((tag) => tag !== undefined && SAFE_ETAG.test(tag));
    if (etag === undefined || etag.endsWith('.incomplete')) {
      throw new LatentBlendError(
        `The Hub sent no usable ETag for ${file.path} in ${site.repo}, so it cannot be cached safely.`,
        'hub_http',
      );
    }
    const blob = join(blobs, etag);
    const size = meta.size ?? file.size;
    const existing = await fileSize(blob);
    if (existing !== undefined && (size === undefined || existing === size)) {
      await linkIntoSnapshot(blob, pointer); // same content already cached for another revision
      continue;
    }
    // An LFS file's X-Linked-Etag is its sha256, so it checks the content when the API gave none.
    const linkedSha = meta.linked && meta.etag !== undefined && SHA256_HEX.test(meta.etag) ? meta.etag : undefined;
    const sha256 = file.lfsSha256 ?? linkedSha;
    jobs.push({ file, pointer, blob, url: meta.downloadUrl, size, sha256 });
  }

  const { tracker, counters } = await startProgress(jobs, options.onProgress);

  const stats = { received: 0 };
  const retries = Math.max(0, Math.floor(options.retries ?? 2));
  for (const job of jobs) {
    http.signal?.throwIfAborted();
    const counted = counters.get(job) ?? { value: 0 };
    await transfer(http, job, ctx, tracker, counted, stats, retries);
    if (job.size === undefined) {
      // Unknown sizes join the total once known, so the last report still ends at the total.
      tracker.total += counted.value;
    }
    await linkIntoSnapshot(job.blob, job.pointer);
    tracker.report(job, counted.value, counted);
  }

  // Written last: a ref only ever points at a snapshot that is complete.
  if (site.revision !== commit) {
    const ref = join(site.repoDir, 'refs', ...site.revision.split('/'));
    await mkdir(dirname(ref), { recursive: true });
    await writeFile(ref, commit);
  }
  return {
    dir: snapshotFolder(site, commit),
    repo: site.repo,
    revision: site.revision,
    commit,
    fromCache: stats.received === 0,
  };
}

async function localFolder(spec: string): Promise<string | undefined> {
  try {
    const info = await stat(spec);
    if (info.isDirectory()) return resolve(spec);
    throw new LatentBlendError(
      `"${spec}" is a file; the model must be a folder in Optimum's ONNX layout or a Hugging Face repo id (owner/name).`,
      'model_not_found',
    );
  } catch (error) {
    if (error instanceof LatentBlendError) throw error;
    return undefined;
  }
}

function pick(fromOption: string | undefined, fromSpec: string | undefined, what: string, spec: string): string | undefined {
  if (fromOption !== undefined && fromSpec !== undefined && fromOption !== fromSpec) {
    throw new LatentBlendError(
      `"${spec}" names ${what} "${fromSpec}" but the options ask for "${fromOption}".`,
      'invalid_input',
    );
  }
  return fromOption ?? fromSpec;
}

/**
 * Turns a `--model` value into a folder in Optimum's ONNX layout. An existing local folder is
 * returned as it is. Otherwise a Hub id (`owner/name`, `owner/name@revision`,
 * `owner/name/subfolder`) is looked up: the files the pipeline needs are downloaded once into
 * the shared Hugging Face cache (resuming partial files) and the snapshot folder is returned.
 * Offline (option or HF_HUB_OFFLINE), or when the Hub cannot be reached, a complete cached
 * snapshot of that revision is used. Errors are LatentBlendError with a message meant for the
 * user; an abort through `signal` rejects with the signal's reason.
 */
export async function resolveModelSource(spec: string, options: ResolveModelOptions = {}): Promise<ResolvedModel> {
  options.signal?.throwIfAborted();
  if (spec.trim() === '') throw new LatentBlendError('The model is empty: give a folder or a Hugging Face repo id.');
  const local = await localFolder(spec);
  if (local !== undefined) return { dir: local, fromCache: false };

  const parsed = parseRepoSpec(spec);
  if (parsed === undefined) {
    throw new LatentBlendError(
      `Model "${spec}" is not an existing folder, nor a Hugging Face repo id (owner/name, owner/name@revision ` +
        'or owner/name/subfolder).',
      'model_not_found',
    );
  }
  const env = options.env ?? process.env;
  const revision = pick(options.revision, parsed.revision, 'revision', spec) ?? 'main';
  if (!isValidRevision(revision)) throw new LatentBlendError(`"${revision}" is not a valid revision.`);
  const subfolder = pick(options.subfolder?.replace(/^\/+|\/+$/g, '') || undefined, parsed.subfolder, 'subfolder', spec);
  if (subfolder !== undefined && !isValidSubfolder(subfolder)) {
    throw new LatentBlendError(`"${subfolder}" is not a valid subfolder of a repo.`);
  }
  const cacheDir = resolve(options.cacheDir ?? hubCacheDir(env));
  const site: Site = {
    spec,
    repo: parsed.repo,
    revision,
    subfolder,
    repoDir: join(cacheDir, repoFolderName(parsed.repo)),
    variant: options.variant,
  };

  const offline = options.offline ?? isTruthyEnv(env.HF_HUB_OFFLINE);
  // A commit is immutable: a complete snapshot of it never needs the network.
  if (offline || COMMIT_HASH.test(revision)) {
    const cached = await lookInCache(site);
    if ('found' in cached) return cached.found;
    if (offline) throw notCachedError(site, cached.reason, 'offline mode is on (HF_HUB_OFFLINE or --offline)');
  }

  const endpoint = (options.endpoint ?? envValue(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const token = options.token ?? envValue(env, 'HF_TOKEN') ?? envValue(env, 'HUGGING_FACE_HUB_TOKEN');
  const http: Http = { fetchFn: options.fetch ?? fetch, endpoint, token, signal: options.signal };
  const ctx: ErrorContext = { repo: site.repo, revision, endpoint, tokenSent: token !== undefined, spec };

  let listing: RepoListing;
  try {
    listing = await listRepo(http, ctx);
  } catch (error) {
    if (!(error instanceof HubUnreachable)) throw error;
    const cached = await lookInCache(site);
    if ('found' in cached) return cached.found;
    throw notCachedError(site, cached.reason, `the Hub could not be reached: ${error.message}`);
  }
  try {
    return await downloadSnapshot(http, site, ctx, listing, options);
  } catch (error) {
    if (error instanceof HubUnreachable) {
      throw new LatentBlendError(
        `Downloading ${site.repo} failed: ${error.message}. Partial files are kept in ${site.repoDir}; ` +
          'run the same command again to resume.',
        'hub_network',
      );
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Single files pinned by commit and checksum (auxiliary models such as LPIPS)
// ---------------------------------------------------------------------------------------------

/** A file of a Hub repo, pinned by its content. */
export interface PinnedFile {
  /** Path inside the repo, e.g. `lpips/lpips_feature.onnx`. */
  readonly path: string;
  /** SHA-256 of the content, 64 lowercase hex digits. */
  readonly sha256: string;
}

/** Files of one repo at one commit. */
export interface PinnedFiles {
  readonly repo: string;
  /** Commit hash, 40 lowercase hex digits. */
  readonly commit: string;
  readonly files: readonly PinnedFile[];
}

/** Where {@link fetchPinnedFiles} put the files. */
export interface FetchedFiles {
  /** Local path of each pinned file, in the pin's order (inside the snapshot of the commit). */
  readonly paths: readonly string[];
  /** True when no file content was transferred by this call. */
  readonly fromCache: boolean;
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Gets the pinned files into the shared Hugging Face cache (snapshots/<commit>/<path>, blobs by
 * ETag, as huggingface_hub lays them out) and returns their local paths. Files already in the
 * snapshot are used with no network; the others are downloaded with progress, resumed after an
 * interruption, and kept only when their SHA-256 matches the pin. Offline (option or
 * HF_HUB_OFFLINE) a file missing from the cache is an error ('hub_offline'); so is an unreachable
 * Hub ('hub_network'). Options as for resolveModelSource (revision, subfolder and variant unused).
 */
export async function fetchPinnedFiles(pin: PinnedFiles, options: ResolveModelOptions = {}): Promise<FetchedFiles> {
  options.signal?.throwIfAborted();
  const parsed = parseRepoSpec(pin.repo);
  if (parsed === undefined || parsed.repo !== pin.repo || !COMMIT_HASH.test(pin.commit)) {
    throw new LatentBlendError(`Bad pin for ${pin.repo}: a repo id owner/name and a 40-digit commit hash are needed, got commit "${pin.commit}".`);
  }
  for (const file of pin.files) {
    if (!SHA256_HEX.test(file.sha256) || file.path.split('/').some((part) => !PATH_PART.test(part) || part === '..')) {
      throw new LatentBlendError(`Bad pin for ${pin.repo}: file "${file.path}" needs a plain path and a 64-digit sha256.`);
    }
  }
  const env = options.env ?? process.env;
  const cacheDir = resolve(options.cacheDir ?? hubCacheDir(env));
  const repoDir = join(cacheDir, repoFolderName(pin.repo));
  const snapshot = join(repoDir, 'snapshots', pin.commit);
  const pointers = pin.files.map((file) => join(snapshot, ...file.path.split('/')));
  const missing: number[] = [];
  for (const [index, pointer] of pointers.entries()) if (!(await pathExists(pointer))) missing.push(index);
  if (missing.length === 0) return { paths: pointers, fromCache: true };

  const names = missing.map((index) => pin.files[index]!.path).join(', ');
  const offline = options.offline ?? isTruthyEnv(env.HF_HUB_OFFLINE);
  if (offline) {
    throw new LatentBlendError(
      `${names} from ${pin.repo} (commit ${pin.commit}) ${missing.length === 1 ? 'is' : 'are'} not in the local cache (${repoDir}) and offline mode is on (HF_HUB_OFFLINE or --offline). Run once with network access to download ${missing.length === 1 ? 'it' : 'them'}.`,
      'hub_offline',
    );
  }
  const endpoint = (options.endpoint ?? envValue(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const token = options.token ?? envValue(env, 'HF_TOKEN') ?? envValue(env, 'HUGGING_FACE_HUB_TOKEN');
  const http: Http = { fetchFn: options.fetch ?? fetch, endpoint, token, signal: options.signal };
  const ctx: ErrorContext = { repo: pin.repo, revision: pin.commit, endpoint, tokenSent: token !== undefined, spec: pin.repo };
  const blobs = join(repoDir, 'blobs');
  const stats = { received: 0 };
  try {
    const jobs: Job[] = [];
    for (const index of missing) {
      const file = pin.files[index]!;
      const meta = await fileMetadata(http, ctx, pin.commit, file.path);
      // LFS files' ETag is their sha256; otherwise the pinned sha256 names the blob.
      const etag = meta.etag !== undefined && SAFE_ETAG.test(meta.etag) && !meta.etag.endsWith('.incomplete') ? meta.etag : file.sha256;
      const blob = join(blobs, etag);
      if ((await fileSize(blob)) !== undefined && (await sha256OfFile(blob)) === file.sha256) {
        await linkIntoSnapshot(blob, pointers[index]!);
        continue;
      }
      const remote: RemoteFile = { path: file.path, ...(meta.size !== undefined ? { size: meta.size } : {}), lfsSha256: file.sha256 };
      jobs.push({ file: remote, pointer: pointers[index]!, blob, url: meta.downloadUrl, size: meta.size, sha256: file.sha256 });
    }
    const { tracker, counters } = await startProgress(jobs, options.onProgress);
    const retries = Math.max(0, Math.floor(options.retries ?? 2));
    for (const job of jobs) {
      const counted = counters.get(job)!;
      await transfer(http, job, ctx, tracker, counted, stats, retries);
      if (job.size === undefined) tracker.total += counted.value;
      await linkIntoSnapshot(job.blob, job.pointer);
      tracker.report(job, counted.value, counted);
    }
  } catch (error) {
    if (error instanceof HubUnreachable) {
      throw new LatentBlendError(`Could not download ${names} from ${pin.repo}: ${error.message}. Partial files are kept in ${repoDir}; run again to resume.`, 'hub_network');
    }
    throw error;
  }
  return { paths: pointers, fromCache: stats.received === 0 };
}
