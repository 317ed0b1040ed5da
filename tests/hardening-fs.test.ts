/**
 * Hardening, class 1: file-system errors are user errors. Every case ends with one line naming
 * the path and what to do, exit status 1, no stack trace, no partial file, and a state from which
 * the same command resumes.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs, { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { ROOT, modelDir } from './helpers/golden.ts';
import { LatentBlendError, fileSystemError } from '../src/errors.ts';
import { cleanLeftovers, ensureFolder, writeFileAtomically } from '../src/io/files.ts';
import { checkOutputs, sideFiles, writeFilm } from '../src/film/work-folder.ts';
import type { FilmSegment } from '../src/film/render.ts';
import { writeFilm as writeOneFilm } from '../src/film/write-film.ts';
import type { Reporter } from '../src/film/progress.ts';

const model = modelDir('tiny-sd-turbo');
const work = mkdtempSync(join(tmpdir(), 'latentblend-hardening-fs-'));
after(() => rmSync(work, { recursive: true, force: true }));

const STACK = /\n\s+at .*:\d+:\d+/;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Files and folders of `dir` whose names end in .partial (leftovers of a write). */
function partials(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.includes('.partial')) : [];
}

function assertCleanFailure(run: { code: number; stderr: string }, path: RegExp): void {
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, path);
  assert.doesNotMatch(run.stderr, STACK, 'no stack trace');
  assert.doesNotMatch(run.stderr, /unexpected error/);
  assert.equal(run.stderr.trim().split('\n').filter((line) => line.startsWith('error:')).length, 1, 'one error line');
}

describe('fileSystemError maps errno errors to one line naming the path', () => {
  test('ENOSPC from a real write to /dev/full', { skip: !existsSync('/dev/full') && 'no /dev/full here' }, () => {
    let caught: unknown;
    try {
      writeFileSync('/dev/full', 'x');
    } catch (error) {
      caught = fileSystemError(error, '/films/a.mp4');
    }
    assert.ok(caught instanceof LatentBlendError);
    assert.equal(caught.code, 'file_system');
    assert.match(caught.message, /\/films\/a\.mp4: no space left.*ENOSPC.*free some space/);
  });

  test('ENOTDIR / EEXIST when a part of the path is a file', () => {
    const file = join(work, 'a-file');
    writeFileSync(file, '');
    for (const attempt of [() => writeFileSync(join(file, 'x.png'), ''), () => mkdirSync(file)]) {
      let caught: unknown;
      try {
        attempt();
      } catch (error) {
        caught = fileSystemError(error);
      }
      assert.ok(caught instanceof LatentBlendError, String(caught));
      assert.match(caught.message, /a-file/);
      assert.match(caught.message, /ENOTDIR|EEXIST/);
    }
  });

  test('other errors pass through unchanged', () => {
    const bug = new TypeError('x is undefined');
    assert.equal(fileSystemError(bug), bug);
    const user = new LatentBlendError('bad');
    assert.equal(fileSystemError(user), user);
  });
});

describe('folders are created one part at a time and never spin', () => {
  test('a file in the way is named', () => {
    const file = join(work, 'blocker');
    writeFileSync(file, '');
    assert.throws(() => ensureFolder(join(file, 'a', 'b')), (error: unknown) => error instanceof LatentBlendError && /blocker is a file, not a folder/.test(error.message));
  });

  test('a special file system (/proc) fails at once', { skip: !existsSync('/proc/self') && 'no /proc here' }, () => {
    assert.throws(() => ensureFolder('/proc/latentblend-x/y'), (error: unknown) => error instanceof LatentBlendError && /\/proc\/latentblend-x/.test(error.message));
  });
});

describe('the CLI reports file-system errors with exit status 1 before computing', () => {
  test('generate --out under a file', () => {
    const file = join(work, 'not-a-folder');
    writeFileSync(file, '');
    const run = runCliProcess(['generate', '--model', model, '--prompt', 'a cat', '--out', join(file, 'x.png'), '--quiet']);
    assertCleanFailure(run, /not-a-folder is a file, not a folder/);
  });

  test('generate and transition --out /proc/…', { skip: !existsSync('/proc/self') && 'no /proc here' }, () => {
    for (const args of [
      ['generate', '--model', model, '--prompt', 'a cat', '--out', '/proc/x.png'],
      ['transition', '--model', model, '--prompt1', 'a', '--prompt2', 'b', '--out', '/proc/latentblend-nope/x.mp4'],
    ]) {
      const run = runCliProcess([...args, '--quiet']);
      assertCleanFailure(run, /cannot write \/proc\//);
    }
  });

  test('a --work-dir or --frames-dir under a file is refused before computing', () => {
    const file = join(work, 'work-blocker');
    writeFileSync(file, '');
    const run = runCliProcess(['transition', '--model', model, '--prompt1', 'a', '--prompt2', 'b', '--out', join(work, 'wd.mp4'), '--work-dir', join(file, 'w'), '--quiet']);
    assertCleanFailure(run, /work-blocker is a file, not a folder/);
    const frames = runCliProcess(['transition', '--model', model, '--prompt1', 'a', '--prompt2', 'b', '--out', join(work, 'wd.mp4'), '--frames-dir', join(file, 'frames'), '--quiet']);
    assertCleanFailure(frames, /work-blocker is a file, not a folder/);
    assert.equal(existsSync(join(work, 'wd.mp4')), false);
  });

  // Permissions do not stop root: as root, the CLI runs as user nobody through setpriv.
  const setpriv = isRoot && existsSync('/usr/bin/setpriv');
  // User nobody must be able to read this checkout (a checkout under a private folder is not).
  const nobodyCanRun =
    setpriv &&
    spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '-e', '0'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 }).status === 0;
  const asNobody = setpriv && nobodyCanRun;
  const skipReason = !isRoot ? false : !setpriv ? 'running as root without setpriv: permissions do not stop root from writing' : !nobodyCanRun ? 'running as root, and user nobody cannot read this checkout: permissions do not stop root from writing' : false;
  test('a read-only folder', { skip: skipReason }, () => {
    const folder = join(work, 'read-only');
    mkdirSync(folder);
    chmodSync(work, 0o755);
    chmodSync(folder, 0o555);
    try {
      const args = ['generate', '--model', model, '--prompt', 'a cat', '--out', join(folder, 'x.png'), '--quiet'];
      const run = asNobody
        ? (() => {
            const result = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', join(ROOT, 'src', 'cli', 'bin.ts'), ...args], {
              cwd: ROOT,
              env: { ...process.env, HOME: tmpdir(), HF_HUB_OFFLINE: '1' },
              encoding: 'utf8',
              timeout: 120_000,
            });
            return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
          })()
        : runCliProcess(args);
      assertCleanFailure(run, /cannot write .*read-only\/x\.png: permission denied \(EACCES\)/);
      assert.deepEqual(readdirSync(folder), []);
    } finally {
      chmodSync(folder, 0o755);
    }
  });
});

describe('leftovers of killed runs are removed by the next run of the same output', () => {
  test('files and folders of dead processes go, those of live processes and other outputs stay', async () => {
    const folder = join(work, 'leftovers');
    mkdirSync(folder);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const names = {
      deadFile: `.out.png.${dead}-0badcafe.partial`,
      deadFolder: `.out.png.${dead}-1badcafe.partial.old`,
      legacy: '.out.png.2badcafe.partial',
      live: `.out.png.${process.ppid}-3badcafe.partial`,
      other: `.other.png.${dead}-4badcafe.partial`,
    };
    writeFileSync(join(folder, names.deadFile), 'x');
    mkdirSync(join(folder, names.deadFolder, 'frames'), { recursive: true });
    writeFileSync(join(folder, names.legacy), 'x');
    writeFileSync(join(folder, names.live), 'x');
    writeFileSync(join(folder, names.other), 'x');
    await writeFileAtomically(join(folder, 'out.png'), 'png', false);
    assert.deepEqual(readdirSync(folder).sort(), ['out.png', names.live, names.other].sort());
    assert.deepEqual(cleanLeftovers(join(folder, 'other.png')), [names.other]);
  });
});

const silent: Reporter = { info() {}, warn() {}, startBar() {}, updateBar() {}, stopBar() {}, engineListener() {} } as unknown as Reporter;

/** A two-frame transition of 16x16 pictures, enough for writeFilm. */
function tinySegment(): FilmSegment {
  const picture = (value: number) => ({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(value) });
  return {
    transition: {
      images: [picture(20), picture(220)],
      tree: { numInferenceSteps: 4, branches: [{ fract: 0, injectionStep: 0, latents: [] }, { fract: 1, injectionStep: 0, latents: [] }], gapDistances: [0.5] },
    } as unknown as FilmSegment['transition'],
    durationSeconds: 0.5,
  };
}

describe('a full disk while writing the film leaves a resumable state', () => {
  test('ENOSPC injected in the contact sheet write: no film, no partial file, the re-run needs no --force', async () => {
    const out = join(work, 'disk-full', 'film.mp4');
    const workDir = join(work, 'disk-full', 'film.latentblend');
    mkdirSync(workDir, { recursive: true });
    checkOutputs({ out, force: false });
    const original = fs.writeFileSync;
    fs.writeFileSync = ((path: unknown, ...rest: unknown[]) => {
      if (String(path).includes('contact-sheet')) {
        throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', syscall: 'write', errno: -28 });
      }
      return (original as (...args: unknown[]) => void)(path, ...rest);
    }) as typeof fs.writeFileSync;
    syncBuiltinESMExports();
    let recordWritten = false;
    try {
      await assert.rejects(
        writeFilm([tinySegment()], { out, fps: 8, retiming: 'equal', force: false, beforeFilm: () => void (recordWritten = true) }, silent),
        (error: unknown) => error instanceof LatentBlendError && error.code === 'file_system' && error.message.includes(sideFiles(out).contactSheet) && /ENOSPC/.test(error.message),
      );
    } finally {
      fs.writeFileSync = original;
      syncBuiltinESMExports();
    }
    assert.equal(existsSync(out), false, 'the film is not in place');
    assert.equal(recordWritten, false, 'the record is written after the side files');
    assert.deepEqual(partials(join(work, 'disk-full')), []);
    // Space freed: the same command runs again without --force.
    writeFileSync(sideFiles(out).smoothness, 'left by the failed run');
    checkOutputs({ out, force: false });
    await writeFilm([tinySegment()], { out, fps: 8, retiming: 'equal', force: false }, silent);
    assert.ok(existsSync(out));
  });

  test('a real full tmpfs (root only): transition fails with one line, then resumes without recomputing', { skip: !isRoot && 'mounting a tmpfs needs root' }, async (t) => {
    const mount = join(work, 'tmpfs');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
    if (mounted.status !== 0) {
      t.skip('mount -t tmpfs is not permitted here');
      return;
    }
    try {
      const filler = join(mount, 'filler');
      const fd = openSync(filler, 'w');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(16 * 1024));
      } catch {
        // full
      } finally {
        closeSync(fd);
      }
      const out = join(mount, 'film.mp4');
      const workDir = join(work, 'tmpfs-work');
      const args = ['transition', '--model', model, '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '3', '--out', out, '--work-dir', workDir, '--json'];
      const failed = runCliProcess(args);
      assertCleanFailure(failed, /no space left.*ENOSPC/);
      assert.equal(existsSync(out), false);
      assert.deepEqual(partials(mount), []);
      // ffmpeg's own "No space left on device" reads the same.
      await assert.rejects(
        writeOneFilm(join(mount, 'library.mp4'), tinySegment().transition, { duration: 1, fps: 8 }),
        (error: unknown) => error instanceof LatentBlendError && error.code === 'file_system' && /library\.mp4: no space left.*ENOSPC/.test(error.message),
      );
      assert.deepEqual(partials(mount), []);
      rmSync(filler);
      const resumed = runCliProcess(args);
      assert.equal(resumed.code, 0, resumed.stderr);
      const summary = JSON.parse(resumed.stdout) as { resumed: boolean; unetCalls: number };
      assert.equal(summary.resumed, true);
      assert.equal(summary.unetCalls, 0);
      assert.ok(existsSync(out));
    } finally {
      spawnSync('umount', [mount]);
    }
  });
});
