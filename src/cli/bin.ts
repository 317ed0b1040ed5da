#!/usr/bin/env node
/** Process entry point of the `latentblend` command: Ctrl-C stops cleanly within a step. */
import { runCli } from './main.ts';

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts += 1;
  if (interrupts > 1) process.exit(130);
  process.stderr.write('\nstopping after the current step (Ctrl-C again to quit at once)…\n');
  controller.abort(new DOMException('Interrupted', 'AbortError'));
});
process.exitCode = await runCli(process.argv.slice(2), controller.signal);
