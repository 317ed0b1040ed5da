/** `generate --model owner/name`: downloaded once from a (fake, local) Hub, then used offline. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FakeHub } from './helpers/fake-hub.ts';
import { modelDir, ROOT } from './helpers/golden.ts';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Runs the CLI without blocking this process's event loop (the fake Hub lives here). */
function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'bin.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

test('a Hub model is downloaded once into the cache and then works offline, giving the same image', async () => {
  const source = modelDir('tiny-sd-turbo');
  const files: Record<string, Uint8Array> = {};
  for (const path of filesUnder(source)) files[relative(source, path)] = readFileSync(path);
  const hub = await FakeHub.start({
    'test-org/tiny-sd-turbo': { commit: 'c'.repeat(40), files, lfs: Object.keys(files).filter((path) => path.endsWith('.onnx')) },
  });
  const work = mkdtempSync(join(tmpdir(), 'latentblend-hubcli-'));
  const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(work, 'cache'), HF_HUB_OFFLINE: '' };
  try {
    const online = await runCli(['generate', '--model', 'test-org/tiny-sd-turbo', '--prompt', 'a cat', '--seed', '5', '--out', join(work, 'hub.png')], env);
    assert.equal(online.code, 0, online.stderr);
  } finally {
    await hub.stop();
  }
  const offline = await runCli(['generate', '--model', 'test-org/tiny-sd-turbo', '--prompt', 'a cat', '--seed', '5', '--out', join(work, 'offline.png')], { ...env, HF_HUB_OFFLINE: '1' });
  assert.equal(offline.code, 0, offline.stderr);
  const local = await runCli(['generate', '--model', source, '--prompt', 'a cat', '--seed', '5', '--out', join(work, 'local.png')], {});
  assert.equal(local.code, 0, local.stderr);
  const png = (name: string) => readFileSync(join(work, name));
  assert.deepEqual(png('hub.png'), png('local.png'));
  assert.deepEqual(png('offline.png'), png('local.png'));

  const missing = await runCli(['generate', '--model', 'test-org/never-downloaded', '--prompt', 'x', '--out', join(work, 'x.png')], { ...env, HF_HUB_OFFLINE: '1' });
  assert.equal(missing.code, 1, 'not cached while offline: a failure to fetch, not bad usage');
  assert.match(missing.stderr, /test-org\/never-downloaded at revision main is not in the local cache .* offline mode is on/);
  assert.doesNotMatch(missing.stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');
});
