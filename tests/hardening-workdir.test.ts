/**
 * Hardening, class 2: the work folder is untrusted input. Paths read from film.json and
 * transition.json stay inside the named folders (after symbolic links), damaged files are
 * recomputed or named, and `refine` finds the model from any current folder.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { runCliProcess } from './helpers/cli.ts';
import { ROOT, modelDir } from './helpers/golden.ts';
import { loadTransition } from '../src/io/store.ts';
import { resolveInside } from '../src/io/inside.ts';
import { LatentBlendError } from '../src/errors.ts';

const work = mkdtempSync(join(tmpdir(), 'latentblend-hardening-work-'));
after(() => rmSync(work, { recursive: true, force: true }));
const STACK = /\n\s+at .*:\d+:\d+/;
// Relative to the repository, as a user in the repository would type it.
const relativeModel = relative(ROOT, modelDir('tiny-sd-turbo'));

interface Made {
  out: string;
  workDir: string;
  transitionDir: string;
}

/** A finished film of 3 computed frames, made once and copied for each case. */
let original: Made;
before(() => {
  const out = join(work, 'original', 'film.mp4');
  const run = runCliProcess(['transition', '--model', relativeModel, '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '3', '--out', out, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { workDir: string; transitionDir: string };
  original = { out, workDir: summary.workDir, transitionDir: summary.transitionDir };
});

/** A copy of the original film's folder under `name`. */
function copy(name: string): Made {
  const folder = join(work, name);
  cpSync(join(work, 'original'), folder, { recursive: true });
  const move = (path: string) => join(folder, relative(join(work, 'original'), path));
  return { out: move(original.out), workDir: move(original.workDir), transitionDir: move(original.transitionDir) };
}

function editJson(path: string, edit: (value: Record<string, unknown>) => void): void {
  const value = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  writeFileSync(path, JSON.stringify(value));
}

function assertRefused(run: { code: number; stderr: string }, message: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stderr, STACK, 'no stack trace');
}

describe('resolveInside', () => {
  test('accepts paths inside, refuses climbing out, absolute paths elsewhere and links out', () => {
    const root = join(work, 'root');
    mkdirSync(join(root, 'a'), { recursive: true });
    assert.equal(resolveInside(root, 'a/b.png', 'x'), join(root, 'a', 'b.png'));
    assert.equal(resolveInside([root, join(work, 'other')], join(work, 'other', 'f.mp4'), 'x'), join(work, 'other', 'f.mp4'));
    for (const path of ['../x', '/etc/passwd', 'a/../../x', '']) {
      assert.throws(() => resolveInside(root, path, 'the path'), (error: unknown) => error instanceof LatentBlendError && error.code === 'unsafe_path', path);
    }
    symlinkSync(tmpdir(), join(root, 'out-link'));
    assert.throws(() => resolveInside(root, 'out-link/x.png', 'the frame'), /through a symbolic link/);
    symlinkSync(join(root, 'a'), join(root, 'in-link'));
    assert.equal(resolveInside(root, 'in-link/x.png', 'x'), join(root, 'a', 'x.png'));
  });
});

describe('refine with a crafted or damaged work folder', () => {
  test('a frame path to /etc/passwd in transition.json is refused before any computing', async () => {
    const made = copy('passwd');
    editJson(join(made.transitionDir, 'transition.json'), (manifest) => {
      (manifest.branches as { frame: string }[])[1]!.frame = '../../../../../../../../etc/passwd';
    });
    await assert.rejects(loadTransition(made.transitionDir), (error: unknown) => error instanceof LatentBlendError && error.code === 'unsafe_path' && /etc\/passwd/.test(error.message));
    assertRefused(runCliProcess(['refine', made.transitionDir, '--branches', '1']), /points outside/);
  });

  test("film.json's out outside the folder is refused, nothing written there", () => {
    const made = copy('evil-out');
    const target = join(work, 'elsewhere', 'victim.mp4');
    mkdirSync(join(work, 'elsewhere'));
    writeFileSync(target, 'precious');
    editJson(join(made.workDir, 'film.json'), (record) => {
      record.out = relative(made.workDir, target);
    });
    assertRefused(runCliProcess(['refine', made.transitionDir, '--branches', '1']), /film named in .*film\.json.*points outside/);
    assert.equal(readFileSync(target, 'utf8'), 'precious');
  });

  test("film.json's transition folder outside the work folder is refused", () => {
    const made = copy('evil-dir');
    editJson(join(made.workDir, 'film.json'), (record) => {
      record.transitions = [{ dir: '/etc', durationSeconds: 1 }];
    });
    assertRefused(runCliProcess(['refine', made.transitionDir, '--branches', '1']), /transition named in .*points outside/);
  });

  test('a frame that is a symbolic link out of the folder is refused', async () => {
    const made = copy('symlink');
    const secret = join(work, 'secret.png');
    cpSync(join(made.transitionDir, 'frames', '0000.png'), secret);
    unlinkSync(join(made.transitionDir, 'frames', '0001.png'));
    symlinkSync(secret, join(made.transitionDir, 'frames', '0001.png'));
    await assert.rejects(loadTransition(made.transitionDir), /through a symbolic link/);
  });

  test('damaged latents and PNGs: refine names the file; the same transition command recomputes them', async () => {
    const made = copy('damaged');
    const latents = join(made.transitionDir, 'latents.bin');
    const bytes = readFileSync(latents);
    bytes.fill(0xff, 0, 64); // NaNs
    writeFileSync(latents, bytes);
    const refined = runCliProcess(['refine', made.transitionDir, '--branches', '1']);
    assertRefused(refined, /latents\.bin is damaged/);

    writeFileSync(latents, bytes.subarray(0, 100));
    await assert.rejects(loadTransition(made.transitionDir), (error: unknown) => error instanceof LatentBlendError && error.code === 'damaged' && /latents\.bin/.test(error.message));

    const healthy = copy('damaged-png');
    writeFileSync(join(healthy.transitionDir, 'frames', '0002.png'), 'not a png at all');
    await assert.rejects(loadTransition(healthy.transitionDir), (error: unknown) => error instanceof LatentBlendError && error.code === 'damaged' && /0002\.png is damaged/.test(error.message));
    const rerun = runCliProcess(['transition', '--model', relativeModel, '--prompt1', 'a cat', '--prompt2', 'a dog', '--duration', '1', '--fps', '8', '--max-branches', '3', '--out', healthy.out, '--force', '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, /0002\.png is damaged.*Computing it again/);
    assert.equal((JSON.parse(rerun.stdout) as { resumed: boolean }).resumed, false);
    assert.equal((await loadTransition(healthy.transitionDir)).transition.frames.length, 3);
  });
});

describe('refine works from any current folder', () => {
  test('a model named by a relative path is recorded absolute', () => {
    const made = copy('elsewhere-cwd');
    const record = JSON.parse(readFileSync(join(made.workDir, 'film.json'), 'utf8')) as { model: string };
    assert.equal(record.model, modelDir('tiny-sd-turbo'));
    const cwd = mkdtempSync(join(tmpdir(), 'latentblend-cwd-'));
    // tsx is loaded by its absolute location: the current folder is outside the repository.
    const spawned = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(ROOT, 'src', 'cli', 'bin.ts'), 'refine', made.transitionDir, '--branches', '1', '--json'], {
      cwd,
      env: { ...process.env, HF_HUB_OFFLINE: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    const run = { code: spawned.status ?? -1, stdout: spawned.stdout, stderr: spawned.stderr };
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { framesComputed: number }).framesComputed, 4);
    assert.ok(existsSync(made.out));
    assert.deepEqual(readdirSync(cwd), [], 'nothing written in the current folder');
  });
});
