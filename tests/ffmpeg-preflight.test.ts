/** ffmpeg is checked once, before the models load, and the encode reuses the result (issue #12). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkVideoEncoder, encodeVideo } from '../src/io/video.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { runCliProcess } from './helpers/cli.ts';
import { bundledFfmpeg } from './helpers/ffmpeg.ts';

/** A wrapper around the real ffmpeg that logs each invocation; `hide` drops encoders from `-encoders`. */
function wrapper(dir: string, hide?: string): { path: string; log: string } {
  const path = join(dir, hide === undefined ? 'ffmpeg-logged' : 'ffmpeg-without');
  const log = `${path}.log`;
  const real = bundledFfmpeg();
  const filter = hide === undefined ? '' : `if [ "$3" = "-encoders" ]; then '${real}' "$@" | grep -v '${hide}'; exit 0; fi\n`;
  writeFileSync(path, `#!/bin/sh\necho "$*" >> '${log}'\n${filter}exec '${real}' "$@"\n`);
  chmodSync(path, 0o755);
  return { path, log };
}

function invocations(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
}

test('checkVideoEncoder probes once; encodeVideo then spawns only the encoder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentblend-preflight-'));
  try {
    const ffmpeg = wrapper(dir);
    const out = join(dir, 'film.mp4');
    const location = await checkVideoEncoder(out, { ffmpegPath: ffmpeg.path });
    assert.equal(location.path, ffmpeg.path);
    const probes = invocations(ffmpeg.log);
    assert.ok(probes.length >= 1 && probes.every((line) => !line.includes('rawvideo')), probes.join(' | '));
    await checkVideoEncoder(join(dir, 'other.gif'), { ffmpegPath: ffmpeg.path });
    assert.equal(invocations(ffmpeg.log).length, probes.length, 'a second check reuses the probe');
    const frame: RgbImage = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(128) };
    await encodeVideo(out, [frame, frame], { fps: 2, ffmpegPath: ffmpeg.path });
    const after = invocations(ffmpeg.log);
    assert.equal(after.length, probes.length + 1, after.join(' | '));
    assert.match(after[after.length - 1]!, /rawvideo/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('transition: an ffmpeg without the film encoder fails before the model is looked at', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentblend-preflight-cli-'));
  try {
    const ffmpeg = wrapper(dir, 'libx264');
    const run = runCliProcess([
      'transition', '--model', join(dir, 'no-such-model-folder'), '--prompt1', 'a', '--prompt2', 'b',
      '--out', join(dir, 'film.mp4'), '--ffmpeg', ffmpeg.path, '--quiet',
    ]);
    assert.notEqual(run.code, 0, run.stderr);
    assert.match(run.stderr, /lacks encoder libx264/);
    assert.doesNotMatch(run.stderr, /no-such-model-folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
