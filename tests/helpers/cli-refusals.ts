/** The CLI's refusals checked in this process (they happen before any heavy work; tests only). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main.ts';

/** Runs the CLI in this process with stderr captured: its exit code and what it wrote there. */
export async function runCliInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await runCli(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

/**
 * One test per case [name, flags, message]: a 2-step `generate` on `model` with the flags exits 2
 * with one stderr line matching `message` and writes no image (its file in `work`).
 */
export function generateRefusalTests(work: string, model: string, cases: readonly (readonly [string, string[], RegExp])[]): void {
  for (const [name, flags, message] of cases) {
    test(name, async () => {
      const out = join(work, `${name.replaceAll(' ', '-')}.png`);
      const run = await runCliInProcess(['generate', '--model', model, '--steps', '2', '--prompt', 'x', '--quiet', ...flags, '--out', out]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
      assert.ok(!existsSync(out), 'no output file');
    });
  }
}
