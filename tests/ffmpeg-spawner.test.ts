/**
 * FfmpegSpawner: encoders started by a small helper process (see src/io/ffmpeg-spawner.ts).
 * Process relations are read from /proc, so most tests run on Linux only.
 */
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LatentBlendError } from '../src/errors.ts';
import type { RgbImage } from '../src/pipeline/vae.ts';
import { locateFfmpeg } from '../src/io/ffmpeg.ts';
import { FfmpegSpawner } from '../src/io/ffmpeg-spawner.ts';
import { encodeVideo, probeVideo, type EncodeVideoOptions } from '../src/io/video.ts';
import { runCliProcess } from './helpers/cli.ts';
import { StudioClient } from './helpers/studio-client.ts';
import { startStudio } from '../src/studio/server.ts';
import { modelDir } from './helpers/golden.ts';
import { gradient, gradients } from './helpers/frames.ts';

const ROOT = resolve(import.meta.dirname, '..');
const linuxOnly = { skip: !existsSync('/proc/self/stat') && 'needs /proc (Linux)' };

const root = mkdtempSync(join(tmpdir(), 'latentblend-spawner-'));
after(() => rmSync(root, { recursive: true, force: true }));

let folderCount = 0;
/** A fresh empty folder for one test. */
function folder(): string {
  const path = join(root, String(folderCount++));
  mkdirSync(path, { recursive: true });
  return path;
}


/** Parent pid, command name and state of `pid` from /proc, or undefined when there is no such process. */
function processInfo(pid: number): { ppid: number; comm: string; state: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const [state, ppid] = stat.slice(close + 2).split(' ');
  return { ppid: Number(ppid), comm: stat.slice(open + 1, close), state: state ?? '?' };
}

/** A process that exists and is not a zombie (a zombie has ended, only its parent has not reaped it yet). */
function running(pid: number): boolean {
  const info = processInfo(pid);
  return info !== undefined && info.state !== 'Z';
}

/** Running processes whose parent is `parent`. */
function childrenOf(parent: number): { pid: number; comm: string }[] {
  const found: { pid: number; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = processInfo(Number(name));
    if (info !== undefined && info.ppid === parent && info.state !== 'Z') found.push({ pid: Number(name), comm: info.comm });
  }
  return found;
}

function ffmpegChildrenOf(parent: number): number[] {
  return childrenOf(parent)
    .filter((child) => child.comm.startsWith('ffmpeg'))
    .map((child) => child.pid);
}

/** Waits until `condition` holds, checking every 20 ms, for at most `limitMs`; returns whether it held. */
async function eventually(condition: () => boolean, limitMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

/** A stand-in ffmpeg that answers the capability queries (with the real one) and then just sleeps, whatever its input does. */
function stuckFfmpeg(dir: string): string {
  const path = join(dir, 'stuck-ffmpeg');
  writeFileSync(
    path,
    ['#!/bin/sh', 'for a in "$@"; do case "$a" in -version|-encoders|-filters) exec "' + locateFfmpeg().path + '" "$@";; esac; done', 'exec sleep 600'].join('\n'),
    { mode: 0o755 },
  );
  return path;
}

/** A stand-in ffmpeg: the real one, with an input decoder that does not exist (it fails before reading any frame). */
function brokenFfmpeg(dir: string): string {
  const real = locateFfmpeg().path;
  const path = join(dir, 'broken-ffmpeg');
  writeFileSync(
    path,
    ['#!/bin/sh', 'for a in "$@"; do case "$a" in -version|-encoders|-filters) exec "$0.real" "$@";; esac; done', 'exec "$0.real" -c:v no-such-decoder "$@"'].join('\n'),
    { mode: 0o755 },
  );
  writeFileSync(`${path}.real`, `#!/bin/sh\nexec "${real}" "$@"\n`, { mode: 0o755 });
  return path;
}

describe('FfmpegSpawner', { skip: process.platform === 'win32' && 'the spawner is inert on Windows' }, () => {
  test('a film encoded through the helper: ffmpeg is the helper’s child, the film decodes and equals a direct encode byte for byte', linuxOnly, async () => {
    const spawner = FfmpegSpawner.start();
    try {
      assert.equal(spawner.available, true);
      const helper = spawner.helperPid!;
      assert.equal(processInfo(helper)?.ppid, process.pid, 'the helper is our child');
      const dir = folder();
      const options: EncodeVideoOptions = { fps: 12, quality: 60, comment: 'spawner test' };
      let seen: { ofHelper: number[]; ofUs: number[] } | undefined;
      const viaHelper = join(dir, 'helper.mp4');
      await encodeVideo(viaHelper, gradients(15), {
        ...options,
        spawner,
        onFrame: (written) => {
          if (written === 3) seen = { ofHelper: ffmpegChildrenOf(helper), ofUs: ffmpegChildrenOf(process.pid) };
        },
      });
      assert.equal(seen?.ofHelper.length, 1, 'one ffmpeg runs under the helper');
      assert.deepEqual(seen?.ofUs, [], 'no ffmpeg is our own child');
      const direct = join(dir, 'direct.mp4');
      let directChildren: number[] = [];
      await encodeVideo(direct, gradients(15), { ...options, onFrame: (written) => (written === 3 ? (directChildren = ffmpegChildrenOf(process.pid)) : undefined) });
      assert.equal(directChildren.length, 1, 'without a spawner ffmpeg is our child');

      const info = await probeVideo(viaHelper);
      assert.deepEqual([info.frames, info.width, info.height, info.codec], [15, 64, 48, 'h264']);
      assert.ok(readFileSync(viaHelper).equals(readFileSync(direct)), 'the two films are identical');
      assert.deepEqual(readdirSync(dir).sort(), ['direct.mp4', 'helper.mp4']);
    } finally {
      await spawner.close();
    }
    assert.equal(running(spawner.helperPid!), false, 'close() ends the helper');
    assert.equal(spawner.available, false);
  });

  test('large frames through the helper (the pipe fills and drains) all arrive; two films at once, in webm and gif', async () => {
    const spawner = FfmpegSpawner.start();
    try {
      const dir = folder();
      const films = [['big.webm', 12, [320, 240]], ['small.gif', 6, [40, 30]]] as const;
      await Promise.all(films.map(([name, count, size]) => encodeVideo(join(dir, name), gradients(count, size[0], size[1]), { fps: 10, spawner })));
      for (const [name, count, size] of films) {
        const info = await probeVideo(join(dir, name));
        assert.deepEqual([info.frames, info.width, info.height], [count, size[0], size[1]], name);
      }
    } finally {
      await spawner.close();
    }
  });

  test('abort kills the helper’s ffmpeg before encodeVideo rejects, and no file is left', linuxOnly, async () => {
    const spawner = FfmpegSpawner.start();
    try {
      const dir = folder();
      const controller = new AbortController();
      let ffmpeg: number[] = [];
      function* endless(): Generator<RgbImage> {
        for (let i = 0; ; i++) yield gradient(256, 192, i);
      }
      const encoding = encodeVideo(join(dir, 'film.mp4'), endless(), {
        fps: 12,
        spawner,
        signal: controller.signal,
        onFrame: (written) => {
          if (written === 5) {
            ffmpeg = ffmpegChildrenOf(spawner.helperPid!);
            controller.abort();
          }
        },
      });
      await assert.rejects(encoding, { name: 'AbortError' });
      assert.equal(ffmpeg.length, 1);
      assert.equal(running(ffmpeg[0]!), false, 'ffmpeg is gone when the abort is reported');
      assert.deepEqual(readdirSync(dir), [], 'no partial file');
      assert.equal(spawner.available, true, 'the helper serves the next film');
    } finally {
      await spawner.close();
    }
  });

  test('an ffmpeg failure reads exactly as with a direct spawn (same LatentBlendError, no file)', { skip: process.platform === 'win32' }, async () => {
    const spawner = FfmpegSpawner.start();
    try {
      const dir = folder();
      const ffmpegPath = brokenFfmpeg(dir);
      const out = join(dir, 'film.mp4');
      const failure = async (extra: Partial<EncodeVideoOptions>): Promise<LatentBlendError> => {
        try {
          await encodeVideo(out, gradients(40, 256, 192), { fps: 12, ffmpegPath, ...extra });
        } catch (error) {
          assert.ok(error instanceof LatentBlendError, `expected a LatentBlendError, got ${String(error)}`);
          return error;
        }
        assert.fail('the encode succeeded');
      };
      const direct = await failure({});
      const viaHelper = await failure({ spawner });
      assert.match(direct.message, /Encoding .*film\.mp4: ffmpeg exited with status \d+\.\nffmpeg said:\n[\s\S]*no-such-decoder/);
      assert.equal(viaHelper.message, direct.message);
      assert.equal(viaHelper.code, direct.code);
      assert.deepEqual(readdirSync(dir).sort(), ['broken-ffmpeg', 'broken-ffmpeg.real']);
    } finally {
      await spawner.close();
    }
  });

  test('a program that ends without reading its input: exit status and stderr come back, and our end of its stdin is closed', async () => {
    const spawner = FfmpegSpawner.start();
    try {
      const started = await spawner.spawn(locateFfmpeg().path, ['-hide_banner', '-no-such-option']);
      assert.ok(started !== undefined);
      const exit = await started.exited;
      assert.notEqual(exit.code, 0);
      assert.match(exit.stderr, /no-such-option/);
      assert.equal(started.stdin.destroyed, true, 'no descriptor stays open');
    } finally {
      await spawner.close();
    }
  });

  test('a start that fails in the helper answers undefined (the caller spawns itself); a dead helper makes the spawner fall back', linuxOnly, async () => {
    const spawner = FfmpegSpawner.start();
    try {
      assert.equal(await spawner.spawn(join(root, 'no-such-program'), []), undefined);
      assert.equal(spawner.available, true, 'one failed start does not retire the helper');
      process.kill(spawner.helperPid!, 'SIGKILL');
      assert.ok(await eventually(() => !spawner.available), 'the spawner notices');
      const dir = folder();
      let ours: number[] = [];
      await encodeVideo(join(dir, 'film.mp4'), gradients(6), { fps: 12, spawner, onFrame: (written) => (written === 2 ? (ours = ffmpegChildrenOf(process.pid)) : undefined) });
      assert.equal(ours.length, 1, 'ffmpeg was spawned directly');
      assert.equal((await probeVideo(join(dir, 'film.mp4'))).frames, 6);
    } finally {
      await spawner.close();
    }
  });

  test('the helper dying mid-film stops ffmpeg and fails the film with a clear error, no file left', linuxOnly, async () => {
    const spawner = FfmpegSpawner.start();
    try {
      const dir = folder();
      let ffmpeg: number[] = [];
      function* endless(): Generator<RgbImage> {
        for (let i = 0; ; i++) yield gradient(256, 192, i);
      }
      await assert.rejects(
        encodeVideo(join(dir, 'film.mp4'), endless(), {
          fps: 12,
          spawner,
          onFrame: (written) => {
            if (written === 3) {
              ffmpeg = ffmpegChildrenOf(spawner.helperPid!);
              process.kill(spawner.helperPid!, 'SIGKILL');
            }
          },
        }),
        (error: unknown) => error instanceof LatentBlendError && error.code === 'ffmpeg' && /film\.mp4: the helper process that started ffmpeg ended unexpectedly/.test(error.message),
      );
      assert.equal(ffmpeg.length, 1);
      assert.ok(await eventually(() => !running(ffmpeg[0]!)), 'ffmpeg was killed');
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      await spawner.close();
    }
  });

  test('SIGKILL of the parent leaves neither the helper nor its ffmpeg running; nor does Ctrl-C (exit 130, no file); a spawner never closed does not keep a process alive', linuxOnly, async () => {
    const dir = folder();
    const url = (path: string) => JSON.stringify(pathToFileURL(join(ROOT, path)).href);
    const script = join(dir, 'parent.mts');
    writeFileSync(
      script,
      [
        `import { FfmpegSpawner } from ${url('src/io/ffmpeg-spawner.ts')};`,
        `import { encodeVideo } from ${url('src/io/video.ts')};`,
        'const spawner = FfmpegSpawner.start();',
        'const endless = process.argv[2] === "endless";',
        'async function* frames() {',
        '  for (let i = 0; endless || i < 4; i++) {',
        '    await new Promise((resolve) => setTimeout(resolve, 10));',
        '    yield { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(i & 255) };',
        '  }',
        '}',
        'const ffmpegPath = process.argv[4];',
        '// Ctrl-C as the CLI handles it: abort, then exit 130.',
        'const controller = new AbortController();',
        'process.on("SIGINT", () => controller.abort(new DOMException("Interrupted", "AbortError")));',
        'try {',
        '  await encodeVideo(process.argv[3], frames(), { fps: 10, spawner, signal: controller.signal, ...(ffmpegPath ? { ffmpegPath } : {}), onFrame: (n) => { if (n === 2) process.stdout.write(JSON.stringify({ helper: spawner.helperPid }) + "\\n"); } });',
        '} catch (error) {',
        '  await spawner.close();',
        '  process.exitCode = error?.name === "AbortError" ? 130 : 1;',
        '}',
        '// No spawner.close() after a success: the process must still end.',
      ].join('\n'),
    );
    const start = (mode: string, out: string, ffmpegPath = '', detached = false) =>
      spawn(process.execPath, ['--import', 'tsx', script, mode, out, ffmpegPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached });
    /** The helper's pid, once the parent has handed two frames to ffmpeg. */
    const helperOf = (parent: ReturnType<typeof start>) =>
      new Promise<number>((resolve, reject) => {
        let text = '';
        parent.stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('\n')) resolve((JSON.parse(text.split('\n')[0]!) as { helper: number }).helper);
        });
        parent.once('exit', () => reject(new Error(`the parent ended early: ${text}`)));
      });

    // Finite film, spawner left open: the process ends by itself, with the film written.
    const finite = start('finite', join(dir, 'finite.mp4'));
    const code = await new Promise<number | null>((resolve) => finite.once('exit', (exitCode) => resolve(exitCode)));
    assert.equal(code, 0);
    assert.equal((await probeVideo(join(dir, 'finite.mp4'))).frames, 4);

    // Endless film, with an "ffmpeg" that would not end when its input closes: kill the parent
    // while it runs under the helper.
    const parent = start('endless', join(dir, 'endless.mp4'), stuckFfmpeg(dir));
    const helper = await helperOf(parent);
    const ffmpeg = childrenOf(helper).map((child) => child.pid);
    assert.equal(processInfo(helper)?.ppid, parent.pid);
    assert.equal(ffmpeg.length, 1);
    parent.kill('SIGKILL');
    assert.ok(await eventually(() => !running(helper)), 'the helper ended');
    assert.ok(await eventually(() => !running(ffmpeg[0]!)), 'its ffmpeg ended');

    // Ctrl-C in a terminal: SIGINT to the whole process group (parent, helper, ffmpeg).
    const interrupted = start('endless', join(dir, 'interrupted.mp4'), '', true);
    const exitCode = new Promise<number | null>((resolve) => interrupted.once('exit', (value) => resolve(value)));
    const helper2 = await helperOf(interrupted);
    const ffmpeg2 = ffmpegChildrenOf(helper2);
    assert.equal(ffmpeg2.length, 1);
    process.kill(-interrupted.pid!, 'SIGINT');
    assert.equal(await exitCode, 130);
    assert.equal(running(helper2), false, 'the helper is gone when the parent has exited');
    assert.ok(await eventually(() => !running(ffmpeg2[0]!)), 'its ffmpeg ended');
    assert.deepEqual(readdirSync(dir).filter((name) => name.includes('interrupted')), [], 'no film, no partial file');
  });
});

/** A stand-in ffmpeg that notes (in `record`) the name of the process that started each encoder, then runs the real one. */
function notingFfmpeg(dir: string, record: string): string {
  const path = join(dir, 'noting-ffmpeg');
  writeFileSync(
    path,
    ['#!/bin/sh', 'case " $* " in *" pipe:0 "*) cat "/proc/$PPID/comm" >> ' + JSON.stringify(record) + ';; esac', `exec ${JSON.stringify(locateFfmpeg().path)} "$@"`].join('\n'),
    { mode: 0o755 },
  );
  return path;
}

test('latentblend transition encodes its film through the helper, not as a child of the big process', linuxOnly, () => {
  const dir = folder();
  const record = join(dir, 'encoder-parent.txt');
  const ffmpeg = notingFfmpeg(dir, record);
  const out = join(dir, 'film.mp4');
  const run = runCliProcess(['transition', '--model', modelDir('tiny-sd-turbo'), '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '3', '--metric', 'rms-pixel', '--ffmpeg', ffmpeg, '--out', out, '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), ['latentblend-ffm'], 'one encoder, started by the helper (its name, cut to 15 characters)');
  assert.equal(existsSync(out), true);
});

test('the studio renders films through its helper, and closing the studio ends the helper', linuxOnly, async () => {
  const dir = folder();
  const record = join(dir, 'encoder-parent.txt');
  const studio = await startStudio({ modelDir: modelDir('tiny-sd-turbo'), workDir: join(dir, 'studio'), port: 0, ffmpegPath: notingFfmpeg(dir, record) });
  let helpers: number[] = [];
  try {
    helpers = childrenOf(process.pid).filter((child) => child.comm === 'latentblend-ffm').map((child) => child.pid);
    assert.equal(helpers.length, 1, 'the studio started one helper');
    const client = new StudioClient(new URL(studio.url));
    const spec = { fps: 8, transitionDuration: 0.5, branchesPerTransition: 3, keyframes: [{ prompt: 'a red cube', seed: 1 }, { prompt: 'a blue sphere', seed: 2 }] };
    const reply = await client.post('/api/renders', { spec });
    assert.equal(reply.status, 202, reply.text);
    const job = await client.waitFor(reply.json.id, 120_000);
    assert.equal(job.state, 'done', JSON.stringify(job));
    assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), ['latentblend-ffm']);
  } finally {
    await studio.close();
  }
  assert.equal(running(helpers[0]!), false, 'the helper ended with the studio');
});

test('an inert spawner (as on Windows) answers undefined and encodeVideo spawns directly', async () => {
  const spawner = FfmpegSpawner.start();
  await spawner.close();
  assert.equal(spawner.available, false);
  assert.equal(await spawner.spawn(locateFfmpeg().path, ['-version']), undefined);
  const dir = folder();
  await encodeVideo(join(dir, 'film.gif'), gradients(3), { fps: 10, spawner });
  assert.equal((await probeVideo(join(dir, 'film.gif'))).frames, 3);
});
