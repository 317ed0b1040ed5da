/**
 * The engine is one library for Node and browsers: bundling the browser entry for the browser
 * platform must not pull in Node built-ins or Node-only packages (onnxruntime-node, sharp…).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { bundleBrowserCode } from '../src/node/browser-bundle.ts';
import { bundleStaticStudio } from '../src/studio/static-site.ts';

test('the browser entry bundles without Node built-ins or Node-only packages', async () => {
  const bundle = await bundleBrowserCode();
  assert.deepEqual(bundle.nodeImports, [], `Node-only imports in the browser bundle:\n${bundle.nodeImports.join('\n')}`);
  assert.ok(bundle.inputs.some((path) => path.endsWith('src/engine/engine.ts')), 'the engine is in the bundle');
  assert.ok(bundle.inputs.some((path) => path.includes('onnxruntime-web')), 'onnxruntime-web is in the bundle');
  assert.ok(bundle.inputs.some((path) => path.includes('@huggingface/tokenizers')), 'the tokenizer library is in the bundle');
  assert.ok(!bundle.inputs.some((path) => /onnxruntime-node|\/sharp\//.test(path)));
});

test('no module of the engine, pipeline, blend, schedulers, maths, adapters or runtime imports Node', async () => {
  const src = join(import.meta.dirname, '..', 'src');
  const folders = ['engine', 'pipeline', 'blend', 'schedulers', 'math', 'adapters', 'runtime', 'browser'];
  const entries = folders.flatMap((folder) =>
    readdirSync(join(src, folder))
      // The studio's in-page API uses the film spec and plot modules, whose Node imports serve
      // functions the page never calls; the static studio's bundle (below) stubs exactly those.
      .filter((name) => name.endsWith('.ts') && name !== 'studio-local.ts')
      .map((name) => join(src, folder, name)),
  );
  assert.ok(entries.length > 30);
  const bundle = await bundleBrowserCode(entries);
  assert.deepEqual(bundle.nodeImports, [], `Node-only imports:\n${bundle.nodeImports.join('\n')}`);
});

test('the static studio bundles with only the film spec\'s and figures\' Node imports stubbed', async () => {
  const { app, worker } = await bundleStaticStudio();
  assert.ok(app.length > 100_000 && worker.length > 0);
});

test('the check fails on a module that imports Node', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lb-bundle-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, "import { readFileSync } from 'node:fs';\nimport sharp from 'sharp';\nexport const f = () => [readFileSync, sharp];\n");
    const bundle = await bundleBrowserCode(entry);
    assert.equal(bundle.nodeImports.length, 2);
    assert.match(bundle.nodeImports.join('\n'), /node:fs/);
    assert.match(bundle.nodeImports.join('\n'), /sharp/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
