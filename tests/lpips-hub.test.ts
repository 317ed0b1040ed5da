/**
 * The default LPIPS fetched from the Hub (deepghs/imgutils-models, lpips/ two-file form), against
 * a fake Hub serving the tiny two-file fixture under the real repo and paths: pinned by commit and
 * SHA-256, cached like models, resumable, with progress, offline afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHub } from './helpers/fake-hub.ts';
import { FIXTURES } from './helpers/golden.ts';
import { IMGUTILS_LPIPS_FILES, IMGUTILS_LPIPS_PIN, IMGUTILS_LPIPS_REPO } from '../src/node/lpips-hub.ts';
import { loadLpipsMetric, type SimilarityMetric } from '../src/engine/metric.ts';
import { chooseMetricWithReason } from '../src/node/metric.ts';
import type { DownloadProgress, PinnedFiles } from '../src/model/hub.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { LatentBlendError } from '../src/errors.ts';
import { nodePlatform } from '../src/node/platform.ts';

const COMMIT = 'c0ffee'.padEnd(40, '0');
const TWO_FILE = join(FIXTURES, 'lpips', 'tiny-two-file');
const contents = {
  [IMGUTILS_LPIPS_FILES[0]]: readFileSync(join(TWO_FILE, 'lpips_feature.onnx')),
  [IMGUTILS_LPIPS_FILES[1]]: readFileSync(join(TWO_FILE, 'lpips_diff.onnx')),
};
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const PIN: PinnedFiles = {
  repo: IMGUTILS_LPIPS_REPO,
  commit: COMMIT,
  files: IMGUTILS_LPIPS_FILES.map((path) => ({ path, sha256: sha256(contents[path]!) })),
};

async function withHub<T>(run: (hub: FakeHub, cache: string) => Promise<T>): Promise<T> {
  const hub = await FakeHub.start({
    [IMGUTILS_LPIPS_REPO]: { commit: COMMIT, files: { ...contents, 'README.md': 'imgutils models' }, lfs: [...IMGUTILS_LPIPS_FILES] },
  });
  const cache = mkdtempSync(join(tmpdir(), 'latentblend-lpips-hub-'));
  try {
    return await run(hub, cache);
  } finally {
    await hub.stop();
    rmSync(cache, { recursive: true, force: true });
  }
}

function frame(phase: number): RgbImage {
  const data = new Uint8Array(64 * 48 * 3);
  for (let k = 0; k < data.length; k++) data[k] = (k * 7 + phase * 29 + (k % 3) * 50) % 256;
  return { width: 64, height: 48, data };
}

function choose(hub: FakeHub, cache: string, extra: { offline?: boolean; kind?: 'lpips'; pin?: PinnedFiles; events?: DownloadProgress[]; warnings?: string[] } = {}) {
  return chooseMetricWithReason({
    device: 'cpu',
    env: { HF_HUB_CACHE: cache, ...(extra.offline ? { HF_HUB_OFFLINE: '1' } : {}) },
    home: cache,
    hubPin: extra.pin ?? PIN,
    hub: { endpoint: hub.endpoint },
    ...(extra.kind !== undefined ? { kind: extra.kind } : {}),
    onDownload: (event) => extra.events?.push(event),
    onWarning: (message) => extra.warnings?.push(message),
  });
}

test('the pin in the source is either not filled in yet or a well-formed commit and two checksums', () => {
  const pin = IMGUTILS_LPIPS_PIN as PinnedFiles | undefined;
  if (pin === undefined) return; // see the comment on IMGUTILS_LPIPS_PIN: the real values must be filled in
  assert.equal(pin.repo, IMGUTILS_LPIPS_REPO);
  assert.match(pin.commit, /^[0-9a-f]{40}$/);
  assert.deepEqual(pin.files.map((file) => file.path), [...IMGUTILS_LPIPS_FILES]);
  for (const file of pin.files) assert.match(file.sha256, /^[0-9a-f]{64}$/);
});

test('first use downloads both files into the Hub cache with progress; later runs need no network', async () => {
  await withHub(async (hub, cache) => {
    const events: DownloadProgress[] = [];
    const first = await choose(hub, cache, { events });
    const metrics: SimilarityMetric[] = [first.metric];
    try {
      assert.equal(first.metric.name, 'lpips');
      assert.equal(first.fallback, undefined);
      const snapshot = join(cache, 'models--deepghs--imgutils-models', 'snapshots', COMMIT, 'lpips');
      assert.ok(existsSync(join(snapshot, 'lpips_feature.onnx')) && existsSync(join(snapshot, 'lpips_diff.onnx')));
      const total = contents[IMGUTILS_LPIPS_FILES[0]]!.length + contents[IMGUTILS_LPIPS_FILES[1]]!.length;
      assert.ok(events.length >= 2);
      for (let k = 1; k < events.length; k++) assert.ok(events[k]!.bytesDone >= events[k - 1]!.bytesDone, 'progress never goes back');
      assert.equal(events[events.length - 1]!.bytesDone, total);
      assert.equal(events[events.length - 1]!.totalBytes, total);
      // It is the tiny network: same distance as the one-file export.
      const one = await loadLpipsMetric(nodePlatform, join(FIXTURES, 'lpips', 'tiny-lpips.onnx'), 'cpu');
      metrics.push(one);
      const [a, b] = [frame(1), frame(2)];
      const expected = await one.distance(a, b);
      assert.ok(Math.abs((await first.metric.distance(a, b)) - expected) <= 1e-5);

      const served = hub.requests.length;
      const offline = await choose(hub, cache, { offline: true });
      metrics.push(offline.metric);
      assert.equal(offline.metric.name, 'lpips');
      const online = await choose(hub, cache);
      metrics.push(online.metric);
      assert.equal(hub.requests.length, served, 'a cached pin is used without asking the Hub');
    } finally {
      for (const metric of metrics) await metric.release?.();
    }
  });
});

test('a cut transfer resumes where it stopped', async () => {
  await withHub(async (hub, cache) => {
    hub.dropAfter(IMGUTILS_LPIPS_REPO, IMGUTILS_LPIPS_FILES[0], 20_000);
    const { metric } = await choose(hub, cache);
    await metric.release?.();
    assert.equal(metric.name, 'lpips');
    assert.ok(hub.requests.some((request) => request.range === 'bytes=20000-'), 'the second GET asks for the rest only');
    assert.equal(hub.bytesServed(IMGUTILS_LPIPS_REPO, IMGUTILS_LPIPS_FILES[0]), contents[IMGUTILS_LPIPS_FILES[0]]!.length);
  });
});

test('content that does not match the pinned SHA-256 is refused and not cached', async () => {
  await withHub(async (hub, cache) => {
    const wrong: PinnedFiles = { ...PIN, files: [{ ...PIN.files[0]!, sha256: '0'.repeat(64) }, PIN.files[1]!] };
    await assert.rejects(choose(hub, cache, { pin: wrong }), (error: unknown) => error instanceof LatentBlendError && error.code === 'checksum_mismatch');
    assert.equal(existsSync(join(cache, 'models--deepghs--imgutils-models', 'snapshots', COMMIT, 'lpips', 'lpips_feature.onnx')), false);
  });
});

test('offline with nothing cached: a warned fallback, or an error for --metric lpips', async () => {
  await withHub(async (hub, cache) => {
    const warnings: string[] = [];
    const chosen = await choose(hub, cache, { offline: true, warnings });
    assert.equal(chosen.metric.name, 'rms-pixel');
    assert.match(chosen.fallback!, /offline mode is on/);
    assert.equal(warnings.length, 1);
    await assert.rejects(choose(hub, cache, { offline: true, kind: 'lpips' }), /--metric lpips: no LPIPS model.*not in the local cache/);
    assert.equal(hub.requests.length, 0, 'offline means no request at all');
  });
});
