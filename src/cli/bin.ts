#!/usr/bin/env node
/** Process entry point of the `latentblend` command: Ctrl-C stops cleanly within a step. */
import { spawn } from 'node:child_process';
import { runCli } from './main.ts';

/** Where a re-started process finds its arguments (see below). */
const ARGV_ENV = 'LATENTBLEND_ARGV_JSON';
/** Command lines longer than this (characters of all arguments) are handed over in the environment. */
const LONG_COMMAND_LINE = 8192;

/**
 * ONNX Runtime (1.30, Linux) crashes with SIGSEGV while creating a session in a process whose
 * command line holds a few tens of kB (e.g. a 30 kB --prompt); the same text in the environment
 * is harmless. So a long command line runs in a child process that gets its arguments from the
 * environment, and this process only waits for it and passes its exit status on.
 */
function relaunch(argv: readonly string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!], {
    stdio: 'inherit',
    env: { ...process.env, [ARGV_ENV]: JSON.stringify(argv) },
  });
  // Ctrl-C reaches the child too (same process group); it stops cleanly, we wait for it.
  process.on('SIGINT', () => {});
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`error: could not start latentblend again for a long command line: ${error.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}

let argv = process.argv.slice(2);
const handedOver = process.env[ARGV_ENV];
if (handedOver !== undefined) {
  argv = JSON.parse(handedOver) as string[];
  delete process.env[ARGV_ENV];
}

if (handedOver === undefined && argv.reduce((sum, argument) => sum + argument.length, 0) > LONG_COMMAND_LINE) {
  process.exitCode = await relaunch(argv);
} else {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nstopping after the current step (Ctrl-C again to quit at once)…\n');
    controller.abort(new DOMException('Interrupted', 'AbortError'));
  });
  process.exitCode = await runCli(argv, controller.signal);
}
