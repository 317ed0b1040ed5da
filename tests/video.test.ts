import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { LatentBlendError } from '../src/errors.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { FFMPEG_ENV, ffmpegCapabilities, locateFfmpeg } from '../src/io/ffmpeg.ts';
import { encodeVideo, probeVideo, qualityToCrf, videoFormatFromPath } from '../src/io/video.ts';
import { contactSheet, contactSheetLayout } from '../src/io/contact-sheet.ts';
import { smoothnessPlot } from '../src/io/plot.ts';
import { bundledFfmpeg } from './helpers/ffmpeg.ts';
import { gradient, gradients } from './helpers/frames.ts';

const root = mkdtempSync(join(tmpdir(), 'latentblend-video-'));
after(() => rmSync(root, { recursive: true, force: true }));

let folderCount = 0;
/** A fresh empty folder for one test. */
function folder(): string {
  const path = join(root, String(folderCount++));
  rmSync(path, { recursive: true, force: true });
  return path;
}

function isLatentBlendError(pattern: RegExp, code?: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof LatentBlendError, `expected LatentBlendError, got ${String(error)}`);
    assert.match(error.message, pattern);
    if (code !== undefined) assert.equal(error.code, code);
    return true;
  };
}


async function* asyncGradients(count: number, width = 64, height = 48): AsyncGenerator<RgbImage> {
  for (let i = 0; i < count; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    yield gradient(width, height, i);
  }
}

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(rgb, p * 3);
  return { width, height, data };
}

/** Files in `dir` (none when it does not exist). */
function listing(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

test('the bundled ffmpeg is found and has the encoders and filters we use', async () => {
  const saved = process.env[FFMPEG_ENV];
  delete process.env[FFMPEG_ENV];
  try {
    const location = locateFfmpeg();
    assert.equal(location.source, 'npm');
    const capabilities = await ffmpegCapabilities(location.path);
    assert.match(capabilities.version, /^ffmpeg version/);
    for (const encoder of ['libx264', 'libvpx-vp9', 'gif']) assert.ok(capabilities.encoders.has(encoder), encoder);
    for (const filter of ['palettegen', 'paletteuse', 'split', 'scale', 'format']) assert.ok(capabilities.filters.has(filter), filter);
  } finally {
    if (saved !== undefined) process.env[FFMPEG_ENV] = saved;
  }
});

test('a bad ffmpeg override is a clear error saying how to fix it', async () => {
  assert.throws(() => locateFfmpeg({ ffmpegPath: '/nonexistent/ffmpeg' }), isLatentBlendError(/\/nonexistent\/ffmpeg.*not an executable.*LATENTBLEND_FFMPEG/s, 'unavailable'));
  assert.throws(() => locateFfmpeg({ ffmpegPath: 'no-such-ffmpeg-command' }), isLatentBlendError(/not an executable on PATH/, 'unavailable'));
  const saved = process.env[FFMPEG_ENV];
  process.env[FFMPEG_ENV] = '/nonexistent/ffmpeg';
  try {
    assert.throws(() => locateFfmpeg(), isLatentBlendError(/LATENTBLEND_FFMPEG is "\/nonexistent\/ffmpeg"/));
    // The option wins over the environment.
    assert.equal(locateFfmpeg({ ffmpegPath: bundledFfmpeg() }).source, 'option');
    const dir = folder();
    await assert.rejects(encodeVideo(join(dir, 'x.mp4'), gradients(2), { fps: 12 }), isLatentBlendError(/LATENTBLEND_FFMPEG/));
    assert.deepEqual(listing(dir), []);
  } finally {
    if (saved === undefined) delete process.env[FFMPEG_ENV];
    else process.env[FFMPEG_ENV] = saved;
  }
});

for (const format of ['mp4', 'webm', 'gif'] as const) {
  test(`${format}: 12 frames of 64x48 come back as 12 frames of 64x48`, async () => {
    const dir = folder();
    const path = join(dir, `film.${format}`);
    const seen: number[] = [];
    const result = await encodeVideo(path, gradients(12), { fps: 12, onFrame: (n) => seen.push(n) });
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(result.format, format);
    assert.equal(result.frames, 12);
    assert.deepEqual([result.width, result.height], [64, 48]);
    const info = await probeVideo(path);
    assert.equal(info.frames, 12);
    assert.deepEqual([info.width, info.height], [64, 48]);
    assert.equal(info.codec, { mp4: 'h264', webm: 'vp9', gif: 'gif' }[format]);
    assert.deepEqual(listing(dir), [`film.${format}`], 'no temporary file is left');
  });
}

test('mp4 is fast-start (index before the data) and takes async iterables', async () => {
  const dir = folder();
  const path = join(dir, 'film.MP4');
  await encodeVideo(path, asyncGradients(5), { fps: 24, quality: 50 });
  const bytes = readFileSync(path);
  const moov = bytes.indexOf('moov');
  const mdat = bytes.indexOf('mdat');
  assert.ok(moov > 0 && mdat > 0 && moov < mdat, `moov at ${moov}, mdat at ${mdat}`);
  const info = await probeVideo(path);
  assert.equal(info.frames, 5);
  assert.equal(info.fps, 24);
});

test('odd sizes: mp4 pads to even by repeating the edge, webm and gif keep the size', async () => {
  const dir = folder();
  const colour: [number, number, number] = [200, 40, 40];
  const frames = () => Array.from({ length: 4 }, () => solid(63, 47, colour));
  const mp4 = await encodeVideo(join(dir, 'odd.mp4'), frames(), { fps: 10 });
  assert.deepEqual([mp4.width, mp4.height], [64, 48]);
  const info = await probeVideo(join(dir, 'odd.mp4'));
  assert.deepEqual([info.width, info.height, info.frames], [64, 48, 4]);
  // The added column and row repeat the picture's edge (not black), within codec error.
  const decoded = spawnSync(bundledFfmpeg(), ['-v', 'error', '-i', join(dir, 'odd.mp4'), '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { maxBuffer: 1 << 20 });
  assert.equal(decoded.status, 0, decoded.stderr.toString());
  const corner = decoded.stdout.subarray((48 * 64 - 1) * 3, 48 * 64 * 3);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(corner[c]! - colour[c]!) < 24, `corner ${[...corner].join(',')} vs ${colour.join(',')}`);

  for (const format of ['webm', 'gif'] as const) {
    const path = join(dir, `odd.${format}`);
    const result = await encodeVideo(path, frames(), { fps: 10 });
    assert.deepEqual([result.width, result.height], [63, 47]);
    const probed = await probeVideo(path);
    assert.deepEqual([probed.width, probed.height, probed.frames], [63, 47, 4], format);
  }
});

test('an existing file is kept without force and replaced with it', async () => {
  const dir = folder();
  const path = join(dir, 'film.webm');
  await encodeVideo(path, gradients(3), { fps: 12 });
  const before = readFileSync(path);
  let pulled = 0;
  const counting = function* () {
    for (const frame of gradients(6)) {
      pulled += 1;
      yield frame;
    }
  };
  await assert.rejects(encodeVideo(path, counting(), { fps: 12 }), isLatentBlendError(/already exists.*--force/, 'exists'));
  assert.equal(pulled, 0, 'no frame is computed for a refused file');
  assert.deepEqual(readFileSync(path), before);
  await encodeVideo(path, counting(), { fps: 12, force: true });
  assert.equal((await probeVideo(path)).frames, 6);
  assert.deepEqual(listing(dir), ['film.webm']);
});

test('an unknown extension or format is an error listing mp4, webm, gif, with no file', async () => {
  const dir = folder();
  await assert.rejects(encodeVideo(join(dir, 'film.avi'), gradients(2), { fps: 12 }), isLatentBlendError(/\.avi.*\.mp4, \.webm, \.gif/));
  await assert.rejects(encodeVideo(join(dir, 'film'), gradients(2), { fps: 12 }), isLatentBlendError(/no extension.*\.mp4, \.webm, \.gif/));
  await assert.rejects(encodeVideo(join(dir, 'film.mp4'), gradients(2), { fps: 12, format: 'mkv' as never }), isLatentBlendError(/"mkv".*mp4, webm, gif/));
  assert.deepEqual(listing(dir), []);
  assert.equal(videoFormatFromPath('a/b.GIF'), 'gif');
  // An explicit format wins over the extension.
  await encodeVideo(join(dir, 'film.bin'), gradients(2), { fps: 12, format: 'gif' });
  assert.equal((await probeVideo(join(dir, 'film.bin'))).codec, 'gif');
});

test('bad fps, quality or frames are clear errors with no file left', async () => {
  const dir = folder();
  const path = join(dir, 'film.mp4');
  for (const fps of [0, -1, Number.NaN, 5000]) {
    await assert.rejects(encodeVideo(path, gradients(2), { fps }), isLatentBlendError(/fps must be a number in \(0, 1000\]/));
  }
  await assert.rejects(encodeVideo(join(dir, 'film.gif'), gradients(2), { fps: 60 }), isLatentBlendError(/\(0, 50\] for gif; got 60/));
  for (const quality of [-1, 101, Number.NaN]) {
    await assert.rejects(encodeVideo(path, gradients(2), { fps: 12, quality }), isLatentBlendError(/quality must be a number in \[0, 100\]/));
  }
  await assert.rejects(encodeVideo(path, [], { fps: 12 }), isLatentBlendError(/no frames/));
  const short = { width: 4, height: 4, data: new Uint8Array(10) };
  await assert.rejects(encodeVideo(path, [short], { fps: 12 }), isLatentBlendError(/Frame 0 \(4x4\) holds 10 bytes; RGB8 needs 48/));
  assert.deepEqual(listing(dir), []);
});

test('frames of different sizes are an error naming the frame, with no file left', async () => {
  const dir = folder();
  const frames = [...gradients(5), gradient(32, 48, 5), ...gradients(3)];
  for (const format of ['mp4', 'gif'] as const) {
    await assert.rejects(
      encodeVideo(join(dir, `film.${format}`), frames, { fps: 12 }),
      isLatentBlendError(/Frame 5 is 32x48, but frame 0 is 64x48/),
    );
  }
  assert.deepEqual(listing(dir), []);
});

test('an error thrown by the frame source removes the partial file', async () => {
  const dir = folder();
  async function* failing(): AsyncGenerator<RgbImage> {
    yield* asyncGradients(3);
    throw new Error('UNet exploded');
  }
  await assert.rejects(encodeVideo(join(dir, 'film.mp4'), failing(), { fps: 12 }), /UNet exploded/);
  assert.deepEqual(listing(dir), []);
});

test('an aborted encode kills ffmpeg and leaves no file', async () => {
  const dir = folder();
  const controller = new AbortController();
  let pulled = 0;
  async function* endless(): AsyncGenerator<RgbImage> {
    for (let i = 0; ; i++) {
      pulled += 1;
      yield gradient(256, 192, i); // larger than a pipe buffer: exercises waiting for 'drain'
    }
  }
  const encoding = encodeVideo(join(dir, 'film.webm'), endless(), {
    fps: 12,
    signal: controller.signal,
    onFrame: (n) => {
      if (n === 4) controller.abort();
    },
  });
  await assert.rejects(encoding, (error: unknown) => error instanceof Error && error.name === 'AbortError');
  assert.ok(pulled <= 5, `pulled ${pulled} frames after the abort`);
  assert.deepEqual(listing(dir), []);

  // A frame source that hangs (a slow UNet) does not delay the abort.
  const hanging = new AbortController();
  async function* stuck(): AsyncGenerator<RgbImage> {
    yield* gradients(2);
    await new Promise(() => undefined);
  }
  const started = Date.now();
  setTimeout(() => hanging.abort(), 50);
  await assert.rejects(encodeVideo(join(dir, 'stuck.mp4'), stuck(), { fps: 12, signal: hanging.signal }), { name: 'AbortError' });
  assert.ok(Date.now() - started < 5000);
  assert.deepEqual(listing(dir), []);

  // Already aborted: nothing starts.
  await assert.rejects(encodeVideo(join(dir, 'film.gif'), gradients(3), { fps: 12, signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.deepEqual(listing(dir), []);
});

test('an ffmpeg failure reports its last stderr lines and leaves no file', { skip: process.platform === 'win32' }, async () => {
  const dir = folder();
  mkdirSync(dir, { recursive: true });
  // A stand-in ffmpeg: answers the capability queries, then writes part of the output and fails.
  const fake = join(dir, 'fake-ffmpeg');
  writeFileSync(
    fake,
    [
      '#!/bin/sh',
      'for a in "$@"; do case "$a" in',
      '  -version) echo "ffmpeg version fake"; exit 0;;',
      '  -encoders) printf " V..... libx264 x\\n V..... libvpx-vp9 x\\n V..... gif x\\n"; exit 0;;',
      '  -filters) printf " ... scale V->V x\\n ... format V->V x\\n ... split V->N x\\n ... palettegen V->V x\\n ... paletteuse VV->V x\\n"; exit 0;;',
      'esac; last="$a"; done',
      'head -c 100 > /dev/null',
      'printf "partial" > "${last#file:}"',
      'echo "line one" >&2; echo "Conversion failed: fake encoder exploded" >&2',
      'exit 3',
    ].join('\n'),
    { mode: 0o755 },
  );
  await assert.rejects(
    encodeVideo(join(dir, 'film.mp4'), gradients(4), { fps: 12, ffmpegPath: fake }),
    isLatentBlendError(/Encoding .*film\.mp4: ffmpeg exited with status 3\.\nffmpeg said:\nline one\nConversion failed: fake encoder exploded/, 'ffmpeg'),
  );
  assert.deepEqual(listing(dir), ['fake-ffmpeg']);
});

test('larger frames stream through the pipe (backpressure) and all arrive', async () => {
  const dir = folder();
  const path = join(dir, 'big.mp4');
  await encodeVideo(path, gradients(20, 320, 240), { fps: 25, quality: 30 });
  const info = await probeVideo(path);
  assert.deepEqual([info.frames, info.width, info.height], [20, 320, 240]);
});

test('quality maps linearly to CRF (lower is better); GIF has none', () => {
  assert.deepEqual([0, 50, 80, 100].map((q) => qualityToCrf('mp4', q)), [51, 32, 20, 12]);
  assert.deepEqual([0, 50, 80, 100].map((q) => qualityToCrf('webm', q)), [63, 39, 25, 15]);
  assert.equal(qualityToCrf('gif', 80), undefined);
});

test('probeVideo on a file that is not a video is a clear error', async () => {
  const dir = folder();
  const path = join(dir, 'notes.mp4');
  await assert.rejects(probeVideo(path), isLatentBlendError(/notes\.mp4: it does not exist/));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, 'not a video');
  await assert.rejects(probeVideo(path), isLatentBlendError(/Reading .*notes\.mp4/));
});

test('contact sheet: a PNG grid of the expected size, labels drawn', async () => {
  const frames = Array.from({ length: 7 }, (_, i) => ({
    image: gradient(64, 48, i),
    label: i === 0 ? 'A' : i === 6 ? 'B' : `${(i / 6).toFixed(2)} k=2`,
  }));
  const png = await contactSheet(frames, { columns: 4, thumbWidth: 96 });
  const layout = contactSheetLayout(frames, { columns: 4, thumbWidth: 96 });
  assert.deepEqual([layout.columns, layout.rows], [4, 2]);
  assert.deepEqual(layout.thumbHeights, Array(7).fill(72));
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [layout.width, layout.height]);
  assert.equal(layout.width, 8 + 4 * (96 + 8));
  // Labels change pixels in the caption band.
  const unlabelled = await contactSheet(frames.map(({ image }) => ({ image })), { columns: 4, thumbWidth: 96 });
  const a = await sharp(png).raw().toBuffer();
  const b = await sharp(unlabelled).raw().toBuffer();
  assert.equal(a.length, b.length);
  assert.notDeepEqual(a, b);
  // Defaults: up to 5 columns, 192 px thumbnails.
  const small = contactSheetLayout(frames.slice(0, 3));
  assert.deepEqual([small.columns, small.rows, small.thumbWidth], [3, 1, 192]);
  await assert.rejects(contactSheet([]), isLatentBlendError(/at least one frame/));
  await assert.rejects(contactSheet(frames, { columns: 0 }), isLatentBlendError(/columns must be a positive integer; got 0/));
});

test('smoothness plot: a PNG of the requested size whose pixels follow the data', async () => {
  const points = (bump: number) => [0.0625, 0.1875, 0.3125, 0.4375, 0.5625, 0.6875, 0.8125, 0.9375].map((fract, i) => ({ fract, distance: i === 3 ? bump : 0.1 }));
  const first = await smoothnessPlot(points(0.1), { width: 640, height: 360, title: 'LPIPS' });
  const meta = await sharp(first).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [640, 360]);
  assert.deepEqual(await sharp(await smoothnessPlot([])).metadata().then((m) => [m.width, m.height]), [800, 400]);
  const second = await smoothnessPlot(points(0.3), { width: 640, height: 360, title: 'LPIPS' });
  const a = await sharp(first).raw().toBuffer();
  const b = await sharp(second).raw().toBuffer();
  assert.equal(a.length, b.length);
  let changed = 0;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) changed += 1;
  assert.ok(changed > 500, `only ${changed} bytes changed`);
  await assert.rejects(smoothnessPlot([{ fract: 1.5, distance: 0.1 }]), isLatentBlendError(/point 0 has fract 1\.5/));
  await assert.rejects(smoothnessPlot([{ fract: 0.5, distance: -1 }]), isLatentBlendError(/distance -1/));
  await assert.rejects(smoothnessPlot([], { width: 10 }), isLatentBlendError(/width must be an integer in \[240, 4096\]/));
});
