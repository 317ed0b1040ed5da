/**
 * `node --import tsx bench/ffmpeg-spawn.ts`: what starting the encoder costs in a process that
 * holds gigabytes (as a render does once its models are loaded), spawned directly versus
 * through FfmpegSpawner's small helper. Writes bench/results/ffmpeg-spawn.json.
 *
 * The helper is started first, while the process is small (as the CLI and the studio do); then
 * BENCH_BALLAST_GB (default 4) GiB of Buffers are allocated and every page written, so the page
 * tables a fork copies are as big as with loaded models. Measured, BENCH_REPEATS (default 9)
 * times each, medians reported, with a small process (no ballast yet) and a large one:
 *
 * - spawnToFirstWriteMs: from asking for the encoder to the first frame (64x48 RGB) accepted by
 *   the pipe into ffmpeg's stdin (the write's callback);
 * - loopBlockedMs: the longest event-loop stall meanwhile (a direct spawn blocks the thread for
 *   the whole fork; through the helper it is an IPC round trip);
 * - encodeMs: a whole 10-frame mp4 through encodeVideo (probes cached), call to resolved.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { locateFfmpeg, ffmpegCapabilities } from '../src/io/ffmpeg.ts';
import { FfmpegSpawner } from '../src/io/ffmpeg-spawner.ts';
import { encodeVideo } from '../src/io/video.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPEATS = Number(process.env.BENCH_REPEATS ?? 9);
const BALLAST_GB = Number(process.env.BENCH_BALLAST_GB ?? 4);
const WIDTH = 64;
const HEIGHT = 48;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function frame(i: number): RgbImage {
  return { width: WIDTH, height: HEIGHT, data: new Uint8Array(WIDTH * HEIGHT * 3).fill(i * 23) };
}

function encoderArgs(out: string): string[] {
  return ['-hide_banner', '-loglevel', 'warning', '-nostats', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-video_size', `${WIDTH}x${HEIGHT}`, '-framerate', '10', '-i', 'pipe:0', '-c:v', 'libx264', '-f', 'mp4', `file:${out}`];
}

/** Writes one frame and resolves when the pipe accepted it. */
function writeFrame(stdin: Writable): Promise<void> {
  return new Promise((resolve, reject) => stdin.write(Buffer.from(frame(0).data), (error) => (error ? reject(error) : resolve())));
}

interface Sample {
  spawnToFirstWriteMs: number;
  loopBlockedMs: number;
}

/** One encoder start, first frame, end of input, wait for ffmpeg's exit. */
async function startOnce(ffmpeg: string, out: string, spawner: FfmpegSpawner | undefined): Promise<Sample> {
  const histogram = monitorEventLoopDelay({ resolution: 2 });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 10));
  const started = performance.now();
  let stdin: Writable;
  let exited: Promise<unknown>;
  if (spawner !== undefined) {
    const remote = await spawner.spawn(ffmpeg, encoderArgs(out));
    if (remote === undefined) throw new Error('the helper did not start ffmpeg');
    stdin = remote.stdin;
    exited = remote.exited;
  } else {
    const child = spawn(ffmpeg, encoderArgs(out), { stdio: ['pipe', 'ignore', 'pipe'] });
    child.stderr.resume();
    stdin = child.stdin;
    exited = new Promise((resolve) => child.once('close', resolve));
  }
  await writeFrame(stdin);
  const spawnToFirstWriteMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 10));
  histogram.disable();
  stdin.end();
  await exited;
  return { spawnToFirstWriteMs, loopBlockedMs: Math.max(0, histogram.max / 1e6 - 2) };
}

async function encodeOnce(out: string, spawner: FfmpegSpawner | undefined): Promise<number> {
  const started = performance.now();
  await encodeVideo(out, Array.from({ length: 10 }, (_, i) => frame(i)), { fps: 10, force: true, ...(spawner !== undefined ? { spawner } : {}) });
  return performance.now() - started;
}

interface Row {
  process: string;
  rssMb: number;
  how: 'direct' | 'helper';
  spawnToFirstWriteMs: number;
  loopBlockedMs: number;
  encodeMs: number;
}

async function measure(label: string, ffmpeg: string, dir: string, spawner: FfmpegSpawner): Promise<Row[]> {
  const rows: Row[] = [];
  for (const how of ['direct', 'helper'] as const) {
    const use = how === 'helper' ? spawner : undefined;
    const samples: Sample[] = [];
    const encodes: number[] = [];
    // One warm-up of each, then alternate nothing: runs of one kind back to back.
    await startOnce(ffmpeg, join(dir, 'warm.mp4'), use);
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      samples.push(await startOnce(ffmpeg, join(dir, `${how}-${repeat}.mp4`), use));
      encodes.push(await encodeOnce(join(dir, `film-${how}.mp4`), use));
    }
    rows.push({
      process: label,
      rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
      how,
      spawnToFirstWriteMs: Number(median(samples.map((sample) => sample.spawnToFirstWriteMs)).toFixed(2)),
      loopBlockedMs: Number(median(samples.map((sample) => sample.loopBlockedMs)).toFixed(2)),
      encodeMs: Number(median(encodes).toFixed(1)),
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const spawner = FfmpegSpawner.start();
  const dir = mkdtempSync(join(tmpdir(), 'latentblend-bench-spawn-'));
  try {
    const ffmpeg = locateFfmpeg().path;
    await ffmpegCapabilities(ffmpeg);
    const rows = await measure('small', ffmpeg, dir, spawner);

    // Ballast: written Buffers (allocation alone maps zero pages that a fork does not copy).
    const ballast: Buffer[] = [];
    const chunk = 256 * 2 ** 20;
    for (let bytes = 0; bytes < BALLAST_GB * 2 ** 30; bytes += chunk) ballast.push(Buffer.alloc(chunk).fill(1));
    rows.push(...(await measure(`${BALLAST_GB} GiB held`, ffmpeg, dir, spawner)));
    if (ballast.length === 0) throw new Error('no ballast');

    console.table(rows);
    const results = join(ROOT, 'bench', 'results');
    mkdirSync(results, { recursive: true });
    const record = { date: new Date().toISOString(), node: process.version, platform: `${process.platform}-${process.arch}`, ffmpeg, repeats: REPEATS, ballastGiB: BALLAST_GB, rows };
    writeFileSync(join(results, 'ffmpeg-spawn.json'), `${JSON.stringify(record, null, 2)}\n`);
  } finally {
    await spawner.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
