import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatentBlendError } from '../src/errors.ts';
import {
  hubCacheDir,
  isPipelineFile,
  isRepoId,
  isTruthyEnv,
  parseRepoSpec,
  repoFolderName,
  resolveModelSource,
  selectPipelineFiles,
  type DownloadProgress,
} from '../src/model/hub.ts';
import { FakeHub, type FakeRepo } from './helpers/fake-hub.ts';

const COMMIT = 'a'.repeat(38) + '01';
const SUB_COMMIT = 'b'.repeat(38) + '02';
const GATED_COMMIT = 'c'.repeat(38) + '03';
const REPO = 'acme/tiny-sdxl-onnx';

/** Deterministic pseudo-random bytes, so the fixtures have real sha256 values and no repeats. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

const MODEL_INDEX = JSON.stringify({
  _class_name: 'StableDiffusionXLPipeline',
  text_encoder: ['transformers', 'CLIPTextModel'],
  text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'],
  tokenizer: ['transformers', 'CLIPTokenizer'],
  tokenizer_2: ['transformers', 'CLIPTokenizer'],
  unet: ['diffusers', 'UNet2DConditionModel'],
  vae: ['diffusers', 'AutoencoderKL'],
  scheduler: ['diffusers', 'EulerAncestralDiscreteScheduler'],
});

const WANTED: Record<string, Uint8Array | string> = {
  'model_index.json': MODEL_INDEX,
  'scheduler/scheduler_config.json': '{"_class_name":"EulerAncestralDiscreteScheduler"}',
  'tokenizer/vocab.json': '{"a":0}',
  'tokenizer/merges.txt': '#version: 0.2\n',
  'tokenizer_2/vocab.json': '{"b":0}',
  'tokenizer_2/tokenizer_config.json': '{}',
  'text_encoder/config.json': '{}',
  'text_encoder/model.onnx': bytes(20_000, 1),
  'text_encoder_2/config.json': '{}',
  'text_encoder_2/model.onnx': bytes(3_000, 2),
  'text_encoder_2/model.onnx_data': bytes(60_000, 3),
  'unet/config.json': '{"sample_size":64}',
  'unet/model.onnx': bytes(5_000, 4),
  'unet/model.onnx_data': bytes(300_000, 5),
  'vae/config.json': '{"scaling_factor":0.13025}',
  'vae_decoder/config.json': '{}',
  'vae_decoder/model.onnx': bytes(40_000, 6),
  'vae_encoder/config.json': '{}',
  'vae_encoder/model.onnx': bytes(30_000, 7),
};

const UNWANTED: Record<string, Uint8Array | string> = {
  'README.md': '# tiny',
  '.gitattributes': '*.onnx filter=lfs',
  'sd_xl_turbo_1.0.safetensors': bytes(1_000, 8),
  'unet/diffusion_pytorch_model.safetensors': bytes(1_000, 9),
  'unet/diffusion_pytorch_model.fp16.safetensors': bytes(1_000, 10),
  'text_encoder_2/model.fp16.safetensors': bytes(1_000, 11),
  'vae/diffusion_pytorch_model.safetensors': bytes(1_000, 12),
  'unet/openvino_model.bin': bytes(1_000, 13),
};

const LFS = [
  'text_encoder/model.onnx',
  'text_encoder_2/model.onnx',
  'text_encoder_2/model.onnx_data',
  'unet/model.onnx',
  'unet/model.onnx_data',
  'vae_decoder/model.onnx',
  'vae_encoder/model.onnx',
  ...Object.keys(UNWANTED).filter((path) => /\.(safetensors|bin)$/.test(path)),
];

function repos(): Record<string, FakeRepo> {
  return {
    [REPO]: { commit: COMMIT, refs: { main: COMMIT, v1: COMMIT }, files: { ...WANTED, ...UNWANTED }, lfs: LFS },
    'acme/sub-onnx': {
      commit: SUB_COMMIT,
      files: {
        'model_index.json': '{"_class_name":"StableDiffusionPipeline"}',
        'unet/diffusion_pytorch_model.safetensors': bytes(2_000, 20),
        'onnx/model_index.json': '{"_class_name":"StableDiffusionPipeline","text_encoder":["transformers","CLIPTextModel"]}',
        'onnx/text_encoder/model.onnx': bytes(2_000, 21),
        'onnx/tokenizer/vocab.json': '{}',
        'onnx/unet/model.onnx': bytes(4_000, 22),
        'onnx/unet/weights.pb': bytes(9_000, 23),
        'onnx/vae_decoder/model.onnx': bytes(3_000, 24),
      },
      lfs: ['unet/diffusion_pytorch_model.safetensors', 'onnx/unet/weights.pb'],
    },
    'acme/gated': {
      commit: GATED_COMMIT,
      gatedToken: 'hf_secret',
      files: {
        'model_index.json': '{"_class_name":"StableDiffusionPipeline"}',
        'unet/model.onnx': bytes(1_000, 30),
        'vae_decoder/model.onnx': bytes(1_000, 31),
      },
      lfs: ['unet/model.onnx'],
    },
    'acme/pytorch-only': {
      commit: 'd'.repeat(40),
      files: { 'model_index.json': '{}', 'unet/diffusion_pytorch_model.safetensors': bytes(100, 40) },
    },
  };
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'latentblend-hub-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startHub(t: { after: (fn: () => Promise<void>) => void }): Promise<FakeHub> {
  const hub = await FakeHub.start(repos());
  t.after(() => hub.stop());
  return hub;
}

/** Resolves REPO from `hub` into `cacheDir` (no environment), recording its progress events. */
async function downloadRecorded(hub: FakeHub, cacheDir: string, options: { retries?: number } = {}): Promise<{ result: Awaited<ReturnType<typeof resolveModelSource>>; events: DownloadProgress[] }> {
  const events: DownloadProgress[] = [];
  const result = await resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {}, ...options, onProgress: (event) => events.push(event) });
  return { result, events };
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function byteLength(data: Uint8Array | string): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

async function rejectsWith(promise: Promise<unknown>, code: string, ...fragments: string[]): Promise<LatentBlendError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${fragment}" not in: ${error.message}`);
    return error;
  }
  assert.fail('expected a rejection');
}

function assertMonotone(events: readonly DownloadProgress[]): void {
  assert.ok(events.length > 0, 'no progress events');
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i]!.bytesDone >= events[i - 1]!.bytesDone, `bytesDone went down at event ${i}`);
    assert.equal(events[i]!.totalBytes, events[0]!.totalBytes, 'totalBytes changed');
  }
  const last = events[events.length - 1]!;
  assert.equal(last.bytesDone, last.totalBytes);
}

// ------------------------------------------------------------------------------------------
// Pure helpers
// ------------------------------------------------------------------------------------------

test('isRepoId and parseRepoSpec accept Hub ids and refuse local-looking paths', () => {
  assert.deepEqual(parseRepoSpec('stabilityai/sdxl-turbo'), { repo: 'stabilityai/sdxl-turbo' });
  assert.deepEqual(parseRepoSpec('stabilityai/sdxl-turbo@main'), { repo: 'stabilityai/sdxl-turbo', revision: 'main' });
  assert.deepEqual(parseRepoSpec('owner/name/onnx'), { repo: 'owner/name', subfolder: 'onnx' });
  assert.deepEqual(parseRepoSpec('owner/name/a/b@refs/pr/3'), { repo: 'owner/name', subfolder: 'a/b', revision: 'refs/pr/3' });
  assert.deepEqual(parseRepoSpec(`o/n@${COMMIT}`), { repo: 'o/n', revision: COMMIT });
  for (const ok of ['a/b', 'A-1/b_2.x', 'onnx-community/stable-diffusion-v1-5-ONNX']) assert.ok(isRepoId(ok), ok);
  for (const bad of [
    'sdxl-turbo',
    './models/sdxl',
    '../x/y',
    '/abs/path',
    '~/models/x',
    'C:/models/x',
    'C:\\models\\x',
    'owner/',
    'owner/name/',
    'owner//name',
    'own--er/name',
    'owner/na..me',
    '-owner/name',
    'owner/name@',
    'owner/name@has space',
    'owner/name/../x',
    '',
  ]) {
    assert.equal(isRepoId(bad), false, bad);
  }
});

test('isPipelineFile keeps what the ONNX pipeline needs and skips other weights', () => {
  for (const path of Object.keys(WANTED)) assert.ok(isPipelineFile(path), `should keep ${path}`);
  for (const path of [
    'text_encoder/model.onnx.data',
    'unet/weights.pb',
    'text_encoder_3/model.onnx',
    'tokenizer/tokenizer.json',
    'tokenizer/special_tokens_map.json',
    'safety_checker/config.json',
  ]) {
    assert.ok(isPipelineFile(path), `should keep ${path}`);
  }
  for (const path of [
    ...Object.keys(UNWANTED),
    'unet/model.fp16.onnx',
    'unet/model_fp16.onnx',
    'safety_checker/model.onnx',
    'controlnet/model.onnx',
    'feature_extractor/preprocessor_config.json',
    'vae/diffusion_pytorch_model.bin',
    'tokenizer/pytorch_model.bin',
    'ORT_CUDA/sdxl-turbo/engine/unetxl.ort_cuda.fp16/model.onnx',
    'unet/sub/model.onnx',
    'scheduler/../model.onnx',
    'model.onnx',
    'unet/',
  ]) {
    assert.equal(isPipelineFile(path), false, `should skip ${path}`);
  }
  assert.ok(isPipelineFile('unet/model.fp16.onnx', { variant: 'fp16' }));
  assert.ok(isPipelineFile('unet/model_fp16.onnx_data', { variant: 'fp16' }));
});

test('selectPipelineFiles takes a variant per component where it exists, never both', () => {
  const listing = [
    'model_index.json',
    'unet/config.json',
    'unet/model.onnx',
    'unet/model.onnx_data',
    'unet/model.fp16.onnx',
    'unet/model.fp16.onnx_data',
    'vae_decoder/model.onnx',
    'unet/diffusion_pytorch_model.fp16.safetensors',
  ];
  assert.deepEqual(selectPipelineFiles(listing), [
    'model_index.json',
    'unet/config.json',
    'unet/model.onnx',
    'unet/model.onnx_data',
    'vae_decoder/model.onnx',
  ]);
  assert.deepEqual(selectPipelineFiles(listing, { variant: 'fp16' }), [
    'model_index.json',
    'unet/config.json',
    'unet/model.fp16.onnx',
    'unet/model.fp16.onnx_data',
    'vae_decoder/model.onnx',
  ]);
});

test('hubCacheDir follows huggingface_hub: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache', () => {
  const home = '/home/u';
  assert.equal(hubCacheDir({}, home), join(home, '.cache', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/xdg' }, home), join('/xdg', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({ HF_HOME: '/hf', XDG_CACHE_HOME: '/xdg' }, home), join('/hf', 'hub'));
  assert.equal(hubCacheDir({ HF_HOME: '~/hf' }, home), join(home, 'hf', 'hub'));
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/hf' }, home), '/c');
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '', HF_HOME: '/hf' }, home), join('/hf', 'hub'));
  assert.equal(repoFolderName('stabilityai/sdxl-turbo'), 'models--stabilityai--sdxl-turbo');
  for (const on of ['1', 'true', 'YES', 'on']) assert.ok(isTruthyEnv(on), on);
  for (const off of [undefined, '', '0', 'false', 'no']) assert.equal(isTruthyEnv(off), false, String(off));
});

// ------------------------------------------------------------------------------------------
// Local folders
// ------------------------------------------------------------------------------------------

test('a local folder is returned as is; a missing path that is no repo id is a clear error', async (t) => {
  const dir = await tempDir(t);
  const result = await resolveModelSource(dir, { env: {}, offline: true });
  assert.deepEqual(result, { dir, fromCache: false });

  const missing = join(dir, 'no-such-model');
  await rejectsWith(resolveModelSource(missing, { env: {} }), 'model_not_found', missing, 'owner/name');
  const file = join(dir, 'model.onnx');
  await writeFile(file, 'x');
  await rejectsWith(resolveModelSource(file, { env: {} }), 'model_not_found', file, 'folder');
});

// ------------------------------------------------------------------------------------------
// Downloading and the cache
// ------------------------------------------------------------------------------------------

test('downloads only the pipeline files into the huggingface_hub cache layout, then works offline', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const { result, events } = await downloadRecorded(hub, cacheDir);
  const repoDir = join(cacheDir, 'models--acme--tiny-sdxl-onnx');
  const snapshot = join(repoDir, 'snapshots', COMMIT);
  assert.deepEqual(result, { dir: snapshot, repo: REPO, revision: 'main', commit: COMMIT, fromCache: false });

  for (const [path, content] of Object.entries(WANTED)) {
    assert.deepEqual(await readFile(join(snapshot, path)), Buffer.from(content), path);
  }
  for (const path of Object.keys(UNWANTED)) assert.equal(await exists(join(snapshot, path)), false, path);
  const fetched = new Set(hub.requests.filter((r) => r.method === 'GET').map((r) => r.path));
  for (const path of Object.keys(UNWANTED)) assert.equal(fetched.has(`/${REPO}/resolve/${COMMIT}/${path}`), false);

  // Snapshot entries are relative links into blobs/, named like huggingface_hub names them.
  const lfsLink = await readlink(join(snapshot, 'unet', 'model.onnx_data'));
  assert.equal(lfsLink, join('..', '..', '..', 'blobs', sha256(WANTED['unet/model.onnx_data']!)));
  const gitLink = await readlink(join(snapshot, 'model_index.json'));
  assert.equal(gitLink, join('..', '..', 'blobs', hub.hashes(REPO, 'model_index.json').gitSha1));
  assert.equal((await readFile(join(repoDir, 'refs', 'main'), 'utf8')).trim(), COMMIT);
  assert.deepEqual((await readdir(join(repoDir, 'blobs'))).filter((name) => name.endsWith('.incomplete')), []);

  // LFS files came through the CDN redirect, without the token going there.
  assert.ok(hub.requests.some((r) => r.server === 'cdn' && r.method === 'GET'));

  assertMonotone(events);
  const expectedTotal = Object.values(WANTED).reduce((sum, content) => sum + byteLength(content), 0);
  assert.equal(events[events.length - 1]!.totalBytes, expectedTotal);
  assert.ok(events.some((e) => e.file === 'unet/model.onnx_data' && e.fileTotal === 300_000 && e.fileBytes === 300_000));

  // Online again: nothing is transferred.
  const before = hub.requests.length;
  const again = await resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {} });
  assert.deepEqual(again, { ...result, fromCache: true });
  assert.deepEqual(
    hub.requests.slice(before).map((r) => r.path),
    [`/api/models/${REPO}/revision/main`],
  );

  await hub.stop();
  const offline = await resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {}, offline: true });
  assert.deepEqual(offline, { ...result, fromCache: true });
  const offlineByEnv = await resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: { HF_HUB_OFFLINE: '1' } });
  assert.equal(offlineByEnv.dir, snapshot);
  // Server gone and no offline flag: the network failure falls back to the complete snapshot.
  const unreachable = await resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {} });
  assert.deepEqual(unreachable, { ...result, fromCache: true });
  // HF_HUB_CACHE is honoured when no cacheDir is given.
  const viaEnv = await resolveModelSource(REPO, { env: { HF_HUB_CACHE: cacheDir, HF_HUB_OFFLINE: 'true' } });
  assert.equal(viaEnv.dir, snapshot);
  // A pinned commit is served from the cache without asking the Hub.
  const pinned = await resolveModelSource(`${REPO}@${COMMIT}`, { cacheDir, endpoint: hub.endpoint, env: {} });
  assert.equal(pinned.dir, snapshot);
});

test('a cache written by Python huggingface_hub is used offline; a missing blob makes it incomplete', async (t) => {
  const cacheDir = await tempDir(t);
  const repoDir = join(cacheDir, repoFolderName('someone/py-cached'));
  const snapshot = join(repoDir, 'snapshots', COMMIT);
  const files: Record<string, string> = {
    'model_index.json': '{"_class_name":"StableDiffusionPipeline","text_encoder":["transformers","CLIPTextModel"],"safety_checker":[null,null]}',
    'text_encoder/model.onnx': 'te',
    'unet/model.onnx': 'unet',
    'unet/weights.pb': 'weights',
    'vae_decoder/model.onnx': 'vae',
  };
  await mkdir(join(repoDir, 'blobs'), { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    const blob = join(repoDir, 'blobs', sha256(content));
    await writeFile(blob, content);
    const pointer = join(snapshot, path);
    await mkdir(join(pointer, '..'), { recursive: true });
    await symlink(join('..', ...path.split('/').slice(1).map(() => '..'), '..', 'blobs', sha256(content)), pointer);
  }
  await mkdir(join(repoDir, 'refs'), { recursive: true });
  await writeFile(join(repoDir, 'refs', 'main'), COMMIT);

  const result = await resolveModelSource('someone/py-cached', { cacheDir, offline: true, env: {} });
  assert.deepEqual(result, { dir: snapshot, repo: 'someone/py-cached', revision: 'main', commit: COMMIT, fromCache: true });
  assert.equal(await readFile(join(result.dir, 'unet', 'weights.pb'), 'utf8'), 'weights');

  await rm(join(repoDir, 'blobs', sha256('weights')));
  await rejectsWith(
    resolveModelSource('someone/py-cached', { cacheDir, offline: true, env: {} }),
    'hub_offline',
    'someone/py-cached',
    'partly',
    'unet/weights.pb',
  );
});

test('offline with nothing cached names the repo, the cache folder and how to download', async (t) => {
  const cacheDir = await tempDir(t);
  const repoDir = join(cacheDir, 'models--acme--tiny-sdxl-onnx');
  await rejectsWith(
    resolveModelSource(REPO, { cacheDir, offline: true, env: {} }),
    'hub_offline',
    REPO,
    repoDir,
    'Run once with network',
    'offline mode',
  );
  // Unreachable Hub (nothing listens on port 9 of localhost) and no cache: same kind of error.
  await rejectsWith(
    resolveModelSource(REPO, { cacheDir, endpoint: 'http://127.0.0.1:9', env: {} }),
    'hub_offline',
    REPO,
    repoDir,
    'could not be reached',
  );
});

test('an interrupted download resumes with a Range request on the next run, re-sending no byte', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const path = 'unet/model.onnx_data';
  const size = byteLength(WANTED[path]!);
  const blob = join(cacheDir, 'models--acme--tiny-sdxl-onnx', 'blobs', sha256(WANTED[path]!));
  const snapshot = join(cacheDir, 'models--acme--tiny-sdxl-onnx', 'snapshots', COMMIT);
  hub.dropAfter(REPO, path, 100_000);

  await rejectsWith(
    resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {}, retries: 0 }),
    'hub_network',
    path,
    'again to resume',
  );
  assert.equal((await stat(`${blob}.incomplete`)).size, 100_000);
  assert.equal(await exists(blob), false);
  assert.equal(await exists(join(snapshot, path)), false);
  assert.equal(await exists(join(cacheDir, 'models--acme--tiny-sdxl-onnx', 'refs', 'main')), false);

  const { result, events } = await downloadRecorded(hub, cacheDir, { retries: 0 });
  assert.equal(result.fromCache, false);
  assert.deepEqual(await readFile(join(snapshot, path)), Buffer.from(WANTED[path]!));
  const transfers = hub.requests.filter((r) => r.server === 'cdn' && r.path.endsWith(sha256(WANTED[path]!)));
  assert.deepEqual(transfers.map((r) => r.range), [undefined, 'bytes=100000-']);
  assert.equal(transfers[1]!.status, 206);
  assert.equal(hub.bytesServed(REPO, path), size);
  assertMonotone(events);
  assert.ok(events[0]!.bytesDone >= 100_000, 'resumed bytes count as done from the start');
  assert.equal(await exists(`${blob}.incomplete`), false);
});

test('a connection cut mid-file is retried within the same run from where it stopped', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const path = 'text_encoder_2/model.onnx_data';
  hub.dropAfter(REPO, path, 25_000);
  const { result, events } = await downloadRecorded(hub, cacheDir);
  assert.deepEqual(await readFile(join(result.dir, path)), Buffer.from(WANTED[path]!));
  const ranges = hub.requests.filter((r) => r.server === 'cdn' && r.path.endsWith(sha256(WANTED[path]!))).map((r) => r.range);
  assert.deepEqual(ranges, [undefined, 'bytes=25000-']);
  assert.equal(hub.bytesServed(REPO, path), byteLength(WANTED[path]!));
  assertMonotone(events);
});

test('a checksum mismatch is rejected and leaves nothing in the snapshot', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const path = 'unet/model.onnx_data';
  hub.corrupt(REPO, path);
  const repoDir = join(cacheDir, 'models--acme--tiny-sdxl-onnx');
  await rejectsWith(
    resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {} }),
    'checksum_mismatch',
    path,
    sha256(WANTED[path]!),
  );
  assert.equal(await exists(join(repoDir, 'snapshots', COMMIT, path)), false);
  const blobs = await readdir(join(repoDir, 'blobs'));
  assert.ok(!blobs.some((name) => name.startsWith(sha256(WANTED[path]!))), blobs.join(', '));
  assert.equal(await exists(join(repoDir, 'refs', 'main')), false);
  await rejectsWith(resolveModelSource(REPO, { cacheDir, offline: true, env: {} }), 'hub_offline', REPO);
});

test('Hub errors are clear: unknown repo, unknown revision, gated repo, no ONNX export', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const base = { cacheDir, endpoint: hub.endpoint, env: {} };
  await rejectsWith(resolveModelSource('acme/nope', base), 'hub_not_found', 'acme/nope', 'main', hub.endpoint);
  await rejectsWith(resolveModelSource(`${REPO}@v9`, base), 'hub_not_found', '"v9"', REPO);
  await rejectsWith(resolveModelSource('acme/gated', base), 'hub_gated', 'acme/gated', 'HF_TOKEN', `${hub.endpoint}/acme/gated`);
  await rejectsWith(resolveModelSource('acme/gated', { ...base, token: 'wrong' }), 'hub_gated', 'has no access');
  await rejectsWith(resolveModelSource('acme/pytorch-only', base), 'hub_not_onnx', 'acme/pytorch-only', 'unet/model.onnx');
  await rejectsWith(resolveModelSource(`${REPO}@v1`, { ...base, revision: 'main' }), 'invalid_input', 'v1', 'main');
});

test('the token from HF_TOKEN is sent as Bearer to the Hub and never to the CDN', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const result = await resolveModelSource('acme/gated', { cacheDir, endpoint: hub.endpoint, env: { HF_TOKEN: 'hf_secret' } });
  assert.equal(result.commit, GATED_COMMIT);
  assert.equal(await readFile(join(result.dir, 'unet', 'model.onnx')).then((b) => b.length), 1_000);
  const hubRequests = hub.requests.filter((r) => r.server === 'hub');
  const cdnRequests = hub.requests.filter((r) => r.server === 'cdn');
  assert.ok(hubRequests.length > 0 && cdnRequests.length > 0);
  for (const r of hubRequests) assert.equal(r.authorization, 'Bearer hf_secret', r.path);
  for (const r of cdnRequests) assert.equal(r.authorization, undefined, r.path);
});

test('a subfolder holding the export is downloaded alone and returned as the model folder', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const result = await resolveModelSource('acme/sub-onnx/onnx', { cacheDir, endpoint: hub.endpoint, env: {} });
  const snapshot = join(cacheDir, 'models--acme--sub-onnx', 'snapshots', SUB_COMMIT);
  assert.equal(result.dir, join(snapshot, 'onnx'));
  assert.deepEqual((await readdir(snapshot)).sort(), ['onnx']);
  assert.equal((await readFile(join(result.dir, 'unet', 'weights.pb'))).length, 9_000);
  const again = await resolveModelSource('acme/sub-onnx', { cacheDir, endpoint: hub.endpoint, env: {}, subfolder: 'onnx', offline: true });
  assert.equal(again.dir, result.dir);
});

test('aborting stops the download and keeps the partial file for later', async (t) => {
  const hub = await startHub(t);
  const cacheDir = await tempDir(t);
  const path = 'unet/model.onnx_data';
  const controller = new AbortController();
  await assert.rejects(
    resolveModelSource(REPO, {
      cacheDir,
      endpoint: hub.endpoint,
      env: {},
      signal: controller.signal,
      onProgress: (event) => {
        if (event.file === path && event.fileBytes > 0) controller.abort();
      },
    }),
    (error: Error) => error.name === 'AbortError',
  );
  const blob = join(cacheDir, 'models--acme--tiny-sdxl-onnx', 'blobs', sha256(WANTED[path]!));
  assert.ok((await stat(`${blob}.incomplete`)).size > 0);
  const result = await resolveModelSource(REPO, { cacheDir, endpoint: hub.endpoint, env: {} });
  assert.deepEqual(await readFile(join(result.dir, path)), Buffer.from(WANTED[path]!));
});
